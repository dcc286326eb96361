"""How high CIDEr-D can go on a synthetic caption set: the "5x the best constant" question.

For each video of a split, candidates are drawn from the set's own caption grammar for the
video's *true* digits and motions (`synth.captions`), as a captioner that always names the
content right and phrases it as the references do could write them. Printed, per split:

  - constant: the best constant caption (found on the training captions, as `dlab caption score`
    does) scored on the split;
  - one reference vs the rest: each reference scored against the video's other references
    (leave one out; the figure quoted before this probe);
  - perfect content, chosen blind: per video, of `--candidates` grammar captions the one with the
    best mean CIDEr-D against `--sims` fresh reference sets drawn from the grammar for the same
    content (it never sees the video's real references); this is what a captioner that is always
    right about the content and optimizes CIDEr-D can expect;
  - perfect content, best of pool (an oracle that peeks): the best of the same candidates against
    the real references.

Document frequencies are those of the split's real references throughout (as scoring does).

    python bench/probe_caption_cider_ceiling.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from dlab.captioning import scores, synth
from dlab.captioning.course import read_split
from dlab.captioning.config import CaptionDataConfig
from dlab.captioning.dataset import dataset_root
from dlab.captioning.session import CONSTANT_SEARCH_VIDEOS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--candidates", type=int, default=60)
    ap.add_argument("--sims", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    root = dataset_root(CaptionDataConfig(), args.data_dir)
    info = synth.read_info(root)
    train = read_split(root, "training")
    train_labels = list(zip(train.ids, train.captions))
    const = scores.best_constants(train_labels, CONSTANT_SEARCH_VIDEOS)[1]
    rng = np.random.default_rng(args.seed)
    print(f"set {root}; best constant caption {const!r}")
    print("| split | videos | constant | one reference vs the rest | perfect content, chosen "
          "blind | (÷ constant) | perfect content, best of pool (peeks) |")
    print("|---|---|---|---|---|---|---|")
    for name in ("testing", "compositional"):
        split = read_split(root, name)
        refs = [list(c) for c in split.captions]
        cider = scores.CiderD(refs)
        c_const = statistics.mean(cider.score(const, rs) for rs in refs)
        loo, blind, peek = [], [], []
        for vid, rs in zip(split.ids, refs):
            loo += [cider.score(r, rs[:i] + rs[i + 1:]) for i, r in enumerate(rs)]
            items = [(int(d), str(m)) for d, m in info["truth"][vid]]
            pool = list(dict.fromkeys(synth.captions(rng, items, args.candidates)))
            vecs = [cider.vector(c) for c in pool]
            sims = [[cider.vector(r) for r in synth.captions(rng, items, len(rs))]
                    for _ in range(args.sims)]
            expected = [statistics.mean(cider.score_vectors(v, s) for s in sims) for v in vecs]
            real = [cider.vector(r) for r in rs]
            actual = [cider.score_vectors(v, real) for v in vecs]
            blind.append(actual[int(np.argmax(expected))])
            peek.append(max(actual))
        b = statistics.mean(blind)
        print(f"| {name} | {len(refs)} | {c_const:.3f} | {statistics.mean(loo):.3f} | {b:.3f} | "
              f"{b / c_const:.2f}× | {statistics.mean(peek):.3f} |")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
