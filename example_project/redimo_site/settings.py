"""Settings of the example site. SQLite holds only Django's auth tables; the cache, the sessions,
Celery and the site's data are in one DynamoDB table (``redimo_site.config``), a namespace each."""

from __future__ import annotations

import os
from pathlib import Path

from . import config

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "redimo-demo-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "redimo_django",
    "accounts",
    "reports",
]
MIDDLEWARE = [
    "redimo_site.cost.CostFooterMiddleware",  # outermost: counts everything, the session save included
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.tracking.LastSeenMiddleware",
]
ROOT_URLCONF = "redimo_site.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [BASE_DIR / "templates"],
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
WSGI_APPLICATION = "redimo_site.wsgi.application"

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("REDIMO_DEMO_SQLITE", str(config.STATE_DIR / "site.sqlite3"))}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_endpoint = {"ENDPOINT_URL": config.ENDPOINT} if config.ENDPOINT else {}
CACHES = {"default": {"BACKEND": "redimo_django.cache.RedimoCache", "LOCATION": config.TABLE, "TIMEOUT": 300,
                      "OPTIONS": {"NAMESPACE": config.namespace("cache"), **_endpoint}}}
SESSION_ENGINE = "redimo_django.sessions"
REDIMO_SESSIONS = {"NAMESPACE": config.namespace("sessions")}  # the cache's table and boto3 client
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"  # not in the session: survives sign-out

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
