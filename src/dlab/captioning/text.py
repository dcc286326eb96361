"""Tokenization and the vocabulary of the captioner (and of BLEU-4 / CIDEr-D).

Tokenization (documented once, used everywhere but the course BLEU@1, which keeps its own
whitespace split): lowercase, every character that is not a letter, a digit or an apostrophe
becomes a space, then split on whitespace. "A man is cooking." -> ["a", "man", "is", "cooking"].

The vocabulary keeps the words seen at least `min_count` times in the training captions, after
the four specials `<PAD>`=0, `<BOS>`=1, `<EOS>`=2, `<UNK>`=3; words are ordered by count
(descending), then alphabetically, so the same captions always give the same ids.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from dlab.errors import DlabError

PAD, BOS, EOS, UNK = "<PAD>", "<BOS>", "<EOS>", "<UNK>"
SPECIALS = (PAD, BOS, EOS, UNK)
_NON_WORD = re.compile(r"[^0-9a-z']+")


def tokenize(caption: str) -> list[str]:
    """Lowercased words of `caption` (punctuation dropped)."""
    return _NON_WORD.sub(" ", caption.lower()).split()


@dataclass(frozen=True)
class Vocabulary:
    """Word <-> id; ids 0..3 are the specials."""

    words: tuple[str, ...]  # index = id, the specials first

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """The words of `captions` seen at least `min_count` times (a count below 1 is an error)."""
        if min_count < 1:
            raise DlabError(f"vocabulary min_count {min_count}; expected an integer >= 1")
        counts = Counter(w for c in captions for w in tokenize(c))
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(kept))

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str, max_len: int) -> list[int]:
        """`<BOS> w1 .. wk <EOS>` ids, the words cut to `max_len`, unknown words as `<UNK>`."""
        index = self.index
        unk = index[UNK]
        ids = [index.get(w, unk) for w in tokenize(caption)[:max_len]]
        return [index[BOS], *ids, index[EOS]]

    def decode(self, ids: Sequence[int]) -> str:
        """The words of `ids` up to the first `<EOS>`, specials other than `<UNK>` dropped."""
        out = []
        for i in ids:
            word = self.words[int(i)]
            if word == EOS:
                break
            if word not in (PAD, BOS):
                out.append(word)
        return " ".join(out)


def tag_words(videos: Sequence[Sequence[str]], k: int, max_share: float) -> list[str]:
    """The `k` words used by the most videos (any of a video's captions) among those used by
    at most `max_share` of them; ties alphabetically. `videos`: each video's captions."""
    used = Counter(w for caps in videos for w in {w for c in caps for w in tokenize(c)})
    limit = max_share * len(videos)
    kept = sorted((w for w, n in used.items() if n <= limit), key=lambda w: (-used[w], w))
    return kept[:k]


def tag_targets(videos: Sequence[Sequence[str]], tags: Sequence[str]) -> list[list[float]]:
    """Per video, 1.0 for each of `tags` that one of its captions uses, else 0.0."""
    out = []
    for caps in videos:
        words = {w for c in caps for w in tokenize(c)}
        out.append([float(t in words) for t in tags])
    return out
