"""dlab's mymodel on one CUDA GPU beside the airbench package's train94, same GPU, same images.

dlab trains mymodel's recipe (src/dlab/studies/builtin/cifar10-mymodel.toml, the same as on a
CPU: bf16 autocast, channels-last, batch 1024, 10 epochs) once per seed
through `train_run`, the code path of `dlab train`. airbench (PyPI `airbench`, Keller Jordan's
train94: fp16 weights, channels-last, lookahead, 9.9 epochs at batch 1024) trains once per seed
on the same 49,000 training images, written in its own file format (`cifar10/train.pt`,
`cifar10/test.pt` under --work: uint8 NHWC images, int64 labels, class names). Both are scored
on the shared copy's 10,000 test images with their own test-time augmentation. The shared
CIFAR-10 copy is JPEG-compressed (quality ~75): its accuracies run below published ones.

Seconds, GPU-synchronized, after one untimed warm-up run of each (cuDNN's algorithm choice,
CUDA context; `torch.backends.cudnn.benchmark = True` for both, as airbench sets on import):
- "train + TTA": airbench: its train94 call (test-file load, net, whitening, training) plus its
  TTA evaluation; dlab: its training loops (`time_s`: the epochs' steps, incl. any periodic
  hold-out evaluation) plus its final evaluation (hold-out and test with TTA). dlab's per-epoch
  evaluation, checkpoints and data upload are outside this figure and inside the next.
- "whole call": `train_run` from start to result (run directory, checkpoints, figures, the
  course's files) against train94 + evaluation.

Run on the GPU machine (bench/gpu_check.sh does it):
    python bench/bench_cifar_gpu.py --data-dir .data --seeds 1 2 3 4 5
Smoke test of the dlab half on any machine:
    python bench/bench_cifar_gpu.py --data-dir ../shared/data --device cpu --seeds 1 \
        --skip-airbench --set data.train_limit=2048 --set train.epochs=1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from dlab.config import load_run_config, parse_set_args
from dlab.data import load_dataset, load_splits
from dlab.torch_engine import classify
from dlab.torch_engine.train import train_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cifar_mymodel import train_flops_per_epoch  # noqa: E402

RECIPE = (Path(__file__).resolve().parents[1]
          / "src/dlab/studies/builtin/cifar10-mymodel.toml")
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM data sheets


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def write_airbench_files(cfg, data_dir, work: Path) -> int:
    """dlab's training split and the test set in airbench's format; returns the train count."""
    train, _ = load_splits(cfg.data, data_dir)
    test = load_dataset(cfg.data.dataset, "test", data_dir)
    (work / "cifar10").mkdir(parents=True, exist_ok=True)
    for name, ds in (("train.pt", train), ("test.pt", test)):
        torch.save({"images": torch.from_numpy(ds.images).permute(0, 2, 3, 1).contiguous(),
                    "labels": torch.from_numpy(ds.labels).long(), "classes": list(ds.classes)},
                   work / "cifar10" / name)
    return len(train)


def run_airbench(seed: int, work: Path) -> dict:
    import airbench

    torch.manual_seed(seed)
    here = os.getcwd()
    os.chdir(work)  # train94 opens its test loader at ./cifar10
    try:
        loader = airbench.CifarLoader("cifar10", train=True, batch_size=1024,
                                      aug={"flip": True, "translate": 2}, altflip=True)
        test_loader = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
        sync("cuda")
        start = time.perf_counter()
        model = airbench.train94(train_loader=loader, verbose=False)
        sync("cuda")
        trained = time.perf_counter()
        acc = airbench.evaluate(model, test_loader, tta_level=2)
        sync("cuda")
        done = time.perf_counter()
    finally:
        os.chdir(here)
    return {"seed": seed, "test": acc, "train_s": trained - start,
            "train_tta_s": done - start, "wall_s": done - start}


def timed_final_evaluations(device: str) -> list[float]:
    """Seconds of each ClassifierSession.final_evaluate from now on (GPU-synchronized)."""
    seconds: list[float] = []
    original = classify.ClassifierSession.final_evaluate

    def timed(self):
        sync(device)
        start = time.perf_counter()
        out = original(self)
        sync(device)
        seconds.append(time.perf_counter() - start)
        return out

    classify.ClassifierSession.final_evaluate = timed
    return seconds


def run_dlab(cfg, run_dir: Path, data_dir, device: str, final_s: list[float]) -> dict:
    sync(device)
    start = time.perf_counter()
    result = train_run(cfg, run_dir, data_dir=data_dir, device=device, progress=False)
    sync(device)
    wall = time.perf_counter() - start
    if result["status"] != "finished":
        raise SystemExit(f"dlab run {run_dir} ended {result['status']!r}")
    return {"seed": cfg.train.seed, "test": result["final"]["test_acc"],
            "train_s": result["time_s"], "train_tta_s": result["time_s"] + final_s[-1],
            "wall_s": wall, "epochs": result["epochs_completed"],
            "s_epoch": result["seconds_per_epoch"]}


def summary(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows]
    scale = 100 if key == "test" else 1
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    unit = "%" if key == "test" else " s"
    return f"{statistics.mean(values) * scale:.2f} ± {sd:.2f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--config", type=Path, default=RECIPE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--skip-airbench", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-gpu"))
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --device cpu for a smoke run)")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}", flush=True)

    def config(seed: int):
        return load_run_config(args.config, parse_set_args([*args.set, f"train.seed={seed}"]))

    dlab_rows: list[dict] = []
    air_rows: list[dict] = []

    def save() -> None:  # after every run: a call cut short still leaves its rows
        if args.json:
            args.json.write_text(json.dumps({"device": name, "torch": torch.__version__,
                                             "dlab": dlab_rows, "airbench": air_rows}, indent=1))

    final_s = timed_final_evaluations(args.device)
    # warm-up: one untimed run of each, then the timed seeds
    run_dlab(config(0), args.work / "dlab-warmup", args.data_dir, args.device, final_s)
    for seed in args.seeds:
        cfg = config(seed)
        dlab_rows.append(run_dlab(cfg, args.work / f"dlab-seed-{seed}-{cfg.hash()}",
                                  args.data_dir, args.device, final_s))
        save()
        r = dlab_rows[-1]
        print(f"dlab seed {seed}: test {100 * r['test']:.2f}%  train+TTA {r['train_tta_s']:.2f} s"
              f"  whole call {r['wall_s']:.1f} s", flush=True)
    if not args.skip_airbench:
        n_air = write_airbench_files(config(1), args.data_dir, args.work)
        print(f"airbench data: {n_air} training images, the same as dlab's", flush=True)
        run_airbench(0, args.work)  # warm-up
        for seed in args.seeds:
            air_rows.append(run_airbench(seed, args.work))
            save()
            r = air_rows[-1]
            print(f"airbench seed {seed}: test {100 * r['test']:.2f}%  "
                  f"train+TTA {r['train_tta_s']:.2f} s", flush=True)

    cfg = config(args.seeds[0])
    n_train = len(load_splits(cfg.data, args.data_dir)[0])
    flops = train_flops_per_epoch(cfg, math.ceil(n_train / cfg.train.batch_size))
    print(f"\nCIFAR-10 (JPEG-compressed copy), {n_train:,} training images, 10,000 test images; "
          f"{name}, torch {torch.__version__}\n")
    print("| trainer | seeds | test acc, mean ± sd | train + TTA s, mean ± sd | whole call s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, rows in (("dlab mymodel", dlab_rows), ("airbench train94", air_rows)):
        if rows:
            print(f"| {label} | {len(rows)} | {summary(rows, 'test')} | "
                  f"{summary(rows, 'train_tta_s')} | {summary(rows, 'wall_s')} |")
    rate = flops / statistics.mean(r["s_epoch"] for r in dlab_rows) / 1e12
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    share = f" = {100 * rate / peak:.1f}% of the {peak:.0f} TFLOP/s bf16 peak" if peak else ""
    print(f"\ndlab: {flops / 1e12:.2f} TFLOP per epoch (forward + backward), "
          f"{rate:.1f} TFLOP/s achieved{share}")
    for label, rows in (("dlab", dlab_rows), ("airbench", air_rows)):
        for r in rows:
            print(f"{label} seed {r['seed']}: test {100 * r['test']:.2f}%, "
                  f"train {r['train_s']:.2f} s, train + TTA {r['train_tta_s']:.2f} s, "
                  f"whole {r['wall_s']:.2f} s")


if __name__ == "__main__":
    main()
