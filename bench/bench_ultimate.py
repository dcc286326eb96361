"""Benchmark the Q13 "ultimate" Fashion-MNIST recipe: test accuracy and training wall time.

Trains the run config (default: the built-in ultimate-fashion.toml) once with the torch engine
and prints a table per epoch and a summary: final/best test accuracy (the study's validation
set), wall time, seconds per epoch, process CPU time and the machine's load average, since this
2-core box is shared and load stretches wall time. With --run-dir pointing at a finished run it
only tabulates that run (no retraining).

Run: nice -n 10 .venv/bin/python bench/bench_ultimate.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from dlab.config import load_run_config
from dlab.runs import read_jsonl, read_result

DEFAULT_CONFIG = (Path(__file__).resolve().parents[1] / "src" / "dlab" / "studies" / "builtin"
                  / "ultimate-fashion.toml")
TARGET_PCT, BUDGET_S = 94.0, 15 * 60


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train(config: Path, data_dir: str | None, run_dir: Path) -> dict:
    from dlab.torch_engine.train import train_run

    cfg = load_run_config(config)
    load_before = os.getloadavg()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    train_run(cfg, run_dir, data_dir=data_dir, device="cpu", progress=True)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - cpu0,
            "load_before": load_before, "load_after": os.getloadavg()}


def print_table(run_dir: Path, timing: dict | None) -> None:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    result = read_result(run_dir) or {}
    print(f"{'epoch':>5} {'train loss':>10} {'train acc %':>11} {'test loss':>9} "
          f"{'test acc %':>10} {'epoch s':>8}")
    for r in rows:
        print(f"{r['epoch']:5d} {r['loss']:10.4f} {r['acc'] * 100:11.2f} {r['val_loss']:9.4f} "
              f"{r['val_acc'] * 100:10.2f} {r['time_s']:8.1f}")
    final = (result["final"].get("val_acc") or 0) * 100
    train_s = sum(r["time_s"] for r in rows)
    print()
    print(f"run dir              {run_dir}")
    print(f"status               {result.get('status', 'unfinished')}")
    print(f"params               {result.get('params')}")
    print(f"final test acc %     {final:.2f}   (target >= {TARGET_PCT}; assignment >= 92)")
    if result.get("tta", "none") != "none":
        print(f"  test-time augm.    {result['tta']}; the last epoch single-view: "
              f"{(result.get('final_single_view_acc') or 0) * 100:.2f}")
    print(f"best test acc %      {(result['best'].get('val_acc') or 0) * 100:.2f} "
          f"@ epoch {result.get('best_epoch')} (per-epoch evaluations, single-view)")
    print(f"train time (epochs)  {train_s:.0f} s = {train_s / 60:.1f} min  "
          f"(budget {BUDGET_S // 60} min: {'met' if train_s <= BUDGET_S else 'NOT met'})")
    if timing:
        wall = timing["wall_s"]
        print(f"wall time (all)      {wall:.0f} s = {wall / 60:.1f} min, data loading, per-epoch and "
              f"final evaluation included (budget: {'met' if wall <= BUDGET_S else 'NOT met'}); "
              f"process CPU {timing['cpu_s']:.0f} s")
        print(f"load avg before/after {timing['load_before'][0]:.1f} / "
              f"{timing['load_after'][0]:.1f}  (2 cores; above 2 means other jobs shared them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="a run directory: tabulate it if finished, else train into it")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="bench-ultimate-")) / "run"
    timing = None
    if read_result(run_dir) is None:
        timing = train(args.config, args.data_dir, run_dir)
    print_table(run_dir, timing)


if __name__ == "__main__":
    main()
