"""A synthetic captioned moving-digit video set, written in the course layout (`course`).

Each video: 80 frames of a 64x64 canvas with one or two 28x28 digits (MNIST training images
from the data directory when present, else glyphs of Pillow's default font), each moving in
one of `parse.MOTIONS`: left and right, up and down, along a diagonal (all three bounce back at
the walls), bouncing around at an off-diagonal angle, or still. Two digits combine by maximum.

Features (the fixed map, seeded by `feature_seed`; map 2 also holds the digit pool's
templates): a frame x in [0, 1]^(64x64) gives 4096 non-negative numbers,
  - 2048 "where" features: relu(4 * P^T pool4(x)), pool4 = 4x4 average pooling (16x16 = 256
    values), P a 256x2048 matrix of N(0, 1/256);
  - 2048 "what" features: relu(4 * Q^T v) where v holds the max and the mean over positions
    of relu(conv(pool2(x), K)), K = 96 zero-mean 5x5 filters of N(0, 1/25) on the 32x32
    2x2-pooled frame (valid, no bias: nearly translation-invariant), and (feature map 2, the
    default) class evidence: the normalized cross-correlation of every 15x15 window of pool2(x)
    with each digit's templates (up to 10 images of that digit's pool, at the 4 pixel offsets
    a 2x2 pooling can see them at, pooled to 15x15), the best template per digit, kept only for
    the digit that matches the window best (winner takes all), max-pooled over a 4x4 grid of
    window positions (160 values: which digit is where) and over the whole frame (10); Q a
    (192 [+ 170])x2048 matrix of N(0, 1/rows).
stored as float64 (80, 4096), as the course's features are. Why the class evidence: with map 1
the global "what" features of a two-digit frame mix both digits and say nothing of which one
sits where (a linear probe of the video-mean "what" features named the pair of digits of a
two-digit test video for 58%, 14 of 24). A CNN trained on the objects, whose features the
course's videos come with, gives this kind of evidence; map 2 imitates one that knows these
digits: with the default pool of 10 images a digit, its templates are exactly the images the
videos are drawn from, so the evidence is only blurred by the walls and overlapping digits
(the same probe: 83-88%). Measured (BENCHMARKS.md): the captioner names videos right as often
with map 2 as with map 1 (single-digit videos of the random split nearly always, 53-54 of 56);
two-digit videos stay near 0 with both maps (the decoder names one digit twice). With the
semantic tags and their checklist (`model.tags`, the default) both digits are named in 9-13 of
24, but their motions are rarely bound to the right digit (2-4 of 24 right). Digit slots
(`model.slots`, the default; per-digit tracks over the frames, and decoding that follows them)
name 12-17 of 23 two-digit test videos right (3000 training videos); trained also on made-up
two-digit videos (`train.slot_mix`), 18-20 of 23.

Captions: 5-20 (configurable) distinct paraphrases per video from a small grammar (subjects
such as "the digit 7", "a seven", "number 7"; predicates such as "moves left and right", "is
sliding from side to side"; templates; sometimes capitalized with a final "."), so no single
word list matches every reference. Splits: "training", "testing" (same distribution) and
"compositional": each of the latter's videos holds at least one (digit, motion) pair of
`held_out_pairs()` (digit d with motion MOTIONS[d % 5]), which no training video holds.
MNIST digits come from a pool of `digit_pool` images per class, shared by all splits (0 = all).

Disk: 2.62 MB per video (float64 80x4096); the default 3000 + 80 + 80 videos take 8.3 GB
(about 11 minutes to generate on a 2-core CPU; 1000 + 80 + 80 take 3.04 GB and 4-5 minutes).
Why 3000: two-digit videos are where the captioner fails, and more of them help most (named
right 72.5% with 1000 training videos, 81-82% with 3000; BENCHMARKS.md). 400 training videos
were too few: the motion is learnt from the "where" half, and the model memorized the rest
(see `model.frame_diff`).
Also written: `<split>_data/id.txt`, `<split>_data/frames.npz` (uint8 frames of the test
splits, for figures) and `synth.json` (settings, the feature map's seed, per-video truth).
Numpy + Pillow; must not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from dlab.captioning.course import FEATURE_DIM, FRAMES
from dlab.captioning.parse import MOTIONS, NUMBER_WORDS
from dlab.captioning.synthspec import SynthSpec
from dlab.errors import DlabError
from dlab.io import atomic_write_json

CANVAS, DIGIT = 64, 28
SPLITS = ("training", "testing", "compositional")
INFO = "synth.json"


def held_out_pairs() -> set[tuple[int, str]]:
    """The (digit, motion) pairs that only the compositional split shows."""
    return {(d, MOTIONS[d % len(MOTIONS)]) for d in range(10)}


# --- digits -------------------------------------------------------------------------------
def glyph_digits() -> dict[int, list[np.ndarray]]:
    """One 28x28 uint8 glyph per digit, drawn with Pillow's default font."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=24)
    except TypeError:  # Pillow without FreeType: the small bitmap font, scaled up below
        font = ImageFont.load_default()
    out = {}
    for d in range(10):
        img = Image.new("L", (DIGIT, DIGIT), 0)
        draw = ImageDraw.Draw(img)
        box = draw.textbbox((0, 0), str(d), font=font)
        w, h = box[2] - box[0], box[3] - box[1]
        draw.text(((DIGIT - w) / 2 - box[0], (DIGIT - h) / 2 - box[1]), str(d), fill=255,
                  font=font)
        out[d] = [np.asarray(img, np.uint8)]
    return out


