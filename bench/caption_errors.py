"""Where a caption run's test captions go wrong on a synthetic set: per run directory, the
single- and two-digit videos of the validation split whose digits and motions are named right,
those with the right digits but a wrong motion, and those with wrong digits; and how many
two-digit videos the tagger's two most probable digits name right (digit tag = the larger of
the digit's numeral and number-word tag), and how many the digit slots get right (digits and
motions).

    python bench/caption_errors.py RUN_DIR [RUN_DIR ...] [--decode beam]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

from dlab.captioning.course import load_features, read_split
from dlab.captioning.parse import NUMBER_WORDS, named_right, parse_caption
from dlab.captioning.model import slot_pairs
from dlab.captioning.predict import load_captioner
from dlab.captioning.synth import read_info
from dlab.results import read_result
from dlab.torch_engine import checkpoint as ckpt


def head_pairs(run: Path, root: Path, split: str, truth: dict) -> tuple[int | None, int | None]:
    """Two-digit videos whose two most probable digit tags are their digits, and those whose
    digit slots (the digits taken as present, each slot's likeliest motion) are their digits
    and motions; None for a model without tags / slots."""
    path = run / "checkpoints" / "last"
    model, cfg, _ = load_captioner(path, torch.device("cpu"))
    words = ckpt.read_checkpoint(path)[0].get("tag_words") or []
    s = read_split(root, split)
    with torch.no_grad():
        _, keys, _, heads = model.encode_tagged(torch.from_numpy(
            load_features(s.feature_dir, s.ids, cfg.data.frame_stride)))
    tagged = slotted = 0
    for i, vid in enumerate(s.ids):
        if len(truth[vid]) != 2:
            continue
        pairs = {(int(d), m) for d, m in truth[vid]}
        if model.tags:
            tags = torch.sigmoid(heads.tags[i])
            score = [max([float(tags[words.index(w)]) for w in (str(d), NUMBER_WORDS[d])
                          if w in words] or [0.0]) for d in range(10)]
            top = sorted(range(10), key=lambda d: -score[d])[:2]
            tagged += set(top) == {d for d, _ in pairs}
        if model.slots is not None:
            slotted += set(slot_pairs(keys[2][i:i + 1])[0]) == pairs
    return (tagged if model.tags else None), (slotted if model.slots is not None else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--decode", default="beam", choices=("greedy", "beam"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| run | named right | single-digit right | two-digit right | two-digit: right "
          "digits, wrong motion | two-digit: wrong digits | tagger's top 2 digits right | "
          "two-digit: slots right | CIDEr-D |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        result = read_result(run)
        root = Path(result["info"]["dataset"])
        split = json.loads((run / "config.json").read_text())["data"]["val_split"]
        truth = read_info(root)["truth"]
        lines = (run / f"predictions_{split}_{args.decode}.txt").read_text().splitlines()
        kinds: Counter = Counter()
        for line in lines:
            vid, caption = line.split(",", 1)
            t = [(int(d), m) for d, m in truth[vid]]
            digits = Counter(d for d, _ in parse_caption(caption)) == Counter(d for d, _ in t)
            kinds[len(t), "right" if named_right(caption, t) else
                  "motion" if digits else "digits"] += 1
        one = sum(v for (k, _), v in kinds.items() if k == 1)
        two = sum(v for (k, _), v in kinds.items() if k == 2)
        right = kinds[1, "right"] + kinds[2, "right"]
        pairs, slots = head_pairs(run, root, split, truth)
        cider = result["final"].get(f"{args.decode}_cider_d")
        print(f"| {run.name} | {right / len(lines):.1%} | {kinds[1, 'right']} / {one} | "
              f"{kinds[2, 'right']} / {two} | {kinds[2, 'motion']} / {two} | "
              f"{kinds[2, 'digits']} / {two} | {'–' if pairs is None else f'{pairs} / {two}'} | "
              f"{'–' if slots is None else f'{slots} / {two}'} | {cider:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
