"""Study files: a base config, named questions, each a list of labelled variants.

A study file is TOML::

    name = "my-study"            # optional, default: the file name without .toml
    description = "..."
    course = "JHU ... assignment 1"  # optional: the course assignment it reproduces
    seeds = [1, 2]               # optional default seeds for every train variant
    [base]                       # a run config of the study's task, shared by every variant
    task = "classification"      # optional (the default); a variant's `set` may name another
    train.epochs = 10

    [[questions]]
    key = "q1"                   # unique, [a-z0-9_-]
    title = "MNIST vs Fashion-MNIST"
    text = "the question as the assignment asks it"
    explanation = "what the knob does and why one uses it"
    seeds = [1]                  # optional, overrides the study's seeds
    [[questions.variants]]
    label = "mnist"              # unique within the question, no "/"
    set = { "data.dataset" = "mnist" }   # overrides: dotted keys or nested tables
    config = "recipe.toml"       # optional: a run-config file (relative to this file) applied
                                 # before `set`; VariantSpec.overrides holds both, merged
    reference = 97.27            # optional: the original submission's accuracy in %

    [[questions.variants]]       # a step that uses another variant's best checkpoint
    label = "on-mnist"
    kind = "eval"                # "train" (default), "eval" or "finetune"
    source = "q13/ultimate"      # "<question key>/<label>" of a train or finetune variant
    dataset = "mnist"
    lr_factor = 0.05             # finetune only: lr = (source's lr, or set's optim.lr) x factor

Built-in studies live in `dlab/studies/builtin/*.toml` and are named by their file stem; run
configs used by them (`config = ...`, e.g. the Q13 recipe) sit beside them and are not studies.
`load_study` (parsing in `dlab.studies.parse`) validates everything (unknown keys, bad values,
unknown sources, every variant's resolved config) and raises a one-line `DlabError` naming the
file, the line and the key before anything trains. Must not import torch.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import DlabError

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
KINDS = ("train", "eval", "finetune")


@dataclass(frozen=True)
class VariantSpec:
    """One labelled variant of a question: config overrides, or a step on another's checkpoint."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)  # nested, merged into the base
    kind: str = "train"  # "train" | "eval" | "finetune"
    source: str = ""  # eval/finetune: "<question key>/<label>" whose best checkpoint is used
    dataset: str = ""  # eval/finetune: the target dataset
    lr_factor: float = 1.0  # finetune: multiplies the source's (or the overridden) lr
    seeds: tuple[int, ...] = ()  # train: one run per seed; () = the config's seed


@dataclass(frozen=True)
class QuestionSpec:
    """A question: its text, a fixed explanation of the knob, variants, reference numbers."""

    key: str
    title: str
    text: str
    explanation: str
    variants: tuple[VariantSpec, ...]
    reference: dict[str, float] = field(default_factory=dict)  # label -> accuracy in %

    def variant(self, label: str) -> VariantSpec:
        for v in self.variants:
            if v.label == label:
                return v
        raise KeyError(label)


@dataclass(frozen=True)
class StudySpec:
    """A whole study as read from its file."""

    name: str
    path: Path
    description: str
    base: dict[str, Any]
    questions: tuple[QuestionSpec, ...]
    course: str = ""  # the course and assignment the study reproduces, for `dlab study list`
    threads: int = 0  # torch threads per item when `--threads` is not given (0: dlab's choice)

    def question(self, key: str) -> QuestionSpec:
        for q in self.questions:
            if q.key == key:
                return q
        raise KeyError(key)


def builtin_studies() -> dict[str, Path]:
    """Built-in study names and their files (run-config files beside them are not studies)."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))
            if re.search(r"^\[\[questions\]\]", p.read_text(), re.MULTILINE)}


def find_study_file(name_or_path: str | Path) -> Path:
    """A path to an existing file, or a built-in study's file; else a one-line error."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = builtin_studies()
    if str(name_or_path) in builtin:
        return builtin[str(name_or_path)]
    raise DlabError(f"study {str(name_or_path)!r} not found: expected a study file or one of "
                    "the built-in studies: " + ", ".join(builtin))


def load_study(name_or_path: str | Path) -> StudySpec:
    """Read and fully validate a study file (or built-in study name)."""
    from dlab.config import read_text_file

    path = find_study_file(name_or_path)
    text = read_text_file(path, "study file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DlabError(f"study file {str(path)!r}: {exc}") from None
    from dlab.studies.parse import StudyFileParser

    return StudyFileParser(path, text).study(data)


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"width": 2}} -> {"model.width": 2} (also accepts already-dotted keys)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten`; a key that is both a value and a table ("model" = 3 beside
    "model.width" = 2) is a one-line error naming both."""
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        node = nested
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DlabError(f"{key!r}: {'.'.join(parts[:i + 1])!r} is set to {node!r}, "
                                "not a table of keys")
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise DlabError(f"{key!r} = {value!r}: {key!r} is also a table of keys "
                            f"({', '.join(repr(f'{key}.{k}') for k in node[parts[-1]])})")
        node[parts[-1]] = value
    return nested
