#!/usr/bin/env bash
# Runs Celery's own integration tests (t/integration of the celery sdist: test_tasks.py,
# test_canvas.py, test_group_chains.py) against a result backend and a broker.
#
#   scripts/celery-integration.sh [pytest args...]        # from anywhere; runs in the repo root
#
# Environment:
#   TEST_BACKEND   result backend URL (default redimo://celery-integration?namespace=it).
#                  The word "redis" means redis://127.0.0.1:PORT/0 on the redis-server this script starts (the
#                  reference run): db 0, as in Celery's CI, because tests such as test_chord_on_error read the
#                  backend's keys through the suite's own redis connection (REDIS_HOST/REDIS_PORT, db 0).
#   TEST_BROKER    broker URL (default: redis://127.0.0.1:PORT/0 on a redis-server this script starts).
#                  With redimo://, the suite's one redis-broker xfail ("Redis broker does not duplicate the
#                  task", test_chord_header_id_duplicated_on_rabbitmq_msg_duplication) applies to it too: the
#                  test republishes from a before_task_publish handler with the signal's own arguments (a
#                  Signal object among them), which AMQP puts in frame properties but every kombu virtual
#                  transport, redis's and redimo's alike, must JSON-encode, so the duplicate is never sent.
#   REDIS_HOST, REDIS_PORT   the redis the suite's helper tasks (redis_echo, redis_count, ...) write to;
#                  default: the redis-server this script starts.
#   AWS_ENDPOINT_URL_DYNAMODB  for redimo:// URLs; when unset, DynamoDB Local is started on a free port.
#                  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY default to "testing", AWS_REGION to us-east-1.
#                  Every table named by a redimo:// URL is created (idempotent).
#   CELERY_INTEGRATION_TESTS         test files/node ids under t/integration
#                                    (default: test_tasks.py test_canvas.py test_group_chains.py)
#   CELERY_INTEGRATION_TIMEOUT       seconds for the whole pytest session (default 1200): then no test is
#                                    rerun and the run stops after the running test, with pytest's summary;
#                                    `timeout` kills the run 300 s later if that does not happen
#   CELERY_INTEGRATION_TEST_TIMEOUT  limit in seconds on each setup, call and teardown of each attempt of a test
#                                    without a timeout mark (default 600: on redis
#                                    test_disabling_flag_allow_error_cb_on_chord_header alone takes ~300 s).
#                                    On a timeout, all threads' stacks go to .cache/celery-integration/run.*/stacks/.
#                                    (scripts/celery_integration/budget.py; pytest-timeout is not used)
#   WORKER_LOGLEVEL  the session worker's log level (default INFO, as in Celery's CI: test_trace_log_arguments
#                    asserts on the worker's INFO records)
#   CELERY_INTEGRATION_UNGATE        a URL scheme (e.g. redimo): the 78 "Requires redis result backend"
#                                    skips also let that backend through. Most of those tests use redis only
#                                    as a side channel (REDIS_HOST/REDIS_PORT); a few read the redis backend's
#                                    own keys or pub/sub channels and cannot pass on another backend.
#   CELERY_INTEGRATION_CONFIG        JSON object of Celery settings merged into the suite's app config
#                                    (written to the suite's integration-tests-config.json)
#
# Useful pytest args: -x, -k EXPR, --force-reruns 0 (turn off the suite's @flaky reruns: 5 per test),
# -q -rfEs (one line per failure/skip), --junitxml=FILE.
#
# Installs what is missing (idempotently): the celery sdist into .cache/celery-sdist, pytest-rerunfailures
# and pydantic into the venv, DynamoDB Local into .cache/dynamodb-local. Every process it
# starts is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/suite-lib.sh
suite_init celery-integration
CELERY_VERSION=5.7.0
SDIST_DIR="$ROOT/.cache/celery-sdist"
SDIST="$SDIST_DIR/celery-$CELERY_VERSION"
RUNS="$ROOT/.cache/celery-integration"   # a directory per run (runs can overlap), plus .pytest_cache for --lf
HERE="$ROOT/scripts/celery_integration"
RUN_TIMEOUT="${CELERY_INTEGRATION_TIMEOUT:-1200}"
TEST_TIMEOUT="${CELERY_INTEGRATION_TEST_TIMEOUT:-600}"
read -r -a TESTS <<<"${CELERY_INTEGRATION_TESTS:-test_tasks.py test_canvas.py test_group_chains.py}"

