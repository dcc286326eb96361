"""Benchmark dlab.allocator: training steps with glibc's malloc defaults vs dlab's thresholds.

Each measurement is a fresh process (malloc's settings are per process) that builds a run config
(default: the Q13 recipe, ultimate-fashion.toml) on its first `--images` training images, runs
the engine's training pass over them once to warm up, then times a second pass and counts the
process's minor page faults and kernel CPU time. The two settings alternate, `--repeats` times
each, in one run.

Run: .venv/bin/python bench/bench_allocator.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_CONFIG = (Path(__file__).resolve().parents[1] / "src" / "dlab" / "studies" / "builtin"
                  / "ultimate-fashion.toml")

CHILD = """
import json, resource, sys, time
import torch
from pathlib import Path
from dlab.allocator import keep_freed_memory
from dlab.config import load_run_config
from dlab.torch_engine.sinks import Progress
from dlab.tasks import OpenContext, get_task
from dlab.torch_engine.trainer import _Trainer

config, data_dir, images = sys.argv[1], sys.argv[2], int(sys.argv[3])
applied = keep_freed_memory()
cfg = load_run_config(config)
task, cpu = get_task("classification"), torch.device("cpu")
s = task.open(cfg, OpenContext(Path("unused"), cpu, data_dir))
s.train.images, s.train.labels = s.train.images[:images], s.train.labels[:images]
trainer = _Trainer(task, cfg, Path("unused"), s, cpu, [])
quiet = Progress(False, 1, 1)
trainer.train_epoch(quiet)  # warm-up: the engine's own training pass over these images
t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
trainer.train_epoch(quiet)
dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
user, kernel = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
print(json.dumps({"applied": applied, "ms_per_image": dt / images * 1000,
                  "faults_per_s": (r1.ru_minflt - r0.ru_minflt) / dt,
                  "kernel_share": kernel / max(1e-9, kernel + user)}))
"""


def measure(mode: str, config: Path, data_dir: str, images: int) -> dict:
    env = {**os.environ, "DLAB_MALLOC": mode}
    out = subprocess.run([sys.executable, "-c", CHILD, str(config), data_dir, str(images)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--images", type=int, default=10000, help="training images timed")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = {"default": [], "dlab": []}
    for _ in range(args.repeats):
        for name, mode in (("default", "default"), ("dlab", "")):
            rows[name].append(measure(mode, args.config, args.data_dir, args.images))
    print(f"config {args.config.name}, {args.images} training images per measurement")
    print(f"{'malloc':<8} {'ms/image':>9} {'page faults/s':>14} {'kernel CPU':>11}")
    for name, results in rows.items():
        for r in results:
            print(f"{name:<8} {r['ms_per_image']:>9.3f} {r['faults_per_s']:>14,.0f} "
                  f"{100 * r['kernel_share']:>10.1f}%")
    mean = {k: sum(r["ms_per_image"] for r in v) / len(v) for k, v in rows.items()}
    print(f"speed-up of dlab's setting: {mean['default'] / mean['dlab']:.2f}x")


if __name__ == "__main__":
    main()
