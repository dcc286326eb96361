"""Sampling and scoring a GAN checkpoint (what `dlab gan sample` / `dlab gan score` call).

`score_checkpoint` gives FD-dlab / KID-dlab / coverage (with floors, N and the extractor's key);
`fid_checkpoint` the standard FID / KID in the Inception pool features, only with the user's
`pt_inception-2015-12-05-6726825d.pth` (`dlab.generative.inception`). G is sampled in eval mode,
its EMA when the run kept one (unless `use_ema=False`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlab.data import balanced_subset, load_dataset
from dlab.errors import DlabError
from dlab.generative.config import GanConfig, resolve
from dlab.generative.frechet import feature_stats, frechet_distance, kid
from dlab.generative.sampling import intended_labels, sample, save_grid
from dlab.torch_engine import checkpoint as ckpt


def load_generator(path: str | Path, device: torch.device, use_ema: bool = True
                   ) -> tuple[torch.nn.Module, GanConfig, dict[str, Any]]:
    """(G in eval mode, the run's GanConfig, the checkpoint's facts) from a GAN checkpoint."""
    from dlab.generative.session import build_networks

    meta, tensors = ckpt.read_checkpoint(path)
    if meta.get("task") != "gan":
        raise DlabError(f"checkpoint {str(path)!r} is not a GAN run's (task "
                        f"{meta.get('task')!r})")
    cfg = resolve(meta["config"])
    g, _ = build_networks(cfg, int(meta["num_classes"]))
    name = "ema" if use_ema and any(k.startswith("model:ema.") for k in tensors) else "generator"
    g.load_state_dict(ckpt.model_state(tensors, name))
    meta["sampled_from"] = name
    return g.to(device).eval(), cfg, meta


def _draw(g, cfg: GanConfig, meta: dict[str, Any], n: int, seed: int, device) -> torch.Tensor:
    k = int(meta["num_classes"]) if cfg.model.kind == "acgan" else 0
    rng = torch.Generator(device=device).manual_seed(seed)
    return sample(g, n, cfg.model.noise_dim, device, rng, k, cfg.eval.batch_size)


def sample_grid(path: str | Path, out: Path, n: int, seed: int, device: torch.device,
                use_ema: bool = True) -> Path:
    """A grid PNG of n samples from checkpoint `path`."""
    g, cfg, meta = load_generator(path, device, use_ema)
    save_grid(_draw(g, cfg, meta, n, seed, device), out)
    return out


def score_checkpoint(path: str | Path, n: int, seed: int, data_dir, device: torch.device,
                     use_ema: bool = True) -> dict[str, Any]:
    """FD-dlab, KID-dlab, their floors at N = n, coverage (and ACGAN label accuracy)."""
    from dlab.generative.extractor import get_extractor
    from dlab.generative.metrics import real_reference, score_images

    g, cfg, meta = load_generator(path, device, use_ema)
    e, k = cfg.eval, int(meta["num_classes"])
    ext = get_extractor(cfg.data.dataset, e.extractor_epochs, e.extractor_train_limit,
                        data_dir, device)
    train = load_dataset(cfg.data.dataset, "train", data_dir)
    test = load_dataset(cfg.data.dataset, "test", data_dir)
    if e.test_limit:
        test = test.subset(balanced_subset(test.labels, e.test_limit, 0))
    ref = real_reference(ext, train.images, test.images, n, k, e.batch_size,
                         f"test-{e.test_limit}" if e.test_limit else "test")
    acgan = cfg.model.kind == "acgan"
    out = score_images(_draw(g, cfg, meta, n, seed, device), ref, e.kid_subsets,
                       e.kid_subset_size, intended_labels(n, k) if acgan else None,
                       e.batch_size)
    return {**out, "extractor_key": ext.key, "extractor_test_acc": ext.test_acc,
            "sampled_from": meta["sampled_from"], "reference": f"{cfg.data.dataset} test"}


def fid_checkpoint(path: str | Path, weights: str | Path, n: int, seed: int, data_dir,
                   device: torch.device, use_ema: bool = True) -> dict[str, Any]:
    """The standard FID / KID (Inception pool3, 2048-d) of n samples vs the test set."""
    from dlab.generative.inception import load_fid_inception, verify_weights

    digest = verify_weights(weights)  # before any sampling
    g, cfg, meta = load_generator(path, device, use_ema)
    net = load_fid_inception(weights, device)
    test = load_dataset(cfg.data.dataset, "test", data_dir)
    fake = _draw(g, cfg, meta, n, seed, device)
    real = torch.from_numpy(test.images.copy()).to(device).float() / 127.5 - 1
    f_fake = net.features(fake, cfg.eval.batch_size // 5 or 1)
    f_real = net.features(real, cfg.eval.batch_size // 5 or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        fid = frechet_distance(feature_stats(f_fake, f"FID at N={n}"),
                               feature_stats(f_real, "FID reference"))
    k, k_std = kid(f_fake, f_real, cfg.eval.kid_subsets, cfg.eval.kid_subset_size, seed=1)
    return {"fid": fid, "kid": k, "kid_std": k_std, "n": n, "reference_n": len(real),
            "reference": f"{cfg.data.dataset} test", "weights_sha256": digest,
            "resize": "TF1-compatible bilinear to 299", "sampled_from": meta["sampled_from"]}
