"""Digit slots: their targets read from the references, the decoder's slot attention, and
training them."""

from __future__ import annotations

import json

import pytest

from dlab.captioning.parse import MOTIONS, slot_targets
from dlab.errors import DlabError


def test_slot_targets_take_the_pairs_most_references_name():
    refs = [["the 3 moves left", "a three goes left and right", "the 3 is still"],
            ["a 5 is still and a 7 moves up", "the 7 goes up and the 5 does not move"],
            ["the number 4", "a dog"]]  # a digit without a motion is no target
    rows = slot_targets(refs)
    assert rows[0] == [-1, -1, -1, MOTIONS.index("horizontal")] + [-1] * 6
    assert rows[1][5] == MOTIONS.index("still") and rows[1][7] == MOTIONS.index("vertical")
    assert sum(t >= 0 for t in rows[1]) == 2
    assert rows[2] == [-1] * 10


def _model(**kw):
    import torch

    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT

    torch.manual_seed(0)
    return S2VT(12, 8, CaptionModelConfig(hidden=16, embed=8, dropout=0.0, tags=0,
                                          slot_cells=4, slot_hidden=8, **kw)).eval()


def test_the_decoder_reads_the_slots_and_only_their_own_loss_trains_them():
    import torch

    from dlab.captioning.model import caption_loss

    model = _model()
    feats = torch.rand(2, 5, 8)
    enc, keys, state = model.encode(feats)
    frame_keys, slot_keys, slot_values = keys
    assert frame_keys.shape == (2, 5, 16) and slot_keys.shape == (2, 10, 32)
    assert slot_values.shape == (2, 10, 1 + len(MOTIONS))
    # the values: 1 for the digits taken as present (as many as the count head says), then
    # that times the motion probabilities (which sum to it)
    present = slot_values[..., 0]
    presence, _, count = model.slots((feats - model.feat_mean) / model.feat_std)
    assert present.sum(1).tolist() == count.argmax(1).float().tolist()
    model.slots.set_counts([1])  # every training video held one digit: one is taken, whatever
    assert model.slots.present(presence, count).sum(1).tolist() == [1.0, 1.0]
    model.slots.set_counts(list(range(11)))
    assert set(present.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(slot_values[..., 1:].sum(2), present, atol=1e-6)
    words = torch.tensor([1, 1])
    before = model.step(words, state, enc, keys)[0]
    with torch.no_grad():
        model.slots.count[1].bias[10] += 100.0  # every digit now counts as present
    enc, keys, state = model.encode(feats)
    assert not torch.allclose(model.step(words, state, enc, keys)[0], before)
    # the caption loss trains the decoder's slot attention, not the slots
    model.train()
    ids = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    caption_loss(model(feats, ids[:, :-1]), ids[:, 1:]).sum().backward()
    assert float(model.slot_query.weight.grad.abs().sum()) > 0
    assert model.slots.maps.weight.grad is None


def test_slots_learn_the_training_videos_digits_and_motions(tmp_path):
    import numpy as np
    import torch

    from dlab.captioning.course import load_features, read_split
    from dlab.captioning.model import DigitSlots, Heads, slot_loss
    from dlab.captioning.synth import SynthSpec, generate

    root = generate(SynthSpec(train=16, test=2, compositional=2, seed=3), tmp_path / "set")
    split = read_split(root, "training")
    feats = torch.from_numpy(load_features(split.feature_dir, split.ids, 8))
    z = (feats - feats.mean((0, 1))) / feats.std((0, 1)).clamp(min=1e-3)
    targets = torch.tensor(slot_targets(split.captions))
    truth = json.loads((root / "synth.json").read_text())["truth"]
    for vid, row in zip(split.ids, targets.tolist()):  # the targets are the videos' truth
        assert {(d, MOTIONS[m]) for d, m in enumerate(row) if m >= 0} == \
            {(d, m) for d, m in truth[vid]}
    torch.manual_seed(0)
    slots = DigitSlots(z.shape[2], cells=8, hidden=16, dropout=0.0)
    opt = torch.optim.Adam(slots.parameters(), 3e-3)
    first = None
    for _ in range(150):
        presence, motion, count = slots(z)
        loss = slot_loss(Heads(None, presence, motion, count), targets)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    presence, motion, count = slots(z)
    assert float(loss) < first / 10
    slots.set_counts((targets >= 0).sum(1).tolist())
    assert slots.count_seen.nonzero().flatten().tolist() == sorted(
        set((targets >= 0).sum(1).tolist()))
    assert torch.equal(presence > 0, targets >= 0)
    assert torch.equal(slots.present(presence, count), (targets >= 0).float())
    seen = targets >= 0
    assert np.mean((motion.argmax(2) == targets)[seen].numpy()) >= 0.9


def test_mixed_videos_pair_single_digit_videos_of_different_digits():
    import torch

    from dlab.captioning.model import mixed_videos

    h, v, s = (MOTIONS.index(m) for m in ("horizontal", "vertical", "still"))
    targets = torch.full((6, 10), -1)
    targets[0, 3], targets[1, 5], targets[2, 3], targets[4, 7] = h, v, s, s  # single digits
    targets[3, 1], targets[3, 2] = h, v  # a two-digit video is never mixed; 5 names none
    z = torch.randn(6, 4, 3)
    seen = set()
    for seed in range(40):
        mixed, rows = mixed_videos(z, targets, 1.0, torch.Generator().manual_seed(seed))
        assert len(mixed) == len(rows) <= 2
        for feats, row in zip(mixed, rows):
            # two single-digit videos of different digits: both digits with their motions,
            # and the larger feature of the two, frame by frame
            (i, j), = [(i, j) for i in (0, 1, 2, 4) for j in (0, 1, 2, 4) if i < j
                       and torch.equal(feats, torch.maximum(z[i], z[j]))]
            assert torch.equal(row, torch.maximum(targets[i], targets[j]))
            seen.add(tuple((row >= 0).nonzero().flatten().tolist()))
    assert seen == {(3, 5), (3, 7), (5, 7)}  # never the two 3s
    assert len(mixed_videos(z, targets, 0.0)[0]) == 0


def test_slot_config_errors_name_the_key(tmp_path):
    from dlab.captioning.synth import SynthSpec, generate
    from dlab.tasks import get_task
    from dlab.torch_engine.trainer import fit

    task = get_task("caption")
    with pytest.raises(DlabError, match="model.slots = true needs model.attention = true"):
        task.resolve({"model": {"attention": False, "tags": 0}})
    with pytest.raises(DlabError, match="model.slot_cells"):
        task.resolve({"model": {"slot_cells": 0}})
    with pytest.raises(DlabError, match="train.slot_weight = -1"):
        task.resolve({"train": {"slot_weight": -1}})
    with pytest.raises(DlabError, match="train.slot_mix = 1.5; expected 0 to 1"):
        task.resolve({"train": {"slot_mix": 1.5}})
    # captions that name no digit (as a course set's): slots are an error before any work
    root = generate(SynthSpec(train=4, test=2, compositional=2, seed=4), tmp_path / "set")
    labels = json.loads((root / "training_label.json").read_text())
    for item in labels:
        item["caption"] = ["a man is slicing a tomato"]
    (root / "training_label.json").write_text(json.dumps(labels))
    cfg = task.resolve({"data": {"root": str(root)},
                        "model": {"hidden": 8, "embed": 4, "tags": 0},
                        "train": {"epochs": 1, "scst_epochs": 0}})
    with pytest.raises(DlabError, match="model.slots = true: no training caption names a "
                                        "digit.*set model.slots = false"):
        fit(task, cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "result.json").exists()


def test_checkpoints_from_before_slots_load_and_unfit_weights_are_a_one_line_error(tmp_path):
    import torch

    from dlab.captioning.predict import load_captioner
    from dlab.captioning.synth import SynthSpec, generate
    from dlab.tasks import get_task
    from dlab.torch_engine.trainer import fit

    task = get_task("caption")
    root = generate(SynthSpec(train=8, test=2, compositional=2, seed=5), tmp_path / "set")
    cfg = task.resolve({"data": {"root": str(root), "frame_stride": 8},
                        "model": {"hidden": 8, "embed": 4, "tags": 0, "slots": False},
                        "train": {"epochs": 1, "scst_epochs": 0, "batch_size": 4}})
    fit(task, cfg, tmp_path / "run", progress=False)
    meta_path = tmp_path / "run" / "checkpoints" / "last.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["model"]["slots"]  # as a checkpoint written before slots existed
    meta_path.write_text(json.dumps(meta))
    model, _, _ = load_captioner(tmp_path / "run" / "checkpoints" / "last", torch.device("cpu"))
    assert model.slots is None
    meta["config"]["model"]["slots"] = True  # a config its weights do not fit
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DlabError, match="weights do not fit the captioner"):
        load_captioner(tmp_path / "run" / "checkpoints" / "last", torch.device("cpu"))


