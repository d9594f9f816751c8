#!/usr/bin/env bash
# Runs fakeredis 2.41's own per-command tests (test/test_mixins/* of its sdist) against redimo.Redimo on
# DynamoDB, and against fakeredis itself in the same run for comparison.
#
#   scripts/fakeredis-tests.sh [pytest args...]        # from anywhere; runs in the repo root
#
# How: the suite's test/conftest.py (which wants a real Redis on port 6390) is replaced by
# tests/fakeredis_conftest.py, whose `r` fixture is parametrized over [redimo] (a fresh namespace per test)
# and [fakeredis] (a FakeServer), both RESP2 and Redis 7.0; the suite's markers skip what a Redis 7.0 would.
# Nothing else in the suite is changed.
#
# Environment:
#   AWS_ENDPOINT_URL_DYNAMODB  when unset, DynamoDB Local is started on a free port (in memory).
#                  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY default to "testing", AWS_REGION to us-east-1.
#   FAKEREDIS_TESTS_TABLE      the DynamoDB table (default fakeredis-tests); created if absent.
#   FAKEREDIS_TESTS            test files/node ids under the suite's test/test_mixins/
#                              (default: the bitmap, generic-key (SORT among them) and stream modules)
#   FAKEREDIS_TESTS_TIMEOUT    seconds for the whole pytest run (default 1200), then it is killed.
#
# Useful pytest args: -k redimo (only Redimo's runs), -x, -q -rfEs, --junitxml=FILE.
#
# Installs what is missing (idempotently): fakeredis and valkey (which the suite imports) into the venv, the
# fakeredis sdist into .cache/fakeredis-sdist, DynamoDB Local into .cache/dynamodb-local.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/suite-lib.sh
suite_init fakeredis-tests
FAKEREDIS_VERSION=2.41.0
SDIST_DIR="$ROOT/.cache/fakeredis-sdist"
SDIST="$SDIST_DIR/fakeredis-$FAKEREDIS_VERSION"
RUN_TIMEOUT="${FAKEREDIS_TESTS_TIMEOUT:-1200}"
export FAKEREDIS_TESTS_TABLE="${FAKEREDIS_TESTS_TABLE:-fakeredis-tests}"
read -r -a TESTS <<<"${FAKEREDIS_TESTS:-test_bitmap_commands.py test_generic_commands.py \
test_streams_commands.py test_stream_groups.py test_stream_trimming.py test_stream_read_caps.py}"

# --- what the suite needs -------------------------------------------------------------------------
if ! "$PY" -c 'import fakeredis, valkey' 2>/dev/null; then
    log "installing fakeredis $FAKEREDIS_VERSION and valkey into $VENV"
    "$PY" -m pip install --quiet "fakeredis==$FAKEREDIS_VERSION" "valkey>=6"
fi
installed="$("$PY" -c 'import fakeredis; print(fakeredis.__version__)')"
[ "$installed" = "$FAKEREDIS_VERSION" ] || log "warning: fakeredis $installed is installed; the suite is $FAKEREDIS_VERSION's"
suite_sdist fakeredis "$FAKEREDIS_VERSION" "$SDIST_DIR" "fakeredis-$FAKEREDIS_VERSION/test/testtools.py"

# The suite's test package, without fakeredis's source beside it, with Redimo's conftest.
mkdir -p "$work/suite/test"
cp "$SDIST/test/__init__.py" "$SDIST/test/testtools.py" "$work/suite/test/"
cp -r "$SDIST/test/test_mixins" "$work/suite/test/test_mixins"
cp tests/fakeredis_conftest.py "$work/suite/test/conftest.py"
cat >"$work/suite/pytest.ini" <<'EOF'
[pytest]
addopts = -p no:django -p no:cacheprovider
markers =
    slow
    fake
    fake_only
    real
    disconnected
    supported_server_versions
    decode_responses
    unsupported_server_types
    resp2_only
    resp3_only
    load_lua_modules
    tcp_server
EOF

# --- DynamoDB --------------------------------------------------------------------------------------
suite_dynamodb "$FAKEREDIS_TESTS_TABLE"

# --- the run ---------------------------------------------------------------------------------------
paths=("${TESTS[@]/#/$work/suite/test/test_mixins/}")
log "fakeredis $FAKEREDIS_VERSION's ${TESTS[*]} on Redimo (table $FAKEREDIS_TESTS_TABLE at $AWS_ENDPOINT_URL_DYNAMODB) and on fakeredis"
start=$SECONDS
cd "$work/suite"
PYTHONPATH="$work/suite${PYTHONPATH:+:$PYTHONPATH}" suite_run "$RUN_TIMEOUT" \
    "$PY" -m pytest -c "$work/suite/pytest.ini" --rootdir "$work/suite" "${paths[@]}" "$@"
log "pytest exited $status after $((SECONDS - start)) s"
exit "$status"
