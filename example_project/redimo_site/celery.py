"""The Celery app: broker, result backend, task locks and beat schedule all on Redimo."""

from __future__ import annotations

from celery import Celery

import redimo_celery  # noqa: F401 - registers the redimo:// broker transport with kombu

from . import config

app = Celery("redimo_site", include=["reports.tasks"])
app.conf.update(
    broker_url=config.celery_url(),
    result_backend=config.celery_url(),
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    result_expires=3600,
    redimo_limit={"lease": 120, "countdown": 0.5},
    beat_schedule={"heartbeat": {"task": "reports.tasks.heartbeat", "schedule": config.HEARTBEAT_SECONDS}},
    beat_max_loop_interval=config.HEARTBEAT_SECONDS,
)