def mnist_digits(data_dir: str | None, pool: int, rng: np.random.Generator
                 ) -> dict[int, list[np.ndarray]] | None:
    """`pool` MNIST training images per digit (seeded choice), or None without MNIST."""
    from dlab.data import load_dataset

    try:
        ds = load_dataset("mnist", "train", data_dir, download=False)
    except DlabError:
        return None
    out = {}
    for d in range(10):
        idx = np.flatnonzero(ds.labels == d)
        idx = rng.permutation(idx)[:pool] if pool else idx
        out[d] = [ds.images[i, 0] for i in np.sort(idx)]
    return out


# --- motion and frames ----------------------------------------------------------------------
def _bounce(p0: float, v: float, span: float) -> np.ndarray:
    """Positions over FRAMES steps from p0 at speed v, reflected inside [0, span]."""
    m = np.mod(p0 + v * np.arange(FRAMES), 2 * span)
    return np.where(m <= span, m, 2 * span - m)


def trajectory(motion: str, rng: np.random.Generator) -> np.ndarray:
    """(FRAMES, 2) integer (row, col) of a digit's top-left corner."""
    span = CANVAS - DIGIT
    speed = rng.uniform(1.5, 2.5) * rng.choice([-1, 1])
    r0, c0 = rng.uniform(0, span, 2)
    if motion == "horizontal":
        rows, cols = np.full(FRAMES, r0), _bounce(c0, speed, span)
    elif motion == "vertical":
        rows, cols = _bounce(r0, speed, span), np.full(FRAMES, c0)
    elif motion == "diagonal":
        t = _bounce(c0, speed, span)
        rows = t if rng.random() < 0.5 else span - t
        cols = t
    elif motion == "bouncing":
        angle = np.deg2rad(rng.choice([rng.uniform(18, 32), rng.uniform(58, 72)]))
        sr, sc = rng.choice([-1, 1], 2)
        fast = abs(speed) + 1.0
        rows = _bounce(r0, sr * fast * np.sin(angle), span)
        cols = _bounce(c0, sc * fast * np.cos(angle), span)
    elif motion == "still":
        rows, cols = np.full(FRAMES, r0), np.full(FRAMES, c0)
    else:
        raise DlabError(f"unknown motion {motion!r}; expected one of: {', '.join(MOTIONS)}")
    return np.stack([rows, cols], 1).round().astype(np.int64)


