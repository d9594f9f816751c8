#!/usr/bin/env bash
# Runs django-redis 7.0's own backend tests (tests/test_backend.py and tests/test_backend_sorted_sets.py
# of the django-redis sdist) against redimo_django.cache.RedimoCache on DynamoDB.
#
#   scripts/django-redis-tests.sh [pytest args...]        # from anywhere; runs in the repo root
#
# How the suite is pointed at RedimoCache: its conftest parametrizes every test that takes the `cache`
# fixture over 12 settings modules (sqlite, sqlite_herd, sqlite_sharding, sqlite_json, ...: redis client
# classes, serializers and compressors), and the fixture loads `settings.<name>` from its tests/settings/.
# This script copies tests/django_redis_settings.py there as settings/redimo.py and replaces that list
# with ["redimo"], so each test runs once, on RedimoCache (test ids end in [redimo]). Nothing else in the
# suite is changed. The `sample` alias the suite also reads is in that settings module.
#
# Environment:
#   AWS_ENDPOINT_URL_DYNAMODB  when unset, DynamoDB Local is started on a free port (in memory).
#                  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY default to "testing", AWS_REGION to us-east-1.
#   DJANGO_REDIS_TESTS_TABLE   the DynamoDB table (default django-redis-tests); created if absent.
#   DJANGO_REDIS_TESTS         test files/node ids under the suite's tests/
#                              (default: test_backend.py test_backend_sorted_sets.py)
#   DJANGO_REDIS_TESTS_TIMEOUT seconds for the whole pytest run (default 1800), then it is killed.
#
# Useful pytest args: -x, -k EXPR, -q -rfEs (one line per failure/skip), --junitxml=FILE, --lf.
# pytest-django is turned off (-p no:django): the suite configures Django itself, in its `cache` fixture.
#
# Installs what is missing (idempotently): django-redis and the suite's test requirements (pytest-mock,
# pytest-xdist, whose scheduler its conftest imports, and msgpack, which test_backend.py imports through
# django_redis.serializers.msgpack) into the venv, the django-redis sdist into .cache/django-redis-sdist,
# DynamoDB Local into .cache/dynamodb-local. Every process it starts is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/suite-lib.sh
suite_init django-redis-tests
DJANGO_REDIS_VERSION=7.0.0
SDIST_DIR="$ROOT/.cache/django-redis-sdist"
SDIST="$SDIST_DIR/django_redis-$DJANGO_REDIS_VERSION"
RUNS="$ROOT/.cache/django-redis-tests"   # a directory per run (runs can overlap), plus .pytest_cache for --lf
SETTINGS="$ROOT/tests/django_redis_settings.py"
RUN_TIMEOUT="${DJANGO_REDIS_TESTS_TIMEOUT:-1800}"
export DJANGO_REDIS_TESTS_TABLE="${DJANGO_REDIS_TESTS_TABLE:-django-redis-tests}"
read -r -a TESTS <<<"${DJANGO_REDIS_TESTS:-test_backend.py test_backend_sorted_sets.py}"

mkdir -p "$RUNS"
SUITE="$(mktemp -d "$RUNS/run.XXXXXX")"   # tests/ (the suite's copy) and pytest.ini
suite_cleanup() { rm -rf "$SUITE"; }

# --- what the suite needs -------------------------------------------------------------------------
if ! "$PY" -c 'import django_redis, pytest_mock, xdist, msgpack, redimo_django' 2>/dev/null; then
    log "installing django-redis and the suite's test requirements into $VENV"
    "$PY" -m pip install --quiet "django-redis==$DJANGO_REDIS_VERSION" "pytest-mock>=3.14" "pytest-xdist>=3.6" \
        "msgpack>=1.0"
fi
installed="$("$PY" -c 'import django_redis; print(django_redis.__version__)')"
[ "$installed" = "$DJANGO_REDIS_VERSION" ] || log "warning: django-redis $installed is installed; the suite is $DJANGO_REDIS_VERSION's"

suite_sdist django-redis "$DJANGO_REDIS_VERSION" "$SDIST_DIR" "django_redis-$DJANGO_REDIS_VERSION/tests/conftest.py"
# A copy of tests/ without django_redis's source beside it, so that the installed django-redis is imported.
cp -r "$SDIST/tests" "$SUITE/tests"
cp "$SETTINGS" "$SUITE/tests/settings/redimo.py"
sed -i 's/metafunc\.parametrize("cache_settings", settings)/metafunc.parametrize("cache_settings", ["redimo"])/' \
    "$SUITE/tests/conftest.py"
grep -q 'metafunc.parametrize("cache_settings", \["redimo"\])' "$SUITE/tests/conftest.py" \
    || { log "could not restrict the suite's conftest to RedimoCache (its pytest_generate_tests changed?)"; exit 2; }
# The suite's pytest options ([tool.pytest] of its pyproject.toml) less coverage, xdist and doctests.
cat >"$SUITE/pytest.ini" <<'EOF'
[pytest]
addopts = -p no:django
pythonpath = tests
xfail_strict = true
EOF

# --- DynamoDB --------------------------------------------------------------------------------------
suite_dynamodb "$DJANGO_REDIS_TESTS_TABLE"

# --- the run ---------------------------------------------------------------------------------------
paths=("${TESTS[@]/#/$SUITE/tests/}")
log "django-redis $DJANGO_REDIS_VERSION's ${TESTS[*]} on RedimoCache, table $DJANGO_REDIS_TESTS_TABLE at $AWS_ENDPOINT_URL_DYNAMODB"
start=$SECONDS
suite_run "$RUN_TIMEOUT" "$PY" -m pytest -c "$SUITE/pytest.ini" --rootdir "$SUITE" \
    -o cache_dir="$RUNS/.pytest_cache" "${paths[@]}" "$@"
log "pytest exited $status after $((SECONDS - start)) s"
exit "$status"
