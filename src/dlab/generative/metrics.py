"""FD-dlab, KID-dlab, mode coverage and ACGAN label accuracy of generated samples.

Every score is computed on raw sample tensors in the extractor's features (float64
statistics) against the dataset's test set, and comes with its real-vs-real floor at the same
N: the same scores of N training images against the test set. `score_images` is the one entry
point (the session's evaluations, `dlab gan score`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from dlab.generative.extractor import Extractor
from dlab.generative.frechet import (Stats, class_coverage, feature_stats, frechet_distance,
                                     kid)

FLOOR_SEED = 0  # which training images form the floor's real sample


@dataclass
class RealReference:
    """The real side: test features (and their stats), a fixed training sample for floors."""

    extractor: Extractor
    test: np.ndarray  # (N_test, D)
    train: np.ndarray  # (N_train_sample, D)
    num_classes: int
    test_stats: Stats = field(init=False)
    floors: dict[tuple[int, int, int], dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.test_stats = feature_stats(self.test, "test features")

    def floor(self, n: int, subsets: int, subset_size: int) -> dict[str, float]:
        """FD-dlab / KID-dlab of n training images vs the test set (cached per n)."""
        key = (n, subsets, subset_size)
        if key not in self.floors:
            x = self.train[:n]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the samples' own call warns once
                fd = frechet_distance(feature_stats(x), self.test_stats)
            k, _ = kid(x, self.test, subsets, subset_size, seed=1)
            self.floors[key] = {"fd_dlab_floor": fd, "kid_dlab_floor": k}
        return self.floors[key]


def real_reference(extractor: Extractor, train_images: np.ndarray, test_images: np.ndarray,
                   n_max: int, num_classes: int, batch_size: int = 500, test_name: str = "test"
                   ) -> RealReference:
    """Features of the test set (cached as `test_name`) and of a seeded sample of `n_max`
    training images (cached)."""
    pick = np.sort(np.random.default_rng(FLOOR_SEED).permutation(len(train_images))[:n_max])
    test = extractor.cached_real(test_name, test_images, batch_size)
    train = extractor.cached_real(f"train-{n_max}-seed{FLOOR_SEED}", train_images[pick],
                                  batch_size)
    return RealReference(extractor, test, train, num_classes)


def score_images(images: torch.Tensor, ref: RealReference, subsets: int, subset_size: int,
                 intended: np.ndarray | None = None, batch_size: int = 500
                 ) -> dict[str, float]:
    """The scores of images (N, C, H, W) in [-1, 1] against the test set, with the floor.

    Returns: fd_dlab, kid_dlab (unbiased MMD², mean over subsets) and kid_dlab_std, the floors
    fd_dlab_floor / kid_dlab_floor at the same N, eval_n, classes_covered (≥3% of samples),
    kl_uniform (nats), and with `intended` (ACGAN) label_acc, the share classified as intended.
    """
    feats, pred = ref.extractor.run(images, batch_size)
    n = len(feats)
    fd = frechet_distance(feature_stats(feats, f"FD-dlab at N={n}"), ref.test_stats)
    k, k_std = kid(feats, ref.test, subsets, subset_size, seed=1)
    out = {"fd_dlab": fd, "kid_dlab": k, "kid_dlab_std": k_std,
           **ref.floor(n, subsets, subset_size), "eval_n": n,
           **class_coverage(pred, ref.num_classes)}
    if intended is not None:
        out["label_acc"] = float((pred == intended).mean())
    return out
