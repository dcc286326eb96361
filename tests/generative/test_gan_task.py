"""Each GAN kind trains through the shared trainer; kill/resume equality; bad input."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dlab.errors import DlabError
from dlab.results import read_result
from dlab.runs import read_jsonl
from dlab.tasks import get_task
from dlab.torch_engine.trainer import fit


def _fit(cfg, run_dir, data_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-N FD warning at N=200
        return fit(get_task("gan"), cfg, run_dir, data_dir=data_dir, device="cpu",
                   progress=False)


@pytest.mark.parametrize("kind", ["dcgan", "wgan", "wgan-gp", "acgan"])
def test_each_kind_trains_one_epoch(kind, tmp_path, data_dir, tiny):
    cfg = tiny(kind, optim={"n_critic": 2} if kind.startswith("wgan") else {})
    result = _fit(cfg, tmp_path / "run", data_dir)
    assert result["status"] == "finished" and result["task"] == "gan"
    assert result["primary"] == {"name": "fd_dlab", "direction": "min"}
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 1 and np.isfinite(rows[0]["d_loss"]) and np.isfinite(rows[0]["g_loss"])
    assert rows[0]["eval_n"] == 200 and result["final"]["eval_n"] == 300
    assert result["final"]["fd_dlab"] > result["final"]["fd_dlab_floor"] >= 0
    if kind.startswith("wgan"):
        assert "wasserstein" in rows[0] and ("gp" in rows[0]) == (kind == "wgan-gp")
    if kind == "acgan":
        assert 0 <= result["final"]["label_acc"] <= 1
    on_disk = read_result(tmp_path / "run")
    assert on_disk["final"]["fd_dlab"] == result["final"]["fd_dlab"]
    grid = Image.open(tmp_path / "run" / "samples" / "epoch-001.png")
    assert grid.size == (8 * 30 + 2, 2 * 30 + 2)  # 16 samples, 8 per row, 28 px + 2 px gaps
    assert np.asarray(grid).std() > 0
    assert (tmp_path / "run" / "checkpoints" / "best.json").exists()
    # the report section: the final FD-dlab beside its floor, and the last grid as an image
    # link that resolves against the run directory it was given
    section = get_task("gan").report_section(tmp_path / "run")
    assert f"| 300 | {result['final']['fd_dlab']:.2f} | {result['final']['fd_dlab_floor']:.2f} |" \
        in section
    link = section.split("![final samples](")[1].split(")")[0]
    assert link.endswith("samples/epoch-001.png") and (tmp_path / "run" / "samples" /
                                                      "epoch-001.png").samefile(link)
    label = f"{100 * result['final']['label_acc']:.1f}%" if kind == "acgan" else "| – |"
    assert label in section


@pytest.mark.parametrize("kind", ["dcgan", "wgan-gp", "acgan"])
def test_bf16_precision_trains_every_kind(kind, tmp_path, data_dir, tiny):
    """train.precision = "bf16": G's and D's forward passes in bfloat16 (other losses than the
    float32 run of the same seed), losses and the gradient penalty finite, weights float32."""
    from dlab.torch_engine import checkpoint as ckpt

    over = {"optim": {"n_critic": 2}} if kind == "wgan-gp" else {}
    rows = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny(kind, train={"precision": precision}, **over)
        _fit(cfg, tmp_path / precision, data_dir)
        rows[precision] = read_jsonl(tmp_path / precision / "metrics.jsonl")[0]
    assert all(np.isfinite(rows["bf16"][k]) for k in ("d_loss", "g_loss", "fd_dlab"))
    # the pair, not d_loss alone: in WGAN-GP's d_loss the bf16 changes of the Wasserstein term
    # and of the (float32) penalty can cancel to the last bit, as on an AVX512-BF16 CPU
    assert ((rows["bf16"]["d_loss"], rows["bf16"]["g_loss"])
            != (rows["fp32"]["d_loss"], rows["fp32"]["g_loss"]))
    if kind == "wgan-gp":
        assert np.isfinite(rows["bf16"]["gp"])
    _, tensors = ckpt.read_checkpoint(tmp_path / "bf16" / "checkpoints" / "last")
    assert {v.dtype for v in ckpt.model_state(tensors, "generator").values()
            if v.is_floating_point()} == {torch.float32}
    with pytest.raises(DlabError, match="train.precision = 'fp16'; expected 'fp32' or 'bf16'"):
        tiny(kind, train={"precision": "fp16"})


def test_wgan_clips_critic_weights(tmp_path, data_dir, tiny):
    from dlab.torch_engine import checkpoint as ckpt

    _fit(tiny("wgan", optim={"clip": 0.005}), tmp_path / "run", data_dir)
    _, tensors = ckpt.read_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    weights = ckpt.model_state(tensors, "discriminator")
    conv = [v for k, v in weights.items() if k.endswith("weight") and v.ndim == 4]
    assert conv and max(float(v.abs().max()) for v in conv) <= 0.005 + 1e-9


def test_resume_gives_the_same_metrics(tmp_path, data_dir, tiny):
    cfg2 = tiny("wgan-gp", optim={"n_critic": 3}, train={"epochs": 2, "ema_decay": 0.9})
    straight = _fit(cfg2, tmp_path / "straight", data_dir)
    # "kill" after epoch 1: the same config's run dir holding epoch 1's checkpoint only
    cfg1 = tiny("wgan-gp", optim={"n_critic": 3}, train={"epochs": 1, "ema_decay": 0.9})
    _fit(cfg1, tmp_path / "killed", data_dir)
    run = tmp_path / "killed"
    (run / "result.json").unlink()
    (run / "config.json").write_text(json.dumps(cfg2.to_dict()))
    resumed = _fit(cfg2, run, data_dir)
    a, b = read_jsonl(tmp_path / "straight" / "metrics.jsonl"), read_jsonl(run / "metrics.jsonl")
    drop = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    assert [drop(r) for r in a] == [drop(r) for r in b]
    assert straight["final"]["fd_dlab"] == resumed["final"]["fd_dlab"]
    assert "ema" in straight["info"]["eval_generator"]


@pytest.mark.parametrize("section, values, message", [
    ("model", {"kind": "biggan"}, "model.kind = 'biggan'"),
    ("optim", {"n_critic": 0}, "optim.n_critic = 0"),
    ("optim", {"clip": 0.0}, "optim.clip = 0.0"),
    ("optim", {"gp_lambda": -1.0}, "optim.gp_lambda = -1.0"),
    ("data", {"image_size": 48}, "data.image_size = 48"),
    ("train", {"ema_decay": 1.0}, "train.ema_decay = 1.0"),
    ("model", {"typo": 1}, "unknown config key 'model.typo'"),
    ("model", {"embed_mode": "add"}, "model.embed_mode = 'add'"),
    ("model", {"embed_mode": "multiply", "embed_dim": 50}, "model.embed_dim = 50"),
    ("optim", {"fake_class_weight": -1.0}, "optim.fake_class_weight = -1.0"),
    ("optim", {"g_class_weight": -2.0}, "optim.g_class_weight = -2.0"),
])
def test_bad_input_is_one_line(section, values, message):
    kind = "wgan" if section == "optim" and "clip" in values else "dcgan"
    data = {"model": {"kind": kind}}
    data.setdefault(section, {}).update(values)
    with pytest.raises(DlabError) as err:
        get_task("gan").resolve(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_kind_defaults_fill_only_unset_values():
    task = get_task("gan")
    w = task.resolve({"model": {"kind": "wgan"}})
    assert (w.optim.name, w.optim.lr, w.optim.n_critic, w.optim.clip, w.train.batch_size) == \
        ("rmsprop", 5e-5, 5, 0.01, 32)
    gp = task.resolve({"model": {"kind": "wgan-gp"}, "optim": {"lr": 1e-4}})
    assert (gp.optim.lr, gp.optim.gp_lambda, gp.model.d_batch_norm) == (1e-4, 10.0, False)
    ac = task.resolve({"model": {"kind": "acgan"}})
    assert (ac.optim.lr, ac.train.batch_size, ac.model.embed_dim) == (1.5e-4, 64, 100)
    dc = task.resolve({})
    assert (dc.optim.lr, dc.optim.betas, dc.train.batch_size, dc.model.noise_dim) == \
        (2e-4, (0.5, 0.999), 128, 100)
    # the resolved config round-trips (config.json) and keys the run
    assert task.resolve(w.to_dict()) == w and task.resolve(w.to_dict()).hash() == w.hash()
    assert task.resolve({"task": "gan", "model": {"kind": "wgan"}}) == w  # a study's merged dict


@pytest.mark.parametrize("mode", ["concat", "multiply"])
def test_acgan_generator_depends_on_the_label(mode):
    import torch

    from dlab.generative.models import Generator

    g = Generator(100, 8, 1, 28, num_classes=10, embed_dim=100, embed_mode=mode).eval()
    z = torch.randn(1, 100).expand(10, 100)
    images = g(z, torch.arange(10))
    assert images.shape == (10, 1, 28, 28)
    # one noise vector, ten labels: ten different images
    assert len({tuple(x.flatten().tolist()) for x in images}) == 10


@pytest.mark.parametrize("weight, class_terms", [(1.0, 2), (0.0, 1)])
def test_fake_class_weight_0_trains_d_classifier_on_real_images_only(
        tmp_path, data_dir, tiny, monkeypatch, weight, class_terms):
    """D's loss has a class term on the real batch, and on the generated one unless
    optim.fake_class_weight = 0."""
    import torch

    from dlab.generative import losses
    from dlab.generative.session import GanSession
    from dlab.tasks.base import OpenContext

    s = GanSession(tiny("acgan", optim={"fake_class_weight": weight}),
                   OpenContext(run_dir=tmp_path, device=torch.device("cpu"), data_dir=data_dir))
    x, y = next(iter(s.batches()))
    z, c = s._noise(len(x))
    with torch.no_grad():
        fake = s.g(z, c)
    seen = []
    real_class_loss = losses.class_loss
    monkeypatch.setattr(losses, "class_loss",
                        lambda logits, labels: seen.append(labels) or real_class_loss(logits,
                                                                                      labels))
    s._d_step(x, y, fake, c)
    assert len(seen) == class_terms and seen[0] is y


@pytest.mark.parametrize("weight", [0.0, 1.0, 3.0])
def test_g_class_weight_scales_gs_class_loss(tmp_path, data_dir, tiny, monkeypatch, weight):
    import torch

    from dlab.generative import losses
    from dlab.generative.session import GanSession
    from dlab.tasks.base import OpenContext

    s = GanSession(tiny("acgan", optim={"g_class_weight": weight}),
                   OpenContext(run_dir=tmp_path, device=torch.device("cpu"), data_dir=data_dir))
    z, c = s._noise(8)
    zero = lambda out: (out * 0).sum()  # noqa: E731  (keeps the graph for backward)
    monkeypatch.setattr(losses, "bce_g", zero)
    monkeypatch.setattr(losses, "class_loss", lambda logits, labels: zero(logits) + 5.0)
    out = s._g_step(8, s.g(z, c), c)
    assert float(out["g_loss"]) == pytest.approx(weight * 5.0 * 8)
