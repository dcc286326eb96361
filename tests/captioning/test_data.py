"""The course layout reader, the vocabulary, the synthetic set and the caption parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlab.captioning.course import load_features, read_id_list, read_labels, read_split
from dlab.captioning.parse import MOTIONS, named_right, parse_caption
from dlab.captioning.synth import SynthSpec, generate, held_out_pairs, read_info
from dlab.captioning.text import Vocabulary, tokenize
from dlab.errors import DlabError


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "set"
    return generate(SynthSpec(train=12, test=4, compositional=4, seed=3), root, data_dir=None)


def test_synthetic_set_is_in_the_course_layout(tiny_set):
    train = read_labels(tiny_set / "training_label.json")
    assert len(train) == 12 and all(5 <= len(c) <= 20 for _, c in train)
    test = read_split(tiny_set, "testing")
    assert list(test.ids) == read_id_list(tiny_set / "testing_data" / "id.txt")
    feat = np.load(test.feature_dir / f"{test.ids[0]}.npy")
    assert feat.shape == (80, 4096) and feat.dtype == np.float64 and feat.min() >= 0
    assert 0.2 < (feat == 0).mean() < 0.9
    assert load_features(test.feature_dir, test.ids, frame_stride=4).shape == (4, 20, 4096)


def test_synthetic_truth_splits_and_captions_agree(tiny_set):
    info = read_info(tiny_set)
    held = held_out_pairs()
    for split in ("training", "testing", "compositional"):
        for vid, caps in read_labels(tiny_set / f"{split}_label.json"):
            truth = [tuple(p) for p in info["truth"][vid]]
            assert any(p in held for p in truth) == (split == "compositional")
            assert all(named_right(c, truth) for c in caps), caps
            assert len(set(caps)) == len(caps)


def test_synthetic_set_is_deterministic(tmp_path, tiny_set):
    again = generate(SynthSpec(train=12, test=4, compositional=4, seed=3), tmp_path / "b")
    a = (tiny_set / "training_label.json").read_text()
    assert a == (again / "training_label.json").read_text()
    vid = json.loads(a)[5]["id"]
    np.testing.assert_array_equal(np.load(tiny_set / "training_data" / "feat" / f"{vid}.npy"),
                                  np.load(again / "training_data" / "feat" / f"{vid}.npy"))
    other = generate(SynthSpec(train=12, test=4, compositional=4, seed=4), tmp_path / "c")
    assert (other / "training_label.json").read_text() != a


def test_reader_errors_name_the_file(tmp_path, tiny_set):
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"id\": 3}]")
    with pytest.raises(DlabError, match="bad.json.*entry 0"):
        read_labels(bad)
    bad.write_text("{not json")
    with pytest.raises(DlabError, match="not valid JSON"):
        read_labels(bad)
    split = read_split(tiny_set, "testing")
    path = split.feature_dir / f"{split.ids[0]}.npy"
    keep = np.load(path)
    try:
        np.save(path, keep[:40])
        with pytest.raises(DlabError, match=r"float64 \(40, 4096\); expected float64 \(80, 4096\)"):
            load_features(split.feature_dir, split.ids)
        path.unlink()
        with pytest.raises(DlabError, match="has no feature file"):
            read_split(tiny_set, "testing")
    finally:
        np.save(path, keep)


def test_vocabulary_min_count_and_specials():
    vocab = Vocabulary.build(["A man is cooking.", "a man runs", "a dog"], min_count=2)
    assert vocab.words == ("<PAD>", "<BOS>", "<EOS>", "<UNK>", "a", "man")
    ids = vocab.encode("A dog, a man", max_len=10)
    assert ids == [1, 4, 3, 4, 5, 2]
    assert vocab.decode(ids[1:] + [6]) == "a <UNK> a man"
    assert tokenize("It's a Man.") == ["it's", "a", "man"]
    with pytest.raises(DlabError, match="min_count 0"):
        Vocabulary.build(["a"], min_count=0)


def test_parse_caption_pairs_digits_with_their_motions():
    assert parse_caption("the digit 7 moves left and right while a three sits still") == \
        [(7, "horizontal"), (3, "still")]
    assert named_right("a 3 stays still and digit 7 goes left", [(7, "horizontal"), (3, "still")])
    assert not named_right("digit 7 moves up and down", [(7, "horizontal")])
    assert not named_right("digit 7 moves left", [(7, "horizontal"), (2, "still")])
    assert len(MOTIONS) == 5


def test_every_generated_reference_parses_as_named_right():
    from dlab.captioning.synth import _sample_items, captions

    rng = np.random.default_rng(0)
    spec = SynthSpec(two_digit_fraction=0.5)
    wrong, total = [], 0
    for i in range(400):
        items = _sample_items(rng, spec, compositional=i % 2 == 1)
        for caption in captions(rng, items, 20):
            total += 1
            if not named_right(caption, items):
                wrong.append((caption, items))
    assert total > 7000 and wrong == []


def test_class_evidence_says_which_digit_is_where():
    """Feature map 2: each digit's template matches best at its own place (glyph digits: the
    templates are the glyphs themselves); map 1 has no such evidence and a different width."""
    from dlab.captioning.synth import (CANVAS, FeatureMap, class_templates, glyph_digits,
                                       pool_2x2)

    digits = glyph_digits()
    fmap = FeatureMap.seeded(1234, class_templates(digits))
    frame = np.zeros((1, CANVAS, CANVAS), np.uint8)
    frame[0, 0:28, 0:28] = digits[3][0]  # top left
    frame[0, 36:64, 36:64] = digits[8][0]  # bottom right
    pool2 = pool_2x2(frame.astype(np.float32) / 255.0)
    ev = fmap.evidence(pool2)[0]
    cells = ev[:160].reshape(4, 4, 10)
    assert cells[0, 0].argmax() == 3 and cells[3, 3].argmax() == 8
    assert set(np.argsort(-ev[160:])[:2]) == {3, 8}
    assert abs(cells[1:3, 1:3]).max() < cells[0, 0, 3]  # the empty middle matches less
    assert fmap.what.shape == (362, 2048) and FeatureMap.seeded(1234).what.shape == (192, 2048)
    np.testing.assert_array_equal(fmap.where, FeatureMap.seeded(1234).where)
    with pytest.raises(DlabError, match="feature_map = 3; expected 1 or 2"):
        SynthSpec(feature_map=3).validate()
