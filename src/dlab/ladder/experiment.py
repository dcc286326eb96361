"""Task "ladder": train the MLP at several rungs from the same weights and batches, and check
that they agree with the numpy reference.

Config: `LadderRunConfig` — `rungs` (names of `RUNGS`, "numpy" among them: it is the
reference), the data (`dataset`, `mean`, `std`, `train_limit`, `test_limit`), `steps`,
`tolerance`, and `[ladder]` (`dlab.ladder.config.LadderConfig`: model, update rule, lr,
momentum, batch size, schedule, seed). Every rung starts from `initial_params(cfg.ladder)` and
sees the same `steps` mini-batches of the first `train_limit` training images.

Parity: for each rung, the max over steps of |loss - numpy loss| (`loss_diff_<rung>`) and the
max over all final weights and biases of |w - numpy w| (`weight_diff_<rung>`). `parity_ok` is 1
when both stay within `tolerance` for every rung, else 0. The default tolerance, 1e-5, lies
above the round-off these runs show over a few hundred steps (float64 torch rungs ~1e-15,
float32 ~1e-6, Keras ~1e-6: it clips softmax probabilities at 1e-7) and below what a wrong
gradient or update formula gives within a few steps (>1e-4). With dropout on, each framework
draws its own masks, so the rungs cannot agree: `parity_ok` is then None ("not applicable").
Keras agrees for SGD at any lr schedule and for momentum / Nesterov at a constant lr (it keeps
v = mu v - lr g, which differs once the lr changes); its Adam / RMSprop / Adagrad place epsilon
differently (see `keras_mlp`).

A run directory gets config.json, manifest.json, metrics.jsonl (one row per step: `step`, `lr`,
`loss_<rung>`, with '-' in rung names written '_'), loss_curves.png/.json, parity.png/.json,
section.md and result.json (primary `max_weight_diff`, min). A run is short, so an unfinished
one is rerun from the start. Torch and Keras are imported only when their rung runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dlab.config import config_key, from_dict, merge
from dlab.errors import DlabError
from dlab.io import atomic_write_json, read_json, write_jsonl
from dlab.ladder.config import LadderConfig, initial_params, lr_for_step, make_batches
from dlab.numpy_engine.mlp import MLP
from dlab.results import is_done, make_result, read_result, write_result
from dlab.runs import CONFIG, METRICS, run_lock, start_run

TASK_NAME = "ladder"
REFERENCE = "numpy"
RUNGS = {"numpy": "numpy_rung", "torch-manual": "torch_manual",
         "torch-autograd": "torch_autograd", "torch-nn": "torch_nn", "keras": "keras_mlp"}
SECTION = "section.md"


@dataclass(frozen=True)
class LadderRunConfig:
    rungs: tuple[str, ...] = ("numpy", "torch-manual", "torch-autograd", "torch-nn")
    dataset: str = "mnist"
    mean: float = 0.1307
    std: float = 0.3081
    train_limit: int = 5000  # the batches come from the first N training images (0 = all)
    test_limit: int = 2000  # final accuracy on the first N test images (0 = all)
    steps: int = 300
    tolerance: float = 1e-5  # on max |loss diff| and max |weight diff| vs numpy
    ladder: LadderConfig = field(default_factory=LadderConfig)

    def validate(self) -> None:
        for rung in self.rungs:
            if rung not in RUNGS:
                raise DlabError(f"rungs: unknown rung {rung!r}; expected some of {list(RUNGS)}")
        if len(set(self.rungs)) != len(self.rungs):
            raise DlabError(f"rungs = {list(self.rungs)}: a rung is listed twice")
        if REFERENCE not in self.rungs or len(self.rungs) < 2:
            raise DlabError(f"rungs = {list(self.rungs)}: expected 'numpy' (the reference) and "
                            f"at least one other rung")
        if self.dataset not in ("mnist", "fashion-mnist"):
            raise DlabError(f"dataset {self.dataset!r}; expected 'mnist' or 'fashion-mnist'")
        if not self.std > 0:
            raise DlabError(f"std {self.std!r}; expected a positive number")
        if self.train_limit < 0 or self.test_limit < 0:
            raise DlabError(f"train_limit {self.train_limit} / test_limit {self.test_limit}; "
                            f"expected >= 0 (0 = all)")
        if 0 < self.train_limit < self.ladder.batch_size:
            raise DlabError(f"train_limit {self.train_limit}; expected at least ladder.batch_size "
                            f"({self.ladder.batch_size}) images")
        if self.steps < 1:
            raise DlabError(f"steps {self.steps}; expected >= 1")
        if not self.tolerance > 0:
            raise DlabError(f"tolerance {self.tolerance!r}; expected a positive number")
        if self.ladder.batch_size < 1 or self.ladder.steps_per_epoch < 1:
            raise DlabError(f"ladder.batch_size {self.ladder.batch_size} / ladder.steps_per_epoch "
                            f"{self.ladder.steps_per_epoch}; expected >= 1")
        m = self.ladder.model
        if (m.input_dim, m.num_classes) != (784, 10):
            raise DlabError(f"ladder.model input_dim {m.input_dim} / num_classes "
                            f"{m.num_classes}; expected 784 / 10 for {self.dataset}")
        self.ladder.validate()

    @property
    def deterministic(self) -> bool:
        """No dropout: every rung computes the same function, so parity is checkable."""
        m = self.ladder.model
        return m.input_dropout == 0 and not any(m.dropout)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """The run's key: a digest of the values that differ from the defaults."""
        return config_key(self, TASK_NAME)


