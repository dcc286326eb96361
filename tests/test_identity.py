"""Run identity: keys are stable when defaulted fields are added, and dlab 0.1's keys are found."""

import dataclasses

from dlab.config import config_key, non_default, resolve

FIXED = {"data": {"dataset": "mnist", "mean": [0.1307], "std": [0.3081]},
         "model": {"name": "cnn", "channels": [16, 32]}, "optim": {"name": "adam"},
         "train": {"epochs": 3}}


def test_golden_keys():
    # pinned: a change here moves every run directory of every study to a new place
    assert resolve({}).hash() == "a6736db63ed5"
    assert resolve(FIXED).hash() == "7501192f1b0b"


def test_key_ignores_a_new_field_at_its_default():
    @dataclasses.dataclass(frozen=True)
    class Old:
        lr: float = 0.1
        epochs: int = 10

    @dataclasses.dataclass(frozen=True)
    class New:
        lr: float = 0.1
        epochs: int = 10
        ema: float = 0.0  # added later, with a default

    assert config_key(Old(lr=0.5), "t") == config_key(New(lr=0.5), "t")
    assert config_key(New(lr=0.5, ema=0.9), "t") != config_key(Old(lr=0.5), "t")
    assert config_key(Old(lr=0.5), "t") != config_key(Old(lr=0.5), "other-task")


def test_non_default_names_another_model_and_its_changed_fields():
    diff = non_default(resolve(FIXED))
    assert diff["model"] == {"name": "cnn", "channels": [16, 32]}
    assert diff["train"] == {"epochs": 3} and diff["data"]["dataset"] == "mnist"


def test_legacy_hash_is_the_key_dlab_0_1_gave():
    # computed by dlab 0.1 (158b0c7): `resolve(cfg).hash()` there
    assert resolve(FIXED).legacy_hash() == "54f61c75067c"
    # a config relying on 0.1's default normalization (MNIST's) on MNIST is the same run
    assert resolve({"data": {"dataset": "mnist"}}).legacy_hash() == "a2d346ad52ff"
    # on Fashion-MNIST the default is now the dataset's own statistics: another run
    assert resolve({}).legacy_hash() != "154f2fddd439"
