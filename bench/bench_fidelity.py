"""Fidelity: the default net with the assignment's defaults vs the original submission's numbers.

Trains the default net for 10 epochs (batch 256, SGD lr 0.01 momentum 0.5, seed 1, test set as
validation) on MNIST and Fashion-MNIST through `train_run` and prints final test accuracy next
to the reference (MNIST 97.27%, Fashion-MNIST 82.07%; target: within ±2 points).

    python bench/bench_fidelity.py --data-dir ../shared/data --runs-dir runs/fidelity
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dlab.config import resolve
from dlab.torch_engine.train import train_run

REFERENCE = {"mnist": 97.27, "fashion-mnist": 82.07}  # the original submission, SPEC §3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/fidelity"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"{'dataset':<14} {'final acc':>9} {'best acc':>9} {'reference':>9} {'delta':>7} "
          f"{'s/epoch':>8} {'wall s':>7}  within ±2")
    for dataset, ref in REFERENCE.items():
        # the assignment normalizes both datasets with MNIST's statistics
        cfg = resolve({"data": {"dataset": dataset, "mean": [0.1307], "std": [0.3081]}})
        start = time.perf_counter()
        r = train_run(cfg, args.runs_dir / dataset, data_dir=args.data_dir, device=args.device,
                      progress=False)
        wall = time.perf_counter() - start
        final, best = 100 * r["final"]["val_acc"], 100 * r["best"]["val_acc"]
        print(f"{dataset:<14} {final:>8.2f}% {best:>8.2f}% {ref:>8.2f}% {final - ref:>+7.2f} "
              f"{r['seconds_per_epoch']:>8.2f} {wall:>7.1f}  {'yes' if abs(final - ref) <= 2 else 'NO'}")


if __name__ == "__main__":
    main()
