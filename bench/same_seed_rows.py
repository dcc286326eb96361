"""Same seed, same metrics across dlab versions: train two small configs and write their
metrics rows (without times) to OUT/rows.json, to compare with the rows another checkout writes.

    git worktree add /tmp/dlab-0.1 158b0c7
    DLAB_KERNELS=off PYTHONPATH=/tmp/dlab-0.1/src python bench/same_seed_rows.py /tmp/rows-old
    DLAB_KERNELS=off python bench/same_seed_rows.py /tmp/rows-new
    cmp /tmp/rows-old/rows.json /tmp/rows-new/rows.json

One thread, so the comparison does not depend on the machine's load. DLAB_KERNELS=off compares
the engines on PyTorch's ops (the fused kernel's reduction order changed since 0.1: its results
agree with PyTorch's ops to float rounding, BENCHMARKS.md).
"""

import json
import sys

import torch

from dlab.config import resolve
from dlab.torch_engine.train import train_run

CONFIGS = {
    "net": {"data": {"dataset": "fashion-mnist", "mean": [0.1307], "std": [0.3081]},
            "train": {"epochs": 2}},
    "cnn": {"data": {"dataset": "fashion-mnist", "mean": [0.1307], "std": [0.3081],
                     "augment": {"crop_padding": 2, "flip": True}},
            "model": {"name": "cnn", "channels": [16, 32], "convs_per_stage": 1},
            "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                      "weight_decay": 5e-4, "schedule": "onecycle"},
            "train": {"epochs": 1, "batch_size": 256, "label_smoothing": 0.1, "tta": "flip"}},
}


def main(out: str, data_dir: str = "../shared/data") -> None:
    torch.set_num_threads(1)
    rows = {}
    for name, cfg in CONFIGS.items():
        train_run(resolve(cfg), f"{out}/{name}", data_dir=data_dir, device="cpu", progress=False)
        with open(f"{out}/{name}/metrics.jsonl") as fh:
            rows[name] = [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                          for line in fh]
    with open(f"{out}/rows.json", "w") as fh:
        json.dump(rows, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
