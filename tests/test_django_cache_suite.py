"""Django's own RedisCacheTests (tests/cache/tests.py of the Django sdist) with Django's built-in
RedisCache pointed at ``redimo serve`` on DynamoDB Local, through scripts/django-cache-tests.sh. They
pass as against a real redis-server: only the three culling tests are skipped (by the suite itself)."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import ROOT

SKIPPED = {"test_cull", "test_zero_cull", "test_cull_delete_when_store_empty"}


def test_django_redis_cache_suite(dynamodb_local_endpoint: str) -> None:
    environment = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local_endpoint,
                   "DJANGO_CACHE_TESTS_TIMEOUT": "600"}
    run = subprocess.run([str(ROOT / "scripts" / "django-cache-tests.sh")], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=900)
    outcomes = dict(re.findall(r"^(test_\w+) \(cache\.tests\.RedisCacheTests\.\w+\)(?:\n(?!test_).*)? \.\.\. (\w+)",
                               run.stderr, re.MULTILINE))
    assert run.returncode == 0, run.stderr[-5000:]
    assert {name for name, outcome in outcomes.items() if outcome == "skipped"} == SKIPPED
    assert len(outcomes) >= 60 and set(outcomes.values()) == {"ok", "skipped"}
