"""Run analysis experiments into run directories (task "analysis") and write the combined report.

One experiment = one run directory: `config.json` (`AnalysisConfig.to_dict()`: the experiment
and its resolved sizes), `manifest.json`, `<figure>.png` + `<figure>.json` (the data drawn),
`numbers.json`, `section.md`, and `result.json` written last through `dlab.results` (primary
"passed", 1 or 0; the verdict, figures and numbers in its info). `analyze_all` puts every
experiment's run directory inside one `analyze/all-*` directory with a `report.md` linking
their figures and a result of kind "analysis-all".
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from dlab.analysis.registry import (TASK_NAME, AnalysisConfig, ContextSpec, ExperimentSpec,
                                    experiments, get_experiment, resolve_analysis, resolve_config)
from dlab.analysis.result import ExperimentResult
from dlab.errors import DlabError
from dlab.io import atomic_write_bytes, atomic_write_json, read_json
from dlab.results import is_done, make_result, read_result, write_result
from dlab.runs import CONFIG, create_run_dir, run_lock, start_run, timestamp
from dlab.torch_engine.threads import torch_threads

SECTION = "section.md"


def run_analysis(cfg: AnalysisConfig, run_dir: Path, data_dir=None,
                 log: Callable[[str], None] = print, threads: int = 1) -> dict[str, Any]:
    """Bring the experiment run in `run_dir` to done (or return its finished result).

    Args:
        threads: torch intra-op threads while computing; 1 by default because these nets are
            tiny and extra threads only spin against other jobs on a shared CPU. The previous
            count is restored afterwards.
    Returns:
        the schema-2 result (also written as result.json).
    """
    import torch

    from dlab.analysis.plots import draw

    spec = get_experiment(cfg.experiment)
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        done = read_result(run_dir)
        if is_done(done):
            return done
        _start_or_check(run_dir, cfg)
        with torch_threads(threads):
            torch.manual_seed(getattr(cfg.settings, "seed", 0))
            start = time.perf_counter()
            result: ExperimentResult = spec.compute(cfg.settings,
                                                    ContextSpec(data_dir=data_dir, log=log))
            time_s = time.perf_counter() - start
        for fig in result.figures:
            draw(fig, run_dir)
        atomic_write_json(run_dir / "numbers.json", {"name": spec.name, **result.to_dict()})
        atomic_write_bytes(run_dir / SECTION,
                           section_markdown(spec, cfg.settings, result, time_s).encode())
        verdict = result.verdict.to_dict()
        return write_result(run_dir, make_result(
            task=TASK_NAME, kind="analysis", status="finished", primary="passed",
            direction="max", final={"passed": int(result.verdict.passed)},
            time_s=round(time_s, 2), config_hash=cfg.hash(),
            info={"experiment": spec.name, "title": spec.title, "verdict": verdict,
                  "figures": [f"{f.stem}.png" for f in result.figures],
                  "numbers": result.to_dict()["numbers"]}))


def _start_or_check(run_dir: Path, cfg: AnalysisConfig) -> None:
    path = run_dir / CONFIG
    if path.exists():
        held = resolve_analysis(read_json(path))
        if held.hash() != cfg.hash():
            raise DlabError(f"run directory {str(run_dir)!r} holds another analysis config "
                            f"(key {held.hash()}); expected key {cfg.hash()}")
        return
    start_run(run_dir, cfg.to_dict(), {"task": TASK_NAME, "config_hash": cfg.hash()})


def section_markdown(spec: ExperimentSpec, cfg: Any, result: ExperimentResult,
                     time_s: float) -> str:
    """A report section: title, sizes, verdict with measured values, figure links (relative to
    the run directory; `rebase_links` moves them), notes."""
    v = result.verdict
    sizes = ", ".join(f"{k}={val}" for k, val in dataclasses.asdict(cfg).items())
    lines = [f"## {spec.title} (`{spec.name}`)", "", spec.description, "",
             f"Sizes: {sizes}. Time: {time_s:.1f} s.", "",
             f"**Verdict: {'PASSED' if v.passed else 'NOT SHOWN'}** — {v.claim}.", "",
             "Measured: " + ", ".join(f"{k} = {_short(val)}" for k, val in v.measured.items()), ""]
    lines += [f"![{f.title}]({f.stem}.png)  (data: [{f.stem}.json]({f.stem}.json))"
              for f in result.figures]
    lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def rebase_links(section: str, prefix: str) -> str:
    """`section` with its relative links (figures, data) prefixed by `prefix` ("dir/")."""
    return section.replace("](", f"]({prefix}").replace(f"]({prefix}#", "](#")


def report_section(run_dir: Path) -> str | None:
    """The run's section markdown with links through `run_dir` (as given: relative to where
    the report is written when it is relative), or None when the run has none."""
    path = Path(run_dir) / SECTION
    if not path.exists():
        return None
    return rebase_links(path.read_text(), f"{Path(run_dir).as_posix()}/")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def analyze(name: str, runs_root: Path, overrides: dict | None = None, full: bool = False,
            data_dir=None, log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Resolve, then run one experiment into a fresh `runs_root/analyze/<name>-<time>`."""
    spec = get_experiment(name)
    cfg = AnalysisConfig(spec.name, resolve_config(spec, overrides, full))
    run_dir = create_run_dir(Path(runs_root) / "analyze", f"{name}-{timestamp()}")
    return run_dir, run_analysis(cfg, run_dir, data_dir, log)


