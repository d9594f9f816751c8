"""Run DynamoDB Local (through ``redimo.local``) until SIGTERM/SIGINT, for scripts/celery-integration.sh.

Usage: python dynamodb_local.py ENDPOINT_FILE

Writes the endpoint URL to ENDPOINT_FILE once DynamoDB Local answers, then waits; on SIGTERM or
SIGINT it stops the Java process (redimo.local's context manager) and exits.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from redimo.local import dynamodb_local


def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(0)


def main() -> None:
    endpoint_file = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with dynamodb_local() as endpoint:
        partial = endpoint_file.with_suffix(".tmp")
        partial.write_text(endpoint)
        partial.replace(endpoint_file)
        while True:
            signal.pause()


if __name__ == "__main__":
    main()
