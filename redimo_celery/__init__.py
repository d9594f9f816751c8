"""Celery on DynamoDB through Redimo: the ``redimo://`` result backend (:mod:`.backend`), the kombu
transport (:mod:`.transport`), the beat scheduler (:mod:`.beat`) and task locks (:mod:`.locks`).

Importing this package registers ``redimo://`` as a kombu transport (kombu 5.7 reads transports
from its own alias table only), so a Celery config that uses ``broker_url = "redimo://TABLE"``
must ``import redimo_celery`` first. The result backend needs no import: it is an entry point.
"""

from .transport import register

register()
