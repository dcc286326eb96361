"""GaTech HW2 part 2 on tiny CIFAR-10 slices: the convnet's shape, size and padding, its bad
input, airnet's whitening layer, and the course's files after a short run (iteration curves,
the log whose last line is the test accuracy, predictions.csv)."""

import csv

import pytest
import torch

from dlab.config import resolve
from dlab.errors import DlabError
from dlab.models.convnet import ConvNetConfig
from dlab.runs import read_jsonl
from dlab.torch_engine.models import build_model, count_params
from dlab.torch_engine.train import train_run


def test_course_convnet_output_shape_and_parameter_count():
    model = build_model(ConvNetConfig(), (3, 32, 32), 10)
    assert model(torch.zeros(5, 3, 32, 32)).shape == (5, 10)
    # conv 3x7x7x32 + 32 biases, affine 32*16*16 -> 10 + 10 biases
    expected = 3 * 49 * 32 + 32 + 32 * 16 * 16 * 10 + 10
    assert count_params(model) == expected == ConvNetConfig().parameters()


@pytest.mark.parametrize("kernel", [1, 3, 5, 7, 9])
def test_same_padding_keeps_the_size_for_odd_filters(kernel):
    model = build_model(ConvNetConfig(kernel=kernel, filters=(8, 4)), (3, 32, 32), 10)
    conv1 = model.conv1
    assert conv1(torch.zeros(2, 3, 32, 32)).shape == (2, 8, 32, 32)
    assert count_params(model) == ConvNetConfig(kernel=kernel, filters=(8, 4)).parameters()


def test_even_filter_size_is_a_one_line_error():
    with pytest.raises(DlabError, match=r"model.kernel = 4; expected an odd filter size"):
        resolve({"data": {"dataset": "cifar10"}, "model": {"name": "convnet", "kernel": 4}})


def test_filter_that_does_not_fit_is_a_one_line_error():
    with pytest.raises(DlabError, match=r"model.kernel = 35 .*at most 32 pixels"):
        resolve({"model": {"name": "convnet", "kernel": 35}})
    # three blocks of 32 -> 16 -> 8: a 9x9 filter does not fit the third block (8 wide)
    with pytest.raises(DlabError, match=r"model.kernel = 9 with 3 conv block\(s\).*at most 8"):
        resolve({"model": {"name": "convnet", "kernel": 9, "filters": [4, 4, 4]}})
    # six 2x2 pools leave no pixel of a 32x32 image, whatever the filter size
    with pytest.raises(DlabError, match=r"model.filters = \[4, 4, 4, 4, 4, 4\]: 6 conv blocks; "
                       r"expected at most 5"):
        resolve({"model": {"name": "convnet", "kernel": 1, "filters": [4] * 6}})
    cfg = resolve({"model": {"name": "convnet", "kernel": 1, "filters": [4] * 5}})
    assert build_model(cfg.model, (3, 32, 32), 10)(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(DlabError, match=r"5 conv blocks do not fit images of 28x28; expected at "
                       r"most 4"):
        build_model(cfg.model, (1, 28, 28), 10)
    # MNIST's 28x28 -> 14: a 15x15 filter fits CIFAR-10's second block (16 wide), not MNIST's
    cfg = resolve({"model": {"name": "convnet", "kernel": 15, "filters": [4, 4]}})
    with pytest.raises(DlabError, match=r"does not fit images of 28x28.*at most 14 pixels"):
        build_model(cfg.model, (1, 28, 28), 10)


def test_deliverables_need_iteration_evaluation():
    with pytest.raises(DlabError, match=r"train.deliverables = 'convnet' needs train.eval_every"):
        resolve({"train": {"deliverables": "convnet"}})
    with pytest.raises(DlabError, match=r"train.deliverables = 'a/b'; expected a file-name"):
        resolve({"train": {"deliverables": "a/b", "eval_every": 5}})


def test_airnet_whitening_decorrelates_patches():
    from dlab.models.airnet import AirNetConfig

    model = build_model(AirNetConfig(widths=(8, 8, 8)), (3, 32, 32), 10)
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.8, 0.2], [0.0, 0.6, 0.5], [0.0, 0.0, 0.3]])
    x = torch.einsum("dc,nchw->ndhw", mix, torch.randn(200, 3, 32, 32, generator=g))
    model.data_init(x)
    whiten = model[0]
    assert not whiten.weight.requires_grad and whiten.out_channels == 24
    out = torch.nn.functional.conv2d(x, whiten.weight[:12])  # the + half: the whitened basis
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    cov = torch.cov(flat)
    assert torch.allclose(cov, torch.diag(cov.diagonal()), atol=0.05)
    assert model(x[:4]).shape == (4, 10)


