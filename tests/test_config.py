"""Config loading, overrides, validation and hashing."""

import pytest

from dlab.config import (CNNConfig, NetConfig, load_run_config, merge, parse_set_args, resolve)
from dlab.errors import DlabError


def test_defaults_are_the_assignment_defaults():
    cfg = resolve()
    assert cfg.data.dataset == "fashion-mnist" and cfg.data.validation == "test"
    assert (cfg.data.mean, cfg.data.std) == ((), ())  # each dataset's own statistics
    assert cfg.data.stats() == ((0.2860,), (0.3530,))
    assert resolve({"data": {"dataset": "cifar10"}}).data.stats()[0] == (0.4914, 0.4822, 0.4465)
    assert cfg.train.batch_size == 256 and cfg.train.eval_batch_size == 1000
    assert cfg.train.epochs == 10 and cfg.train.seed == 1
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum) == ("sgd", 0.01, 0.5)
    assert isinstance(cfg.model, NetConfig)


@pytest.mark.parametrize("name,lr", [("adam", 1e-3), ("rmsprop", 1e-2), ("adadelta", 1.0)])
def test_named_optimizer_without_lr_gets_library_default(name, lr):
    cfg = resolve({"optim": {"name": name}})
    assert cfg.optim.lr == lr and cfg.optim.momentum == 0.0


def test_set_overrides_parse_toml_values_and_nest():
    over = parse_set_args(["model.width=2", "model.bn_conv1=true", "data.mean=[0.5]",
                           "optim.name=adam"])
    cfg = resolve(over)
    assert cfg.model.width == 2.0 and cfg.model.bn_conv1 is True
    assert cfg.data.mean == (0.5,) and cfg.optim.name == "adam"


def test_changing_model_name_starts_a_fresh_model_table():
    data = merge({"model": {"name": "net", "width": 2}}, {"model": {"name": "cnn"}})
    cfg = resolve(data)
    assert isinstance(cfg.model, CNNConfig)


@pytest.mark.parametrize("override,needle", [
    ({"data": {"dataset": "imagenet"}}, "unknown dataset 'imagenet'"),
    ({"optim": {"lr": 0}}, "lr = 0.0"),
    ({"optim": {"lr": -0.1}}, "lr = -0.1"),
    ({"model": {"dropout": 1.5}}, "dropout = 1.5"),
    ({"model": {"dropout": -0.1}}, "dropout = -0.1"),
    ({"train": {"batch_size": 0}}, "batch size = 0"),
    ({"optim": {"name": "lbfgs"}}, "unknown optimizer 'lbfgs'"),
    ({"model": {"name": "vit"}}, "unknown model 'vit'"),
    ({"model": {"colour": 1}}, "unknown config key 'model.colour'"),
    ({"train": {"epochs": "ten"}}, "train.epochs = 'ten'"),
    ({"optim": {"schedule": "zigzag"}}, "unknown schedule 'zigzag'"),
    ({"train": {"tta": "mirror"}}, "train.tta = 'mirror'; expected one of"),
])
def test_bad_values_are_one_line_errors_naming_the_value(override, needle):
    with pytest.raises(DlabError) as err:
        resolve(override)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_hash_identifies_resolved_config():
    assert resolve().hash() == resolve({"optim": {"lr": 0.01}}).hash()
    assert resolve().hash() != resolve({"optim": {"lr": 0.1}}).hash()
    assert len(resolve().hash()) == 12


def test_toml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nwidth = 2\n")
    with pytest.raises(DlabError, match="bad.toml"):
        load_run_config(bad)
    with pytest.raises(DlabError, match="not found"):
        load_run_config(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text('[model]\nwidth = 0.5\n[train]\nepochs = 3\n')
    cfg = load_run_config(good, {"train": {"epochs": 4}})
    assert cfg.model.width == 0.5 and cfg.train.epochs == 4


@pytest.mark.parametrize("old,new", [(True, "flip"), (False, "none")])
def test_configs_of_older_runs_still_load(old, new):
    assert resolve({"train": {"eval_flip": old}}).train.tta == new


def test_a_config_file_extends_another(tmp_path):
    """`extends` starts from the named file (relative to this one); this file's values win."""
    (tmp_path / "base.toml").write_text('[model]\nname = "airnet"\nwidths = [8, 16]\n'
                                        '[train]\nepochs = 7\nbatch_size = 64\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.toml").write_text('extends = "../base.toml"\n[train]\nepochs = 3\n')
    (tmp_path / "top.toml").write_text('extends = "sub/mid.toml"\n[optim]\nlookahead = 5\n')
    cfg = load_run_config(tmp_path / "top.toml", {"train": {"batch_size": 32}})
    assert cfg.model.name == "airnet" and list(cfg.model.widths) == [8, 16]
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.optim.lookahead) == (3, 32, 5)


@pytest.mark.parametrize("text, needle", [
    ('extends = "missing.toml"\n', r"config file '.*missing.toml' not found"),
    ('extends = 3\n', r"extends = 3; expected the name of a TOML file"),
    ('extends = "loop.toml"\n', r"extends 'loop.toml', which extends it back"),
])
def test_bad_extends_is_one_line(tmp_path, text, needle):
    (tmp_path / "loop.toml").write_text(text)
    with pytest.raises(DlabError, match=needle):
        load_run_config(tmp_path / "loop.toml")


def test_the_fp32_recipe_is_mymodel_narrower_in_float32():
    """cifar10-mymodel-fp32.toml names only what differs from mymodel's recipe."""
    from dlab.studies.spec import BUILTIN_DIR

    bf16 = load_run_config(BUILTIN_DIR / "cifar10-mymodel.toml")
    fp32 = load_run_config(BUILTIN_DIR / "cifar10-mymodel-fp32.toml")
    assert fp32.data == bf16.data and fp32.optim == bf16.optim
    assert fp32.model.dirac and fp32.model.whiten_bias_epochs == 3
    assert fp32.model.widths == (32, 64, 128) and bf16.model.widths == (64, 256, 256)
    assert (fp32.train.precision, bf16.train.precision) == ("fp32", "bf16")
    assert fp32.train.batch_size == bf16.train.batch_size == 1024
    # the variant for AVX512-BF16 without AMX: the recipe in 8 epochs, nothing else changed
    noamx = load_run_config(BUILTIN_DIR / "cifar10-mymodel-noamx.toml")
    assert (noamx.train.epochs, bf16.train.epochs) == (8, 10)
    recipe = bf16.to_dict()
    assert noamx.to_dict() == {**recipe, "train": {**recipe["train"], "epochs": 8}}
