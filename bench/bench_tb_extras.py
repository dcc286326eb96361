"""What the TensorBoard extras cost: one epoch of the default net on Fashion-MNIST with the extras
off, with parameter/gradient histograms every N steps, and with the embedding projector.

Each setting trains the same epoch (batch 64, 938 steps) in a fresh run directory; the settings
are interleaved over `--repeats` rounds and the table shows the median seconds per epoch and the
ratio to "off" measured in the same run.

    python bench/bench_tb_extras.py --data-dir ../shared/data --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from dlab.config import resolve
from dlab.torch_engine.train import train_run

SETTINGS = {
    "off": {},
    "histograms every 100 steps": {"tb_histograms_every": 100},
    "histograms every 10 steps": {"tb_histograms_every": 10},
    "projector (100 images)": {"tb_projector": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, extra in SETTINGS.items():
            cfg = resolve({"data": {"dataset": "fashion-mnist"},
                           "train": {"epochs": 1, "batch_size": 64, **extra}})
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                train_run(cfg, tmp, data_dir=args.data_dir, device="cpu", progress=False)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["off"])
    print(f"{'setting':<28} {'s / epoch (median)':>18} {'vs off':>7}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<28} {med:>18.2f} {med / base:>6.2f}x")


if __name__ == "__main__":
    main()
