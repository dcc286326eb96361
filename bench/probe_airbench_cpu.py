"""Probe: the airbench package's train94 algorithm on this CPU, on the shared (JPEG) CIFAR-10 copy.

airbench (PyPI, Keller Jordan) is written for a CUDA GPU: fp16 weights, `.cuda()`, CUDA events,
and torchvision's `Normalize` in its loader. This probe runs its own training code unchanged on
the CPU with four stand-ins set up before it is imported, so that its accuracy on the same
images as dlab's recipes is known without a GPU:
- weights stay float32 and the net's forward pass runs under bf16 autocast (dlab's
  `train.precision = "bf16"` arithmetic) instead of fp16 weights (`.half()` returns the module
  or tensor in float32). Autocast around the whole of train94 (optimizer steps, lookahead and
  whitening included) does not learn: 15% after one epoch, against 68% for this and for
  float32 throughout;
- `.cuda()` returns the module; its data loaders load to the CPU;
- CUDA events and synchronize become wall-clock timers;
- a `torchvision` module holding only `transforms.Normalize` (the same per-channel formula);
  dlab does not use torchvision and it is not installed here.
The data: dlab's 49,000 training images (the course split) and the 10,000 test images, written
in airbench's file format by bench/bench_cifar_gpu.py's `write_airbench_files`.

Run: python bench/probe_airbench_cpu.py --data-dir ../shared/data --seed 1 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def install_stand_ins() -> None:
    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = torch.as_tensor(mean), torch.as_tensor(std)

        def __call__(self, x):
            return ((x - self.mean.to(x).view(-1, 1, 1)) / self.std.to(x).view(-1, 1, 1))

    vision = types.ModuleType("torchvision")
    vision.transforms = types.ModuleType("torchvision.transforms")
    vision.transforms.Normalize = Normalize
    vision.datasets = types.ModuleType("torchvision.datasets")
    sys.modules.update({"torchvision": vision, "torchvision.transforms": vision.transforms,
                        "torchvision.datasets": vision.datasets})

    class Event:
        def __init__(self, **kwargs):
            self.t = 0.0

        def record(self):
            self.t = time.perf_counter()

        def elapsed_time(self, end):
            return 1e3 * (end.t - self.t)

    torch.cuda.Event = Event
    torch.cuda.synchronize = lambda *a, **k: None
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.nn.Module.half = lambda self: self.float()
    torch.Tensor.half = lambda self, *a, **k: self.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=None, help="train94's 9.9 if not given")
    parser.add_argument("--work", type=Path, default=Path("/tmp/probe-airbench"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from bench_cifar_gpu import write_airbench_files
    from bench_cifar_mymodel import sgemm_gflops
    from dlab.config import load_run_config
    from dlab.studies.spec import BUILTIN_DIR

    n = write_airbench_files(load_run_config(BUILTIN_DIR / "cifar10-mymodel.toml"),
                             args.data_dir, args.work)
    install_stand_ins()
    import airbench
    import airbench.utils as utils

    init = utils.CifarLoader.__init__

    def on_cpu(self, path, *a, **k):
        k["gpu"] = "cpu"
        init(self, path, *a, **k)

    utils.CifarLoader.__init__ = on_cpu

    def make_net(*a, **k):  # the net's forward pass under bf16 autocast, nothing else
        net = airbench.make_net94(*a, **k)
        forward = net.forward

        def bf16_forward(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return forward(x)

        net.forward = bf16_forward
        return net
    torch.manual_seed(args.seed)
    before = (os.getloadavg()[0], sgemm_gflops())
    os.chdir(args.work)
    loader = airbench.CifarLoader("cifar10", train=True, batch_size=1024,
                                  aug={"flip": True, "translate": 2}, altflip=True)
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    start = time.perf_counter()
    model = airbench.train94(train_loader=loader, make_net=make_net, verbose=True, **extra)
    trained = time.perf_counter()
    test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
    acc = {level: airbench.evaluate(model, test, tta_level=level) for level in (0, 2)}
    after = (os.getloadavg()[0], sgemm_gflops())
    print(f"\nairbench train94 algorithm on the CPU (fp32 weights, bf16 autocast), {n} training "
          f"images of the JPEG-compressed copy, seed {args.seed}, {args.threads} threads: test "
          f"{100 * acc[0]:.2f}% single view, {100 * acc[2]:.2f}% with its TTA; training "
          f"{(trained - start) / 60:.1f} min; load {before[0]:.1f} / {after[0]:.1f}, "
          f"sgemm {before[1]:.0f} / {after[1]:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
