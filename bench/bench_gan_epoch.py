"""One DCGAN epoch: dlab's session vs the pytorch/examples DCGAN recipe, side by side.

The recipe (pytorch/examples dcgan/main.py) reproduced without torchvision: a per-sample
Dataset (uint8 array → PIL image → Resize → ToTensor → Normalize(0.5, 0.5)), a shuffling
DataLoader with its `--workers 2`, then per batch D(real) + D(G(z).detach()) backward, D step,
D(G(z)) backward (the same G(z)), G step — same architecture (dlab's `Generator`/`Discriminator`, ngf = ndf),
batch, Adam(2e-4, β1 0.5) and BCE. dlab: `GanSession.batches()` + `step()` (data resident on
the device, the same single G pass, no D weight gradients in G's pass). Prints a table; run:

    python bench/bench_gan_epoch.py --dataset mnist --n 10000 --width 64
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dlab.data import load_dataset
from dlab.generative.models import Discriminator, Generator, init_weights
from dlab.tasks import get_task
from dlab.tasks.base import OpenContext


class RecipeDataset(torch.utils.data.Dataset):
    """torchvision.datasets + transforms.Compose([Resize, ToTensor, Normalize]) per sample."""

    def __init__(self, images: np.ndarray, size: int):
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        a = self.images[i]
        img = Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.BILINEAR)
        t = torch.from_numpy(np.array(img, dtype=np.uint8)).float().div(255)
        t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
        return (t - 0.5) / 0.5, 0


def recipe_epoch(images: np.ndarray, size: int, width: int, batch: int, workers: int) -> float:
    torch.manual_seed(0)
    c = images.shape[1]
    g, d = Generator(100, width, c, size), Discriminator(width, c, size, True)
    init_weights(g), init_weights(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(RecipeDataset(images, size), batch_size=batch,
                                         shuffle=True, num_workers=workers, drop_last=True)
    bce = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for real, _ in loader:
        b = real.size(0)
        d.zero_grad()
        out, _ = d(real)
        err_real = bce(out, torch.ones(b))
        err_real.backward()
        fake = g(torch.randn(b, 100))
        out, _ = d(fake.detach())
        err_fake = bce(out, torch.zeros(b))
        err_fake.backward()
        opt_d.step()
        g.zero_grad()
        out, _ = d(fake)
        bce(out, torch.ones(b)).backward()
        opt_g.step()
    return time.perf_counter() - start


def dlab_epoch(dataset: str, n: int, size: int, width: int, batch: int, data_dir) -> float:
    cfg = get_task("gan").resolve({
        "data": {"dataset": dataset, "train_limit": n, "image_size": size},
        "model": {"kind": "dcgan", "g_width": width, "d_width": width},
        "train": {"batch_size": batch, "epochs": 1},
        "eval": {"n_samples": 100, "n_epoch": 0, "extractor_epochs": 1,
                 "extractor_train_limit": 1000, "test_limit": 100}})
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = get_task("gan").open(cfg, OpenContext(tmp, torch.device("cpu"), data_dir))
        start = time.perf_counter()
        sums = None
        for batch_xy in s.batches():
            out = s.step(batch_xy)
            sums = out["d_loss"] if sums is None else sums + out["d_loss"]
        float(sums)  # the trainer's one sync per epoch
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--size", type=int, default=0, help="0: native; 64: the recipe's size")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()
    ds = load_dataset(a.dataset, "train", a.data_dir)
    images = ds.images[:a.n]
    size = a.size or images.shape[-1]
    t_recipe = recipe_epoch(images, size, a.width, a.batch, a.workers)
    print(f"recipe: {t_recipe:.2f} s", flush=True)
    t_dlab = dlab_epoch(a.dataset, a.n, a.size, a.width, a.batch, a.data_dir)
    steps = a.n // a.batch
    print(f"DCGAN epoch, {a.dataset} {a.n} images at {size}x{size}, width {a.width}, "
          f"batch {a.batch}, {torch.get_num_threads()} threads")
    print(f"{'pipeline':<44} {'epoch s':>8} {'ms/step':>8} {'img/s':>8}")
    for name, t in ((f"pytorch/examples recipe (DataLoader, {a.workers} workers)", t_recipe),
                    ("dlab GanSession", t_dlab)):
        print(f"{name:<44} {t:8.2f} {1e3 * t / steps:8.1f} {steps * a.batch / t:8.0f}")
    print(f"speed-up: {t_recipe / t_dlab:.2f}x")


if __name__ == "__main__":
    main()
