"""Which digits and motions a caption of the synthetic set names (for the "named right" rate).

Digits are the tokens 0-9 or zero..nine; each digit owns the first motion word after it (before
the next digit). Motion words: see `MOTION_WORDS`. A caption is right when its (digit, motion)
pairs equal the video's, in any order. Pure Python; must not import torch.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from dlab.captioning.text import tokenize

MOTIONS = ("horizontal", "vertical", "diagonal", "bouncing", "still")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MOTION_WORDS = {
    "horizontal": ("left", "right", "horizontally", "sideways", "side"),
    "vertical": ("up", "down", "vertically"),
    "diagonal": ("diagonally", "diagonal"),
    "bouncing": ("bouncing", "bounces", "walls", "zigzags"),
    "still": ("still", "not"),
}
_MOTION_OF = {w: m for m, words in MOTION_WORDS.items() for w in words}
_DIGIT_OF = {**{str(d): d for d in range(10)}, **{w: d for d, w in enumerate(NUMBER_WORDS)}}


def parse_caption(caption: str) -> list[tuple[int, str | None]]:
    """The (digit, motion or None) pairs that `caption` names, in order."""
    out: list[list] = []
    for word in tokenize(caption):
        if word in _DIGIT_OF:
            out.append([_DIGIT_OF[word], None])
        elif word in _MOTION_OF and out and out[-1][1] is None:
            out[-1][1] = _MOTION_OF[word]
    return [(d, m) for d, m in out]


def word_roles(words: Sequence[str]) -> tuple[list[int], list[int]]:
    """Per word: the digit it names (-1: none) and the index in `MOTIONS` of the motion it
    names (-1: none), as `parse_caption` reads them."""
    digits = [_DIGIT_OF.get(w, -1) for w in words]
    motions = [MOTIONS.index(_MOTION_OF[w]) if w in _MOTION_OF else -1 for w in words]
    return digits, motions


def slot_targets(references: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per video, per digit 0-9: the index in `MOTIONS` of the digit's motion, or -1 where the
    digit is not in the video, by the (digit, motion) pairs most of the video's references
    name (pairs without a motion left out; ties: the first such set in reference order)."""
    out = []
    for refs in references:
        votes = Counter(tuple(sorted({(d, m) for d, m in parse_caption(r) if m is not None}))
                        for r in refs)
        row = [-1] * len(NUMBER_WORDS)
        for d, m in votes.most_common(1)[0][0] if votes else ():
            row[d] = MOTIONS.index(m)
        out.append(row)
    return out


def named_right(caption: str, truth: Sequence[tuple[int, str]]) -> bool:
    """Whether `caption` names exactly the digits and motions of `truth`."""
    return Counter(parse_caption(caption)) == Counter((int(d), m) for d, m in truth)


def named_right_rate(captions: Sequence[str], truths: Sequence[Sequence[tuple[int, str]]]) -> float:
    """The fraction of captions that name their video's digits and motions right."""
    return sum(named_right(c, t) for c, t in zip(captions, truths)) / max(len(captions), 1)
