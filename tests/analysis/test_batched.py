"""The batched (vmap) trainer equals training the same models one by one with torch.optim."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlab.analysis.batched import (AdamMath, BatchedTrainer, SGDMath, stack_params,
                                   torch_optimizer, unstack_params)
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import cnn, init_copies, mlp
from dlab.analysis.training import epoch_batches


@pytest.fixture(scope="module")
def mnist_slice(data_dir):
    return image_split("mnist", "train", 256, data_dir)


def _sequential(models, optim_math, batches):
    """Reference: each model alone, nn.Module + torch.optim, the same batches in order."""
    finals = []
    for m, model in enumerate(models):
        opt = torch_optimizer(optim_math, model.parameters())
        for x, y in batches(m):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        finals.append({k: v.detach() for k, v in model.named_parameters()})
    return finals


@pytest.mark.parametrize("optim_math", [SGDMath(lr=0.05, momentum=0.9), AdamMath(lr=3e-3)],
                         ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("per_model", [False, True], ids=["shared-batches", "own-batches"])
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_batched_equals_sequential(mnist_slice, optim_math, per_model, net):
    """MLPs take the direct batched-matmul path, CNNs the vmap(functional_call) path."""
    if net == "mlp":
        build = lambda: mlp((784, 16, 10))  # noqa: E731
    else:
        build = lambda: cnn((4, 6))  # noqa: E731
    count, steps = 3, 12
    base, params = stack_params(init_copies(build, count, seed=7))
    gens = [torch.Generator().manual_seed(i) for i in range(count)]
    index = epoch_batches(len(mnist_slice.y), 32, gens)[:steps]  # (steps, M, B)
    if not per_model:
        index = index[:, :1].expand(-1, count, -1)
    x, y = mnist_slice.x, mnist_slice.y
    trainer = BatchedTrainer(base, params, optim_math, F.cross_entropy)
    for idx in index:
        if per_model:
            trainer.step(x[idx], y[idx], per_model_batches=True)
        else:
            trainer.step(x[idx[0]], y[idx[0]])
    reference = _sequential(init_copies(build, count, seed=7), optim_math,
                            lambda m: [(x[idx[m]], y[idx[m]]) for idx in index])
    moved = 0.0
    for m in range(count):
        mine = unstack_params(trainer.params, m)
        for k, v in reference[m].items():
            torch.testing.assert_close(mine[k], v, rtol=0, atol=1e-5)
        first = next(iter(mine))
        moved += float((mine[first] - params[first][m]).abs().max())
    assert moved > 1e-3  # the models really trained, so equality is not trivial


def test_different_seeds_give_different_models():
    base, params = stack_params(init_copies(lambda: mlp((4, 3, 2)), 2, seed=0))
    assert not torch.equal(params["1.weight"][0], params["1.weight"][1])
