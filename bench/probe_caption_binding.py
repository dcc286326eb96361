"""Is the motion of each digit of a two-digit video in the synthetic captioning set's features?

The captioner names two-digit videos' digits but rarely binds each to its motion
(BENCHMARKS.md, "semantic tags with a checklist"). This probe asks whether the information is
there, from feature map 2's class evidence (`synth.FeatureMap.evidence`: per frame, for each
digit, its best template correlation max-pooled over a 4x4 grid of places), recomputed from the
frames of the default set (the same draws as the written set, every `--stride`-th frame):

- "tracker": per named digit, the grid cell of its largest evidence in each frame, kept where
  that evidence is above `--threshold`, summarized by robust statistics (10-90% ranges of row
  and column, median and mean steps, |correlation| of row and column, the share of frames kept,
  the mean evidence), then a small MLP from those 9 numbers to the 5 motions;
- "learnt": a generic learner on the same evidence: per-digit input gate -> linear -> ReLU,
  then the mean, std and mean absolute step over time -> MLP -> motion.

Both are trained on the training split's (video, digit) pairs, with the digit given (as the
decoder has named it), and tested on the random test split. Prints a table: per reader, the
motions of single-digit videos, of the digits of two-digit videos, and two-digit videos with
both motions right.

    python bench/probe_caption_binding.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dlab.captioning.parse import MOTIONS
from dlab.captioning.synth import (FeatureMap, SynthSpec, class_templates, pool_2x2,
                                   rendered)

CELLS = 16


def evidence_tracks(spec: SynthSpec, data_dir: str | None, stride: int):
    """Per split: a list of (evidence (T, 16, 10), [(digit, motion)])."""
    videos, digits = rendered(spec, data_dir)
    fmap = FeatureMap.seeded(spec.feature_seed, class_templates(digits))
    out: dict[str, list] = {}
    for split, _, _, items, frames, _ in videos:
        pool2 = pool_2x2(frames[::stride].astype(np.float32) / 255.0)
        ev = fmap.evidence(pool2)[:, :CELLS * 10].reshape(len(pool2), CELLS, 10)
        out.setdefault(split, []).append((ev, items))
    return out


def track_stats(ev: np.ndarray, digit: int, threshold: float) -> list[float]:
    """The 9 robust statistics of `digit`'s best cell over time."""
    cell, score = ev[:, :, digit].argmax(1), ev[:, :, digit].max(1)
    keep = score > threshold
    if keep.sum() < 3:  # the 3 best frames at least
        keep = score >= np.sort(score)[-3]
    r, c = (cell // 4)[keep].astype(float), (cell % 4)[keep].astype(float)
    dr, dc = np.abs(np.diff(r)), np.abs(np.diff(c))
    corr = abs(np.corrcoef(r, c)[0, 1]) if r.std() > 0 and c.std() > 0 else 0.0
    span = [np.percentile(v, 90) - np.percentile(v, 10) for v in (r, c)]
    steps = [np.median(dr), np.median(dc), dr.mean(), dc.mean()] if len(dr) else [0.0] * 4
    return [*span, *steps, corr, keep.mean(), score.mean()]


def pairs(videos: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(video index, digit, motion index, digits in the video) per named digit."""
    rows = [(v, d, MOTIONS.index(m), len(items)) for v, (_, items) in enumerate(videos)
            for d, m in items]
    return tuple(np.array(col) for col in zip(*rows))  # type: ignore[return-value]


def score(pred: np.ndarray, motion: np.ndarray, video: np.ndarray, k: np.ndarray) -> tuple:
    ok = pred == motion
    two = sorted(set(video[k == 2].tolist()))
    both = sum(bool(ok[video == v].all()) for v in two)
    return ok[k == 1].mean(), ok[k == 2].mean(), both, len(two)


def tracker(train: list, test: list, threshold: float, seed: int) -> tuple:
    def table(videos):
        v, d, m, k = pairs(videos)
        x = np.array([track_stats(videos[i][0], di, threshold) for i, di in zip(v, d)])
        return x, m, v, k

    xa, ya, _, _ = table(train)
    xb, yb, vb, kb = table(test)
    mu, sd = xa.mean(0), xa.std(0) + 1e-6
    a = torch.tensor((xa - mu) / sd, dtype=torch.float32)
    b = torch.tensor((xb - mu) / sd, dtype=torch.float32)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(a.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, len(MOTIONS)))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    target = torch.tensor(ya)
    for _ in range(500):  # full batch
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(a), target).backward()
        opt.step()
    with torch.no_grad():
        pred = net(b).argmax(1).numpy()
    return score(pred, yb, vb, kb)


class _Learnt(torch.nn.Module):
    def __init__(self, features: int, hidden: int = 256):
        super().__init__()
        self.gate = torch.nn.Embedding(10, features)
        self.proj = torch.nn.Linear(features, hidden)
        self.out = torch.nn.Sequential(torch.nn.Linear(3 * hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, len(MOTIONS)))

    def forward(self, x: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
        v = torch.relu(self.proj(x * torch.sigmoid(self.gate(digit))[:, None]))
        step = (v[:, 1:] - v[:, :-1]).abs().mean(1)
        return self.out(torch.cat([v.mean(1), v.std(1), step], 1))


def learnt(train: list, test: list, seed: int, epochs: int = 40) -> tuple:
    def tensors(videos):
        x = torch.tensor(np.stack([ev.reshape(len(ev), -1) for ev, _ in videos]))
        return x, *pairs(videos)

    xa, va, da, ya, _ = tensors(train)
    xb, vb, db, yb, kb = tensors(test)
    mu, sd = xa.reshape(-1, xa.shape[2]).mean(0), xa.reshape(-1, xa.shape[2]).std(0) + 1e-3
    xa, xb = (xa - mu) / sd, (xb - mu) / sd
    torch.manual_seed(seed)
    net = _Learnt(xa.shape[2])
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    va_t, da_t, ya_t = (torch.tensor(c) for c in (va, da, ya))
    for _ in range(epochs):
        order = torch.randperm(len(va_t))
        for i in range(0, len(order), 64):
            j = order[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xa[va_t[j]], da_t[j]), ya_t[j])
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net(xb[torch.tensor(vb)], torch.tensor(db)).argmax(1).numpy()
    return score(pred, yb, vb, kb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=80)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    spec = SynthSpec(train=args.train, test=args.test)
    tracks = evidence_tracks(spec, args.data_dir, args.stride)
    print(f"evidence of {sum(map(len, tracks.values()))} videos in "
          f"{time.perf_counter() - t0:.0f} s")
    rows = [("tracker (best cell, robust statistics, MLP)",
             tracker(tracks["training"], tracks["testing"], args.threshold, args.seed)),
            ("learnt (gate, linear, mean/std/step, MLP)",
             learnt(tracks["training"], tracks["testing"], args.seed))]
    print("\n| reader of map 2's class evidence | single-digit motions | two-digit: digits' "
          "motions | two-digit: both right |")
    print("| --- | ---: | ---: | ---: |")
    for name, (single, two, both, n) in rows:
        print(f"| {name} | {single:.1%} | {two:.1%} | {both} / {n} |")
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
