#!/usr/bin/env python3
"""PyTorch CPU peer of `tefla-bench transformer`: one nn.TransformerEncoderLayer's forward and
backward pass, one JSON line.

    $PYTHON Benchmarks/peers/torch_transformer.py [--batch 32] [--threads 2] [--steps 5] [--warmup 2] [--rounds 5]

Batch 32 of 128 tokens, width 256, 4 heads, dim_feedforward 1024, ReLU, post-norm, dropout 0.1,
batch_first, training mode. A step: forward, loss = sum(y * R) (R fixed random), backward to
every parameter and the input, loss.item(). The median of `rounds` rounds of `steps` steps after
`warmup` steps.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--rounds", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
tokens, width, heads, ff = 128, 256, 4, 1024
block = nn.TransformerEncoderLayer(width, heads, dim_feedforward=ff, dropout=0.1, batch_first=True)
block.train()
pool = [torch.randn(a.batch, tokens, width) for _ in range(4)]
upstream = torch.randn(a.batch, tokens, width)
k = 0
last = 0.0


def step():
    global k, last
    x = pool[k % len(pool)].clone().requires_grad_(True)
    k += 1
    block.zero_grad(set_to_none=True)
    loss = (block(x) * upstream).sum()
    loss.backward()
    last = loss.item()


for _ in range(a.warmup):
    step()
rates = []
for _ in range(a.rounds):
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    rates.append(a.steps * a.batch / (time.perf_counter() - t0))
rate = statistics.median(rates)
print(json.dumps({"bench": "transformer", "impl": "torch", "batch": a.batch, "tokens": tokens, "width": width, "heads": heads,
                  "feed_forward": ff, "steps": a.steps, "rounds": a.rounds, "warmup": a.warmup, "sequences_per_s": rate,
                  "ms_per_step": 1000 * a.batch / rate, "threads": torch.get_num_threads(),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "final_loss": last,
                  "version": torch.__version__}))
