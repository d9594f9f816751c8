"""Django settings for django-redis 7.0's own backend tests, run against RedimoCache by
scripts/django-redis-tests.sh, which tests/test_django_redis_suite.py runs.

The script copies this file into the suite as ``tests/settings/redimo.py``: django-redis's ``cache``
fixture loads ``settings.<name>`` (see its tests/conftest.py), and the script makes "redimo" the only
name. It mirrors the suite's tests/settings/sqlite.py, with the aliases that test_backend.py and
test_backend_sorted_sets.py use on RedimoCache (its "doesnotexist" and "with_prefix" are used only by
test_cache_options.py).
"""

import os

SECRET_KEY = "django_tests_secret_key"

TABLE = os.environ.get("DJANGO_REDIS_TESTS_TABLE", "django-redis-tests")  # created by the script
OPTIONS = {"ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")}  # None: boto3's configuration

CACHES = {
    # The cache of every test (the suite's "default": redis db 1).
    "default": {
        "BACKEND": "redimo_django.cache.RedimoCache",
        "LOCATION": TABLE,
        "OPTIONS": {**OPTIONS, "NAMESPACE": "django-redis-tests"},
    },
    # Read by test_primary_replica_switching*, which replace the client's private _server/_clients.
    "sample": {
        "BACKEND": "redimo_django.cache.RedimoCache",
        "LOCATION": TABLE,
        "OPTIONS": {**OPTIONS, "NAMESPACE": "django-redis-tests-sample"},
    },
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

USE_TZ = False  # as in the suite's settings: the expire_at tests pass naive datetime.now() values
