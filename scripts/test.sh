#!/usr/bin/env bash
# Install dlab with its test tools into ./.venv, the system packages the tests use (PostgreSQL
# for multi-worker studies, Chromium for the report browser test), then run the test suite.
# The tests read the real datasets from ../shared/data (or $DLAB_TEST_DATA_DIR).
# Extra arguments go to pytest (e.g. -m slow, -k report).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest --durations=20 "$@"
