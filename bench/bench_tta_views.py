"""Test accuracy of trained classifier runs under each test-time view set and edge fill.

For each run directory, its `checkpoints/last` is evaluated on the run's test split (the
hold-out runs' 10,000 test images) with every `train.tta` view set of dlab.config.TTA_VIEWS,
its shifted views' uncovered edge filled with black ("zero") or mirrored ("reflect"; what
`data.augment.crop_fill` picks for a run). Prints one table row per view set and fill.

Run: .venv/bin/python bench/bench_tta_views.py --data-dir ../shared/data RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dlab.config import CROP_FILLS, TTA_VIEWS
from dlab.torch_engine.checkpoint import load_checkpoint
from dlab.torch_engine.classify import load_test_split
from dlab.torch_engine.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    acc: dict[tuple[str, str], list[float]] = {}
    for run in args.runs:
        model, cfg, _ = load_checkpoint(run / "checkpoints" / "last", device)
        model = model.to(memory_format=torch.channels_last)
        test, _ = load_test_split(cfg, args.data_dir, device, channels_last=True)
        for fill in CROP_FILLS:
            test.shift_fill = fill
            for tta in TTA_VIEWS:
                r = evaluate(model, test, cfg.train.eval_batch_size, tta=tta,
                             precision=cfg.train.precision)
                acc.setdefault((tta, fill), []).append(r.acc)
    print(f"test accuracy of {', '.join(r.name for r in args.runs)}\n")
    print("| views | edge | " + " | ".join(r.name for r in args.runs) + " |")
    print("| --- | --- |" + " ---: |" * len(args.runs))
    for (tta, fill), values in acc.items():
        print(f"| {tta} ({len(set(TTA_VIEWS[tta]))} views) | {fill} | "
              + " | ".join(f"{100 * v:.2f}%" for v in values) + " |")


if __name__ == "__main__":
    main()
