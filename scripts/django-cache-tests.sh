#!/usr/bin/env bash
# Runs Django's own RedisCacheTests (tests/cache/tests.py of the Django sdist matching the installed
# Django) with django.core.cache.backends.redis.RedisCache pointed at `redimo serve` on DynamoDB, or at a
# real redis-server for comparison.
#
#   scripts/django-cache-tests.sh [runtests.py args...]    # from anywhere; runs in the repo root
#
# Nothing in the suite is changed: a settings module (Django's tests/test_sqlite.py plus CACHES whose
# default is RedisCache at redis://127.0.0.1:PORT) is added beside it and Django's tests/runtests.py runs
# cache.tests.RedisCacheTests (-v 2: one line per test, which tests/test_django_cache_suite.py reads).
#
# Environment:
#   DJANGO_CACHE_TESTS_TARGET   redimo (default): `redimo serve` on a fresh namespace of the table;
#                               redis: a redis-server started on a free port.
#   AWS_ENDPOINT_URL_DYNAMODB   when unset, DynamoDB Local is started on a free port (in memory).
#                  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY default to "testing", AWS_REGION to us-east-1.
#   DJANGO_CACHE_TESTS_TABLE    the DynamoDB table (default django-cache-tests); created if absent.
#   DJANGO_CACHE_TESTS_TIMEOUT  seconds for the whole run (default 900), then it is killed.
#
# Fetches the Django sdist into .cache/django-sdist (pip download through the package registry) and
# DynamoDB Local into .cache/dynamodb-local when missing. Every process it starts is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/suite-lib.sh
suite_init django-cache-tests
SDIST_DIR="$ROOT/.cache/django-sdist"
TARGET="${DJANGO_CACHE_TESTS_TARGET:-redimo}"
RUN_TIMEOUT="${DJANGO_CACHE_TESTS_TIMEOUT:-900}"
TABLE="${DJANGO_CACHE_TESTS_TABLE:-django-cache-tests}"

case "$TARGET" in redimo|redis) ;; *) log "DJANGO_CACHE_TESTS_TARGET is redimo or redis, not $TARGET"; exit 2;; esac
VERSION="$("$PY" -c 'import django; print(django.__version__)')"
SDIST="$SDIST_DIR/django-$VERSION"

# --- the suite -------------------------------------------------------------------------------------
suite_sdist django "$VERSION" "$SDIST_DIR" "django-$VERSION/tests/cache/tests.py"
# A copy of tests/ without Django's source beside it, so that the installed Django is imported.
cp -r "$SDIST/tests" "$work/tests"

# --- the server ------------------------------------------------------------------------------------
wait_for_ping() {  # port, pid
    for _ in $(seq 1 600); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        kill -0 "$2" 2>/dev/null || { log "the server exited"; exit 1; }
        sleep 0.1
    done
    log "the server did not answer in 60 s"; exit 1
}
PORT="$("$PY" -c 'from redimo.local import free_port; print(free_port())')"
if [ "$TARGET" = redis ]; then
    redis-server --port "$PORT" --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
    started+=("$!")
else
    suite_dynamodb "$TABLE"
    # A namespace of its own, so that runs sharing the table (and the suite's FLUSHDB) do not meet.
    "$ROOT/$VENV/bin/redimo" serve --table "$TABLE" --port "$PORT" --db "0=django-cache-$$-$RANDOM" \
        --log-level WARNING &
    started+=("$!")
fi
wait_for_ping "$PORT" "${started[-1]}"

cat >"$work/tests/test_redimo_cache.py" <<EOF
from test_sqlite import *  # noqa: F403 - Django's own test settings

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:$PORT"},
    "other": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "other"},
}
EOF

# --- the run ---------------------------------------------------------------------------------------
log "Django $VERSION's RedisCacheTests against $TARGET on port $PORT"
start=$SECONDS
cd "$work/tests"
suite_run "$RUN_TIMEOUT" "$PY" runtests.py --settings=test_redimo_cache --parallel 1 -v 2 \
    cache.tests.RedisCacheTests "$@"
log "runtests.py exited $status after $((SECONDS - start)) s"
exit "$status"
