#!/usr/bin/env python3
"""PyTorch CPU peer of `tefla-bench conv`: a 64→64 3×3 convolution (padding 1) on
[32, 64, 32, 32], forward, input gradient and weight gradient, on 2 threads by default.

    $PYTHON Benchmarks/peers/torch_conv.py [--batch 32] [--threads 2]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=10)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
x = torch.randn(a.batch, 64, 32, 32)
w = torch.randn(64, 64, 3, 3) * 0.05
g = torch.randn(a.batch, 64, 32, 32)


def timed(fn):
    for _ in range(2):
        fn()
    samples = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def forward():
    with torch.no_grad():
        F.conv2d(x, w, padding=1)


def grad_input():
    torch.nn.grad.conv2d_input(x.shape, w, g, padding=1)


def grad_weight():
    torch.nn.grad.conv2d_weight(x, w.shape, g, padding=1)


xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()


def step():
    xr.grad = None
    wr.grad = None
    F.conv2d(xr, wr, padding=1).backward(g)


f, i, wg, s = timed(forward), timed(grad_input), timed(grad_weight), timed(step)
flops = 2.0 * a.batch * 64 * 32 * 32 * 64 * 9
print(f"torch {torch.__version__} conv N={a.batch} 64→64 32×32 3×3, {a.threads} threads: forward {f:.1f} ms "
      f"({flops / f / 1e6:.0f} GFLOP/s), dX {i:.1f} ms, dW {wg:.1f} ms, forward+backward {s:.1f} ms "
      f"({3 * flops / s / 1e6:.0f} GFLOP/s)")
