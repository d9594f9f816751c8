"""The Redimo example site: Django and Celery with every store but Django's auth tables on DynamoDB."""

from .celery import app as celery_app

__all__ = ["celery_app"]
