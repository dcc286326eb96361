"""Task "ladder": the MLP at several rungs (numpy, torch with hand-written gradients, torch
autograd, torch `nn`, Keras 3 on torch) from the same weights and batches, checked for parity.

Config: `dlab.ladder.experiment.LadderRunConfig` — `rungs`, the data (`dataset`, `mean`, `std`,
`train_limit`, `test_limit`), `steps`, `tolerance` and `[ladder]` (model, update rule, lr,
momentum, batch size, schedule, seed). Primary metric: `max_weight_diff` (max |w - numpy w|
over rungs and weights), minimised; `parity_ok` is 1 when every rung's loss and weight
differences stay within `tolerance`. The task runs itself (`run_ladder`); seeds set
`ladder.seed`. Must not import torch at module level (the rungs import it when they run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlab.ladder.experiment import TASK_NAME, LadderRunConfig, resolve_ladder
from dlab.tasks.base import Column, RunContext, Task


def _run(cfg: LadderRunConfig, ctx: RunContext) -> dict[str, Any]:
    from dlab.ladder.experiment import run_ladder

    log = print if ctx.progress else (lambda message: None)
    return run_ladder(cfg, ctx.run_dir, ctx.data_dir, log)


def _describe(cfg: LadderRunConfig) -> dict[str, Any]:
    m = cfg.ladder.model
    return {"dataset": cfg.dataset, "model": "mlp " + "-".join(map(str, m.hidden)),
            "rungs": list(cfg.rungs), "update_rule": cfg.ladder.update_rule, "dtype": m.dtype}


def _report_section(run_dir: Path) -> str | None:
    from dlab.ladder.experiment import report_section

    return report_section(run_dir)


TASK = Task(
    name=TASK_NAME,
    config_class=LadderRunConfig,
    primary="max_weight_diff",
    direction="min",
    resolve=resolve_ladder,
    open=None,
    run=_run,
    describe=_describe,
    report_columns=(Column("parity_ok", "parity ok (1/0)", "final"),
                    Column("max_weight_diff", "max |Δw| vs numpy", "final"),
                    Column("max_loss_diff", "max |Δloss| vs numpy", "final"),
                    Column("test_acc_numpy", "numpy test acc", "final", percent=True)),
    report_section=_report_section,
    seed_key="ladder.seed",
    doc="the MLP at several rungs from the same weights; parity with the numpy rung",
)
