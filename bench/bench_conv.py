"""Benchmark the numpy engine's convolution: naive loops vs the stride-trick im2col twin.

Classic cs231n shape: x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1. Prints a table of
median forward, backward and total times (after a warm-up) and the speed-up, plus max pooling.
Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_conv.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dlab.numpy_engine import conv, pool


def _time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(fwd, bwd, args, repeats):
    out, cache = fwd(*args)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    t_f = _time(lambda: fwd(*args), repeats)
    t_b = _time(lambda: bwd(dout, cache), repeats)
    return t_f, t_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--naive-repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3, 31, 31))
    w = rng.standard_normal((25, 3, 3, 3))
    b = rng.standard_normal(25)
    conv_args = (x, w, b, 2, 1)
    rows = [("conv naive", *bench(conv.conv_forward_naive, conv.conv_backward_naive, conv_args,
                                  args.naive_repeats)),
            ("conv im2col (fast)", *bench(conv.conv_forward_im2col, conv.conv_backward_im2col,
                                          conv_args, args.repeats))]
    xp = rng.standard_normal((100, 3, 32, 32))
    rows += [("max pool naive", *bench(pool.max_pool_forward_naive, pool.max_pool_backward_naive,
                                       (xp, 2, 2, 2), args.naive_repeats)),
             ("max pool fast", *bench(pool.max_pool_forward_fast, pool.max_pool_backward_fast,
                                      (xp, 2, 2, 2), args.repeats))]
    print("float64; conv x (100,3,31,31) w (25,3,3,3) stride 2 pad 1; pool x (100,3,32,32) 2x2/2")
    print(f"{'op':<20} {'forward ms':>11} {'backward ms':>12} {'total ms':>9}")
    for name, t_f, t_b in rows:
        print(f"{name:<20} {1e3 * t_f:11.2f} {1e3 * t_b:12.2f} {1e3 * (t_f + t_b):9.2f}")
    for kind, (naive, fast) in (("conv", rows[0:2]), ("max pool", rows[2:4])):
        print(f"{kind} speed-up (total): {(naive[1] + naive[2]) / (fast[1] + fast[2]):.0f}x")


if __name__ == "__main__":
    main()
