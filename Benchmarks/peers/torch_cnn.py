#!/usr/bin/env python3
"""PyTorch CPU peer of `tefla-bench cnn`: the same CNN training steps, one JSON line.

    $PYTHON Benchmarks/peers/torch_cnn.py --model small|resnet18 [--batch B] [--threads 2]
        [--steps N] [--warmup N] [--rounds N]

small: 28×28×1 → conv32 3×3 pad 1 → ReLU → maxpool 2 → conv64 3×3 pad 1 → ReLU → maxpool 2 →
flatten → dense 128 → ReLU → dense 10, batch 64. resnet18: torchvision's ResNet-18 layout (written
out in torch_models.py, so torchvision is not needed) with 10 classes on 64×64 RGB, batch 32. unet: the
library's UNet (depth 4, base 32, batch norm, transposed convolutions) with 2 classes per pixel on
128×128 RGB, batch 8, per-pixel cross-entropy.
Softmax cross-entropy, SGD lr 0.01 momentum 0.9; a pool of 8 random batches; each step is
zero_grad, forward, loss, backward, step and loss.item(); the median of `rounds` rounds of `steps`
steps after `warmup` steps.
"""
import argparse
import json
import resource
import torch
import torch.nn as nn

from torch_models import ResNet18, UNet, small_cnn
from torch_steps import median_rate

SPECS = {  # name: (image shape, batch, steps, warmup)
    "small": ((1, 28, 28), 64, 20, 10),
    "resnet18": ((3, 64, 64), 32, 4, 3),
    "unet": ((3, 128, 128), 8, 3, 2),
}

p = argparse.ArgumentParser()
p.add_argument("--model", choices=sorted(SPECS), default="small")
p.add_argument("--batch", type=int)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int)
p.add_argument("--warmup", type=int)
p.add_argument("--rounds", type=int, default=5)
a = p.parse_args()
shape, batch, steps, warmup = SPECS[a.model]
batch, steps, warmup = a.batch or batch, a.steps or steps, a.warmup if a.warmup is not None else warmup
torch.set_num_threads(a.threads)
torch.manual_seed(0)

model = {"small": small_cnn, "resnet18": lambda: ResNet18(10), "unet": lambda: UNet(3, 2, 4, 32)}[a.model]()
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
labels = (lambda: torch.randint(0, 2, (batch, *shape[1:]))) if a.model == "unet" else (lambda: torch.randint(0, 10, (batch,)))
pool = [(torch.randn(batch, *shape), labels()) for _ in range(8)]
ips, last = median_rate(model, opt, loss_fn, pool, batch, warmup, a.rounds, steps)
print(json.dumps({"bench": "cnn", "impl": "torch", "model": a.model, "batch": batch, "steps": steps, "rounds": a.rounds,
                  "warmup": warmup, "images_per_s": ips, "ms_per_step": 1000 * batch / ips, "threads": torch.get_num_threads(),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "final_loss": last,
                  "version": torch.__version__}))
