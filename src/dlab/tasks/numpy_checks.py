"""Task "numpy-checks": the cs231n-style layer checks of GaTech HW2 part 1, as one run.

Runs every gradient check of `dlab.numpy_engine.checks` (analytic vs centred-difference
gradients in float64, one relative error per input), checks that the fast convolution and max
pooling give the naive loops' outputs and gradients, and times both on the course's shapes
(conv x (N, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1; pool x (N, 3, 32, 32), 2x2 stride 2).
Primary metric: `passed` (1 when every relative error is at most `tolerance` and the fast
layers agree with the naive ones), maximised; final metrics: the worst error, the times and
the speed-ups. The task runs itself; seeds set `seed`. Never imports torch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.errors import DlabError
from dlab.tasks.base import Column, RunContext, Task

TASK_NAME = "numpy-checks"


@dataclass(frozen=True)
class NumpyChecksConfig:
    seed: int = 0  # the timing inputs' seed (the gradient checks use their own fixed seeds)
    timing_batch: int = 100  # N of the timed conv / pool inputs (the course: 100)
    repeats: int = 5  # timed repeats of the fast layers (median)
    naive_repeats: int = 1  # timed repeats of the naive loops (median)
    tolerance: float = 1e-7  # the largest relative gradient error that passes

    def validate(self) -> None:
        for key in ("timing_batch", "repeats", "naive_repeats"):
            value = getattr(self, key)
            if value < 1:
                raise DlabError(f"{key} = {value}; expected an integer >= 1")
        if not 0 < self.tolerance < 1:
            raise DlabError(f"tolerance = {self.tolerance}; expected a value in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        from dlab.config import config_key

        return config_key(self, TASK_NAME)


def resolve_checks(data: dict[str, Any]) -> NumpyChecksConfig:
    from dlab.config import from_dict

    cfg = from_dict(NumpyChecksConfig, data or {})
    cfg.validate()
    return cfg


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _naive_vs_fast(cfg: NumpyChecksConfig) -> dict[str, float]:
    """Max |difference| of outputs and input gradients, forward+backward seconds, speed-ups."""
    import numpy as np

    from dlab.numpy_engine import conv, pool

    rng = np.random.default_rng(cfg.seed)
    n = cfg.timing_batch
    pairs = {
        "conv": ((conv.conv_forward_naive, conv.conv_backward_naive),
                 (conv.conv_forward_im2col, conv.conv_backward_im2col),
                 (rng.standard_normal((n, 3, 31, 31)), rng.standard_normal((25, 3, 3, 3)),
                  rng.standard_normal(25), 2, 1)),
        "pool": ((pool.max_pool_forward_naive, pool.max_pool_backward_naive),
                 (pool.max_pool_forward_fast, pool.max_pool_backward_fast),
                 (rng.standard_normal((n, 3, 32, 32)), 2, 2, 2)),
    }
    out: dict[str, float] = {}
    for name, ((f_naive, b_naive), (f_fast, b_fast), args) in pairs.items():
        y_naive, c_naive = f_naive(*args)
        y_fast, c_fast = f_fast(*args)
        dout = rng.standard_normal(y_naive.shape)
        g_naive, g_fast = b_naive(dout, c_naive), b_fast(dout, c_fast)
        dx_naive = g_naive[0] if isinstance(g_naive, tuple) else g_naive
        dx_fast = g_fast[0] if isinstance(g_fast, tuple) else g_fast
        out[f"{name}_max_diff"] = float(max(np.abs(y_naive - y_fast).max(),
                                            np.abs(dx_naive - dx_fast).max()))
        naive = _median_time(lambda: b_naive(dout, f_naive(*args)[1]), cfg.naive_repeats)
        fast = _median_time(lambda: b_fast(dout, f_fast(*args)[1]), cfg.repeats)
        out[f"{name}_naive_s"], out[f"{name}_fast_s"] = naive, fast
        out[f"{name}_speedup"] = naive / fast
    return out


def _run(cfg: NumpyChecksConfig, ctx: RunContext) -> dict[str, Any]:
    from dlab.io import atomic_write_json
    from dlab.numpy_engine.checks import run_checks
    from dlab.results import is_done, make_result, read_result, write_result
    from dlab.runs import run_lock, start_run

    log = print if ctx.progress else (lambda message: None)
    run_dir = Path(ctx.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        done = read_result(run_dir)
        if done is not None and is_done(done):
            return done
        start_run(run_dir, cfg.to_dict(), {"task": TASK_NAME, "config_key": cfg.hash()})
        start = time.perf_counter()
        errors = [{"check": name, "input": key, "rel_error": err}
                  for name, key, err in run_checks()]
        worst = max(e["rel_error"] for e in errors)
        for e in errors:
            log(f"{e['check']:<28} {e['input']:<7} {e['rel_error']:11.2e}")
        timing = _naive_vs_fast(cfg)
        log(f"conv naive {timing['conv_naive_s']:.3f} s, fast {timing['conv_fast_s']:.4f} s "
            f"({timing['conv_speedup']:.0f}x); pool {timing['pool_speedup']:.1f}x")
        agree = timing["conv_max_diff"] <= 1e-9 and timing["pool_max_diff"] <= 1e-12
        passed = float(worst <= cfg.tolerance and agree)
        atomic_write_json(run_dir / "checks.json", {"gradient_checks": errors, **timing})
        final = {"passed": passed, "worst_rel_error": worst, **timing}
        return write_result(run_dir, make_result(
            task=TASK_NAME, status="finished", primary="passed", direction="max", final=final,
            time_s=time.perf_counter() - start, config_hash=cfg.hash(), kind="check",
            info={"checks": len(errors), "timing_batch": cfg.timing_batch}))


def _report_section(run_dir: Path) -> str | None:
    from dlab.runs import read_json

    path = Path(run_dir) / "checks.json"
    if not path.exists():
        return None
    data = read_json(path)
    lines = ["| check | input | relative error |", "| --- | --- | ---: |"]
    lines += [f"| {e['check']} | {e['input']} | {e['rel_error']:.2e} |"
              for e in data["gradient_checks"]]
    lines += ["", "| layer | naive s (fwd+bwd) | fast s (fwd+bwd) | speed-up | max abs diff |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name in ("conv", "pool"):
        lines.append(f"| {name} | {data[f'{name}_naive_s']:.3f} | {data[f'{name}_fast_s']:.4f} | "
                     f"{data[f'{name}_speedup']:.0f}x | {data[f'{name}_max_diff']:.1e} |")
    return "\n".join(lines)


def _describe(cfg: NumpyChecksConfig) -> dict[str, Any]:
    return {"timing_batch": cfg.timing_batch}


TASK = Task(
    name=TASK_NAME,
    config_class=NumpyChecksConfig,
    primary="passed",
    direction="max",
    resolve=resolve_checks,
    open=None,
    run=_run,
    describe=_describe,
    report_columns=(Column("passed", "all checks pass (1/0)", "final"),
                    Column("worst_rel_error", "worst gradient rel. error", "final"),
                    Column("conv_speedup", "conv fast/naive speed-up", "final"),
                    Column("pool_speedup", "pool fast/naive speed-up", "final")),
    report_section=_report_section,
    seed_key="seed",
    doc="numpy layer gradient checks and naive vs fast conv/pool (outputs and timing)",
)
