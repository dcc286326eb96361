"""DCGAN training steps: dlab's session vs the pytorch/examples DCGAN recipe, interleaved.

The recipe (pytorch/examples dcgan/main.py) reproduced without torchvision: a per-sample
Dataset (uint8 array → PIL image → [Resize] → ToTensor → Normalize(0.5, 0.5)), a shuffling
DataLoader with its `--workers 2` (persistent, so worker start-up is not charged to it), then
per batch D(real) backward, D(G(z).detach()) backward, D step, D(G(z)) backward (the same
G(z)), G step. Both pipelines use the very same modules (dlab's `Generator` /
`Discriminator`, ngf = ndf = width, initialised from the same seed), Adam(2e-4, β1 0.5) and
BCE on logits. dlab: `GanSession.batches()` + `step()` (uint8 data resident on the device,
scaled per batch; the same single G pass; no D weight gradients in G's pass).

Fairness under a shared, shifting load: both pipelines live in this one process and run in
alternating timed chunks (A B A B …, `--chunks` each of `--steps` steps, after `--warmup`
steps each); each chunk ends with a sync of its losses. The table gives each pipeline's median
ms/step and the median of the per-pair ratios, beside the load average and a 2048³ sgemm
GFLOP/s measured before and after. `--profile` instead prints cProfile's top functions and
torch.profiler's top operators over `--steps` steps of each. Run:

    python bench/bench_gan_epoch.py --dataset mnist --n 10000 --width 64 --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
import warnings
from typing import Callable, Iterator

import numpy as np
import torch
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


def sgemm_gflops(n: int = 2048, reps: int = 3) -> float:
    """Best-of-`reps` float32 n³ matmul rate (2n³ flops) at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def machine_state() -> str:
    la = os.getloadavg()
    return (f"load avg {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}, sgemm 2048³ "
            f"{sgemm_gflops():.0f} GFLOP/s at {torch.get_num_threads()} threads")


class Recipe:
    """pytorch/examples' DCGAN loop, one batch per `step()`."""

    def __init__(self, images: np.ndarray, size: int, width: int, batch: int, workers: int,
                 g: Generator, d: Discriminator):
        self.g, self.d = g, d
        self.opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loader = torch.utils.data.DataLoader(
            RecipeDataset(images, size), batch_size=batch, shuffle=True, num_workers=workers,
            drop_last=True, persistent_workers=workers > 0)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.it = iter(self.loader)

    def _next(self) -> torch.Tensor:
        try:
            return next(self.it)[0]
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)[0]

    def step(self) -> torch.Tensor:
        real = self._next()
        b, g, d, bce = real.size(0), self.g, self.d, self.bce
        d.zero_grad()
        out, _ = d(real)
        err_real = bce(out, torch.ones(b))
        err_real.backward()
        fake = g(torch.randn(b, 100))
        out, _ = d(fake.detach())
        err_fake = bce(out, torch.zeros(b))
        err_fake.backward()
        self.opt_d.step()
        g.zero_grad()
        out, _ = d(fake)
        bce(out, torch.ones(b)).backward()
        self.opt_g.step()
        return (err_real + err_fake).detach()


class Dlab:
    """dlab's GanSession, driven as the trainer drives it (one host sync per chunk)."""

    def __init__(self, session):
        self.s = session
        self.it: Iterator = iter(())

    def step(self) -> torch.Tensor:
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.s.batches())
            batch = next(self.it)
        return self.s.step(batch)["d_loss"]


def open_session(dataset: str, n: int, size: int, width: int, batch: int, data_dir, tmp: str,
                 precision: str = "fp32"):
    cfg = get_task("gan").resolve({
        "data": {"dataset": dataset, "train_limit": n, "image_size": size},
        "model": {"kind": "dcgan", "g_width": width, "d_width": width},
        "train": {"batch_size": batch, "epochs": 1, "precision": precision},
        "eval": {"n_samples": 100, "n_epoch": 0, "extractor_epochs": 1,
                 "extractor_train_limit": 1000, "test_limit": 100}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_task("gan").open(cfg, OpenContext(tmp, torch.device("cpu"), data_dir))


def timed(step: Callable[[], torch.Tensor], steps: int) -> float:
    """Seconds for `steps` steps, ending with one sync of their summed losses."""
    start = time.perf_counter()
    total = step()
    for _ in range(steps - 1):
        total = total + step()
    float(total)
    return time.perf_counter() - start


def profile(name: str, step: Callable[[], torch.Tensor], steps: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    pr = cProfile.Profile()
    pr.enable()
    timed(step, steps)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(18)
    print(f"==== {name}: cProfile, {steps} steps\n{buf.getvalue()}")
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        timed(step, steps)
    print(f"==== {name}: torch.profiler, {steps} steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--size", type=int, default=0, help="0: native; 64: the recipe's size")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="steps per timed chunk")
    p.add_argument("--chunks", type=int, default=5, help="timed chunks per pipeline")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"),
                   help="one dlab pipeline per train.precision (the recipe is float32)")
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    images = load_dataset(a.dataset, "train", a.data_dir).images[:a.n]
    size = a.size or images.shape[-1]
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for precision in a.precisions:
            os.makedirs(os.path.join(tmp, precision))
            sessions[precision] = open_session(a.dataset, a.n, a.size, a.width, a.batch,
                                               a.data_dir, os.path.join(tmp, precision), precision)
        session = sessions[a.precisions[0]]
        # the recipe trains the very same architecture from the same initial weights
        g, d = Generator(100, a.width, images.shape[1], size), Discriminator(
            a.width, images.shape[1], size, True)
        g.load_state_dict(session.g.state_dict()), d.load_state_dict(session.d.state_dict())
        assert repr(g) == repr(session.g) and repr(d) == repr(session.d)
        pipes = {f"pytorch/examples recipe (DataLoader, {a.workers} workers)":
                 Recipe(images, size, a.width, a.batch, a.workers, g, d).step}
        for precision, sess in sessions.items():
            pipes[f"dlab GanSession ({precision})"] = Dlab(sess).step
        if a.profile:
            for name, step in pipes.items():
                timed(step, a.warmup)
                profile(name, step, a.steps)
            return
        before = machine_state()
        for step in pipes.values():
            timed(step, a.warmup)
        times: dict[str, list[float]] = {name: [] for name in pipes}
        for _ in range(a.chunks):
            for name, step in pipes.items():
                times[name].append(timed(step, a.steps) / a.steps)
        after = machine_state()
    rt = next(iter(times.values()))
    print(f"DCGAN steps, {a.dataset} {a.n} images at {size}x{size}, width {a.width}, batch "
          f"{a.batch}, {torch.get_num_threads()} threads; {a.chunks} interleaved chunks of "
          f"{a.steps} steps each after {a.warmup} warm-up steps")
    print(f"before: {before}\nafter:  {after}")
    print(f"{'pipeline':<46} {'median ms/step':>14} {'min':>7} {'max':>7} {'img/s':>7}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:<46} {1e3 * med:14.1f} {1e3 * min(t):7.1f} {1e3 * max(t):7.1f} "
              f"{a.batch / med:7.0f}")
    for name, dt in list(times.items())[1:]:
        pair = [r / d for r, d in zip(rt, dt)]
        print(f"speed-up of {name} (recipe / dlab): median of pairs "
              f"{statistics.median(pair):.2f}x (pairs {min(pair):.2f}-{max(pair):.2f}x), "
              f"ratio of medians {statistics.median(rt) / statistics.median(dt):.2f}x")


if __name__ == "__main__":
    main()