mkdir -p "$RUNS"
SUITE="$(mktemp -d "$RUNS/run.XXXXXX")"   # t/ (the suite), stacks/ (thread stacks of timed-out tests)
suite_cleanup() {
    rm -rf "$SUITE/t" "$SUITE/integration-tests-config.json"
    if [ -d "$SUITE/stacks" ]; then log "thread stacks of timed-out tests: ${SUITE#"$ROOT"/}/stacks/"; fi
    rmdir "$SUITE" 2>/dev/null || true
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- what the suite needs -------------------------------------------------------------------------
if ! "$PY" -c 'import celery, redis, pytest_rerunfailures, pydantic' 2>/dev/null; then
    log "installing the suite's test requirements into $VENV"
    "$PY" -m pip install --quiet "celery[redis]>=5.3" "pytest-rerunfailures>=16.5" "pydantic>=2"
fi
installed="$("$PY" -c 'import celery; print(celery.__version__)')"
[ "$installed" = "$CELERY_VERSION" ] || log "warning: celery $installed is installed; the suite is celery $CELERY_VERSION's"

suite_sdist celery "$CELERY_VERSION" "$SDIST_DIR" "celery-$CELERY_VERSION/t/integration/conftest.py"
# A copy of t/ without celery's source beside it, so that the installed celery is the one imported.
mkdir -p "$SUITE/t"
cp "$SDIST/t/__init__.py" "$SDIST/t/canvas_helpers.py" "$SDIST/t/skip.py" "$SUITE/t/"
cp -r "$SDIST/t/integration" "$SUITE/t/integration"
if [ -n "${CELERY_INTEGRATION_UNGATE:-}" ]; then
    # The suite's "Requires redis result backend" guards (78 in the three files) also accept this scheme.
    scheme="${CELERY_INTEGRATION_UNGATE//[^A-Za-z0-9+.-]/}"
    sed -i -E "s/if not ((manager\.)?app\.conf\.result_backend)\.startswith\((['\"])redis\3\)/if not \1.startswith(('redis', '$scheme'))/" \
        "$SUITE"/t/integration/test_*.py
fi
if [[ "${TEST_BROKER:-}" == redimo://* ]]; then
    # The one redis-broker xfail applies to the redimo broker too (see TEST_BROKER above).
    sed -i -E "s/if manager\.app\.conf\.broker_url\.startswith\('redis'\):/if manager.app.conf.broker_url.startswith(('redis', 'redimo')):/" \
        "$SUITE"/t/integration/test_canvas.py
fi
if [ -n "${CELERY_INTEGRATION_CONFIG:-}" ]; then
    printf '%s\n' "$CELERY_INTEGRATION_CONFIG" >"$SUITE/integration-tests-config.json"
fi

# --- redis-server: the broker by default, and the suite's helper tasks' side channel -------------
if [ -z "${TEST_BROKER:-}" ] || [ -z "${REDIS_PORT:-}" ] || [ "${TEST_BACKEND:-}" = redis ]; then
    redis_port="$(free_port)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$work" --logfile "$work/redis.log" &
    started+=("$!")
    for _ in $(seq 1 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        kill -0 "${started[-1]}" 2>/dev/null || { log "redis-server did not start"; cat "$work/redis.log" >&2; exit 1; }
        sleep 0.1
    done
    export REDIS_HOST="${REDIS_HOST:-127.0.0.1}" REDIS_PORT="${REDIS_PORT:-$redis_port}"
    export TEST_BROKER="${TEST_BROKER:-redis://127.0.0.1:$redis_port/0}"
    [ "${TEST_BACKEND:-}" = redis ] && TEST_BACKEND="redis://127.0.0.1:$redis_port/0"
fi
export TEST_BACKEND="${TEST_BACKEND:-redimo://celery-integration?namespace=it}"

# --- DynamoDB, for redimo:// URLs ----------------------------------------------------------------
redimo_tables=()
for url in "$TEST_BACKEND" "$TEST_BROKER"; do
    case "$url" in
        redimo://*) table="${url#redimo://}"; table="${table%%[/?]*}"; redimo_tables+=("$table") ;;
    esac
done
if [ ${#redimo_tables[@]} -gt 0 ]; then
    if ! "$PY" -c 'from celery.app.backends import by_name; by_name("redimo")' 2>/dev/null \
            && [ -f redimo_celery/backend.py ]; then
        log "registering redimo's entry points: pip install -e . --no-deps"
        "$PY" -m pip install --quiet -e . --no-deps
    fi
    suite_dynamodb "${redimo_tables[@]}"
fi

# --- the run ---------------------------------------------------------------------------------------
paths=("${TESTS[@]/#/$SUITE/t/integration/}")
log "TEST_BACKEND=$TEST_BACKEND TEST_BROKER=$TEST_BROKER REDIS=${REDIS_HOST:-localhost}:${REDIS_PORT:-6379}${AWS_ENDPOINT_URL_DYNAMODB:+ DynamoDB=$AWS_ENDPOINT_URL_DYNAMODB}"
export PYTHONPATH="$SUITE:$HERE${PYTHONPATH:+:$PYTHONPATH}"
export CELERY_INTEGRATION_TIMEOUT="$RUN_TIMEOUT" CELERY_INTEGRATION_TEST_TIMEOUT="$TEST_TIMEOUT"
export CELERY_INTEGRATION_STACKS="$SUITE/stacks"
export WORKER_LOGLEVEL="${WORKER_LOGLEVEL:-INFO}" PYTHONIOENCODING="${PYTHONIOENCODING:-UTF-8}"
start=$SECONDS
# `timeout` runs pytest in a process group of its own and passes an INT or TERM to all of it (the worker's
# prefork children included).
suite_run "$((RUN_TIMEOUT + 300))" "$PY" -m pytest -c "$HERE/pytest.ini" --rootdir "$SUITE" \
    -o cache_dir="$RUNS/.pytest_cache" "${paths[@]}" "$@"
log "pytest exited $status after $((SECONDS - start)) s (TEST_BACKEND=$TEST_BACKEND)"
exit "$status"
