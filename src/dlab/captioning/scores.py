"""Caption scores: the course's BLEU@1 exactly as its script computes it, corpus BLEU-4 and
CIDEr-D as the COCO caption toolkit (pycocoevalcap) computes them, and constant baselines.

Course BLEU@1 (`bleu_eval.py`, after vikasnar/Bleu), per video: the candidate is stripped and
split on whitespace; each reference gets `.rstrip('.')`, then strip and split; words compare
lowercased. Clipped unigram precision (a candidate word's count is clipped by its largest count
in any single reference of the video; 0 when nothing matches) times a brevity penalty with
r = the reference length closest to the candidate length c (the first such reference on ties):
1 if c > r else exp(1 - r/c). The score is the arithmetic mean over the label file's videos.
Where the script crashes we score and say so instead: an empty caption (ZeroDivisionError
there) and a video without a prediction line (KeyError there) score 0.

BLEU-4 and CIDEr-D take `dlab.captioning.text.tokenize`d words joined by spaces (the COCO
toolkit splits on spaces). BLEU-4: corpus-level, clipped n-gram counts summed over videos,
r = per video the closest reference length (ties: the shorter), the toolkit's 1e-15 / 1e-9
smoothing. CIDEr-D: tf-idf n-grams (n = 1..4, document frequencies over the scored videos'
references), clipped cosine, Gaussian length penalty (sigma 6, "length" counted as the toolkit
does, in bigrams), averaged over references, x10, mean over videos.

Pure Python; must not import torch.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from dlab.errors import DlabError
from dlab.captioning.text import tokenize


# --- the course's BLEU@1 ---------------------------------------------------------------------
def course_bleu1_video(candidate: str, references: Sequence[str]) -> float:
    """One video's course BLEU@1 (the references as in the label file; 0 for an empty
    candidate, where the course script divides by zero)."""
    words = [w.lower() for w in candidate.strip().split()]
    if not words:
        return 0.0
    ref_words = [[w.lower() for w in r.rstrip(".").strip().split()] for r in references]
    ref_counts = [Counter(r) for r in ref_words]
    clipped = sum(min(n, max(rc.get(w, 0) for rc in ref_counts))
                  for w, n in Counter(words).items())
    precision = clipped / len(words) if clipped else 0.0
    c = len(words)
    lengths = [len(r) for r in ref_words]
    r = min(lengths, key=lambda n: abs(c - n))  # the first closest, as the script's strict <
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return precision * bp


def course_bleu1(predictions: Mapping[str, str], labels: Sequence[tuple[str, Sequence[str]]]
                 ) -> float:
    """The mean course BLEU@1 over the videos of `labels`, in label order (a missing prediction
    scores 0)."""
    scores = [course_bleu1_video(predictions.get(vid, ""), refs) for vid, refs in labels]
    return sum(scores) / len(scores)


def read_predictions(path: str | Path) -> list[tuple[str, str]]:
    """The (id, caption) lines of a prediction file: each line split at its first comma, as the
    course script does (trailing whitespace dropped; blank lines skipped, where the script
    crashes). A non-blank line without a comma is an error."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = list(fh)
    except FileNotFoundError:
        raise DlabError(f"prediction file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DlabError(f"prediction file {str(path)!r} cannot be read ({exc})") from None
    out = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip()
        if not line:
            continue
        if "," not in line:
            raise DlabError(f"prediction file {str(path)!r} line {number}: {line[:60]!r} has no "
                            "comma; expected '<id>,<caption>'")
        comma = line.index(",")
        out.append((line[:comma], line[comma + 1:]))
    return out


# --- BLEU-4 and CIDEr-D (COCO toolkit definitions) --------------------------------------------
def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1)
                   for i in range(len(words) - k + 1))


