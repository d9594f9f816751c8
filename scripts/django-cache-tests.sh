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
ROOT="$PWD"
VENV="${VENV:-.venv}"
PY="$ROOT/$VENV/bin/python"
SDIST_DIR="$ROOT/.cache/django-sdist"
TARGET="${DJANGO_CACHE_TESTS_TARGET:-redimo}"
RUN_TIMEOUT="${DJANGO_CACHE_TESTS_TIMEOUT:-900}"
TABLE="${DJANGO_CACHE_TESTS_TABLE:-django-cache-tests}"

log() { echo "django-cache-tests: $*" >&2; }

[ -x "$PY" ] || { log "no virtualenv at $VENV: run 'make deps' (or 'make test') first"; exit 2; }
case "$TARGET" in redimo|redis) ;; *) log "DJANGO_CACHE_TESTS_TARGET is redimo or redis, not $TARGET"; exit 2;; esac
VERSION="$("$PY" -c 'import django; print(django.__version__)')"
SDIST="$SDIST_DIR/django-$VERSION"

work="$(mktemp -d)"
started=()        # pids of the processes this script started, stopped in reverse order on exit
cleanup() {
    local i pid
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid="${started[i]}"
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the suite -------------------------------------------------------------------------------------
if [ ! -f "$SDIST/tests/cache/tests.py" ]; then
    log "fetching the Django $VERSION sdist into ${SDIST_DIR#"$ROOT"/}"
    mkdir -p "$SDIST_DIR"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "django==$VERSION" -d "$SDIST_DIR"
    tar xzf "$SDIST_DIR/django-$VERSION.tar.gz" -C "$SDIST_DIR"
fi
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
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
    export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
    if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
        export REDIMO_DYNAMODB_LOCAL_DIR="${REDIMO_DYNAMODB_LOCAL_DIR:-$ROOT/.cache/dynamodb-local}"
        if [ ! -f "$REDIMO_DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" ]; then
            scripts/install-dynamodb-local.sh "$(sed -n 's/^DYNAMODB_LOCAL_VERSION := //p' Makefile)" \
                "$REDIMO_DYNAMODB_LOCAL_DIR"
        fi
        "$PY" scripts/celery_integration/dynamodb_local.py "$work/dynamodb-endpoint" &
        started+=("$!")
        for _ in $(seq 1 600); do
            [ -f "$work/dynamodb-endpoint" ] && break
            kill -0 "${started[-1]}" 2>/dev/null || { log "DynamoDB Local did not start"; exit 1; }
            sleep 0.1
        done
        [ -f "$work/dynamodb-endpoint" ] || { log "DynamoDB Local did not start in 60 s"; exit 1; }
        AWS_ENDPOINT_URL_DYNAMODB="$(cat "$work/dynamodb-endpoint")"
        export AWS_ENDPOINT_URL_DYNAMODB
    fi
    "$ROOT/$VENV/bin/redimo" create-table "$TABLE" --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" >&2
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
# In the background and waited for, so that an INT or TERM to this script stops it through cleanup.
timeout -k 30 "$RUN_TIMEOUT" "$PY" runtests.py --settings=test_redimo_cache --parallel 1 -v 2 \
    cache.tests.RedisCacheTests "$@" &
started+=("$!")
status=0
wait "${started[-1]}" || status=$?
log "runtests.py exited $status after $((SECONDS - start)) s"
exit "$status"
