"""Task "caption": video captioning with an S2VT-style encoder-decoder (`dlab.captioning`).

Config: `dlab.captioning.config.CaptionConfig` ([data] [model] [optim] [train]); data is a
folder in the course layout or the synthetic moving-digit set (generated on first use).
Primary metric: CIDEr-D of the validation split's captions, maximised (per epoch greedy; the
final value uses `train.decode`). The report shows beside it corpus BLEU-4, the course BLEU@1,
the "named right" rate, greedy vs beam, the compositional split and the best constant caption.
Must not import torch at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlab.captioning.config import CaptionConfig, resolve
from dlab.tasks.base import Column, OpenContext, Task


def _open(cfg: CaptionConfig, ctx: OpenContext):
    from dlab.captioning.session import CaptionSession

    return CaptionSession(cfg, ctx)


def _describe(cfg: CaptionConfig) -> dict[str, Any]:
    data = cfg.data.root or f"synthetic digits (seed {cfg.data.synth_seed})"
    return {"dataset": data, "model": f"s2vt-{cfg.model.cell}"
            + ("" if cfg.model.attention else "-noatt"), "decode": cfg.train.decode}


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def _section(run_dir: Path) -> str | None:
    from dlab.results import read_result

    result = read_result(run_dir)
    if result is None or result.get("status") not in ("finished", "pruned"):
        return None
    f = result["final"]
    rows = ["| split | decoder | CIDEr-D | BLEU-4 | BLEU@1 (course) | named right | distinct |",
            "|---|---|---|---|---|---|---|"]
    for tag, split in (("", "validation"), ("other_", "other split")):
        for method in ("greedy", "beam"):
            k = f"{tag}{method}_"
            if f.get(k + "cider_d") is None:
                continue
            rows.append(f"| {split} | {method} | {_fmt(f.get(k + 'cider_d'))} | "
                        f"{_fmt(f.get(k + 'bleu4'))} | {_fmt(f.get(k + 'bleu1_course'))} | "
                        f"{_fmt(f.get(k + 'named_right'))} | {f.get(k + 'distinct')} |")
    rows.append(f"| validation | best constant caption | {_fmt(f.get('const_cider_d'))} | – | "
                f"{_fmt(f.get('const_bleu1_course'))} | – | 1 |")
    examples = sorted((run_dir / "examples").glob("*.png")) if (run_dir / "examples").is_dir() \
        else []
    links = " ".join(f"![{p.stem}]({p.relative_to(run_dir)})" for p in examples[:4])
    return "\n".join(rows) + ("\n\n" + links if links else "")


TASK = Task(
    name="caption",
    config_class=CaptionConfig,
    primary="cider_d",
    direction="max",
    resolve=resolve,
    open=_open,
    describe=_describe,
    report_columns=(Column("cider_d", "CIDEr-D"), Column("bleu4", "BLEU-4"),
                    Column("bleu1_course", "BLEU@1 (course)"),
                    Column("named_right", "named right", percent=True),
                    Column("greedy_cider_d", "greedy CIDEr-D"),
                    Column("beam_cider_d", "beam CIDEr-D"),
                    Column("other_cider_d", "compositional CIDEr-D"),
                    Column("other_named_right", "compositional named right", percent=True),
                    Column("const_cider_d", "constant CIDEr-D"),
                    Column("const_bleu1_course", "constant BLEU@1")),
    report_figures=(("cider_d", "validation CIDEr-D (greedy)"), ("val_loss", "validation loss"),
                    ("loss", "training loss (cross-entropy epochs)"),
                    ("scst_reward", "self-critical reward (training samples' CIDEr-D)")),
    report_section=_section,
    doc="video captioning (S2VT with attention); best checkpoint by validation CIDEr-D",
)
