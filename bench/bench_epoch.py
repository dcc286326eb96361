"""Epoch time of dlab's engine vs the classic recipe students run, side by side in one process.

The classic recipe is the PyTorch-examples MNIST script applied to Fashion-MNIST: a Dataset
whose __getitem__ builds a PIL image, converts it to a float tensor and normalizes it (what
torchvision's MNIST + ToTensor + Normalize do), a default DataLoader (no workers), the same
net, SGD lr 0.01 momentum 0.5, and a test pass with batch 1000 after each epoch. dlab runs the
same net and hyperparameters through `train_run`, twice: with its conv → pool → ReLU layers fused
into one CPU kernel (`dlab.torch_engine.fused`, the default) and with `DLAB_KERNELS=off` (the
same layers as PyTorch ops). Each is timed per epoch (train + test pass); the table gives the
ratios to the classic recipe.

    python bench/bench_epoch.py --data-dir ../shared/data [--epochs 1] [--batch-sizes 64 256]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlab.config import resolve
from dlab.data import load_dataset
from dlab.runs import read_jsonl
from dlab.torch_engine import fused
from dlab.torch_engine.batches import DeviceData
from dlab.torch_engine.checkpoint import load_checkpoint
from dlab.torch_engine.evaluate import evaluate
from dlab.torch_engine.train import train_run

MEAN, STD = 0.1307, 0.3081


class ClassicDataset(Dataset):
    """torchvision.datasets.MNIST + ToTensor() + Normalize(), as the examples script uses them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images[:, 0], labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.array(img, np.uint8, copy=True))
        x = x.view(img.size[1], img.size[0], 1).permute(2, 0, 1).contiguous()
        x = x.to(torch.float32).div(255)
        mean = torch.as_tensor((MEAN,), dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor((STD,), dtype=x.dtype).view(-1, 1, 1)
        return x.sub_(mean).div_(std), int(self.labels[i])


class ClassicNet(nn.Module):
    """The assignment's Net exactly as the course hands it out."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def classic_epoch(train_ds, test_ds, batch_size: int) -> tuple[float, float, float]:
    """(train seconds, test seconds, test accuracy) of one epoch of the classic recipe."""
    torch.manual_seed(1)
    model = ClassicNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=1000)
    start = time.perf_counter()
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % 10 == 0:
            loss.item()  # the script logs the loss every 10 batches
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            out = model(data)
            F.nll_loss(out, target, reduction="sum").item()
            correct += out.argmax(1).eq(target).sum().item()
    return train_s, time.perf_counter() - start, correct / len(test_ds)


@contextlib.contextmanager
def kernels(on: bool):
    """dlab with its fused kernels (the default) or without (DLAB_KERNELS=off)."""
    old = os.environ.get("DLAB_KERNELS")
    os.environ["DLAB_KERNELS"] = "on" if on else "off"
    fused.library.cache_clear()
    try:
        yield
    finally:
        if old is None:
            del os.environ["DLAB_KERNELS"]
        else:
            os.environ["DLAB_KERNELS"] = old
        fused.library.cache_clear()


def dlab_epoch(data_dir: str, batch_size: int, fuse: bool) -> tuple[float, float, float]:
    """(train seconds, test seconds, test accuracy) of one epoch through dlab's train_run."""
    with kernels(fuse):
        return _dlab_epoch(data_dir, batch_size)


def _dlab_epoch(data_dir: str, batch_size: int) -> tuple[float, float, float]:
    cfg = resolve({"data": {"dataset": "fashion-mnist", "mean": [0.1307], "std": [0.3081]},
                   "train": {"epochs": 1, "batch_size": batch_size}})
    with tempfile.TemporaryDirectory() as tmp:
        result = train_run(cfg, tmp, data_dir=data_dir, device="cpu", progress=False)
        assert result["info"]["fused_conv_pool_relu"] == (2 if fused.library() else 0)
        row = read_jsonl(f"{tmp}/metrics.jsonl")[0]
        model, cfg, _ = load_checkpoint(f"{tmp}/checkpoints/last")
        test = DeviceData(load_dataset("fashion-mnist", "test", data_dir), cfg.data,
                          torch.device("cpu"), channels_last=True)
        model = model.to(memory_format=torch.channels_last)
        evaluate(model, test, 1000)  # warm-up
        start = time.perf_counter()
        evaluate(model, test, 1000)
        eval_s = time.perf_counter() - start
    return row["time_s"], eval_s, result["final"]["val_acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed per recipe and size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    train = load_dataset("fashion-mnist", "train", args.data_dir)
    test = load_dataset("fashion-mnist", "test", args.data_dir)
    train_ds, test_ds = ClassicDataset(train.images, train.labels), ClassicDataset(test.images,
                                                                                  test.labels)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, Fashion-MNIST 60k/10k; "
          f"fused kernel: {'built' if fused.library() else 'NOT AVAILABLE'}")
    print(f"{'batch':>5} {'recipe':<16} {'train s':>8} {'test s':>7} {'epoch s':>8} {'test acc':>8}"
          f" {'speed-up':>8}")
    # every classic epoch first: dlab's engine tunes the process's malloc when it starts
    # (dlab.allocator), and the classic recipe is timed as students run it, with glibc's defaults
    classic = {bs: [classic_epoch(train_ds, test_ds, bs) for _ in range(args.epochs)]
               for bs in args.batch_sizes}
    recipes = {"dlab, torch ops": False, "dlab": True}
    ours = {(name, bs): [dlab_epoch(args.data_dir, bs, on) for _ in range(args.epochs)]
            for bs in args.batch_sizes for name, on in recipes.items()}
    for bs in args.batch_sizes:
        c = np.mean([(t, e) for t, e, _ in classic[bs]], axis=0)
        print(f"{bs:>5} {'classic':<16} {c[0]:>8.2f} {c[1]:>7.2f} {c.sum():>8.2f} "
              f"{100 * classic[bs][-1][2]:>7.2f}% {'1.00x':>8}")
        for name in recipes:
            runs = ours[name, bs]
            d = np.mean([(t, e) for t, e, _ in runs], axis=0)
            print(f"{bs:>5} {name:<16} {d[0]:>8.2f} {d[1]:>7.2f} {d.sum():>8.2f} "
                  f"{100 * runs[-1][2]:>7.2f}% {c.sum() / d.sum():>7.2f}x")


if __name__ == "__main__":
    main()
