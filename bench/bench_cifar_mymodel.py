"""Benchmark GaTech HW2's mymodel (src/dlab/studies/builtin/cifar10-mymodel.toml) on CIFAR-10.

Trains the recipe once per seed (`dlab train --config ... --set train.seed=S`, in this process)
and prints, per seed and as the median over seeds: the test accuracy (10,000 images, the
recipe's test-time augmentation), the training time, the minutes of training until the
1,000-image hold-out first reached 80 / 85 / 90% (checked every `train.eval_every` steps; the
periodic evaluations are inside the timed epochs), the load average and a two-thread sgemm
GFLOP/s measured just before and after each run (the CPU is shared), the training FLOPs per
epoch (PyTorch's FlopCounterMode on one step, times the steps) and their rate as a fraction of
that sgemm rate. The shared CIFAR-10 copy is a JPEG-compressed image-folder archive.

Run: .venv/bin/python bench/bench_cifar_mymodel.py --data-dir ../shared/data --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from dlab.config import load_run_config, parse_set_args
from dlab.runs import read_jsonl
from dlab.torch_engine.train import train_run

RECIPE = Path(__file__).resolve().parents[1] / "src/dlab/studies/builtin/cifar10-mymodel.toml"
THRESHOLDS = (0.80, 0.85, 0.90)


def sgemm_gflops(threads: int = 2, n: int = 2048) -> float:
    """The best of three n^3 float32 matrix products at `threads` threads, in GFLOP/s."""
    keep = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    torch.set_num_threads(keep)
    return best


def train_flops_per_epoch(cfg, steps_per_epoch: int) -> float:
    """FLOPs of one training step (forward + backward) at the recipe's batch, times the steps."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from dlab.torch_engine.models import build_model

    model = build_model(cfg.model, (3, 32, 32), 10)
    x = torch.randn(cfg.train.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (cfg.train.batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() * steps_per_epoch


def minutes_to(run_dir: Path, steps_per_epoch: int) -> dict[float, float | None]:
    """Training minutes until the hold-out accuracy first reached each threshold: the step's
    epoch-start time plus its share of that epoch's time."""
    epochs = read_jsonl(run_dir / "metrics.jsonl")
    starts = [0.0]
    for row in epochs:
        starts.append(starts[-1] + row["time_s"])
    out: dict[float, float | None] = {t: None for t in THRESHOLDS}
    for row in read_jsonl(run_dir / "steps.jsonl"):
        if row.get("val_acc") is None:
            continue
        e, within = divmod(row["step"], steps_per_epoch)
        if e >= len(epochs):
            e, within = len(epochs) - 1, steps_per_epoch
        seconds = starts[e] + epochs[e]["time_s"] * within / steps_per_epoch
        for t in THRESHOLDS:
            if out[t] is None and row["val_acc"] >= t:
                out[t] = seconds / 60
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--config", type=Path, default=RECIPE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/bench-mymodel"))
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        cfg = load_run_config(args.config, parse_set_args([*args.set, f"train.seed={seed}"]))
        before = (os.getloadavg()[0], sgemm_gflops())
        start = time.perf_counter()
        result = train_run(cfg, args.runs_dir / f"seed-{seed}-{cfg.hash()}",
                           data_dir=args.data_dir, device="cpu", progress=False)
        wall = time.perf_counter() - start
        after = (os.getloadavg()[0], sgemm_gflops())
        run_dir = args.runs_dir / f"seed-{seed}-{cfg.hash()}"
        steps = len(read_jsonl(run_dir / "steps.jsonl")) // result["epochs_completed"]
        flops = train_flops_per_epoch(cfg, steps)
        rows.append({"seed": seed, "test": result["final"].get("test_acc"),
                     "val": result["final"].get("val_acc"), "train_s": result["time_s"],
                     "wall_s": wall, "before": before, "after": after,
                     "to": minutes_to(run_dir, steps), "flops": flops,
                     "s_epoch": result["seconds_per_epoch"]})
        r = rows[-1]
        print(f"seed {seed}: test {100 * r['test']:.2f}%  train {r['train_s']:.0f} s", flush=True)

    print("\nCIFAR-10 (JPEG-compressed image-folder copy), test set 10,000 images\n")
    print("| seed | test acc | hold-out acc | training min | wall min | min to 80% | 85% | 90% "
          "| load before/after | sgemm GFLOP/s before/after | TFLOP/epoch | share of sgemm |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for r in rows:
        to = " | ".join("-" if r["to"][t] is None else f"{r['to'][t]:.1f}" for t in THRESHOLDS)
        rate = r["flops"] / r["s_epoch"] / 1e9
        share = rate / statistics.mean([r["before"][1], r["after"][1]])
        print(f"| {r['seed']} | {100 * r['test']:.2f}% | {100 * r['val']:.1f}% | "
              f"{r['train_s'] / 60:.1f} | {r['wall_s'] / 60:.1f} | {to} | "
              f"{r['before'][0]:.1f} / {r['after'][0]:.1f} | "
              f"{r['before'][1]:.0f} / {r['after'][1]:.0f} | {r['flops'] / 1e12:.2f} | "
              f"{100 * share:.0f}% ({rate:.0f} GFLOP/s) |")
    if len(rows) > 1:
        print(f"\nmedian test acc {100 * statistics.median(r['test'] for r in rows):.2f}%, "
              f"median training {statistics.median(r['train_s'] for r in rows) / 60:.1f} min")


if __name__ == "__main__":
    main()
