"""FD-dlab rises monotonically as real images get more Gaussian noise and more blur."""

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data import load_dataset
from dlab.generative.extractor import get_extractor
from dlab.generative.frechet import feature_stats, frechet_distance


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return x
    r = int(3 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).view(1, 1, 1, -1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.transpose(2, 3))


def test_fd_rises_with_noise_and_blur(data_dir):
    ext = get_extractor("mnist", 1, 2000, data_dir, torch.device("cpu"))
    train = load_dataset("mnist", "train", data_dir).images[:1000]
    test = load_dataset("mnist", "test", data_dir).images[:1000]
    as_float = lambda a: torch.from_numpy(a.copy()).float() / 127.5 - 1  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = feature_stats(ext.run(as_float(test))[0])
        x = as_float(train)
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(x.shape, generator=g)
        fd_noise = [frechet_distance(feature_stats(ext.run((x + s * noise).clamp(-1, 1))[0]), ref)
                    for s in (0.0, 0.2, 0.4, 0.8)]
        fd_blur = [frechet_distance(feature_stats(ext.run(_blur(x, s))[0]), ref)
                   for s in (0.0, 0.7, 1.2, 2.0)]
    assert all(a < b for a, b in zip(fd_noise, fd_noise[1:])), fd_noise
    assert all(a < b for a, b in zip(fd_blur, fd_blur[1:])), fd_blur
    assert fd_noise[-1] > 5 * fd_noise[0] and fd_blur[-1] > 5 * fd_blur[0]
