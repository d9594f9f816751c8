"""Celery tasks for Redimo's upkeep: ``redimo.sweep`` deletes the items no live key reaches
(``redimo sweep``, docs/data-model.md). Schedule it with beat, for example daily::

    import redimo_celery.tasks  # registers the task with the app
    app.conf.beat_schedule = {"redimo-sweep": {"task": "redimo.sweep", "schedule": 86400,
                                               "args": ("redimo://my-app?namespace=0",)}}
"""

from __future__ import annotations

from celery import shared_task

from redimo.sweep import GRACE, Sweep

from .connection import parse_url


@shared_task(name="redimo.sweep", ignore_result=False)
def sweep(url: str, grace: float = GRACE, workers: int = 4, dry_run: bool = False, whole_table: bool = False) -> dict:
    """Sweep the namespace a ``redimo://TABLE?namespace=...`` URL names (``whole_table``: every
    namespace of the table). Returns the sweep's summary (items scanned, deleted, bytes, units)."""
    location, _ = parse_url(url)
    client = location.client()
    return Sweep(client.gateway, None if whole_table else location.namespace, grace=grace, workers=workers,
                 dry_run=dry_run).run()


__all__ = ["sweep"]
