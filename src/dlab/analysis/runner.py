"""Run analysis experiments into run directories and write the combined report.

One experiment = one run directory: `config.json` (the resolved sizes), `manifest.json`,
`<figure>.png` + `<figure>.json` (the data drawn), `numbers.json`, `section.md`, and
`result.json` written last (verdict, numbers, time). `run_all` puts every experiment's run
directory inside one `analyze-all-*` directory with a `report.md` linking their figures.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from dlab.analysis.registry import ContextSpec, ExperimentSpec, experiments, resolve_config
from dlab.analysis.result import ExperimentResult
from dlab.runs import atomic_write_bytes, atomic_write_json, create_run_dir, manifest, run_lock
from dlab.runs import timestamp


def run_experiment(spec: ExperimentSpec, cfg: Any, run_dir: Path, data_dir=None,
                   log: Callable[[str], None] = print, threads: int = 1) -> dict:
    """Compute one experiment into the empty directory `run_dir`; returns its result.json dict.

    Args:
        threads: torch intra-op threads; 1 by default because these nets are tiny and extra
            threads only spin against other jobs on a shared CPU.
    """
    import torch

    from dlab.analysis.plots import draw

    torch.set_num_threads(threads)
    with run_lock(run_dir):
        atomic_write_json(run_dir / "config.json", {"experiment": spec.name,
                                                     "config": dataclasses.asdict(cfg)})
        atomic_write_json(run_dir / "manifest.json", manifest({"torch": torch.__version__}))
        torch.manual_seed(getattr(cfg, "seed", 0))
        start = time.perf_counter()
        result: ExperimentResult = spec.compute(cfg, ContextSpec(data_dir=data_dir, log=log))
        time_s = time.perf_counter() - start
        for fig in result.figures:
            draw(fig, run_dir)
        atomic_write_json(run_dir / "numbers.json", result.to_dict())
        atomic_write_bytes(run_dir / "section.md", section_markdown(spec, cfg, result, time_s,
                                                                    "").encode())
        out = {"status": "finished", "experiment": spec.name, "time_s": round(time_s, 2),
               "verdict": result.verdict.to_dict(),
               "figures": [f"{f.stem}.png" for f in result.figures]}
        atomic_write_json(run_dir / "result.json", out)
    return out


def section_markdown(spec: ExperimentSpec, cfg: Any, result: ExperimentResult, time_s: float,
                     prefix: str) -> str:
    """A report section: title, sizes, verdict with measured values, figure links, notes."""
    v = result.verdict
    sizes = ", ".join(f"{k}={val}" for k, val in dataclasses.asdict(cfg).items())
    lines = [f"## {spec.title} (`{spec.name}`)", "", spec.description, "",
             f"Sizes: {sizes}. Time: {time_s:.1f} s.", "",
             f"**Verdict: {'PASSED' if v.passed else 'NOT SHOWN'}** — {v.claim}.", "",
             "Measured: " + ", ".join(f"{k} = {_short(val)}" for k, val in v.measured.items()), ""]
    lines += [f"![{f.title}]({prefix}{f.stem}.png)  (data: [{f.stem}.json]({prefix}{f.stem}.json))"
              for f in result.figures]
    lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


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
    from dlab.analysis.registry import get_experiment

    spec = get_experiment(name)
    cfg = resolve_config(spec, overrides, full)
    run_dir = create_run_dir(Path(runs_root) / "analyze", f"{name}-{timestamp()}")
    return run_dir, run_experiment(spec, cfg, run_dir, data_dir, log)


def analyze_all(runs_root: Path, overrides: dict[str, dict] | None = None, full: bool = False,
                data_dir=None, names: list[str] | None = None,
                log: Callable[[str], None] = print) -> tuple[Path, dict[str, dict]]:
    """Run every experiment (or `names`) into one directory and write `report.md` there.

    All configs are resolved before the first experiment starts, so a bad size fails at once.
    `overrides` maps experiment name → its `--set` overrides.
    """
    specs = experiments()
    chosen = names or list(specs)
    cfgs = {n: resolve_config(specs[n], (overrides or {}).get(n), full) for n in chosen}
    root = create_run_dir(Path(runs_root) / "analyze", f"all-{timestamp()}")
    results, start = {}, time.perf_counter()
    for n in chosen:
        log(f"== {n}")
        sub = root / n
        sub.mkdir()
        results[n] = run_experiment(specs[n], cfgs[n], sub, data_dir, log)
    total_s = time.perf_counter() - start
    atomic_write_bytes(root / "report.md", combined_report(root, chosen, results, total_s,
                                                           full).encode())
    atomic_write_json(root / "result.json", {"status": "finished", "time_s": round(total_s, 2),
                                             "full": full, "experiments": results})
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
        lines.append(f"| [{n}](#{n}) | {'passed' if r['verdict']['passed'] else 'NOT shown'} "
                     f"| {r['time_s']:.0f} |")
    lines.append("")
    for n in names:
        section = (root / n / "section.md").read_text()
        # figure links in section.md are relative to the experiment's own folder
        section = section.replace("](", f"]({n}/").replace(f"]({n}/#", "](#")
        lines += [f'<a id="{n}"></a>', "", section]
    return "\n".join(lines)
