"""The course BLEU@1 against a literal reimplementation of the course script; BLEU-4 and
CIDEr-D against pycocoevalcap; the score file reader and its errors."""

from __future__ import annotations

import math
import operator
import random
from functools import reduce

import pytest

from dlab.captioning.scores import (best_constant_bleu1, cider_d, corpus_bleu, course_bleu1,
                                    read_predictions, score_predictions)
from dlab.captioning.text import tokenize
from dlab.errors import DlabError


# --- bleu_eval.py, transcribed line for line (n = 1 path) -------------------------------------
def _orig_count_ngram(candidate, references, n):
    clipped_count = 0
    count = 0
    r = 0
    c = 0
    for si in range(len(candidate)):
        ref_counts = []
        ref_lengths = []
        for reference in references:
            ref_sentence = reference[si]
            ngram_d = {}
            words = ref_sentence.strip().split()
            ref_lengths.append(len(words))
            limits = len(words) - n + 1
            for i in range(limits):
                ngram = ' '.join(words[i:i + n]).lower()
                if ngram in ngram_d.keys():
                    ngram_d[ngram] += 1
                else:
                    ngram_d[ngram] = 1
            ref_counts.append(ngram_d)
        cand_sentence = candidate[si]
        cand_dict = {}
        words = cand_sentence.strip().split()
        limits = len(words) - n + 1
        for i in range(0, limits):
            ngram = ' '.join(words[i:i + n]).lower()
            if ngram in cand_dict:
                cand_dict[ngram] += 1
            else:
                cand_dict[ngram] = 1
        clipped_count += _orig_clip_count(cand_dict, ref_counts)
        count += limits
        r += _orig_best_length_match(ref_lengths, len(words))
        c += len(words)
    if clipped_count == 0:
        pr = 0
    else:
        pr = float(clipped_count) / count
    if c > r:
        bp = 1
    else:
        bp = math.exp(1 - (float(r) / c))
    return pr, bp


def _orig_clip_count(cand_d, ref_ds):
    count = 0
    for m in cand_d.keys():
        m_w = cand_d[m]
        m_max = 0
        for ref in ref_ds:
            if m in ref:
                m_max = max(m_max, ref[m])
        m_w = min(m_w, m_max)
        count += m_w
    return count


def _orig_best_length_match(ref_l, cand_l):
    least_diff = abs(cand_l - ref_l[0])
    best = ref_l[0]
    for ref in ref_l:
        if abs(cand_l - ref) < least_diff:
            least_diff = abs(cand_l - ref)
            best = ref
    return best


def _orig_bleu(s, t):
    candidate = [s.strip()]
    references = [[t[i].strip()] for i in range(len(t))]
    pr, bp = _orig_count_ngram(candidate, references, 1)
    return reduce(operator.mul, [pr]) ** (1.0 / 1) * bp


def _orig_main(lines, test):
    result = {}
    for line in lines:
        line = line.rstrip()
        comma = line.index(',')
        result[line[:comma]] = line[comma + 1:]
    bleu = []
    for item in test:
        captions = [x.rstrip('.') for x in item['caption']]
        bleu.append(_orig_bleu(result[item['id']], captions))
    return sum(bleu) / len(bleu)


WORDS = ["a", "A", "the", "The", "man", "man.", "is", "cooking", "cooking.", "dog", "Dog",
         "runs", "7", "seven", "left", "and", "right", "up", "down", ".", "a.", "MAN"]


def _random_case(rng):
    def sentence(lo):
        sep = rng.choice([" ", "  ", "\t", " "])
        text = sep.join(rng.choice(WORDS) for _ in range(rng.randint(lo, 9)))
        return rng.choice(["", " ", "  "]) + text + rng.choice(["", ".", " ", ". ", ".."])

    test = [{"id": f"v{i}.avi", "caption": [sentence(0) for _ in range(rng.randint(1, 6))]}
            for i in range(rng.randint(1, 12))]
    lines = []
    for item in rng.sample(test, len(test)):
        caption = sentence(1)
        while not caption.split():
            caption = sentence(1)
        lines.append(f"{item['id']},{caption}" + rng.choice(["\n", " \n", "\r\n", ""]))
    return lines, test


