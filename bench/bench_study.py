"""Time a whole study run (default: fashion-a1 without Q13-Q15) and print a table.

    python bench/bench_study.py [--study fashion-a1] [--workers 2] [--only q1,...,q12]
                                [--runs-dir DIR] [--data-dir DIR]
    python bench/bench_study.py --compare-threads [--epochs 2] [--data-dir DIR]

Runs `dlab study run` in a fresh runs directory (so nothing is skipped), then reports the wall
time, the number of variants the study lists, the distinct items and trainings it ran, and the
mean seconds per epoch of the trainings. `--compare-threads` instead times two default-net
Fashion-MNIST trainings (seeds 1 and 2) as 2 workers x 1 torch thread and as 1 worker x 2
threads. Results are for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlab.runs import read_result
from dlab.studies import load_study, plan_study

DEFAULT_ONLY = ",".join(f"q{i}" for i in range(1, 13))


PAIR_STUDY = """name = "threads"
seeds = [1, 2]
[base]
train.epochs = {epochs}
[[questions]]
key = "q1"
title = "two default trainings"
[[questions.variants]]
label = "default"
"""


def compare_threads(epochs: int, data_dir: str | None) -> int:
    """Time the same two trainings as 2 workers x 1 thread and as 1 worker x 2 threads."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    study = tmp / "threads.toml"
    study.write_text(PAIR_STUDY.format(epochs=epochs))
    rows = []
    for workers, threads in ((2, 1), (1, 2)):
        runs = tmp / f"w{workers}t{threads}"
        cmd = [str(Path(sys.executable).parent / "dlab"), "study", "run", str(study),
               "--workers", str(workers), "--threads", str(threads), "--runs-dir", str(runs)]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        plan = plan_study(load_study(study), runs)
        per_epoch = [read_result(r.run_dir)["seconds_per_epoch"] for r in plan.runs]
        rows.append((workers, threads, wall, sum(per_epoch) / len(per_epoch), rc))
    print()
    print(f"| workers x threads | wall for 2 trainings x {epochs} epochs (s) | mean s/epoch "
          "per training | exit |")
    print("|---|---|---|---|")
    for workers, threads, wall, per_epoch, rc in rows:
        print(f"| {workers} x {threads} | {wall:.1f} | {per_epoch:.1f} | {rc} |")
    return max(r[-1] for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="fashion-a1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default=DEFAULT_ONLY, help="question keys ('' = all)")
    ap.add_argument("--runs-dir", type=Path, default=None)
    ap.add_argument("--data-dir", default=os.environ.get("DLAB_DATA_DIR"))
    ap.add_argument("--compare-threads", action="store_true")
    ap.add_argument("--epochs", type=int, default=2, help="--compare-threads: epochs per run")
    args = ap.parse_args()
    if args.compare_threads:
        return compare_threads(args.epochs, args.data_dir)
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="bench-study-"))
    cmd = [str(Path(sys.executable).parent / "dlab"), "study", "run", args.study, "--workers",
           str(args.workers), "--runs-dir", str(runs)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.only:
        cmd += ["--only", args.only]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - t0
    plan = plan_study(load_study(args.study), runs)
    if args.only:
        plan = plan.only(set(args.only.split(",")))
    done = [r for r in plan.runs if read_result(r.run_dir) is not None]
    trainings = [r for r in done if r.kind != "eval"]
    wanted = set(args.only.split(",")) if args.only else {q.key for q in plan.study.questions}
    listed = sum(len(keys) for (q, _), keys in plan.index.items() if q in wanted)
    per_epoch = [read_result(r.run_dir).get("seconds_per_epoch") or 0 for r in trainings]
    cpu = item_cpu_seconds(plan)
    print()
    print("| study | workers | variants listed | distinct items | trainings run | wall (min) "
          "| mean s/epoch | item CPU (min, items) | exit |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.study} ({args.only or 'all'}) | {args.workers} | {listed} | {len(plan.runs)} "
          f"| {len(trainings)} | {wall / 60:.1f} | "
          f"{sum(per_epoch) / max(1, len(per_epoch)):.1f} | {sum(cpu.values()) / 60:.1f}, "
          f"{len(cpu)} | {rc} |")
    return rc


def item_cpu_seconds(plan) -> dict[str, float]:
    """Per item key: the CPU seconds its runner logged (items run by this version of dlab)."""
    out = {}
    for item in plan.runs:
        log = plan.root / "logs" / f"{item.key}.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith('{"cpu_s"'):
                out[item.key] = json.loads(line)["cpu_s"]
    return out


if __name__ == "__main__":
    sys.exit(main())