def resolve_ladder(data: dict[str, Any]) -> LadderRunConfig:
    """The defaults overridden by the (nested, partial) `data`, validated; unknown keys, wrong
    types and bad values are one-line errors naming the key."""
    cfg = from_dict(LadderRunConfig, merge(dataclasses.asdict(LadderRunConfig()), data))
    cfg.validate()
    return cfg


def column(rung: str) -> str:
    """A rung's name as it appears in metric keys ('torch-nn' -> 'torch_nn')."""
    return rung.replace("-", "_")


def rung_module(rung: str):
    """The rung's module (it may import torch or keras)."""
    return importlib.import_module(f"dlab.ladder.{RUNGS[rung]}")


def load_data(cfg: LadderRunConfig, data_dir=None):
    """(X_train (N, 784), y_train, X_test, y_test), normalized, in the model's dtype."""
    from dlab.data import load_dataset

    out = []
    for split, limit in (("train", cfg.train_limit), ("test", cfg.test_limit)):
        ds = load_dataset(cfg.dataset, split, data_dir)
        images, labels = (ds.images, ds.labels) if not limit else \
            (ds.images[:limit], ds.labels[:limit])
        x = (images.reshape(len(images), -1) / 255.0 - cfg.mean) / cfg.std
        out += [x.astype(cfg.ladder.model.dtype), labels.astype(np.int64)]
    return tuple(out)


def parity(ref, got) -> tuple[float, float]:
    """(max |loss diff| over steps, max |weight diff| over all parameters); inf if non-finite."""
    loss_diff = float(np.max(np.abs(np.asarray(got.losses) - np.asarray(ref.losses))))
    weight_diff = max(float(np.max(np.abs(got.params[k].astype(np.float64) - ref.params[k])))
                      for k in ref.params)
    return tuple(d if math.isfinite(d) else math.inf for d in (loss_diff, weight_diff))


def _check_available(cfg: LadderRunConfig) -> None:
    if "keras" in cfg.rungs:
        rung_module("keras").load_keras()


def _start(run_dir: Path, cfg: LadderRunConfig) -> None:
    path = run_dir / CONFIG
    if path.exists():
        held = from_dict(LadderRunConfig, read_json(path), where=str(path))
        if held.hash() != cfg.hash():
            raise DlabError(f"run directory {str(run_dir)!r} holds another ladder config "
                            f"(key {held.hash()}); expected key {cfg.hash()}")
        return
    start_run(run_dir, cfg.to_dict(), {"engine": "ladder", "task": TASK_NAME,
                                       "config_hash": cfg.hash()})