def render(digits: list[np.ndarray], paths: list[np.ndarray]) -> np.ndarray:
    """(FRAMES, 64, 64) uint8 frames of `digits` moved along `paths` (maximum where they meet)."""
    frames = np.zeros((FRAMES, CANVAS, CANVAS), np.uint8)
    for img, path in zip(digits, paths):
        for t, (r, c) in enumerate(path):
            view = frames[t, r:r + DIGIT, c:c + DIGIT]
            np.maximum(view, img, out=view)
    return frames


# --- the feature map --------------------------------------------------------------------------
TEMPLATE = 15  # a template's side on the 2x2-pooled frame (a 28x28 digit at any pixel offset)
WINDOWS = 32 - TEMPLATE + 1  # window positions per side
EVIDENCE_CELLS = (0, 5, 9, 14, WINDOWS)  # the 4x4 grid over the window positions


def class_templates(digits: dict[int, list[np.ndarray]], per_digit: int = 10) -> np.ndarray:
    """(10, 4k, 225) float32: up to `per_digit` images of each digit's pool (k = the smallest
    pool, at most `per_digit`), each at the 4 pixel offsets a 2x2 pooling can see it at, pooled
    to 15x15, zero-mean and unit-norm."""
    k = min(per_digit, *(len(digits[d]) for d in range(10)))
    t = np.zeros((10, k, 4, 2 * TEMPLATE, 2 * TEMPLATE), np.float32)
    for d in range(10):
        for i, img in enumerate(digits[d][:k]):
            for j, (dr, dc) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                t[d, i, j, dr:dr + DIGIT, dc:dc + DIGIT] = img / 255.0
    t = t.reshape(10, 4 * k, TEMPLATE, 2, TEMPLATE, 2).mean((3, 5)).reshape(10, 4 * k, -1)
    t -= t.mean(2, keepdims=True)
    return t / np.linalg.norm(t, axis=2, keepdims=True)


