"""Self-critical sequence training (`train.scst_epochs`): sampling with gradients, the reward
going up, the learning-rate phases, and a run killed in its self-critical epochs resuming to
the straight run's numbers."""

from __future__ import annotations

import pytest
import torch

from dlab.captioning import decode
from dlab.captioning.config import CaptionModelConfig
from dlab.captioning.model import S2VT
from dlab.errors import DlabError
from dlab.tasks import get_task
from dlab.tasks.base import OpenContext

from tests.captioning.test_task import _StopAfter, _cfg, tiny_root  # noqa: F401 (fixture)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_sampled_log_probabilities_are_the_teacher_forced_ones(cell):
    torch.manual_seed(0)
    model = S2VT(12, 10, CaptionModelConfig(cell=cell, hidden=16, embed=8, tags=3)).eval()
    model.set_tag_words([4, 5, 6])
    feats = torch.rand(3, 5, 10)
    g = torch.Generator().manual_seed(1)
    ids, logp = decode.sample(model, model.encode(feats), 4, 6, g)
    assert ids.shape[0] == 12 and ids.shape[1] <= 7
    for row in ids.tolist():  # <EOS> ends every caption (forced after 6 words), 0 after it
        end = row.index(decode.EOS)
        assert all(w != 0 for w in row[:end]) and all(w == 0 for w in row[end + 1:])
    # the same captions teacher-forced: the same summed log-probabilities
    owners = torch.arange(3).repeat_interleave(4)
    inputs = torch.cat([torch.full((12, 1), decode.BOS), ids[:, :-1]], 1)
    with torch.no_grad():
        logits = model(feats, inputs, owners=owners)
    logits[:, :, [decode.PAD, decode.BOS]] = float("-inf")  # never sampled
    lp = torch.log_softmax(logits, 2).gather(2, ids[:, :, None]).squeeze(2)
    assert torch.allclose(torch.where(ids != 0, lp, 0).sum(1), logp.detach(), atol=1e-5)
    logp.sum().backward()  # and they carry gradients to the weights
    assert model.out.weight.grad.abs().sum() > 0


def test_self_critical_steps_raise_the_reward(tiny_root):
    task = get_task("caption")
    cfg = _cfg(tiny_root, epochs=1, scst_epochs=1, scst_lr=1e-2, scst_samples=4)
    s = task.open(cfg, OpenContext(run_dir=tiny_root.parent, device=torch.device("cpu"),
                                   data_dir=None))
    assert s.lr() == pytest.approx(1e-2)  # the self-critical learning rate from step 0
    videos = torch.arange(8)
    rewards = [float(s._scst_step(videos)["scst_reward"]) / 8 for _ in range(40)]
    assert sum(rewards[-5:]) > 1.5 * sum(rewards[:5])  # measured: 0.116 -> 0.225


def test_scst_after_cross_entropy_resumes_as_a_straight_run(tiny_root, tmp_path):
    from dlab.torch_engine.trainer import fit

    task = get_task("caption")
    cfg = _cfg(tiny_root, epochs=3, scst_epochs=2, scst_samples=3)
    run = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):  # killed after the first self-critical epoch
        fit(task, cfg, run, progress=False, callbacks=[_StopAfter(2)])
    resumed = fit(task, cfg, run, progress=False)
    straight = fit(task, cfg, tmp_path / "s", progress=False)
    assert resumed["final"]["scst_reward"] == pytest.approx(straight["final"]["scst_reward"],
                                                            rel=1e-6)
    assert resumed["final"]["cider_d"] == pytest.approx(straight["final"]["cider_d"])
    import json

    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [("loss" in r, "scst_reward" in r) for r in rows] == [(True, False), (False, True),
                                                                 (False, True)]
    assert rows[0]["lr"] == pytest.approx(cfg.optim.lr)
    assert rows[1]["lr"] == rows[2]["lr"] == pytest.approx(cfg.train.scst_lr)


def test_scst_config_errors_name_the_key():
    task = get_task("caption")
    with pytest.raises(DlabError, match=r"train.scst_epochs = 5; expected 0..train.epochs \(4\)"):
        task.resolve({"train": {"epochs": 4, "scst_epochs": 5}})
    with pytest.raises(DlabError, match="train.scst_samples = 1"):
        task.resolve({"train": {"scst_samples": 1}})
    with pytest.raises(DlabError, match="train.scst_lr = 0"):
        task.resolve({"train": {"scst_lr": 0}})
