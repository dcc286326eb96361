"""Batched (vmap) training vs a sequential loop over the same models: wall time and speed-up.

Cases are the analysis experiments' own repetitions: the 100 minimal-ratio nets (1-5-5-1, full
batch of 100 points), the 8 trajectory MLPs (784-32-10, MNIST batches of 100) and the
deep-vs-shallow function repeats. Both sides run the same optimizer math on the same batches
with one intra-op thread; each side is timed after a warm-up, best of `--repeats`.

    .venv/bin/python bench/bench_vmap.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dlab.analysis.batched import AdamMath, BatchedTrainer, stack_params, torch_optimizer
from dlab.analysis.datasets import function_points, image_split
from dlab.analysis.nets import init_copies, mlp


def time_sequential(build, count, batches, loss_fn, steps):
    models = init_copies(build, count, 0)
    opts = [torch_optimizer(AdamMath(lr=1e-3), m.parameters()) for m in models]
    start = time.perf_counter()
    for s in range(steps):
        x, y = batches(s)
        for model, opt in zip(models, opts):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return time.perf_counter() - start


def time_batched(build, count, batches, loss_fn, steps):
    base, params = stack_params(init_copies(build, count, 0))
    trainer = BatchedTrainer(base, params, AdamMath(lr=1e-3), loss_fn)
    start = time.perf_counter()
    for s in range(steps):
        x, y = batches(s)
        trainer.step(x, y)
    float(next(iter(trainer.params.values())).sum())  # wait for the last step
    return time.perf_counter() - start


def best_of(fn, repeats, *args):
    fn(*args[:-1], max(2, args[-1] // 10))  # warm-up
    return min(fn(*args) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fx, fy = function_points("f1", 100)
    gx, gy = function_points("f1", 300)
    mnist = image_split("mnist", "train", 5000, args.data_dir)

    def mnist_batch(s):
        i = (s * 100) % 4900
        return mnist.x[i:i + 100], mnist.y[i:i + 100]

    cases = [
        ("minimal-ratio nets 1-5-5-1", lambda: mlp((1, 5, 5, 1), "tanh"), 100,
         lambda s: (fx, fy), F.mse_loss, 100),
        ("trajectory MLPs 784-32-10", lambda: mlp((784, 32, 10)), 8, mnist_batch,
         F.cross_entropy, 100),
        ("function repeats 1-5-10x5-5-1", lambda: mlp((1, 5, 10, 10, 10, 10, 10, 5, 1), "tanh"),
         6, lambda s: (gx, gy), F.mse_loss, 100),
    ]
    print(f"{'case':32s} {'models':>6s} {'steps':>6s} {'sequential s':>13s} {'batched s':>10s} "
          f"{'speed-up':>9s}")
    for name, build, count, batches, loss_fn, steps in cases:
        seq = best_of(time_sequential, args.repeats, build, count, batches, loss_fn, steps)
        bat = best_of(time_batched, args.repeats, build, count, batches, loss_fn, steps)
        print(f"{name:32s} {count:6d} {steps:6d} {seq:13.3f} {bat:10.3f} {seq / bat:8.1f}x",
              flush=True)


if __name__ == "__main__":
    main()