def pool_2x2(x: np.ndarray) -> np.ndarray:
    """(T, 64, 64) frames in [0, 1] -> (T, 32, 32): the 2x2 average pooling the filters and the
    class evidence read."""
    return x.reshape(len(x), CANVAS // 2, 2, CANVAS // 2, 2).mean((2, 4))


@dataclass(frozen=True)
class FeatureMap:
    """The fixed random map from frames to 4096-d non-negative features (see module doc)."""

    where: np.ndarray  # (256, 2048)
    filters: np.ndarray  # (25, 96)
    what: np.ndarray  # (192 or 362, 2048)
    templates: np.ndarray | None = None  # (10, 4k, 225) for feature map 2

    @classmethod
    def seeded(cls, seed: int, templates: np.ndarray | None = None) -> "FeatureMap":
        rng = np.random.default_rng(seed)
        where = rng.normal(0, 1 / 16, (256, 2048)).astype(np.float32)
        filters = rng.normal(0, 1 / 5, (25, 96)).astype(np.float32)
        filters -= filters.mean(0, keepdims=True)
        rows = 192 + (0 if templates is None else 170)
        what = rng.normal(0, 1 / np.sqrt(rows), (rows, 2048)).astype(np.float32)
        return cls(where, filters, what, templates)

    def evidence(self, pool2: np.ndarray) -> np.ndarray:
        """(T, 32, 32) -> (T, 170): per 15x15 window, the correlation with the best-matching
        template of the best-matching digit (the other digits get 0 there), max-pooled over
        each of 4x4 cells of window positions and over all of them."""
        t = len(pool2)
        win = np.lib.stride_tricks.sliding_window_view(pool2, (TEMPLATE, TEMPLATE), axis=(1, 2))
        win = win.reshape(t, WINDOWS * WINDOWS, -1)
        win = win - win.mean(2, keepdims=True)
        # +0.5 in the norm: an empty window gives ~0 rather than the correlation of noise
        flat = self.templates.reshape(-1, self.templates.shape[2])
        ncc = (win @ flat.T) / (np.linalg.norm(win, axis=2, keepdims=True) + 0.5)
        ncc = ncc.reshape(t, WINDOWS, WINDOWS, 10, -1).max(4)
        ncc = np.where(ncc == ncc.max(3, keepdims=True), ncc, 0)
        e = EVIDENCE_CELLS
        cells = [ncc[:, e[i]:e[i + 1], e[j]:e[j + 1]].max((1, 2))
                 for i in range(4) for j in range(4)]
        return np.concatenate(cells + [ncc.max((1, 2))], 1)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, 64, 64) uint8 -> (T, 4096) float64."""
        x = frames.astype(np.float32) / 255.0
        t = len(x)
        pool4 = x.reshape(t, 16, 4, 16, 4).mean((2, 4)).reshape(t, 256)
        where = np.maximum(4.0 * pool4 @ self.where, 0)
        pool2 = pool_2x2(x)
        patches = np.lib.stride_tricks.sliding_window_view(pool2, (5, 5), axis=(1, 2))
        resp = np.maximum(patches.reshape(-1, 25) @ self.filters, 0).reshape(t, -1, 96)
        pooled = [resp.max(1), resp.mean(1)]
        if self.templates is not None:
            pooled.append(self.evidence(pool2))
        what = np.maximum(4.0 * np.concatenate(pooled, 1) @ self.what, 0)
        return np.concatenate([where, what], 1).astype(np.float64)


# --- captions ---------------------------------------------------------------------------------
SUBJECTS = ("the digit {n}", "digit {n}", "a {n}", "the number {w}", "the digit {w}", "a {w}",
            "the {n}", "number {n}")
PREDICATES = {
    "horizontal": ("is moving left and right", "moves left and right", "is sliding from side "
                   "to side", "moves horizontally", "is moving sideways", "goes left and right"),
    "vertical": ("is moving up and down", "moves up and down", "goes up and down",
                 "is moving vertically", "bobs up and down", "moves vertically"),
    "diagonal": ("is moving diagonally", "moves diagonally", "goes back and forth along a "
                 "diagonal", "slides diagonally", "travels along the diagonal"),
    "bouncing": ("is bouncing around", "bounces around", "bounces off the walls",
                 "is bouncing all over the frame", "zigzags around"),
    "still": ("is standing still", "stays still", "does not move", "is not moving",
              "sits still", "remains still"),
}
TEMPLATES_1 = ("{a}", "in the video {a}", "we see that {a}")
TEMPLATES_2 = ("{a} and {b}", "{a} while {b}", "in the video {a} and {b}")


def _clause(rng: np.random.Generator, digit: int, motion: str) -> str:
    subject = str(rng.choice(SUBJECTS)).format(n=digit, w=NUMBER_WORDS[digit])
    if subject.startswith("a ") and subject[2] in "e":  # "a eight"
        subject = "an " + subject[2:]
    return f"{subject} {rng.choice(PREDICATES[motion])}"


def captions(rng: np.random.Generator, items: list[tuple[int, str]], k: int) -> list[str]:
    """`k` distinct paraphrases naming `items` ((digit, motion) pairs)."""
    out: list[str] = []
    for _ in range(50 * k):
        if len(out) == k:
            break
        parts = [_clause(rng, d, m) for d, m in rng.permutation(np.array(items, object))]
        template = rng.choice(TEMPLATES_1 if len(parts) == 1 else TEMPLATES_2)
        text = str(template).format(a=parts[0], b=parts[-1])
        if rng.random() < 0.3:
            text = text[0].upper() + text[1:] + "."
        if text not in out:
            out.append(text)
    return out


# --- the set ----------------------------------------------------------------------------------
def _sample_items(rng: np.random.Generator, spec: SynthSpec, compositional: bool
                  ) -> list[tuple[int, str]]:
    held = held_out_pairs()
    while True:
        k = 2 if rng.random() < spec.two_digit_fraction else 1
        digits = rng.choice(10, k, replace=False)
        items = [(int(d), str(rng.choice(MOTIONS))) for d in digits]
        if any(it in held for it in items) == compositional:
            return items


def generate(spec: SynthSpec, out: str | Path, data_dir: str | None = None,
             progress: Callable[[str], None] | None = None) -> Path:
    """Write the set `spec` into the new folder `out` (atomically: built beside it, renamed);
    an existing `out` is an error. Returns `out`."""
    spec.validate()
    out = Path(out)
    if out.exists():
        raise DlabError(f"output folder {str(out)!r} already exists; give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write(spec, tmp, data_dir, progress)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _digits(spec: SynthSpec, data_dir: str | None, rng: np.random.Generator
            ) -> tuple[dict[int, list[np.ndarray]], str]:
    mnist = mnist_digits(data_dir, spec.digit_pool, rng)
    return (mnist, "mnist") if mnist is not None else (glyph_digits(), "font glyphs")


def _videos(spec: SynthSpec, digits: dict[int, list[np.ndarray]], rng: np.random.Generator
            ) -> Iterator[tuple[str, int, str, list[tuple[int, str]], np.ndarray, list[str]]]:
    """(split, index, id, (digit, motion) items, frames (80, 64, 64) uint8, references) of
    every video, in the order (and from the draws) of the written set."""
    sizes = spec.sizes()
    for split in SPLITS:
        for i in range(sizes[split]):
            items = _sample_items(rng, spec, split == "compositional")
            imgs = [digits[d][rng.integers(len(digits[d]))] for d, _ in items]
            frames = render(imgs, [trajectory(m, rng) for _, m in items])
            refs = captions(rng, items, int(rng.integers(spec.min_refs, spec.max_refs + 1)))
            yield split, i, f"syn_{split[:4]}_{i:05d}.avi", items, frames, refs


def rendered(spec: SynthSpec, data_dir: str | None = None
             ) -> tuple[Iterator[tuple[str, int, str, list[tuple[int, str]], np.ndarray,
                                       list[str]]], dict[int, list[np.ndarray]]]:
    """The videos of the set `spec` as frames, without the features (for probes of what the
    features hold), and the digit images they are drawn from."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    digits, _ = _digits(spec, data_dir, rng)
    return _videos(spec, digits, rng), digits