TINY = {"data": {"dataset": "cifar10", "validation": "holdout", "val_size": 1000,
                 "train_limit": 512, "val_limit": 200},
        "model": {"name": "convnet", "filters": [8]},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": 2, "batch_size": 64, "eval_every": 3, "deliverables": "convnet"}}


@pytest.fixture(scope="module")
def hw2_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("hw2")
    result = train_run(resolve(TINY), run, data_dir=data_dir, device="cpu", progress=False)
    return run, result


def test_the_course_files_exist_and_are_well_formed(hw2_run):
    run, result = hw2_run
    for name in ("convnet_lossvstrain.png", "convnet_valaccuracy.png", "convnet_gridfilt.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = (run / "convnet.log").read_text().splitlines()[-1]
    assert last.startswith("test accuracy: ")
    assert float(last.split()[2]) == pytest.approx(result["final"]["test_acc"], abs=1e-4)
    with (run / "predictions.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image_id", "label"]
    assert len(rows) == 1 + 200  # the test set's limited count (data.val_limit)
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == sorted(ids) and len(set(ids)) == 200 and max(ids) < 10000
    assert {int(r[1]) for r in rows[1:]} <= set(range(10))


def test_steps_hold_every_iteration_and_periodic_validation(hw2_run):
    run, result = hw2_run
    steps = read_jsonl(run / "steps.jsonl")
    assert [r["step"] for r in steps] == list(range(1, 2 * 8 + 1))  # 512 / 64 = 8 per epoch
    assert all(r["loss"] > 0 for r in steps)
    evaluated = [r["step"] for r in steps if "val_acc" in r]
    assert evaluated == [3, 6, 9, 12, 15]
    # the epoch's mean loss is the mean of its steps' losses (equal batches)
    epoch1 = read_jsonl(run / "metrics.jsonl")[0]["loss"]
    assert epoch1 == pytest.approx(sum(r["loss"] for r in steps[:8]) / 8, rel=1e-5)
    assert 0 <= result["final"]["test_acc"] <= 1 and result["final"]["val_acc"] is not None


class _Killed(Exception):
    pass


def test_resume_keeps_the_iteration_record(hw2_run, tmp_path, data_dir):
    """A run interrupted after epoch 1 and resumed records the same steps as the whole run."""
    run, result = hw2_run
    partial = tmp_path / "partial"

    def stop(row):
        raise _Killed

    with pytest.raises(_Killed):
        train_run(resolve(TINY), partial, data_dir=data_dir, device="cpu", progress=False,
                  on_epoch=stop)
    resumed = train_run(resolve(TINY), partial, data_dir=data_dir, device="cpu", progress=False)
    assert read_jsonl(partial / "steps.jsonl") == read_jsonl(run / "steps.jsonl")
    assert resumed["final"]["test_acc"] == result["final"]["test_acc"]


def test_default_runs_are_unchanged_by_the_options(tmp_path, data_dir):
    """eval_every = 0 (the default): no steps.jsonl, no extra session state."""
    cfg = resolve({"data": {"dataset": "cifar10", "train_limit": 256, "val_limit": 100},
                   "model": {"name": "convnet", "filters": [4]},
                   "train": {"epochs": 1, "batch_size": 64}})
    result = train_run(cfg, tmp_path / "r", data_dir=data_dir, device="cpu", progress=False)
    assert not (tmp_path / "r" / "steps.jsonl").exists()
    assert "test_acc" not in result["final"]  # validation is the test set here


def test_prediction_path_in_a_missing_folder_is_an_error_before_work(hw2_run, tmp_path, capsys):
    from dlab.cli import main

    run, _ = hw2_run
    out = tmp_path / "missing" / "p.csv"
    code = main(["predict", str(run / "checkpoints" / "best"), "--out", str(out),
                 "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "missing" in err[0] and "folder" in err[0]


def test_lookahead_pulls_the_weights_onto_their_average():
    """Every K steps the average moves toward the weights by 1 − d and the weights become it;
    after the last step the weights are the average."""
    from dlab.torch_engine.lookahead import Lookahead

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    la = Lookahead(model, every=2, total_steps=6)
    assert la.decay(0) == 0 and la.decay(6) == pytest.approx(0.95 ** 2)
    seen = []
    for step in range(1, 7):
        with torch.no_grad():
            model.weight.add_(1.0)  # an "optimizer step" of +1
        before = model.weight[0, 0].item()
        la.after_step()
        seen.append((before, model.weight[0, 0].item()))
    avg = 0.0
    for step, (before, after) in enumerate(seen, 1):
        if step == 6:
            assert after == pytest.approx(avg)  # the last step: the weights become the average
        elif step % 2 == 0:
            d = la.decay(step)
            avg = d * avg + (1 - d) * before
            assert after == pytest.approx(avg)
        else:
            assert after == before  # in between the weights move freely


def test_a_resumed_lookahead_run_matches_the_whole_run(tmp_path, data_dir):
    """The average and its step count are checkpointed: a run stopped after epoch 1 and resumed
    ends with the same weights as the whole run (airnet: its BN statistics are averaged too).
    With airbench's other epoch-dependent details on: alternating flips (the resumed epoch
    flips the other way) and the whitening bias frozen after epoch 1."""
    from dlab.torch_engine import checkpoint as ckpt

    cfg = resolve({"data": {"dataset": "cifar10", "train_limit": 256, "val_limit": 100,
                            "augment": {"crop_padding": 2, "crop_fill": "reflect", "flip": True,
                                        "flip_mode": "alternate"}},
                   "model": {"name": "airnet", "widths": [8, 8], "whiten_bias_epochs": 1},
                   "optim": {"lr": 0.05, "momentum": 0.9, "lookahead": 3},
                   "train": {"epochs": 2, "batch_size": 64}})
    whole, partial = tmp_path / "whole", tmp_path / "partial"
    train_run(cfg, whole, data_dir=data_dir, device="cpu", progress=False)

    def stop(row):
        raise _Killed

    with pytest.raises(_Killed):
        train_run(cfg, partial, data_dir=data_dir, device="cpu", progress=False, on_epoch=stop)
    train_run(cfg, partial, data_dir=data_dir, device="cpu", progress=False)
    a = ckpt.read_checkpoint(whole / "checkpoints" / "last")[1]
    b = ckpt.read_checkpoint(partial / "checkpoints" / "last")[1]
    assert a.keys() == b.keys() and any(k.startswith("extra.session.lookahead.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_negative_lookahead_is_a_one_line_error():
    with pytest.raises(DlabError, match=r"optim.lookahead = -1; expected steps >= 0"):
        resolve({"optim": {"lookahead": -1}})


def test_norm_lr_scale_puts_batch_norm_in_its_own_group():
    """optim.norm_lr_scale = s: batch norm's parameters at lr × s and weight decay ÷ s (the same
    decay per step); every other parameter, frozen ones included, in the first group. At 1 (the
    default) one group holds every parameter, as earlier checkpoints have it."""
    from dlab.models.airnet import AirNetConfig
    from dlab.torch_engine.optim import build_optimizer, param_groups

    model = build_model(AirNetConfig(widths=(8, 8)), (3, 32, 32), 10)
    cfg = resolve({"optim": {"lr": 0.5, "weight_decay": 0.01, "norm_lr_scale": 64}}).optim
    groups = build_optimizer(cfg, param_groups(model, cfg)).param_groups
    norms = [p for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
             for p in m.parameters()]
    assert [id(p) for p in groups[1]["params"]] == [id(p) for p in norms] and len(norms) == 8
    assert groups[1]["lr"] == 0.5 * 64 and groups[1]["weight_decay"] == pytest.approx(0.01 / 64)
    assert groups[0]["lr"] == 0.5 and len(groups[0]["params"]) + 8 == len(list(model.parameters()))
    one = param_groups(model, resolve({}).optim)
    assert len(one) == 1 and len(one[0]["params"]) == len(list(model.parameters()))
    with pytest.raises(DlabError, match=r"optim.norm_lr_scale = 0(\.0)?; expected > 0"):
        resolve({"optim": {"norm_lr_scale": 0}})


def test_airnet_dirac_convs_start_as_the_identity():
    from dlab.models.airnet import AirNetConfig

    model = build_model(AirNetConfig(widths=(32, 32), dirac=True), (3, 32, 32), 10)
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 4
    for conv in convs:
        x = torch.randn(2, conv.in_channels, 8, 8)
        y = torch.nn.functional.conv2d(x, conv.weight, padding=1)
        assert torch.allclose(y[:, :conv.in_channels], x)  # the first in-channels pass through
        assert y[:, conv.in_channels:].abs().sum() > 0 or conv.in_channels == conv.out_channels
    plain = build_model(AirNetConfig(widths=(32, 32)), (3, 32, 32), 10)
    first = next(m for m in plain if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    x = torch.randn(2, first.in_channels, 8, 8)
    y = torch.nn.functional.conv2d(x, first.weight, padding=1)
    assert not torch.allclose(y[:, :first.in_channels], x)  # off by default


def test_triangle_schedule_is_airbenchs():
    """0.2 at the start, 1 at 23% of the steps, 0.07 at the end, linear in between."""
    from dlab.torch_engine.optim import lr_factor

    f = lr_factor(resolve({"optim": {"lr": 1.0, "schedule": "triangle"}}).optim, 100, 1)
    assert f(0) == pytest.approx(0.2) and f(23) == pytest.approx(1.0)
    assert f(100) == pytest.approx(0.07) and f(11) == pytest.approx(0.2 + 0.8 * 11 / 23)
    assert f(50) > f(60) > f(99)


def test_alternating_flips_flip_each_image_every_other_epoch():
    """flip_mode = "alternate": epoch 0 flips each image at random (drawn from the run's seed),
    then every image flips the other way at each epoch, whatever the batch order."""
    from dlab.config import AugmentConfig, DataConfig
    from dlab.data import ArrayDataset
    from dlab.torch_engine.batches import DeviceData

    n = 200
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8).numpy()
    ds = ArrayDataset("toy", "train", images, torch.arange(n).numpy(), ("a",))

    def flipped(seed: int, epoch: int) -> torch.Tensor:
        data = DeviceData(ds, DataConfig(mean=(0.0,), std=(1.0,)), torch.device("cpu"))
        data.set_augmentation(AugmentConfig(flip=True, flip_mode="alternate"), seed)
        gen = torch.Generator().manual_seed(epoch)  # a different batch order each epoch
        (x, ids), = data.batches(n, gen, epoch)
        plain = data.images[ids].float() / 255
        out = (x == plain.flip(-1)).flatten(1).all(1)
        assert bool((out ^ (x == plain).flatten(1).all(1)).all())  # flipped or not, no third
        return out[ids.argsort()]  # by image

    first = flipped(3, 0)
    assert 70 < int(first.sum()) < 130
    assert torch.equal(flipped(3, 1), ~first) and torch.equal(flipped(3, 2), first)
    assert torch.equal(flipped(3, 5), ~first)
    assert not torch.equal(flipped(4, 0), first)  # another seed, other first flips


def test_whitening_bias_trains_for_its_epochs_then_stays(tmp_path, data_dir):
    """model.whiten_bias_epochs = 2: the bias starts at zero, moves in epochs 1 and 2, not in
    epoch 3 (without it: PyTorch's initialization)."""
    from dlab.torch_engine import checkpoint as ckpt

    cfg = resolve({"data": {"dataset": "cifar10", "train_limit": 128, "val_limit": 50},
                   "model": {"name": "airnet", "widths": [8], "whiten_bias_epochs": 2},
                   "optim": {"lr": 0.05, "momentum": 0.9},
                   "train": {"epochs": 3, "batch_size": 64}})
    biases = []

    def keep(row):
        tensors = ckpt.read_checkpoint(tmp_path / "run" / "checkpoints" / "last")[1]
        biases.append(next(v for k, v in tensors.items() if k.endswith("0.bias")).clone())

    train_run(cfg, tmp_path / "run", data_dir=data_dir, device="cpu", progress=False,
              on_epoch=keep)
    assert len(biases) == 3
    assert not torch.equal(biases[0], biases[1]) and torch.equal(biases[1], biases[2])
    model = build_model(cfg.model, (3, 32, 32), 10)
    assert model[0].bias.eq(0).all() and biases[0].ne(0).any()
    assert build_model(resolve({"model": {"name": "airnet", "widths": [8]}}).model,
                       (3, 32, 32), 10)[0].bias.ne(0).all()
    model.start_epoch(0)
    assert model[0].bias.requires_grad and model[0].bias.shape == biases[0].shape
    model.start_epoch(2)
    assert not model[0].bias.requires_grad


def test_bad_airbench_details_are_one_line_errors():
    cases = [({"data": {"augment": {"flip": True, "flip_mode": "often"}}},
              r"data.augment.flip_mode = 'often'; expected one of: 'random', 'alternate'"),
             ({"data": {"augment": {"crop_fill": "edge"}}},
              r"data.augment.crop_fill = 'edge'; expected one of: 'zero', 'reflect'"),
             ({"data": {"dataset": "cifar10",
                        "augment": {"crop_padding": 32, "crop_fill": "reflect"}}},
              r"crop_padding = 32; expected at most 31 with crop_fill = 'reflect'"),
             ({"model": {"name": "airnet", "whiten_bias_epochs": -1}},
              r"model.whiten_bias_epochs = -1; expected >= 0"),
             ({"model": {"name": "airnet", "whiten_patch": 0, "whiten_bias_epochs": 3}},
              r"model.whiten_bias_epochs = 3 needs the whitening layer; expected 0 with "
              r"model.whiten_patch = 0")]
    for values, message in cases:
        with pytest.raises(DlabError, match=message):
            resolve(values)
