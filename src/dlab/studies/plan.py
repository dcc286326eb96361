"""Expand a study into distinct work items: one per resolved config (and seed), deduplicated.

Every train variant becomes one `PlannedRun` per seed whose key is the resolved config's hash,
so identical configs in different questions are one run that lists every (question, label) it
serves in `uses`. Eval and finetune steps become one item per run of their source, depending on
it. A train item that is another train item run for longer (same config, more epochs, an lr
schedule that does not depend on the run's length) depends on that shorter run and continues
from its last checkpoint instead of retraining its epochs (`RunConfig.continues`). Items are
ordered so that every source comes before the items that use it.

Run directories: `<runs_root>/<study name>/<key>/`. Keys:
- train: the config's `hash()` (its task and non-default values, `dlab.config.config_key`); a
  run directory written by dlab 0.1 under its old key (`RunConfig.legacy_hash`) is used when
  present, so finished work is found after an upgrade;
- eval: a hash of ("eval", source key, dataset);
- finetune: the hash of its config with `train.init_from` replaced by "run:<source key>", so the
  key does not depend on where the runs root lives (the config itself holds the real path).

Must not import torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.config import RunConfig, merge
from dlab.errors import DlabError
from dlab.results import is_done, read_result
from dlab.runs import check_run, is_locked
from dlab.tasks import DEFAULT_TASK, get_task, resolve_any
from dlab.studies.spec import StudySpec, VariantSpec


@dataclass(frozen=True)
class PlannedRun:
    """One distinct unit of work of a study."""

    key: str
    kind: str  # "train" | "eval" | "finetune"
    config: Any  # the task's config; eval: the source's with data.dataset = the evaluated one
    run_dir: Path
    uses: tuple[tuple[str, str], ...]  # every (question key, label) this item serves
    depends_on: str | None  # the key of the item this one starts from
    source_dir: Path | None = None  # that item's run directory
    dataset: str = ""  # eval/finetune: the target dataset
    task: str = DEFAULT_TASK

    @property
    def checkpoint(self) -> Path | None:
        """The source's best checkpoint (eval/finetune), as the engine names it."""
        return None if self.source_dir is None else self.source_dir / "checkpoints" / "best"

    @property
    def continues(self) -> Path | None:
        """A train item's shorter twin run directory, to continue from (see the module doc)."""
        return self.source_dir if self.kind == "train" else None

    def status(self) -> str:
        """'pending', 'running', 'interrupted' (started, not done), 'damaged' (a file of the
        run cannot be read: `dlab.runs.check_run`), or result.json's status."""
        if self.run_dir.is_dir() and check_run(self.run_dir) is not None:
            return "damaged"
        result = read_result(self.run_dir)
        if result is not None:
            return result["status"]
        if _locked(self.run_dir):
            return "running"
        started = (self.run_dir / "metrics.jsonl").exists() or (self.run_dir / "checkpoints").exists()
        return "interrupted" if started else "pending"

    def done(self) -> bool:
        return is_done(read_result(self.run_dir))

    def to_json(self) -> dict[str, Any]:
        """Plain data for handing the item to another process."""
        return {"key": self.key, "kind": self.kind, "config": self.config.to_dict(),
                "run_dir": str(self.run_dir), "uses": [list(u) for u in self.uses],
                "depends_on": self.depends_on, "dataset": self.dataset, "task": self.task,
                "source_dir": None if self.source_dir is None else str(self.source_dir)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "PlannedRun":
        task = data.get("task", DEFAULT_TASK)
        return PlannedRun(data["key"], data["kind"], get_task(task).resolve(data["config"]),
                          Path(data["run_dir"]), tuple(tuple(u) for u in data["uses"]),
                          data["depends_on"],
                          None if data["source_dir"] is None else Path(data["source_dir"]),
                          data["dataset"], task)


def _locked(run_dir: Path) -> bool:
    return run_dir.is_dir() and is_locked(run_dir)


@dataclass(frozen=True)
class StudyPlan:
    """The distinct work items of a study, in dependency order, and who uses which."""

    study: StudySpec
    root: Path  # <runs_root>/<study name>
    runs: tuple[PlannedRun, ...]
    index: dict[tuple[str, str], tuple[str, ...]]  # (question, label) -> item keys, one per seed

    def lookup(self, question_key: str, label: str) -> list[PlannedRun]:
        """The item(s) of one variant, one per seed."""
        try:
            keys = self.index[(question_key, label)]
        except KeyError:
            raise DlabError(f"study {self.study.name!r} has no variant "
                            f"{question_key}/{label}") from None
        by_key = self.by_key()
        return [by_key[k] for k in keys]

    def by_key(self) -> dict[str, PlannedRun]:
        return {r.key: r for r in self.runs}

    def variant_count(self) -> int:
        """How many (question, variant, seed) entries the study lists (before deduplication)."""
        return sum(len(keys) for keys in self.index.values())

    def only(self, question_keys: set[str]) -> "StudyPlan":
        """The items the given questions need, with everything they depend on."""
        by_key, wanted = self.by_key(), set()
        for (q, _), keys in self.index.items():
            if q in question_keys:
                wanted.update(keys)
        stack = list(wanted)
        while stack:
            dep = by_key[stack.pop()].depends_on
            if dep and dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
        return dataclasses.replace(self, runs=tuple(r for r in self.runs if r.key in wanted))


def variant_data(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A variant's plain config: the study's base merged with its overrides — or, when the
    variant names another task than the base's, its overrides alone (a base of one task's keys
    means nothing to another task)."""
    base_task = base.get("task", DEFAULT_TASK)
    if overrides.get("task", base_task) != base_task:
        return dict(overrides)
    return merge(base, overrides)


def _legacy_key(cfg: Any) -> str | None:
    """The key dlab 0.1 gave a classification config (the only task it had)."""
    return cfg.legacy_hash() if hasattr(cfg, "legacy_hash") else None


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _short_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _Planner:
    def __init__(self, study: StudySpec, root: Path) -> None:
        self.study, self.root = study, root
        self.items: dict[str, dict[str, Any]] = {}  # key -> PlannedRun fields (mutable uses)
        self.index: dict[tuple[str, str], tuple[str, ...]] = {}

    def add(self, key: str, kind: str, cfg: Any, use: tuple[str, str],
            depends_on: str | None = None, source_dir: Path | None = None, dataset: str = "",
            task: str = DEFAULT_TASK, legacy: str | None = None) -> str:
        """One item (or one more use of it); its run directory is `root/key`, or the one of
        dlab 0.1 (`root/legacy`) when only that exists."""
        run_dir = self.root / key
        if legacy and not run_dir.exists() and (self.root / legacy).is_dir():
            run_dir = self.root / legacy
        item = self.items.setdefault(key, {
            "key": key, "kind": kind, "config": cfg, "run_dir": run_dir, "uses": [],
            "depends_on": depends_on, "source_dir": source_dir, "dataset": dataset,
            "task": task, "legacy": legacy or key})
        if use not in item["uses"]:
            item["uses"].append(use)
        return key

    def variant(self, ref: str) -> tuple[str, ...]:
        """Plan the variant "<question>/<label>" (and its sources first); its item keys."""
        qkey, label = ref.split("/", 1)
        if (qkey, label) in self.index:
            return self.index[(qkey, label)]
        v = self.study.question(qkey).variant(label)
        use = (qkey, label)
        if v.kind == "train":
            keys = tuple(self.add(cfg.hash(), "train", cfg, use, task=task.name,
                                  legacy=_legacy_key(cfg))
                         for task, cfg in self.train_configs(v))
        else:
            keys = tuple(self.step(v, src, use) for src in self.variant(v.source))
        self.index[(qkey, label)] = keys
        return keys

    def train_configs(self, v: VariantSpec) -> list[tuple[Any, Any]]:
        """(task, config) per seed of a train variant."""
        data = variant_data(self.study.base, v.overrides)
        if not v.seeds:
            return [resolve_any(data)]
        task = get_task(data.get("task", DEFAULT_TASK))
        return [resolve_any(merge(data, _nested(task.seed_key, s))) for s in v.seeds]

    def step(self, v: VariantSpec, source_key: str, use: tuple[str, str]) -> str:
        src = self.items[source_key]
        if src["task"] != DEFAULT_TASK:
            raise DlabError(f"{v.kind} steps need a classification source; {source_key} is a "
                            f"{src['task']!r} run")
        src_cfg: RunConfig = src["config"]
        legacy_src = src["legacy"]
        if v.kind == "eval":
            cfg = dataclasses.replace(src_cfg, data=dataclasses.replace(src_cfg.data,
                                                                        dataset=v.dataset))
            key = _short_hash({"kind": "eval", "source": source_key, "dataset": v.dataset})
            legacy = _short_hash({"kind": "eval", "source": legacy_src, "dataset": v.dataset})
        else:
            data = merge(src_cfg.to_dict(), v.overrides)
            base_lr = v.overrides.get("optim", {}).get("lr", src_cfg.optim.lr)
            data = merge(data, {"data": {"dataset": v.dataset},
                                "optim": {"lr": float(f"{base_lr * v.lr_factor:.12g}")},
                                "train": {"init_from": str(src["run_dir"] / "checkpoints" / "best")}})
            _, cfg = resolve_any(data)
            key = dataclasses.replace(cfg, train=dataclasses.replace(
                cfg.train, init_from=f"run:{source_key}")).hash()
            legacy = _short_hash(merge(cfg.legacy_dict(),
                                       {"train": {"init_from": f"run:{legacy_src}"}}))
        return self.add(key, v.kind, cfg, use, source_key, src["run_dir"], v.dataset,
                        legacy=legacy)

    def link_continuations(self) -> None:
        """Let each train item continue from its longest shorter twin (see the module doc)."""
        trains = [item for item in self.items.values()
                  if item["kind"] == "train" and hasattr(item["config"], "continues")]
        for item in trains:
            shorter = [t for t in trains if t["task"] == item["task"]
                       and item["config"].continues(t["config"])]
            if shorter:
                src = max(shorter, key=lambda t: t["config"].train.epochs)
                item.update(depends_on=src["key"], source_dir=src["run_dir"])

    def ordered(self) -> list[dict[str, Any]]:
        """The items with every source before the items that use it."""
        out: dict[str, dict[str, Any]] = {}

        def visit(key: str) -> None:
            if key not in out:
                dep = self.items[key]["depends_on"]
                if dep:
                    visit(dep)
                out[key] = self.items[key]

        for key in self.items:
            visit(key)
        return list(out.values())


def plan_study(study: StudySpec, runs_root: Path) -> StudyPlan:
    """Expand and deduplicate a study's variants into work items under `runs_root/<name>/`."""
    root = Path(runs_root).resolve() / study.name
    planner = _Planner(study, root)
    for q in study.questions:
        for v in q.variants:
            planner.variant(f"{q.key}/{v.label}")
    planner.link_continuations()
    runs = tuple(PlannedRun(**{**{k: v for k, v in item.items() if k != "legacy"},
                               "uses": tuple(item["uses"])})
                 for item in planner.ordered())
    return StudyPlan(study, root, runs, dict(planner.index))