def _write(spec: SynthSpec, root: Path, data_dir: str | None,
           progress: Callable[[str], None] | None) -> None:
    rng = np.random.default_rng(spec.seed)
    digits, source = _digits(spec, data_dir, rng)
    fmap = FeatureMap.seeded(spec.feature_seed,
                             class_templates(digits) if spec.feature_map == 2 else None)
    truth: dict[str, Any] = {}
    sizes = spec.sizes()
    labels: dict[str, list] = {split: [] for split in SPLITS}
    frames_of: dict[str, dict[str, np.ndarray]] = {split: {} for split in SPLITS}
    for split in SPLITS:
        (root / f"{split}_data" / "feat").mkdir(parents=True)
    for split, i, vid, items, frames, refs in _videos(spec, digits, rng):
        np.save(root / f"{split}_data" / "feat" / f"{vid}.npy", fmap(frames))
        labels[split].append({"caption": refs, "id": vid})
        truth[vid] = [[d, m] for d, m in items]
        if split != "training":
            frames_of[split][vid] = frames
        if progress and (i + 1) % 50 == 0:
            progress(f"{split}: {i + 1}/{sizes[split]} videos")
    for split in SPLITS:
        (root / f"{split}_label.json").write_text(json.dumps(labels[split], indent=1))
        (root / f"{split}_data" / "id.txt").write_text(
            "".join(f"{x['id']}\n" for x in labels[split]))
        if frames_of[split]:
            np.savez_compressed(root / f"{split}_data" / "frames.npz", **frames_of[split])
    atomic_write_json(root / INFO, {
        "spec": dataclasses.asdict(spec), "digits": source, "frames": FRAMES,
        "feature_dim": FEATURE_DIM, "held_out_pairs": sorted(map(list, held_out_pairs())),
        "truth": truth})


def read_info(root: str | Path) -> dict[str, Any] | None:
    """`synth.json` of a synthetic set (None for other sets, e.g. the course's own)."""
    path = Path(root) / INFO
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DlabError(f"{str(path)!r} is not valid JSON ({exc})") from None
