"""Task "caption" end to end on a tiny synthetic set: config validation, training through the
shared trainer (resume included), predict and score through the CLI."""

from __future__ import annotations

import json

import pytest

from dlab.captioning.synth import SynthSpec, generate
from dlab.cli import main
from dlab.errors import DlabError
from dlab.tasks import get_task

TINY = {"model": {"hidden": 24, "embed": 12}, "train": {"epochs": 2, "batch_size": 4,
                                                        "captions_per_video": 2, "examples": 2,
                                                        "scst_epochs": 0}}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(SynthSpec(train=16, test=4, compositional=4, seed=2),
                    tmp_path_factory.mktemp("cap") / "set")


def _cfg(root, **train):
    data = json.loads(json.dumps(TINY))
    data["data"] = {"root": str(root), "frame_stride": 8}
    data["train"].update(train)
    return get_task("caption").resolve(data)


def test_config_errors_name_the_key():
    task = get_task("caption")
    with pytest.raises(DlabError, match="train.ss_schedule"):
        task.resolve({"train": {"ss_schedule": "sometimes"}})
    with pytest.raises(DlabError, match="unknown config key 'model.layers'"):
        task.resolve({"model": {"layers": 2}})
    assert task.resolve({"task": "caption"}).hash() == task.resolve({}).hash()


