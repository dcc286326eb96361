#!/usr/bin/env bash
# Install dlab into ./.venv and run its main job: `dlab train` — the assignment's default net on
# Fashion-MNIST with the assignment's defaults. Extra arguments go to `dlab train`.
# Fashion-MNIST is looked up (--data-dir, $DLAB_DATA_DIR, ~/.cache/dlab/data,
# /usr/share/datasets) and downloaded if missing; where the download is unreachable (offline
# machines), Debian's `dataset-fashion-mnist` package provides it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
if ! .venv/bin/dlab fetch fashion-mnist >/dev/null; then
    echo "quickstart: Fashion-MNIST could not be downloaded; installing Debian's dataset-fashion-mnist" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi
exec .venv/bin/dlab train "$@"
