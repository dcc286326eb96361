"""What a task declares, and what the shared trainer (`dlab.torch_engine.trainer`) drives.

A task is one kind of training (classification, gan, caption …). It lives in one module or
package under `dlab/tasks/` that defines `TASK`, a `Task` instance; `dlab.tasks.get_task`
finds it by name (modules are discovered, not listed). The task declares:

- its config schema: `config_class`, a frozen dataclass tree whose root has `train.epochs`,
  `train.seed`, `train.batch_size`, `train.init_from`; `resolve(data)` builds, fills defaults
  into and validates one from plain data (one-line `DlabError` naming the key on bad values);
- its primary metric (`primary`, `direction`): best checkpoint, `dlab tune`, reports rank by it;
- `open(cfg, ctx)`: loads data and builds a `Session` (models, optimizers, schedulers: any
  number of each), the only place that imports torch;
- its report section: `report_columns` (the table's metric columns) and `report_figures` (which
  per-epoch metrics get a comparison plot).

The trainer owns the loop: epochs, schedulers (stepped after every `Session.step`), progress,
TensorBoard, divergence, checkpoints (best by the primary metric, and last), full resume (every
model, optimizer, scheduler, RNG and `Session.extra_state`), and callbacks.

This module must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol


@dataclass(frozen=True)
class Column:
    """One metric column of a task's report table."""

    key: str  # a key of result["final"] / result["best"]
    title: str
    which: str = "final"  # "final" or "best"
    percent: bool = False  # show a fraction as %


@dataclass(frozen=True)
class OpenContext:
    """What `Task.open` gets besides the config."""

    run_dir: Path
    device: Any  # torch.device
    data_dir: str | None = None


@dataclass(frozen=True)
class RunContext:
    """What a self-running task (`Task.run`) gets besides the config."""

    run_dir: Path
    data_dir: str | None = None
    device: str = "auto"
    progress: bool = True
    callbacks: tuple["Callback", ...] = ()


@dataclass(frozen=True)
class Task:
    """A kind of training, as the trainer, studies, tuning and reports see it."""

    name: str
    config_class: type
    primary: str  # a metric name of `Session.evaluate`
    direction: str  # "max" or "min"
    resolve: Callable[[dict[str, Any]], Any]  # plain data -> validated config
    open: Callable[[Any, OpenContext], "Session"] | None  # config -> session (imports torch)
    describe: Callable[[Any], dict[str, Any]]  # config -> short facts for listings/results
    report_columns: tuple[Column, ...] = ()
    report_figures: tuple[tuple[str, str], ...] = ()  # (metrics.jsonl key, plot title)
    # a task with its own loop (the numpy engine, the analysis experiments) sets `run` instead
    # of `open`: run(cfg, RunContext) does the whole run (lock, config, metrics, result.json
    # through `dlab.results`) and returns the result; `dlab.tasks.run_task` calls whichever
    run: Callable[[Any, "RunContext"], dict[str, Any]] | None = None
    # markdown shown under a run's row in a study report (e.g. an experiment's verdict), or None
    report_section: Callable[[Path], str | None] | None = None
    seed_key: str = "train.seed"  # the dotted config key a study's `seeds = [...]` sets
    doc: str = ""

    def better(self, value: float | None, than: float | None) -> bool:
        """Whether `value` of the primary metric beats `than` (None never wins)."""
        if value is None:
            return False
        if than is None:
            return True
        return value > than if self.direction == "max" else value < than


class Session(Protocol):
    """One run's models and data, as the trainer drives it. Created by `Task.open`."""

    models: dict[str, Any]  # name -> torch.nn.Module; "model" is the main one
    optimizers: dict[str, Any]  # name -> torch.optim.Optimizer
    schedulers: dict[str, Any]  # name -> LR scheduler, stepped after each step()
    generator: Any  # torch.Generator for batch order / noise; saved and restored
    params: int  # parameter count reported in results
    steps_per_epoch: int
    loss_keys: tuple[str, ...]  # train metrics that must stay finite (else: diverged)
    eval_keys: tuple[str, ...]  # the keys `evaluate` returns (None-filled when diverged)

    def batches(self, epoch: int) -> Iterator[Any]:
        """Epoch `epoch`'s (0-based) training batches, in the order given by `generator`."""

    def step(self, batch: Any) -> dict[str, Any]:
        """Train on one batch. Returns device scalars summed over the batch, and "n" (its size);
        the trainer sums them over the epoch and divides by the total n (one host sync)."""

    def evaluate(self) -> dict[str, float | None]:
        """Metrics after an epoch (validation loss, accuracy, FD …)."""

    def final_evaluate(self) -> dict[str, float | None] | None:
        """Metrics for the end of the run when they differ from the last `evaluate`
        (test-time augmentation, a larger sample); None: the last epoch's are final."""

    def lr(self) -> float:
        """The current learning rate (of the main optimizer), for metrics rows."""

    def meta(self) -> dict[str, Any]:
        """JSON facts a checkpoint needs to rebuild the models (input shape, classes …)."""

    def extra_state(self) -> dict[str, Any]:
        """Extra tensors to checkpoint (e.g. fixed noise); `load_extra_state` restores them."""

    def load_extra_state(self, tensors: dict[str, Any]) -> None: ...

    def init_from(self, path: str) -> None:
        """Start from the weights of checkpoint `path` (fine-tuning)."""

    def info(self) -> dict[str, Any]:
        """Task-specific facts for result.json's "info" (dataset, device, kernel …)."""

    def epoch_end(self, epoch: int, tb: Any) -> None:
        """Per-epoch artifacts (a GAN's sample grid) into the run dir and TensorBoard."""

    def figures(self, run_dir: Path, rows: list[dict[str, Any]], tb: Any, epoch: int) -> None:
        """The run's final figures (PNG + their data) into `run_dir` and TensorBoard."""

    def first_images(self) -> Any:
        """Up to 64 training images (uint8 NCHW numpy) for TensorBoard, or None."""


class Callback:
    """Hooks into the trainer's loop; every method is optional. A callback with `every_steps`
    = N > 0 also gets `on_step(run, step)` after every N-th optimizer step (gradients intact)."""

    every_steps: int = 0

    def on_fit_start(self, run: "FitState") -> None: ...

    def on_step(self, run: "FitState", step: int) -> None: ...

    def on_epoch_end(self, run: "FitState", row: dict[str, Any]) -> bool | None:
        """Called after each epoch's row is written and checkpointed; True stops the run
        (recorded with status "pruned")."""

    def on_fit_end(self, run: "FitState", result: dict[str, Any]) -> None: ...


@dataclass
class FitState:
    """What callbacks see of a run in progress."""

    task: Task
    cfg: Any
    run_dir: Path
    session: Any
    epoch: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


def epoch_hook(fn: Callable[[dict[str, Any]], Any]) -> Callback:
    """A callback from a function of the epoch's metrics row (truthy return: stop)."""

    class _Hook(Callback):
        def on_epoch_end(self, run: FitState, row: dict[str, Any]) -> bool | None:
            return bool(fn(row))

    return _Hook()