def test_course_bleu1_equals_the_course_script_on_random_inputs(tmp_path):
    rng = random.Random(13)
    for case in range(400):
        lines, test = _random_case(rng)
        path = tmp_path / f"{case}.txt"
        path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines),
                        newline="")
        ours = course_bleu1(dict(read_predictions(path)),
                            [(t["id"], t["caption"]) for t in test])
        assert ours == pytest.approx(_orig_main(lines, test), abs=1e-12), (lines, test)


def test_course_bleu1_quirks():
    refs = [("v", ["a man is cooking."])]
    assert course_bleu1({"v": "a man is cooking"}, refs) == 1.0
    assert course_bleu1({"v": "a man is cooking."}, refs) == 0.75  # "cooking." never matches
    assert course_bleu1({"v": "cooking is man a"}, refs) == 1.0  # order does not matter
    assert course_bleu1({"v": ""}, refs) == 0.0  # the script divides by zero here
    assert course_bleu1({}, refs) == 0.0  # and raises KeyError here


def test_score_explains_missing_and_empty_and_rejects_foreign_ids():
    labels = [("a", ["x y"]), ("b", ["x y"]), ("c", ["z"])]
    s = score_predictions([("a", "x y"), ("b", "  "), ("q", "x")], labels)
    assert s.bleu1_course == pytest.approx(1 / 3)
    assert any("no prediction" in n for n in s.notes)
    assert any("empty" in n for n in s.notes)
    assert any("not in the labels" in n for n in s.notes)
    with pytest.raises(DlabError, match="no id of the prediction file"):
        score_predictions([("zz", "x")], labels)


def test_prediction_line_without_comma_is_an_error(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("v1,a man\nbroken line\n")
    with pytest.raises(DlabError, match="line 2"):
        read_predictions(path)


def _random_corpus(rng, n):
    words = "a the man is cooking dog runs digit 7 seven moves left and right up down".split()
    sent = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(1, 10)))  # noqa: E731
    return [sent() for _ in range(n)], [[sent() for _ in range(rng.randint(1, 7))]
                                        for _ in range(n)]


def test_bleu4_and_cider_d_equal_pycocoevalcap():
    bleu_mod = pytest.importorskip("pycocoevalcap.bleu.bleu")
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    rng = random.Random(5)
    for _ in range(20):
        cands, refs = _random_corpus(rng, rng.randint(2, 25))
        gts = {i: [" ".join(tokenize(r)) for r in rs] for i, rs in enumerate(refs)}
        res = {i: [" ".join(tokenize(c))] for i, c in enumerate(cands)}
        coco_bleu, _ = bleu_mod.Bleu(4).compute_score(gts, res, verbose=0)
        assert corpus_bleu(cands, refs) == pytest.approx(coco_bleu, rel=1e-9, abs=1e-15)
        coco_cider, _ = cider_mod.Cider().compute_score(gts, res)
        assert cider_d(cands, refs)[0] == pytest.approx(coco_cider, rel=1e-9, abs=1e-12)


def test_constant_search_finds_frequent_words_and_cider_ranks_it_low():
    train = [(f"t{i}", [f"the digit {d} moves left", f"a {d} is moving left and right"])
             for i, d in enumerate([1, 2, 3, 4, 5, 6, 7, 8] * 3)]
    const = best_constant_bleu1(train)
    assert "left" in const.split()
    good = [f"the digit {d} moves left" for d in [1, 2, 3, 4, 5, 6, 7, 8] * 3]
    refs = [r for _, r in train]
    assert cider_d(good, refs)[0] > 3 * cider_d([const] * len(refs), refs)[0]
