"""`train_run`: one classification run into one run directory (the shared trainer, task
"classification"). Kept as the classifier's entry point for the CLI, studies, tuning and the
benchmarks; everything it does is `dlab.torch_engine.trainer.fit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dlab.config import RunConfig
from dlab.tasks import epoch_hook, get_task
from dlab.torch_engine.trainer import fit

EpochHook = Callable[[dict[str, Any]], Any]


def train_run(cfg: RunConfig, run_dir: str | Path, *, data_dir=None, device: str = "auto",
              progress: bool = True, on_epoch: EpochHook | None = None,
              continue_from: Path | None = None) -> dict[str, Any]:
    """Train `cfg` into `run_dir` (created if needed), resuming from its last checkpoint.

    Args:
        on_epoch: called with each epoch's metrics row; a truthy return stops the run, which
            is then recorded with status "pruned".
        continue_from: a finished shorter twin's run directory (`RunConfig.continues`).
    Returns:
        The result (`dlab.results` schema): status, final/best val accuracy, seconds per epoch …
    """
    callbacks = [epoch_hook(on_epoch)] if on_epoch is not None else []
    return fit(get_task("classification"), cfg, run_dir, data_dir=data_dir, device=device,
               progress=progress, callbacks=callbacks, continue_from=continue_from)
