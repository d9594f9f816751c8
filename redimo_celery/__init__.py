"""Celery integration for Redimo: the ``redimo://`` result backend and task locks.

The result backend and task locks are built on the core in a later issue; this package is
installed now so that ``pip install redimo[celery]`` provides its import path.
"""
