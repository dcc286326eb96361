"""The clemson-hw3 studies plan the four GANs (and ACGAN with the paper's D loss) each, with the
course's per-kind settings."""

import pytest

from dlab.studies import load_study, plan_study


@pytest.mark.parametrize("name, dataset, epochs, wgan_epochs", [
    ("clemson-hw3", "mnist", 16, 40), ("clemson-hw3-gpu", "cifar10", 50, 50)])
def test_four_kinds_with_course_defaults(name, dataset, epochs, wgan_epochs, tmp_path):
    plan = plan_study(load_study(name), tmp_path)
    cfgs = {label: item.config for item in plan.runs for _, label in item.uses}
    assert set(cfgs) == {"dcgan", "wgan", "wgan-gp", "acgan", "acgan-fake-class"}
    assert [c.model.kind for c in cfgs.values()] == ["dcgan", "wgan", "wgan-gp", "acgan", "acgan"]
    # D's classifier learns from real images only; the paper's loss is the ablation
    assert (cfgs["acgan"].optim.fake_class_weight,
            cfgs["acgan-fake-class"].optim.fake_class_weight) == (0.0, 1.0)
    assert cfgs["acgan"].model.embed_mode == cfgs["acgan-fake-class"].model.embed_mode == \
        "multiply"
    assert cfgs["acgan"].optim.g_class_weight == cfgs["acgan-fake-class"].optim.g_class_weight \
        == 3.0
    assert all(c.data.dataset == dataset for c in cfgs.values())
    # weight clipping learns slowly: the CPU study gives WGAN more epochs (the same 50 on a GPU)
    assert [c.train.epochs for c in cfgs.values()] == [epochs, wgan_epochs] + [epochs] * 3
    w, gp = cfgs["wgan"], cfgs["wgan-gp"]
    assert (w.optim.name, w.optim.lr, w.optim.clip, w.optim.n_critic) == ("rmsprop", 5e-5, 0.01, 5)
    assert (gp.optim.gp_lambda, gp.model.d_batch_norm, gp.train.batch_size) == (10.0, False, 32)
    assert len({c.hash() for c in cfgs.values()}) == 5
