"""django-redis 7.0's own backend tests (test_backend.py, test_backend_sorted_sets.py, from its sdist)
against RedimoCache on DynamoDB Local, through scripts/django-redis-tests.sh. Every test passes but
those listed in NOT_APPLICABLE, which patch django-redis's own classes or set its private attributes
(docs/django-cache.md, "Switching from django-redis")."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from conftest import ROOT

NOT_APPLICABLE = {
    # @patch("django_redis.cache.RedisCache.client"): RedimoCache is not django-redis's RedisCache
    "test_delete_pattern_with_custom_count",
    "test_delete_pattern_with_settings_default_scan_count",
    "test_close_with_signal_parameter",
    # set django-redis's private client._server / client._clients to switch primary and replica
    "test_primary_replica_switching",
    "test_primary_replica_switching_with_index",
}


def test_django_redis_backend_suite(dynamodb_local_endpoint: str, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    environment = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local_endpoint,
                   "DJANGO_REDIS_TESTS_TIMEOUT": "600"}
    run = subprocess.run([str(ROOT / "scripts" / "django-redis-tests.sh"), "-q", f"--junitxml={report}"],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = case.get("name", "").split("[")[0]
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[name] = "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed == NOT_APPLICABLE, f"unexpected: {sorted(failed - NOT_APPLICABLE)}; " \
                                     f"now passing: {sorted(NOT_APPLICABLE - failed)}"
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 118
