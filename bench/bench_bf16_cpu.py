"""bf16 autocast on the CPU: ms per training step of dlab's airnet (CIFAR-10 shapes, batch 256)
in float32 and under bf16 autocast (`train.precision = "bf16"`), NCHW and channels-last.

A CPU with AMX-BF16 or AVX512-BF16 (these machines: `torch.ops.mkldnn._is_mkldnn_bf16_supported()`
is True) runs oneDNN's bf16 convolutions on its matrix units; without them bf16 is emulated and
slower. Each cell is the median of `--steps` timed SGD steps after 2 warm-up steps, on random
inputs (the arithmetic, not the data pipeline); the load average and a 2-thread float32 sgemm
rate go beside the table. Run:

    python bench/bench_bf16_cpu.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from bench_cifar_mymodel import sgemm_gflops  # bench/ is on the path when run as a script
from dlab.models.airnet import AirNetConfig, build
from dlab.torch_engine.evaluate import autocast


def step_ms(widths: tuple[int, ...], channels_last: bool, precision: str, steps: int) -> float:
    torch.manual_seed(0)
    model = build(AirNetConfig(widths=widths), (3, 32, 32), 10)
    x, y = torch.randn(256, 3, 32, 32), torch.randint(0, 10, (256,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return train_step_ms(model, x, y, precision, steps)


def train_step_ms(model, x, y, precision: str, steps: int, warmup: int = 2) -> float:
    """Median ms of `steps` SGD steps (momentum 0.9) of `model` on the batch (x, y) under
    `precision` ("fp32" or "bf16" autocast), after `warmup` untimed ones."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9)
    times = []
    for _ in range(steps + warmup):
        start = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[warmup:])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"load {os.getloadavg()[0]:.2f}, {a.threads}-thread sgemm {sgemm_gflops(a.threads):.0f} GFLOP/s, "
          f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print("| airnet widths | layout | float32 ms/step | bf16 ms/step | bf16 speed-up |")
    print("| --- | --- | ---: | ---: | ---: |")
    for widths in ((32, 64, 128), (64, 256, 256)):
        for cl in (False, True):
            fp32, bf16 = (step_ms(widths, cl, prec, a.steps) for prec in ("fp32", "bf16"))
            print(f"| {'-'.join(map(str, widths))} | {'channels-last' if cl else 'NCHW'} | "
                  f"{fp32:.0f} | {bf16:.0f} | {fp32 / bf16:.2f}x |")


if __name__ == "__main__":
    main()