@pytest.mark.parametrize("count", [1, 2])
def test_decoding_that_follows_the_slots_names_what_they_say(count):
    import numpy as np
    import torch

    from dlab.captioning import decode
    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT
    from dlab.captioning.parse import parse_caption
    from dlab.captioning.synth import captions
    from dlab.captioning.text import Vocabulary

    rng = np.random.default_rng(0)
    texts = [c for d in range(10) for m in MOTIONS
             for c in captions(rng, [(d, m), ((d + 3) % 10, MOTIONS[d % 5])], 4)]
    vocab = Vocabulary.build(texts, 1)
    torch.manual_seed(count)
    model = S2VT(len(vocab), 8, CaptionModelConfig(hidden=16, embed=8, tags=0, slot_cells=4,
                                                   slot_hidden=8)).eval()
    model.set_slot_words(list(vocab.words))
    with torch.no_grad():
        model.slots.count[1].bias[count] += 50.0  # the count head says `count` digits
        # a decoder that would rather say digits, then the end, then motion words: the rules
        # must pick which digits and motions, and when it may end
        model.out.bias[model.word_digit >= 0] += 20.0
        model.out.bias[2] += 15.0
        model.out.bias[model.word_motion >= 0] += 10.0
    feats = torch.rand(6, 5, 8)
    _, keys, _ = model.encode(feats)
    values = keys[2]
    wanted = [sorted((d, MOTIONS[int(values[i, d, 1:].argmax())]) for d in range(10)
                     if values[i, d, 0] > 0.5) for i in range(len(feats))]
    assert all(len(w) == count for w in wanted)
    greedy, _ = decode.greedy(model, feats, 40, follow_slots=True)
    assert decode.beam(model, feats, 1, 40, 0.0, follow_slots=True) == greedy
    beam = decode.beam(model, feats, 3, 40, 0.7, follow_slots=True)
    for ids in greedy + beam:
        assert len(ids) < 40  # ended by itself
    for i in range(len(feats)):
        for ids in (greedy[i], beam[i]):
            assert sorted(parse_caption(vocab.decode(ids))) == wanted[i]
    # without the rules the untrained decoder says something else
    free, _ = decode.greedy(model, feats, 40)
    assert free != greedy