def analyze_all(runs_root: Path, overrides: dict[str, dict] | None = None, full: bool = False,
                data_dir=None, names: list[str] | None = None,
                log: Callable[[str], None] = print) -> tuple[Path, dict[str, dict]]:
    """Run every experiment (or `names`) into one directory and write `report.md` there.

    All configs are resolved before the first experiment starts, so a bad size fails at once.
    `overrides` maps experiment name → its `--set` overrides. Returns the folder and each
    experiment's schema-2 result.
    """
    specs = experiments()
    chosen = names or list(specs)
    for n in chosen:
        get_experiment(n)
    cfgs = {n: AnalysisConfig(n, resolve_config(specs[n], (overrides or {}).get(n), full))
            for n in chosen}
    root = create_run_dir(Path(runs_root) / "analyze", f"all-{timestamp()}")
    with run_lock(root):
        start_run(root, {"full": full, "experiments": {n: c.to_dict() for n, c in cfgs.items()}},
                  {"task": TASK_NAME, "kind": "analysis-all"})
        results, start = {}, time.perf_counter()
        for n in chosen:
            log(f"== {n}")
            sub = root / n
            sub.mkdir()
            results[n] = run_analysis(cfgs[n], sub, data_dir, log)
        total_s = time.perf_counter() - start
        atomic_write_bytes(root / "report.md", combined_report(root, chosen, results, total_s,
                                                               full).encode())
        verdicts = {n: bool(r["final"]["passed"]) for n, r in results.items()}
        write_result(root, make_result(
            task=TASK_NAME, kind="analysis-all", status="finished", primary="passed",
            direction="max", final={"passed": sum(verdicts.values())}, time_s=round(total_s, 2),
            info={"full": full, "experiments": sorted(chosen), "verdicts": verdicts}))
    return root, results


def combined_report(root: Path, names: list[str], results: dict[str, dict], total_s: float,
                    full: bool) -> str:
    """report.md: a verdict table, then each experiment's section with links into its folder."""
    lines = ["# dlab analyze: optimization and generalization experiments", "",
             f"Sizes: {'full (original)' if full else 'reduced (defaults)'}. "
             f"Total time: {total_s / 60:.1f} min.", "",
             "| experiment | verdict | time (s) |", "| --- | --- | --- |"]
    for n in names:
        r = results[n]
        lines.append(f"| [{n}](#{n}) | {'passed' if r['final']['passed'] else 'NOT shown'} "
                     f"| {r['time_s']:.0f} |")
    lines.append("")
    for n in names:
        section = rebase_links((root / n / SECTION).read_text(), f"{n}/")
        lines += [f'<a id="{n}"></a>', "", section]
    return "\n".join(lines)
