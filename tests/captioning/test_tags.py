"""Semantic tags, the tag checklist and temporal augmentation of the captioner."""

from __future__ import annotations

import pytest

from dlab.captioning.text import tag_targets, tag_words
from dlab.errors import DlabError
from dlab.tasks import get_task

VIDEOS = [["the 3 moves left", "a three goes left"], ["the 5 is still"],
          ["the 3 is still", "a 3 sits still"], ["the 7 moves up"]]


def test_tag_words_skip_words_most_videos_use_and_rank_by_videos():
    # "the" is in all 4 videos; "3", "a", "is", "moves", "still" in 2 (ties alphabetically);
    # the rest in 1
    assert tag_words(VIDEOS, 6, 0.5) == ["3", "a", "is", "moves", "still", "5"]
    assert "the" in tag_words(VIDEOS, 20, 1.0)
    assert tag_targets(VIDEOS, ["3", "still"]) == [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0],
                                                   [0.0, 0.0]]


def _model(**kw):
    import torch

    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT

    torch.manual_seed(0)
    model = S2VT(12, 8, CaptionModelConfig(hidden=16, embed=8, dropout=0.0, tags=3, **kw))
    model.set_tag_words([5, 6, 7])  # tag k is vocabulary id 5 + k
    return model.eval()


def test_tag_probabilities_join_every_context_and_the_checklist_zeroes_said_tags():
    import torch

    model = _model(tag_checklist=True)
    feats = torch.rand(2, 5, 8)
    enc, keys, state, heads = model.encode_tagged(feats)
    tags = heads.tags
    assert tags.shape == (2, 3) and enc.shape == (2, 5, 16 + 3)
    assert torch.allclose(enc[:, :, -3:], torch.sigmoid(tags)[:, None].expand(2, 5, 3))
    h, said = state
    assert said.shape == (2, 3) and float(said.abs().max()) == 0
    # video 0 is fed tag 1's word (id 6), video 1 a word that is no tag (id 4)
    _, (h, said), _ = model.step(torch.tensor([6, 4]), state, enc, keys)
    assert said.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    # said stays said
    _, (h, said), _ = model.step(torch.tensor([5, 4]), (h, said), enc, keys)
    assert said.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_a_said_tag_changes_what_the_decoder_sees():
    import torch

    model = _model(tag_checklist=True)
    plain = _model(tag_checklist=False)
    plain.load_state_dict(model.state_dict())
    feats = torch.rand(1, 5, 8)

    def first_step(m, word):
        enc, keys, state = m.encode(feats)
        return m.step(torch.tensor([word]), state, enc, keys)[0]

    # tag 1's word (id 6) is hidden from the checklist decoder only
    assert not torch.allclose(first_step(model, 6), first_step(plain, 6))
    # a word that is no tag: nothing said yet, the same step
    assert torch.allclose(first_step(model, 4), first_step(plain, 4))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_of_width_one_is_greedy_with_the_checklist(cell):
    import torch

    from dlab.captioning import decode

    model = _model(tag_checklist=True, cell=cell)
    feats = torch.rand(4, 5, 8) * 3
    greedy, _ = decode.greedy(model, feats, 7)
    assert decode.beam(model, feats, 1, 7, 0.0) == greedy
    assert len(decode.beam(model, feats, 3, 7, 0.7)) == 4


def test_tag_config_errors_name_the_key():
    task = get_task("caption")
    with pytest.raises(DlabError, match="model.tags = -1"):
        task.resolve({"model": {"tags": -1}})
    with pytest.raises(DlabError, match="model.tags > 0 needs model.attention"):
        task.resolve({"model": {"tags": 4, "attention": False}})
    with pytest.raises(DlabError, match="train.reverse_prob = 2"):
        task.resolve({"train": {"reverse_prob": 2}})