def test_train_resume_predict_and_score(tiny_root, tmp_path, capsys):
    from dlab.torch_engine.trainer import fit

    task = get_task("caption")
    cfg = _cfg(tiny_root, epochs=2)
    # a 2-epoch run killed after epoch 1: resume it from its last checkpoint
    run = tmp_path / "r2"
    with pytest.raises(KeyboardInterrupt):
        fit(task, cfg, run, progress=False, callbacks=[_StopAfter(1)])
    assert not (run / "result.json").exists()
    resumed = fit(task, cfg, run, progress=False)
    straight = fit(task, cfg, tmp_path / "r3", progress=False)
    assert resumed["final"]["loss"] == pytest.approx(straight["final"]["loss"], rel=1e-6)
    assert resumed["final"]["cider_d"] == pytest.approx(straight["final"]["cider_d"])
    for key in ("greedy_cider_d", "beam_cider_d", "other_cider_d", "const_cider_d",
                "const_bleu1_course"):
        assert resumed["final"][key] is not None
    assert (run / "attention.png").is_file() and list((run / "examples").glob("*.png"))
    # each example says what the digit slots read: "<digit> <motion>, ..."
    from dlab.captioning.parse import MOTIONS
    shown = [json.loads(p.read_text()) for p in (run / "examples").glob("*.json")]
    assert len(shown) == 2
    for example in shown:
        for item in filter(None, example["slots"].split(", ")):
            digit, motion = item.split()
            assert digit in "0123456789" and motion in MOTIONS
    assert get_task("caption").report_section(run).count("|") > 20

    out = tmp_path / "out.txt"
    assert main(["caption", "predict", str(run), str(tiny_root / "testing_data"), str(out),
                 "--decode", "greedy"]) == 0
    lines = out.read_text().splitlines()
    ids = (tiny_root / "testing_data" / "id.txt").read_text().split()
    assert [line.split(",", 1)[0] for line in lines] == ids
    capsys.readouterr()
    assert main(["caption", "score", str(out), "--labels",
                 str(tiny_root / "testing_label.json")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("BLEU@1 (course): 0.") and len(printed[0].split(".")[-1]) >= 6
    assert any(p.startswith("CIDEr-D: ") for p in printed)
    assert any("constant caption" in p for p in printed)
    assert any(p.startswith("distinct captions: ") for p in printed)


def test_tags_checklist_and_temporal_augmentation_train_resume_and_predict(tiny_root, tmp_path):
    import torch

    from dlab.captioning.predict import load_captioner
    from dlab.torch_engine.trainer import fit

    task = get_task("caption")
    cfg = _cfg(tiny_root, epochs=2, temporal_jitter=True, reverse_prob=0.5)
    cfg = task.resolve({**cfg.to_dict(), "model": {**cfg.to_dict()["model"], "tags": 4,
                                                    "tag_checklist": True}})
    run = tmp_path / "tagged"
    with pytest.raises(KeyboardInterrupt):
        fit(task, cfg, run, progress=False, callbacks=[_StopAfter(1)])
    resumed = fit(task, cfg, run, progress=False)
    straight = fit(task, cfg, tmp_path / "tagged2", progress=False)
    assert resumed["final"]["loss"] == pytest.approx(straight["final"]["loss"], rel=1e-6)
    model, _, vocab = load_captioner(run / "checkpoints" / "last", torch.device("cpu"))
    # the checklist's word -> tag table travels in the checkpoint
    assert model.word_tags.shape == (len(vocab), 4) and float(model.word_tags.sum()) == 4
    out = tmp_path / "out.txt"
    assert main(["caption", "predict", str(run), str(tiny_root / "testing_data"), str(out),
                 "--decode", "beam"]) == 0
    assert out.read_text().count("\n") == 4
    # model.tags is at most: a tiny set has fewer tag words; none at all is an error
    many = task.resolve({**cfg.to_dict(), "model": {**cfg.to_dict()["model"], "tags": 500}})
    fit(task, many, tmp_path / "many", progress=False)
    model, _, _ = load_captioner(tmp_path / "many" / "checkpoints" / "last", torch.device("cpu"))
    assert 4 < model.tags < 500
    with pytest.raises(DlabError, match="model.tags = 4: no word"):
        fit(task, task.resolve({**cfg.to_dict(), "model": {"tags": 4, "tag_max_share": 0.01}}),
            tmp_path / "x", progress=False)


def test_score_with_foreign_ids_is_a_one_line_error(tiny_root, tmp_path, capsys):
    out = tmp_path / "foreign.txt"
    out.write_text("nope.avi,a digit\n")
    assert main(["caption", "score", str(out), "--labels",
                 str(tiny_root / "testing_label.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no id of the prediction file" in err[0]


class _StopAfter:
    def __init__(self, epochs):
        self.epochs = epochs

    def on_fit_start(self, run):
        pass

    def on_epoch_end(self, run, row):
        if row["epoch"] >= self.epochs:
            raise KeyboardInterrupt

    def on_fit_end(self, run, result):
        pass


def test_synth_cli_writes_the_layout(tmp_path, capsys):
    assert main(["caption", "synth", str(tmp_path / "s"), "--train", "3", "--test", "2",
                 "--compositional", "2", "--quiet"]) == 0
    assert (tmp_path / "s" / "testing_data" / "id.txt").read_text().count("\n") == 2
    assert main(["caption", "synth", str(tmp_path / "s"), "--quiet"]) == 2


def test_beam_of_width_one_is_greedy_and_wider_beams_score_no_worse():
    import torch

    from dlab.captioning import decode
    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT

    torch.manual_seed(0)
    model = S2VT(12, 8, CaptionModelConfig(hidden=16, embed=8, dropout=0.0)).eval()
    feats = torch.rand(6, 5, 8) * 3
    greedy, _ = decode.greedy(model, feats, 7)
    assert decode.beam(model, feats, 1, 7, 0.0) == greedy

    def logp(f, seq):
        out = model(f[None], torch.tensor([[1] + seq]))
        lp = torch.log_softmax(out[0], 1)
        return float(sum(lp[i, w] for i, w in enumerate(seq + [2])))

    for i in range(6):
        wide = decode.beam(model, feats, 4, 7, 0.0)[i]
        if len(wide) < 7 and len(greedy[i]) < 7:
            assert logp(feats[i], wide) >= logp(feats[i], greedy[i]) - 1e-5


def test_study_file_validates():
    from dlab.studies.spec import load_study
    from pathlib import Path

    import dlab

    study = load_study(Path(dlab.__file__).parent / "studies" / "builtin" / "clemson-hw2.toml")
    assert [q.key for q in study.questions] == ["captioner", "tags", "slots", "attention",
                                                      "sampling", "self-critical"]


def test_frame_differences_feed_the_encoder_the_motion():
    import torch

    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT

    feats = torch.rand(3, 6, 8)
    feats[0] = feats[0, :1]  # video 0 is still: the same features in every frame
    for mode, width in (("none", 8), ("concat", 16), ("only", 8)):
        model = S2VT(10, 8, CaptionModelConfig(hidden=16, embed=8, frame_diff=mode, diff_lag=2))
        x = model.inputs(feats)
        assert x.shape == (3, 6, width) and model.proj[0].in_features == width
        if mode != "none":
            diff = x[..., -8:]
            assert torch.equal(diff[:, :2], torch.zeros(3, 2, 8))  # no frame 2 back yet
            assert torch.allclose(diff[1, 2:], feats[1, 2:] - feats[1, :-2])  # std is 1, mean 0
            assert float(diff[0].abs().max()) == 0 and float(diff[1].abs().max()) > 0
    task = get_task("caption")
    with pytest.raises(DlabError, match="model.frame_diff"):
        task.resolve({"model": {"frame_diff": "both"}})
    with pytest.raises(DlabError, match="model.diff_lag = 10; expected 1..9"):
        task.resolve({"model": {"diff_lag": 10}, "data": {"frame_stride": 8}})
    assert task.resolve({"model": {"diff_lag": 10, "frame_diff": "none"},
                         "data": {"frame_stride": 8}}).model.diff_lag == 10


def test_video_context_puts_the_frame_mean_in_every_context():
    import torch

    from dlab.captioning.config import CaptionModelConfig
    from dlab.captioning.model import S2VT

    torch.manual_seed(0)
    model = S2VT(10, 8, CaptionModelConfig(hidden=16, embed=8, video_context="mean",
                                           tags=0, slots=False)).eval()
    feats = torch.rand(2, 5, 8)
    enc, keys, state = model.encode(feats)
    assert enc.shape == (2, 5, 32) and keys.shape == (2, 5, 16)
    mean = model.proj(model.inputs(feats)).mean(1)
    assert torch.allclose(enc[:, :, 16:], mean[:, None].expand(2, 5, 16))
    logits, _, weights = model.step(torch.tensor([1, 1]), state, enc, keys)
    assert logits.shape == (2, 10) and torch.allclose(weights.sum(1), torch.ones(2))
    task = get_task("caption")
    with pytest.raises(DlabError, match="model.video_context = 'max'"):
        task.resolve({"model": {"video_context": "max"}})
    with pytest.raises(DlabError, match="needs model.attention = true"):
        task.resolve({"model": {"video_context": "mean", "attention": False}})


def test_figures_show_single_and_two_digit_videos_in_turn():
    from types import SimpleNamespace

    from dlab.captioning.session import CaptionSession

    ids = ["a", "b", "c", "d", "e"]
    truth = {"a": [[1, "still"]], "b": [[2, "still"]], "c": [[3, "still"], [4, "still"]],
             "d": [[5, "still"]], "e": [[6, "still"], [7, "still"]]}
    fake = SimpleNamespace(info_json={"truth": truth},
                           val=SimpleNamespace(split=SimpleNamespace(ids=ids)))
    assert CaptionSession._example_indices(fake, 4) == [0, 2, 1, 4]
    assert CaptionSession._example_indices(fake, 9) == [0, 2, 1, 4, 3]
    fake.info_json = None  # a course set: the first n
    assert CaptionSession._example_indices(fake, 3) == [0, 1, 2]
