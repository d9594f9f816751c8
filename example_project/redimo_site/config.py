"""Where the site keeps its data, from the environment (no Django import: the Celery worker and beat
use it too). ``REDIMO_DEMO_ENDPOINT``: the DynamoDB endpoint (unset: boto3's configuration, so AWS);
``REDIMO_DEMO_TABLE``: the table; ``REDIMO_DEMO_NAMESPACE``: the prefix of the site's four namespaces."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

TABLE = os.environ.get("REDIMO_DEMO_TABLE", "redimo-demo")
ENDPOINT = os.environ.get("REDIMO_DEMO_ENDPOINT") or None
PREFIX = os.environ.get("REDIMO_DEMO_NAMESPACE", "demo")
STATE_DIR = Path(os.environ.get("REDIMO_DEMO_DIR") or Path(__file__).resolve().parents[2] / ".cache" / "demo")
PART_SECONDS = float(os.environ.get("REDIMO_DEMO_PART_SECONDS", "1.5"))  # how long a report part works
HEARTBEAT_SECONDS = 5.0


def namespace(part: str) -> str:
    """One of the site's namespaces: ``cache``, ``sessions``, ``celery`` or ``data``."""
    return f"{PREFIX}:{part}"


def celery_url() -> str:
    """The Celery broker and result backend: ``redimo://TABLE?namespace=...&endpoint_url=...``."""
    options = {"namespace": namespace("celery"), **({"endpoint_url": ENDPOINT} if ENDPOINT else {})}
    return f"redimo://{TABLE}?{urlencode(options)}"