def corpus_bleu(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4
                ) -> list[float]:
    """Corpus BLEU-1..n of tokenized candidates (one per video) against their references."""
    tiny, small = 1e-15, 1e-9
    correct, guess = [0] * n, [0] * n
    test_len = ref_len = 0
    for cand, refs in zip(candidates, references):
        words = tokenize(cand)
        ref_words = [tokenize(r) for r in refs]
        max_counts: Counter = Counter()
        for r in ref_words:
            for gram, count in _ngrams(r, n).items():
                max_counts[gram] = max(max_counts[gram], count)
        for gram, count in _ngrams(words, n).items():
            correct[len(gram) - 1] += min(count, max_counts.get(gram, 0))
        for k in range(n):
            guess[k] += max(0, len(words) - k)
        test_len += len(words)
        ref_len += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
    out, prod = [], 1.0
    for k in range(n):
        prod *= (correct[k] + tiny) / (guess[k] + small)
        out.append(prod ** (1.0 / (k + 1)))
    ratio = (test_len + tiny) / (ref_len + small)
    if ratio < 1:
        out = [b * math.exp(1 - 1 / ratio) for b in out]
    return out


class CiderD:
    """CIDEr-D with the document frequencies of `references` (one list of reference captions
    per video) fixed, so that any candidate can be scored against any video's references (the
    per-video scores of `cider_d`)."""

    def __init__(self, references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0):
        self.n, self.sigma = n, sigma
        refs = [[_ngrams(tokenize(r), n) for r in rs] for rs in references]
        self.df: Counter = Counter()
        for rs in refs:
            self.df.update({g for r in rs for g in r})
        self.log_n = math.log(float(len(refs)))

    def vector(self, caption: str):
        """A caption's tf-idf vectors per n, their norms and its "length" (its bigrams)."""
        n = self.n
        v: list[dict] = [dict() for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in _ngrams(tokenize(caption), n).items():
            k = len(gram) - 1
            v[k][gram] = tf * (self.log_n - math.log(max(1.0, self.df[gram])))
            norm[k] += v[k][gram] ** 2
            if k == 1:  # the toolkit's "length": the number of bigrams
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    def score_vectors(self, cand, refs) -> float:
        """CIDEr-D of one candidate against one video's references, both as `vector`s."""
        vh, nh, lh = cand
        total = [0.0] * self.n
        for vr, nr, lr in refs:
            penalty = math.exp(-((lh - lr) ** 2) / (2 * self.sigma ** 2))
            for k in range(self.n):
                val = sum(min(x, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, x in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        return sum(total) / self.n / len(refs) * 10.0

    def score(self, candidate: str, references: Sequence[str]) -> float:
        return self.score_vectors(self.vector(candidate), [self.vector(r) for r in references])


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4,
            sigma: float = 6.0) -> tuple[float, list[float]]:
    """CIDEr-D of tokenized candidates: (the mean, per-video scores)."""
    scorer = CiderD(references, n, sigma)
    scores = [scorer.score(c, rs) for c, rs in zip(candidates, references)]
    return sum(scores) / len(scores), scores


# --- constant baselines -----------------------------------------------------------------------
def best_constant_bleu1(train: Sequence[tuple[str, Sequence[str]]], top_words: int = 30,
                        max_words: int = 10) -> str:
    """The constant caption with the best course BLEU@1 on the *training* labels, by greedy
    search: start empty, append the one word (of the `top_words` most frequent training words,
    course-lowercased) that raises the training BLEU@1 most, stop when none raises it or at
    `max_words` words."""
    counts = Counter(w.lower() for _, refs in train for r in refs for w in r.rstrip(".").split())
    vocab = [w for w, _ in counts.most_common(top_words)]
    best, best_score = [], 0.0
    while len(best) < max_words:
        scored = [(course_bleu1({v: " ".join(best + [w]) for v, _ in train}, train), w)
                  for w in vocab]
        score, word = max(scored, key=lambda t: t[0])
        if score <= best_score:
            break
        best, best_score = best + [word], score
    return " ".join(best)


def best_constant_cider(train: Sequence[tuple[str, Sequence[str]]], candidates: Sequence[str] = (),
                        top_captions: int = 50) -> str:
    """The constant caption with the best CIDEr-D on the *training* labels among the
    `top_captions` most frequent training captions (tokenized) and `candidates`."""
    counts = Counter(" ".join(tokenize(r)) for _, refs in train for r in refs)
    pool = [c for c, _ in counts.most_common(top_captions)] + [c for c in candidates if c]
    refs = [refs for _, refs in train]
    return max(pool, key=lambda c: (cider_d([c] * len(refs), refs)[0], c))


def best_constants(train: Sequence[tuple[str, Sequence[str]]], max_videos: int | None = None
                   ) -> tuple[str, str]:
    """(the best course-BLEU@1 constant, the best CIDEr-D constant) on the training labels;
    the CIDEr-D search also tries the BLEU@1 one. With `max_videos`, both searches score on at
    most that many evenly spaced training videos (the search is slow on thousands)."""
    if max_videos is not None:
        train = train[::math.ceil(len(train) / max_videos)]
    b = best_constant_bleu1(train)
    return b, best_constant_cider(train, [b])


@dataclass
class CaptionScores:
    """Everything `dlab caption score` prints."""

    bleu1_course: float
    bleu4: float
    cider_d: float
    distinct: int
    videos: int
    notes: list[str] = field(default_factory=list)
    constants: list[tuple[str, str, float, float]] = field(default_factory=list)


def score_predictions(predictions: Sequence[tuple[str, str]],
                      labels: Sequence[tuple[str, Sequence[str]]],
                      train: Sequence[tuple[str, Sequence[str]]] | None = None) -> CaptionScores:
    """Score (id, caption) pairs against `labels`; `train` (training labels) adds the constant
    baselines. Ids unknown to the labels are ignored (as the course script does) and noted;
    a file with no id of the labels at all is an error."""
    pred = dict(predictions)  # a repeated id: the last line wins, as in the course script
    known = {vid for vid, _ in labels}
    if not labels:
        raise DlabError("the label file has no videos")
    bare = next((vid for vid, refs in labels if not refs), None)
    if bare is not None:
        raise DlabError(f"video {bare!r} of the label file has no reference captions")
    notes = []
    if not known & set(pred):
        raise DlabError("no id of the prediction file is a video of the label file (e.g. "
                        f"{next(iter(pred), '<none>')!r} vs {next(iter(known))!r})")
    unknown = [v for v in pred if v not in known]
    if unknown:
        notes.append(f"{len(unknown)} prediction ids are not in the labels and were ignored "
                     f"(e.g. {unknown[0]!r})")
    missing = [v for v, _ in labels if v not in pred]
    if missing:
        notes.append(f"{len(missing)} videos have no prediction and score 0 (the course script "
                     f"raises KeyError), e.g. {missing[0]!r}")
    empty = [v for v, _ in labels if v in pred and not pred[v].split()]
    if empty:
        notes.append(f"{len(empty)} captions are empty and score 0 (the course script raises "
                     f"ZeroDivisionError), e.g. {empty[0]!r}")
    cands = [pred.get(v, "") for v, _ in labels]
    refs = [list(r) for _, r in labels]
    out = CaptionScores(course_bleu1(pred, labels), corpus_bleu(cands, refs)[3],
                        cider_d(cands, refs)[0], len({c for v, c in pred.items() if v in known}),
                        len(labels), notes)
    if train:
        b, c = best_constants(train)
        for how, const in (("course BLEU@1", b), ("CIDEr-D", c)):
            out.constants.append((how, const, course_bleu1({v: const for v in known}, labels),
                                  cider_d([const] * len(refs), refs)[0]))
    return out


def format_scores(s: CaptionScores) -> list[str]:
    """The lines `dlab caption score` prints."""
    lines = [f"BLEU@1 (course): {s.bleu1_course:.12f}",
             f"BLEU-4 (corpus, closest reference length): {s.bleu4:.6f}",
             f"CIDEr-D: {s.cider_d:.6f}"]
    for how, const, b1, cd in s.constants:
        lines.append(f"constant caption (best {how} on the training captions) {const!r}: "
                     f"BLEU@1 (course) {b1:.6f}, CIDEr-D {cd:.6f}")
    lines.append(f"distinct captions: {s.distinct} of {s.videos} videos")
    lines += [f"note: {n}" for n in s.notes]
    return lines