def run_ladder(cfg: LadderRunConfig, run_dir: Path, data_dir=None,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Bring the ladder run in `run_dir` to done (or return its finished result).

    Returns:
        the schema-2 result (also written as result.json).
    """
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        result = read_result(run_dir)
        if is_done(result):
            return result
        cfg.validate()
        _check_available(cfg)
        _start(run_dir, cfg)
        X, y, X_test, y_test = load_data(cfg, data_dir)
        p0 = initial_params(cfg.ladder)
        batches = make_batches(X, y, cfg.ladder, cfg.steps)
        outcomes, times = {}, {}
        for rung in cfg.rungs:
            start = time.perf_counter()
            outcomes[rung] = rung_module(rung).train_steps(cfg.ladder, p0, batches)
            times[rung] = time.perf_counter() - start
            log(f"ladder {rung}: {cfg.steps} steps, loss {outcomes[rung].losses[0]:.4f} -> "
                f"{outcomes[rung].losses[-1]:.4f} ({times[rung]:.1f}s)")
        rows = [{"step": t + 1, "lr": lr_for_step(cfg.ladder, t),
                 **{f"loss_{column(r)}": float(outcomes[r].losses[t]) for r in cfg.rungs}}
                for t in range(cfg.steps)]
        write_jsonl(run_dir / METRICS, rows)
        return _finish(cfg, run_dir, outcomes, times, X_test, y_test)


def _finish(cfg: LadderRunConfig, run_dir: Path, outcomes, times, X_test, y_test
            ) -> dict[str, Any]:
    from dlab.ladder import figures

    ref = outcomes[REFERENCE]
    final: dict[str, Any] = {}
    table = []
    for rung, out in outcomes.items():
        loss_diff, weight_diff = parity(ref, out)
        acc = float((MLP(cfg.ladder.model, out.params).scores(X_test).argmax(1) == y_test).mean())
        c = column(rung)
        if rung != REFERENCE:
            final.update({f"loss_diff_{c}": loss_diff, f"weight_diff_{c}": weight_diff})
        final.update({f"test_acc_{c}": acc, f"final_loss_{c}": float(out.losses[-1]),
                      f"time_s_{c}": times[rung]})
        table.append({"rung": rung, "final_loss": float(out.losses[-1]), "test_acc": acc,
                      "loss_diff": loss_diff, "weight_diff": weight_diff, "time_s": times[rung]})
    final["max_loss_diff"] = max(r["loss_diff"] for r in table)
    final["max_weight_diff"] = max(r["weight_diff"] for r in table)
    within = final["max_loss_diff"] <= cfg.tolerance and final["max_weight_diff"] <= cfg.tolerance
    final["parity_ok"] = (1 if within else 0) if cfg.deterministic else None
    bad = [r for r, o in outcomes.items() if not np.all(np.isfinite(o.losses))]
    figures.save_loss_curves(run_dir, {r: o.losses for r, o in outcomes.items()})
    figures.save_parity(run_dir, {r: o.losses for r, o in outcomes.items()})
    (run_dir / SECTION).write_text(figures.section(cfg, table, final))
    atomic_write_json(run_dir / "parity.table.json", table)
    info = {"dataset": cfg.dataset, "rungs": list(cfg.rungs), "reference": REFERENCE,
            "tolerance": cfg.tolerance, "steps": cfg.steps, "batch_size": cfg.ladder.batch_size,
            "parity": ("checked" if cfg.deterministic else
                       "not applicable: dropout masks come from each framework's own RNG"),
            "test_size": int(len(y_test))}
    if bad:
        info["diverged"] = f"non-finite loss at rung(s) {', '.join(bad)}"
    total = float(sum(times.values()))
    return write_result(run_dir, make_result(
        task=TASK_NAME, status="diverged" if bad else "finished", primary="max_weight_diff",
        direction="min", final=final, params=int(sum(v.size for v in ref.params.values())),
        time_s=total, epochs_completed=1, seconds_per_epoch=total, config_hash=cfg.hash(),
        info=info))


def report_section(run_dir: Path) -> str | None:
    """The run's section markdown with its links through `run_dir`, or None when it has none."""
    path = Path(run_dir) / SECTION
    if not path.exists():
        return None
    prefix = f"{Path(run_dir).as_posix()}/"
    return path.read_text().replace("](", f"]({prefix}")
