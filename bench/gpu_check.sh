#!/usr/bin/env bash
# The GPU checks (issue 14's GPU part), prepared to run in one call of a lent GPU machine.
#
# Here, once (copies the datasets the checks read into .data/, and the airbench package as a
# wheel into .whl/; both folders are git-ignored, ~31 MB together):
#     bash bench/gpu_check.sh --prepare
# Then on the GPU machine (the device tool: carry [".data", ".whl"], timeout_s 540), from the
# repository root:
#     bash bench/gpu_check.sh [SEEDS...]          # default seeds 1 2 3 4 5
# It runs the CUDA tests (tests/test_gpu.py: each trainer on the GPU, bf16, resume), then
# bench/bench_cifar_gpu.py (dlab's mymodel recipe beside airbench's train94 on the same
# images), writing logs and the bench's JSON under $OUT (or ./gpu-out) and a summary at the end.
# The machine's python3 has PyTorch and the rest of dlab's needs except airbench; dlab runs from
# src/ (PYTHONPATH), not installed.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    shared=${DLAB_SHARED_DATA:-../shared/data}
    mkdir -p .data .whl
    for name in cifar10 mnist; do
        rm -rf ".data/$name" && cp -r "$shared/$name" ".data/$name"
    done
    python3 -m pip wheel --no-deps --no-build-isolation -q -w .whl airbench==0.1.8
    du -sh .data .whl
    exit 0
fi

out=${OUT:-gpu-out}
mkdir -p "$out"
seeds=("${@:-1 2 3 4 5}")
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || { echo "airbench wheel missing: run --prepare here"; exit 2; }
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 DLAB_TEST_DATA_DIR="$PWD/.data"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    | tee -a "$out/gpu.txt"

start=$SECONDS
# at most 4 minutes, so that the bench keeps its time in a 9-minute call
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$out/tests.log"
tests_rc=${PIPESTATUS[0]}
echo "CUDA tests: rc $tests_rc in $((SECONDS - start)) s"

start=$SECONDS
# shellcheck disable=SC2068
python3 bench/bench_cifar_gpu.py --data-dir .data --seeds ${seeds[@]} \
    --json "$out/bench.json" 2>&1 | tee "$out/bench.log"
bench_rc=${PIPESTATUS[0]}
echo "bench: rc $bench_rc in $((SECONDS - start)) s"
exit $((tests_rc || bench_rc))
