"""The ladder run's figures (each beside the JSON it was drawn from) and its report section.

`loss_curves`: every rung's training loss per step, overlaid (the reference drawn thick, the
others dashed on top, so agreement shows as one line). `parity`: |loss - numpy loss| per step,
log scale (exact zeros drawn at 1e-18). Must not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dlab.io import atomic_write_json

FLOOR = 1e-18  # where an exact agreement is drawn on the log-scale parity plot


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_loss_curves(run_dir: Path, losses: dict[str, Sequence[float]]) -> Path:
    """loss_curves.png + loss_curves.json ({rung: [loss per step]})."""
    data = {r: [float(v) for v in ls] for r, ls in losses.items()}
    atomic_write_json(run_dir / "loss_curves.json", data)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (rung, ls) in enumerate(data.items()):
        steps = np.arange(1, len(ls) + 1)
        ax.plot(steps, ls, label=rung, lw=3 if i == 0 else 1, ls="-" if i == 0 else "--",
                alpha=0.5 if i == 0 else 1.0)
    ax.set(xlabel="step", ylabel="training loss (data + L2)", title="MLP ladder: loss per rung")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "loss_curves.png", dpi=110)
    plt.close(fig)
    return run_dir / "loss_curves.png"


def save_parity(run_dir: Path, losses: dict[str, Sequence[float]], reference: str = "numpy"
                ) -> Path:
    """parity.png + parity.json ({rung: [|loss - reference loss| per step]})."""
    ref = np.asarray(losses[reference], dtype=np.float64)
    data = {r: np.abs(np.asarray(ls, dtype=np.float64) - ref).tolist()
            for r, ls in losses.items() if r != reference}
    atomic_write_json(run_dir / "parity.json", data)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for rung, diff in data.items():
        d = np.maximum(np.nan_to_num(np.asarray(diff), nan=1.0, posinf=1.0), FLOOR)
        ax.plot(np.arange(1, len(d) + 1), d, label=rung, lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel=f"|loss - {reference} loss|",
           title=f"MLP ladder: agreement with the {reference} rung")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "parity.png", dpi=110)
    plt.close(fig)
    return run_dir / "parity.png"


def section(cfg: Any, table: list[dict[str, Any]], final: dict[str, Any]) -> str:
    """The run's markdown: setup, the parity table, the verdict, the figures."""
    lc, m = cfg.ladder, cfg.ladder.model
    sizes = "-".join(map(str, m.sizes))
    lines = [f"### MLP ladder: {', '.join(cfg.rungs)}", "",
             f"MLP {sizes} ({m.activation}, {m.init} init, reg {m.reg:g}, {m.dtype}), "
             f"{lc.update_rule} lr {lc.lr:g} ({lc.schedule.kind} schedule), batch "
             f"{lc.batch_size}, {cfg.steps} steps on {cfg.dataset}; every rung from the same "
             f"initial weights on the same batches.", "",
             "| rung | final loss | test acc | max \\|Δ loss\\| vs numpy | "
             "max \\|Δ w\\| vs numpy | time (s) |",
             "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['rung']} | {r['final_loss']:.5f} | {100 * r['test_acc']:.2f}% | "
                     f"{r['loss_diff']:.2e} | {r['weight_diff']:.2e} | {r['time_s']:.2f} |")
    ok = final["parity_ok"]
    verdict = ("not applicable (dropout: each framework draws its own masks)" if ok is None
               else "OK" if ok else "NOT OK")
    lines += ["", f"**Parity: {verdict}** (tolerance {cfg.tolerance:g} on both differences).",
              "", "![loss per rung](loss_curves.png)  (data: [loss_curves.json](loss_curves.json))",
              "", "![agreement with numpy](parity.png)  (data: [parity.json](parity.json))"]
    return "\n".join(lines) + "\n"
