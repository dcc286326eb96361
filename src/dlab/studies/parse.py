"""Parsing and validation of study files into `StudySpec` (see `dlab.studies.spec` for the format).

Every error is a one-line `DlabError` naming the file, the line (found by searching the text,
since tomllib reports positions only for syntax errors) and the key. Must not import torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlab.config import load_toml, merge
from dlab.errors import DlabError
from dlab.tasks import resolve_any
from dlab.studies.spec import KINDS, QuestionSpec, StudySpec, VariantSpec, flatten, nest

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STUDY_KEYS = {"name", "description", "course", "seeds", "threads", "base", "questions"}
_QUESTION_KEYS = {"key", "title", "text", "explanation", "seeds", "variants"}
_VARIANT_KEYS = {"label", "config", "set", "kind", "source", "dataset", "lr_factor", "seeds",
                 "reference"}


class StudyFileParser:
    """Turns parsed TOML into a StudySpec, with errors that name the file, line and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.base: dict[str, Any] = {}

    def fail(self, where: str, message: str, line: int | None = None) -> None:
        at = f", line {line}" if line else ""
        raise DlabError(f"study file {str(self.path)!r}{at}: {where}: {message}")

    def line_of(self, *needles: str) -> int | None:
        """The line (1-based) of the last needle, each searched after the previous one.

        A needle `key = value` matches that assignment (value optional); others match as text.
        """
        start, found = 0, None
        for needle in needles:
            if "=" in needle:
                key, value = (part.strip() for part in needle.split("=", 1))
                pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=\s*" + re.escape(value))
            else:
                pattern = re.compile(re.escape(needle))
            for i in range(start, len(self.lines)):
                if pattern.search(self.lines[i]):
                    start, found = i + 1, i + 1
                    break
            else:
                return found
        return found

    def check_keys(self, table: Any, allowed: set[str], where: str, line: int | None,
                   anchors: tuple[str, ...] = ()) -> None:
        """Unknown keys are errors; the line is the key's own, searched after `anchors`."""
        if not isinstance(table, dict):
            self.fail(where, f"expected a table, got {table!r}", line)
        for key in table:
            if key not in allowed:
                self.fail(f"{where}.{key}" if where else key, "unknown key; expected one of: "
                          + ", ".join(sorted(allowed)), self.line_of(*anchors, f"{key} =")
                          or line)

    def seeds(self, value: Any, where: str, line: int | None) -> tuple[int, ...]:
        if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                  and s >= 0 for s in value):
            self.fail(where, f"{value!r}: expected a list of non-negative integers", line)
        if len(set(value)) != len(value):
            self.fail(where, f"{value!r}: seeds repeat", line)
        return tuple(value)

    def string(self, table: dict, key: str, where: str, line: int | None, default: Any = None
               ) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", f"{value!r}: expected a string", line)
        return value

    def study(self, data: dict[str, Any]) -> StudySpec:
        self.check_keys(data, _STUDY_KEYS, "", None)
        name = self.string(data, "name", "study", self.line_of("name ="), self.path.stem)
        if not _NAME_RE.match(name):
            self.fail("name", f"{name!r}: expected letters, digits, '-', '_' or '.'",
                      self.line_of("name ="))
        description = self.string(data, "description", "study", None, "")
        course = self.string(data, "course", "study", self.line_of("course ="), "")
        seeds = self.seeds(data.get("seeds", []), "seeds", self.line_of("seeds ="))
        threads = data.get("threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            self.fail("threads", f"{threads!r}: expected an integer >= 1 (torch threads per "
                      "item), or 0 for dlab's choice", self.line_of("threads ="))
        base = data.get("base", {})
        if not isinstance(base, dict):
            self.fail("base", "expected a table of config keys", self.line_of("[base]"))
        base = self.nest(base, "base", self.line_of("[base]"))
        self.resolve(base, {}, "base", self.line_of("[base]"))
        self.base = base
        raw = data.get("questions", [])
        if not isinstance(raw, list) or not raw:
            self.fail("questions", "expected at least one [[questions]] table", None)
        questions = [self.question(q, i, seeds) for i, q in enumerate(raw)]
        keys = [q.key for q in questions]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                self.fail(f"questions[{i}].key", f"{key!r} is used twice",
                          self.line_of(f'key = "{key}"', f'key = "{key}"'))
        study = StudySpec(name, self.path, description, base, tuple(questions), course, threads)
        self.check_steps(study)
        return study

    def question(self, q: Any, index: int, seeds: tuple[int, ...]) -> QuestionSpec:
        where = f"questions[{index}]"
        if not isinstance(q, dict):
            self.fail(where, f"expected a [[questions]] table, got {q!r}", None)
        key = q.get("key")
        if not isinstance(key, str) or not re.match(r"^[a-z0-9_-]+$", key):
            self.fail(f"{where}.key", f"{key!r}: expected a key like 'q1' ([a-z0-9_-])", None)
        line = self.line_of(f'key = "{key}"')
        where = f"questions.{key}"
        self.check_keys(q, _QUESTION_KEYS, where, line, (f'key = "{key}"',))
        title = self.string(q, "title", where, line, key)
        text = self.string(q, "text", where, line, "")
        explanation = self.string(q, "explanation", where, line, "")
        if "seeds" in q:
            seeds = self.seeds(q["seeds"], f"{where}.seeds", line)
        raw = q.get("variants", [])
        if not isinstance(raw, list) or not raw:
            self.fail(f"{where}.variants", "expected at least one [[questions.variants]]", line)
        variants, reference = [], {}
        for i, v in enumerate(raw):
            variant, ref = self.variant(v, i, key, seeds)
            if any(x.label == variant.label for x in variants):
                self.fail(f"{where}.variants", f"label {variant.label!r} is used twice", line)
            variants.append(variant)
            if ref is not None:
                reference[variant.label] = ref
        return QuestionSpec(key, title, text, explanation, tuple(variants), reference)

    def variant(self, v: Any, index: int, qkey: str, seeds: tuple[int, ...]
                ) -> tuple[VariantSpec, float | None]:
        where = f"questions.{qkey}.variants[{index}]"
        qline = self.line_of(f'key = "{qkey}"')
        if not isinstance(v, dict):
            self.fail(where, f"expected a [[questions.variants]] table, got {v!r}", qline)
        label = v.get("label")
        if not isinstance(label, str) or not label or "/" in label:
            self.fail(f"{where}.label", f"{label!r}: expected a non-empty label without '/'",
                      qline)
        line = self.line_of(f'key = "{qkey}"', f'label = "{label}"')
        where = f"questions.{qkey}/{label}"
        self.check_keys(v, _VARIANT_KEYS, where, line, (f'key = "{qkey}"', f'label = "{label}"'))
        kind = v.get("kind", "train")
        if kind not in KINDS:
            self.fail(f"{where}.kind", f"{kind!r}: expected one of: " + ", ".join(KINDS), line)
        overrides = v.get("set", {})
        if not isinstance(overrides, dict):
            self.fail(f"{where}.set", f"{overrides!r}: expected a table of config overrides", line)
        overrides = self.nest(overrides, f"{where}.set", line)
        if "config" in v:
            overrides = merge(self.run_config(v["config"], f"{where}.config", line), overrides)
        source = self.string(v, "source", where, line, "")
        dataset = self.string(v, "dataset", where, line, "")
        lr_factor = v.get("lr_factor", 1.0)
        if isinstance(lr_factor, bool) or not isinstance(lr_factor, (int, float)) \
                or not 0 < lr_factor < float("inf"):
            self.fail(f"{where}.lr_factor", f"{lr_factor!r}: expected a number > 0", line)
        reference = v.get("reference")
        if reference is not None and (isinstance(reference, bool) or not isinstance(
                reference, (int, float)) or not 0 <= reference <= 100):
            self.fail(f"{where}.reference", f"{reference!r}: expected an accuracy in % (0-100)",
                      line)
        vseeds = self.seeds(v["seeds"], f"{where}.seeds", line) if "seeds" in v else seeds
        if kind == "train":
            for key in ("source", "dataset", "lr_factor"):
                if key in v:
                    self.fail(f"{where}.{key}", "only eval and finetune steps take it", line)
            set_line = self.line_of(f'key = "{qkey}"', f'label = "{label}"', "set =")
            self.resolve(self.base, overrides, f"{where}.set", set_line if "set" in v else line)
        else:
            if not re.match(r"^[a-z0-9_-]+/[^/]+$", source):
                self.fail(f"{where}.source", f"{source!r}: expected '<question key>/<label>'",
                          line)
            from dlab.data.sources import DATASETS

            if dataset not in DATASETS:
                self.fail(f"{where}.dataset", f"{dataset!r}: expected one of: "
                          + ", ".join(DATASETS), line)
            if kind == "eval" and (overrides or "lr_factor" in v):
                self.fail(where, "an eval step takes no 'set' or 'lr_factor' (the model is "
                          "evaluated unchanged)", line)
            if "model" in overrides:
                self.fail(f"{where}.set", "a finetune step cannot change the model", line)
            if "seeds" in v:
                self.fail(f"{where}.seeds", "eval and finetune steps follow their source's "
                          "seeds", line)
            vseeds = ()
        spec = VariantSpec(label, overrides, kind, source, dataset, float(lr_factor), vseeds)
        return spec, None if reference is None else float(reference)

    def run_config(self, name: Any, where: str, line: int | None) -> dict[str, Any]:
        """A run-config TOML file named relative to the study file, as nested overrides."""
        if not isinstance(name, str) or not name:
            self.fail(where, f"{name!r}: expected a run-config file name", line)
        try:
            data = load_toml(self.path.parent / name, "run-config file")
        except DlabError as exc:
            self.fail(where, str(exc), line)
        return self.nest(data, where, line)

    def nest(self, table: dict[str, Any], where: str, line: int | None) -> dict[str, Any]:
        """`table` (dotted keys or nested tables) as nested tables; a key given both as a
        value and as a table is an error naming the file and line."""
        try:
            return nest(flatten(table))
        except DlabError as exc:
            self.fail(where, str(exc), line)

    def resolve(self, base: dict[str, Any], overrides: dict[str, Any], where: str,
                line: int | None) -> None:
        from dlab.studies.plan import variant_data

        try:
            resolve_any(variant_data(base, overrides))
        except DlabError as exc:
            self.fail(where, str(exc), line)

    def check_steps(self, study: StudySpec) -> None:
        """Every source exists, is a train or finetune variant, and no chain loops."""
        kinds = {f"{q.key}/{v.label}": v for q in study.questions for v in q.variants}
        for q in study.questions:
            for v in q.variants:
                if v.kind == "train":
                    continue
                where = f"questions.{q.key}/{v.label}.source"
                line = self.line_of(f'key = "{q.key}"', f'label = "{v.label}"')
                seen, ref = {f"{q.key}/{v.label}"}, v.source
                while True:
                    if ref not in kinds:
                        self.fail(where, f"{ref!r}: no such question/variant in this study", line)
                    src = kinds[ref]
                    if src.kind == "eval":
                        self.fail(where, f"{ref!r} is an eval step; expected a train or "
                                  "finetune variant (one with a checkpoint)", line)
                    if ref in seen:
                        self.fail(where, f"{ref!r}: steps form a loop", line)
                    if src.kind == "train":
                        break
                    seen.add(ref)
                    ref = src.source
