"""The shared trainer: one run of any task into one run directory, resumable.

`fit(task, cfg, run_dir)` holds the run directory's lock, returns an existing result at once,
resumes from `checkpoints/last` when present (every model, optimizer, scheduler, the RNG states
and the session's extra state), and otherwise starts fresh — from a finished shorter twin's end
(`continue_from`, configs with `continues()`), or from `train.init_from`'s weights. Per epoch it
sums the session's step outputs on the device (one host sync per epoch), evaluates, appends a
metrics row, saves the best (by the task's primary metric and direction) and last checkpoints,
and calls the callbacks (TensorBoard and progress are callbacks too; `dlab tune` passes one
that prunes). A non-finite training loss ends the run as "diverged". At the end: the final
evaluation, the figures and, last and atomically, result.json (`dlab.results`).
Same seed on CPU ⇒ the same metrics, also across a kill and resume.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from dlab.allocator import keep_freed_memory
from dlab import runs
from dlab.errors import DlabError
from dlab.results import is_done, make_result, read_result, write_result
from dlab.runs import (CONFIG, METRICS, append_jsonl, read_json, read_jsonl, run_lock, start_run,
                       truncate_jsonl, write_jsonl)
from dlab.tasks.base import Callback, FitState, OpenContext, Task
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.evaluate import resolve_device
from dlab.torch_engine.sinks import Progress, TensorBoardSink, flat_hparams
from dlab.torch_engine.tb_extras import tensorboard_extras


def _finite(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else None


def _same_config(run_dir: Path, task: Task, cfg: Any) -> bool:
    """Whether `run_dir` already holds this config; a different one is an error. Compared as
    resolved configs, so a config.json written before a new defaulted field still matches."""
    path = run_dir / CONFIG
    if not path.exists():
        return False
    try:
        held = task.resolve(json.loads(path.read_text()))
    except (ValueError, DlabError) as exc:
        raise DlabError(f"run directory {str(run_dir)!r}: its config.json is damaged ({exc}); "
                        "use a new run directory") from None
    if held != cfg:
        raise DlabError(f"run directory {str(run_dir)!r} holds a run of a different config; "
                        "use a new run directory")
    return True


class _Trainer:
    def __init__(self, task: Task, cfg: Any, run_dir: Path, session: Any, device: torch.device,
                 callbacks: list[Callback]):
        self.task, self.cfg, self.run_dir, self.s, self.device = task, cfg, run_dir, session, device
        self.callbacks = callbacks
        self.state = FitState(task, cfg, run_dir, session)

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    # checkpoints ---------------------------------------------------------------------------
    def _rng(self) -> dict[str, torch.Tensor]:
        states = {"torch": torch.get_rng_state(), "generator": self.s.generator.get_state().cpu()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        for key, value in self.s.extra_state().items():
            states[f"session.{key}"] = value
        return states

    def save(self, name: str) -> None:
        st = self.state
        meta = {"config": self.cfg_dict(), "task": self.task.name, "epoch": st.epoch,
                "best_value": st.best_value, "best_epoch": st.best_epoch,
                "schedulers": {k: v.state_dict() for k, v in self.s.schedulers.items()},
                **self.s.meta()}
        if self.task.primary == "val_acc":  # read by dlab 0.1's resume and by `dlab runs`
            meta["best_val_acc"] = -1.0 if st.best_value is None else st.best_value
        ckpt.save_checkpoint(self.ckpt_dir, name, meta=meta, models=self.s.models,
                             optimizers=self.s.optimizers, extra_tensors=self._rng())

    def resume(self) -> None:
        meta, tensors = ckpt.read_checkpoint(self.ckpt_dir / "last")
        for key, module in self.s.models.items():
            module.load_state_dict(ckpt.model_state(tensors, key))
        for key, opt in self.s.optimizers.items():
            opt.load_state_dict(ckpt.optimizer_state(meta, tensors, key))
        # dlab 0.1 wrote one "scheduler"; a session without schedulers saves an empty dict
        schedulers = meta["schedulers"] if "schedulers" in meta else {ckpt.MAIN: meta["scheduler"]}
        for key, sched in self.s.schedulers.items():
            sched.load_state_dict(schedulers[key])
        rng = ckpt.extra_tensors(tensors)
        torch.set_rng_state(rng["torch"])
        # a generator's state is a CPU byte tensor, a CUDA generator's too
        self.s.generator.set_state(rng["generator"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.s.load_extra_state({k[len("session."):]: v for k, v in rng.items()
                                 if k.startswith("session.")})
        st = self.state
        st.epoch, st.best_epoch = meta["epoch"], meta["best_epoch"]
        if "best_value" in meta:
            st.best_value = meta["best_value"]
        else:  # dlab 0.1 classification checkpoints
            st.best_value = None if meta["best_val_acc"] < 0 else meta["best_val_acc"]
        truncate_jsonl(self.run_dir / METRICS, st.epoch)

    def continue_twin(self, source: Path) -> list[dict[str, Any]]:
        """Start from the end of `source`, a finished shorter twin of this run: copy its history
        and checkpoints, then resume. Returns the copied rows; none (train from scratch) when
        the twin did not finish normally, e.g. diverged."""
        result = read_result(source)
        if result is None or result["status"] != "finished":
            return []
        if not self.cfg.continues(self.task.resolve(read_json(source / CONFIG))):
            raise DlabError(f"run {str(source)!r} is not a shorter run of this config; it cannot "
                            "be continued")
        rows = read_jsonl(source / METRICS)
        write_jsonl(self.run_dir / METRICS, rows)
        for name in ("best", "last"):  # last.json written last: it marks the copy complete
            ckpt.copy_checkpoint(source / "checkpoints" / name, self.ckpt_dir, name)
        self.resume()
        return rows

    def cfg_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    # the loop ------------------------------------------------------------------------------
    def train_epoch(self, progress: Progress) -> tuple[dict[str, float], float]:
        """One pass over the training set: (per-sample means of the step outputs, seconds)."""
        for module in self.s.models.values():
            module.train()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        start = time.perf_counter()
        schedulers = list(self.s.schedulers.values())
        # callbacks with `every_steps` (TensorBoard histograms) see the step's gradients
        step_cbs = [cb for cb in self.callbacks if getattr(cb, "every_steps", 0)]
        first = self.state.epoch * self.s.steps_per_epoch
        for i, batch in enumerate(self.s.batches(self.state.epoch), 1):
            out = self.s.step(batch)
            for cb in step_cbs:
                if (first + i) % cb.every_steps == 0:
                    cb.on_step(self.state, first + i)
            n += int(out.pop("n"))
            for key, value in out.items():
                if key in sums:
                    sums[key] += value
                else:
                    sums[key] = value.detach().clone()
            for sched in schedulers:
                sched.step()
            progress.step(i)
        keys = list(sums)
        # the epoch's one host sync
        values = torch.stack([sums[k].double() for k in keys]).tolist() if keys else []
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return {k: v / max(n, 1) for k, v in zip(keys, values)}, time.perf_counter() - start

    def run(self, progress: Progress, tb: TensorBoardSink, copied: list[dict[str, Any]]
            ) -> dict[str, Any]:
        st, s, task = self.state, self.s, self.task
        epochs = self.cfg.train.epochs
        for cb in self.callbacks:
            cb.on_fit_start(st)
        status, final = "finished", None
        while st.epoch < epochs:
            progress.start_epoch(st.epoch + 1)
            lr = s.lr()
            train, seconds = self.train_epoch(progress)
            st.epoch += 1
            if not all(math.isfinite(train.get(k, 0.0)) for k in s.loss_keys):
                status = "diverged"
                row = {"epoch": st.epoch, **{k: _finite(v) for k, v in train.items()},
                       **{k: None for k in s.eval_keys}, "lr": lr, "time_s": seconds,
                       "params": s.params}
                append_jsonl(self.run_dir / METRICS, row)
                progress.end_epoch(row)
                bad = next(k for k in s.loss_keys if not math.isfinite(train.get(k, 0.0)))
                progress.message(f"{bad} is {train[bad]} at epoch {st.epoch}: run diverged, "
                                 "stopping")
                break
            final = s.evaluate()
            row = {"epoch": st.epoch, **train, **{k: _finite(v) for k, v in final.items()},
                   "lr": lr, "time_s": seconds, "params": s.params}
            # the row first: an interrupt before `last` is saved leaves one row too many, which
            # resuming from the previous `last` truncates; the other order would lose a row
            append_jsonl(self.run_dir / METRICS, row)
            value = _finite(final.get(task.primary))
            if task.better(value, st.best_value):
                st.best_value, st.best_epoch = value, st.epoch
                self.save("best")
            self.save("last")
            s.epoch_end(st.epoch, tb)
            stop = False
            for cb in self.callbacks:
                stop = bool(cb.on_epoch_end(st, row)) or stop
            if stop:
                status = "pruned"
                break
        last_eval = final
        if status != "diverged":
            final = s.final_evaluate()
            if final is None:
                final = last_eval if last_eval is not None else s.evaluate()
        rows = read_jsonl(self.run_dir / METRICS)
        st.rows = rows
        s.figures(self.run_dir, rows, tb, st.epoch)
        result = self.result(rows, status, final if status != "diverged" else None)
        for cb in self.callbacks:
            cb.on_fit_end(st, result)
        return result

    def result(self, rows: list[dict[str, Any]], status: str, final: dict[str, Any] | None
               ) -> dict[str, Any]:
        st, task = self.state, self.task
        last = dict(rows[-1]) if rows else {}
        for key in ("epoch", "lr", "time_s", "params"):
            last.pop(key, None)
        if final is not None:
            last.update({k: _finite(v) for k, v in final.items()})
        best_row = next((r for r in rows if r.get("epoch") == st.best_epoch), None)
        best = {k: v for k, v in (best_row or {}).items()
                if k not in ("epoch", "lr", "time_s", "params")}
        if st.best_value is not None:
            best[task.primary] = st.best_value
        times = [r["time_s"] for r in rows]
        return make_result(
            task=task.name, status=status, primary=task.primary, direction=task.direction,
            final=last, best=best, best_epoch=st.best_epoch or None, params=self.s.params,
            time_s=sum(times), epochs_completed=len(rows),
            seconds_per_epoch=sum(times) / len(times) if times else None,
            config_hash=self.cfg.hash(), info={**task.describe(self.cfg), **self.s.info()})


class _TensorBoard(Callback):
    """Epoch scalars (every number of the row) and, at the end, the hparams."""

    def __init__(self, tb: TensorBoardSink, primary: str):
        self.tb, self.primary = tb, primary

    def on_epoch_end(self, run: FitState, row: dict[str, Any]) -> None:
        self.tb.epoch(row)

    def on_fit_end(self, run: FitState, result: dict[str, Any]) -> None:
        best = result["best"].get(self.primary)
        fin = result["final"].get(self.primary)
        self.tb.hparams(flat_hparams(run.cfg.to_dict()),
                        {f"hparam/best_{self.primary}": best or 0.0,
                         f"hparam/final_{self.primary}": fin or 0.0})


class _Progress(Callback):
    def __init__(self, progress: Progress):
        self.progress = progress

    def on_epoch_end(self, run: FitState, row: dict[str, Any]) -> None:
        self.progress.end_epoch(row)


def fit(task: Task, cfg: Any, run_dir: str | Path, *, data_dir=None, device: str = "auto",
        progress: bool = True, callbacks: Iterable[Callback] = (),
        continue_from: Path | None = None, manifest_extra: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    """Train `cfg` of `task` into `run_dir` (created if needed), resuming from its last
    checkpoint; returns the result (result.json's contents, `dlab.results` schema).

    Args:
        callbacks: `on_epoch_end` returning True stops the run (status "pruned").
        continue_from: a finished shorter twin's run directory (`cfg.continues`): a new run
            starts where that one ended, exactly as if it had trained those epochs itself.
    """
    run_dir = Path(run_dir)
    unstarted = not run_dir.exists() or runs.is_unstarted(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DlabError(f"cannot create run directory {str(run_dir)!r}: "
                        f"{exc.strerror or exc}") from None
    keep_freed_memory()
    with run_lock(run_dir):
        try:
            return _fit_locked(task, cfg, run_dir, data_dir, device, progress, callbacks,
                               continue_from, manifest_extra)
        except Exception:
            if unstarted:  # refused or failed before its first checkpoint: leave no litter
                runs.remove_unstarted(run_dir)
            raise


def _fit_locked(task: Task, cfg: Any, run_dir: Path, data_dir, device: str, progress: bool,
                callbacks: Iterable[Callback], continue_from: Path | None,
                manifest_extra: dict[str, Any] | None) -> dict[str, Any]:
    """`fit` with the run lock held."""
    runs.remove_stale_tmp(run_dir)  # from a kill during an atomic write
    done = runs.check_run(run_dir)  # one unreadable file: reported, never trained over
    if done is not None:
        return done
    known = _same_config(run_dir, task, cfg)
    done = read_result(run_dir)
    if is_done(done):
        return done
    if cfg.train.init_from and not (run_dir / "checkpoints" / "last.json").exists():
        ckpt.checkpoint_json(cfg.train.init_from)  # missing: refused before the data loads
    dev = resolve_device(device)
    torch.manual_seed(cfg.train.seed)
    session = task.open(cfg, OpenContext(run_dir, dev, data_dir))  # bad data fails here
    if not known:
        extra = {"task": task.name, "config_key": cfg.hash(), "device": dev.type,
                 **session.info(), **(manifest_extra or {})}
        if dev.type == "cpu":  # results depend on it (BENCHMARKS.md, thread invariance)
            from dlab.torch_engine.fused import kernel_info

            extra["fused_kernel"] = kernel_info()
        start_run(run_dir, cfg.to_dict(), extra)
    trainer = _Trainer(task, cfg, run_dir, session, dev, [])
    resumed = (trainer.ckpt_dir / "last.json").exists()
    copied: list[dict[str, Any]] = []
    if resumed:
        trainer.resume()
    elif continue_from is not None:
        copied = trainer.continue_twin(Path(continue_from))
    if not resumed and not copied:
        if (run_dir / METRICS).exists():  # an attempt killed before its first checkpoint
            truncate_jsonl(run_dir / METRICS, 0)
        if cfg.train.init_from:
            session.init_from(cfg.train.init_from)
    show = Progress(progress, cfg.train.epochs, session.steps_per_epoch)
    # events past the checkpoint (or, from scratch, of a killed attempt) are dropped
    tb = TensorBoardSink(run_dir / "tb", purge_step=trainer.state.epoch + 1)
    try:
        if resumed:
            show.message(f"resuming {run_dir} after epoch {trainer.state.epoch}")
        else:
            images = session.first_images()
            if images is not None:
                tb.sample_images(images)
        if copied:
            show.message(f"continuing a finished {trainer.state.epoch}-epoch run of this "
                         "config")
        for row in copied:
            tb.epoch(row)
        trainer.callbacks = [_TensorBoard(tb, task.primary), _Progress(show),
                             *tensorboard_extras(cfg, session, tb.writer), *callbacks]
        result = trainer.run(show, tb, copied)
    finally:
        tb.close()
    return write_result(run_dir, result)
