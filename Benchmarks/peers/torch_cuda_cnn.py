#!/usr/bin/env python3
"""PyTorch peer of the GPU CNN training benchmark: CNN training steps on one CUDA GPU, one JSON line
per row and mode.

    python3 Benchmarks/peers/torch_cuda_cnn.py [--rows ROW,...] [--modes eager,bf16,compile,compile-bf16]
        [--rounds 5] [--quick]

Rows (model, input C×H×W, batch, classes; steps per round, warmup steps):
  small-b64          the small CNN of torch_models.small_cnn, 1×28×28, batch 64, 10 classes; 200, 20
  resnet18-64-b32    ResNet-18, 3×64×64, batch 32, 10 classes; 100, 10
  resnet18-224-b128  ResNet-18, 3×224×224, batch 128, 1000 classes; 20, 10
  resnet50-224-b64   ResNet-50, 3×224×224, batch 64, 1000 classes; 20, 10
ResNet-18 and ResNet-50 are torchvision's (v1.5, its names and initialisation), written out in
torch_models.py, so torchvision is not needed. The rows, steps and warmups are those of `tefla-bench
gpu-cnn`. `--quick` divides the steps per round by 4 (at least 2; the warmup stays, so that
autotuning and compilation still finish before the timing).

Modes:
  eager         fp32 with PyTorch's defaults (the TF32 switches, as found, are in every line:
                tf32_conv = torch.backends.cudnn.allow_tf32, tf32_matmul =
                torch.backends.cuda.matmul.allow_tf32);
  bf16          forward and loss under torch.autocast("cuda", dtype=torch.bfloat16), the model
                and the inputs in channels_last memory format;
  compile       torch.compile(model) (default mode: Inductor, no CUDA graphs), fp32;
  compile-bf16  torch.compile(model) with the bf16 setup.
torch.backends.cudnn.benchmark is on in every mode.

Each step is what torch_steps.median_rate does: opt.zero_grad(set_to_none=True), forward,
softmax cross-entropy, backward, SGD (lr 0.01, momentum 0.9, PyTorch's default implementation)
step, and loss.item(), which waits for the step. The steps cycle through a pool of 8 random
batches made on the GPU beforehand (torch.manual_seed(0) before the model is built; images
standard normal, labels uniform in [0, classes)). `warmup` steps (cuDNN autotuning, compilation),
then `rounds` rounds of `steps` steps, each between torch.cuda.synchronize calls; images_per_s is
the median round's, ms_per_step = 1000·batch/images_per_s.

peak_mib is torch.cuda.max_memory_allocated() after the timing, the peak counter having been
reset before the model was built: parameters, gradients, momentum, the pool of 8 batches
(pool_mib of it), activations, and anything compilation left allocated, but not the caching
allocator's unused reserve nor cuDNN/cuBLAS workspaces outside PyTorch's allocator. row_s is the
wall time of the whole row and mode: building, warmup (compilation included) and timing.

Output: first {"device", "torch", "cudnn"}, then per row and mode {"peer": "torch", "bench":
"gpu-cnn", "row", "mode", "model", "batch", "images_per_s", "ms_per_step", "peak_mib",
"final_loss", "steps", "rounds", ...}. A row and mode that raises (compilation failing, out of
memory) prints its line with "error" (str(e), its first 4000 characters) instead of the figures,
its traceback on stderr, and the run goes on; the exit status is 1 only if every one failed.
Between rows and modes the model, optimizer and pool are freed, compiled code reset
(torch.compiler.reset) and torch.cuda.empty_cache() called.
"""
import argparse
import gc
import json
import sys
import time
import traceback

import torch
import torch.nn as nn

from torch_models import resnet18, resnet50, small_cnn
from torch_steps import median_rate

ROWS = {  # name: (model, image shape C×H×W, batch, classes, steps per round, warmup steps)
    "small-b64": ("small", (1, 28, 28), 64, 10, 200, 20),
    "resnet18-64-b32": ("resnet18", (3, 64, 64), 32, 10, 100, 10),
    "resnet18-224-b128": ("resnet18", (3, 224, 224), 128, 1000, 20, 10),
    "resnet50-224-b64": ("resnet50", (3, 224, 224), 64, 1000, 20, 10),
}
MODES = ("eager", "bf16", "compile", "compile-bf16")
MODELS = {"small": lambda classes: small_cnn(), "resnet18": resnet18, "resnet50": resnet50}


def names(text, known, what):
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in known]
    if unknown or not chosen:
        given = ", ".join(unknown) or "(none given)"
        raise argparse.ArgumentTypeError(f"unknown {what} {given}; known: {', '.join(known)}")
    return chosen


def tf32_state():
    try:
        return {"tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    except Exception as e:  # the switches are read only, for the record
        return {"tf32_error": str(e)}


def run(row, mode, rounds, quick):
    kind, shape, batch, classes, steps, warmup = ROWS[row]
    if quick:
        steps = max(2, steps // 4)
    bf16 = mode in ("bf16", "compile-bf16")
    compiled = mode in ("compile", "compile-bf16")
    dev = torch.device("cuda")
    t0 = time.perf_counter()

    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = MODELS[kind](classes).to(dev)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pool = []
    for _ in range(8):
        x = torch.randn(batch, *shape, device=dev)
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
        pool.append((x, torch.randint(0, classes, (batch,), device=dev)))
    pool_mib = sum(x.nbytes + y.nbytes for x, y in pool) / 2**20

    net = torch.compile(model) if compiled else model
    ce = nn.CrossEntropyLoss()
    if bf16:
        def forward(x):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return net(x)

        def loss_fn(out, y):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return ce(out, y)
    else:
        forward, loss_fn = net, ce

    ips, last = median_rate(forward, opt, loss_fn, pool, batch, warmup, rounds, steps, sync=torch.cuda.synchronize)
    peak = torch.cuda.max_memory_allocated() / 2**20
    return {"images_per_s": ips, "ms_per_step": 1000 * batch / ips, "peak_mib": peak, "pool_mib": pool_mib,
            "final_loss": last, "steps": steps, "rounds": rounds, "warmup": warmup,
            "row_s": time.perf_counter() - t0}


def main():
    p = argparse.ArgumentParser(description="PyTorch peer of the GPU CNN training benchmark")
    p.add_argument("--rows", type=lambda s: names(s, list(ROWS), "row"), default=list(ROWS))
    p.add_argument("--modes", type=lambda s: names(s, list(MODES), "mode"), default=list(MODES))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a quarter of the steps per round")
    a = p.parse_args()
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    if not torch.cuda.is_available():
        print(json.dumps({"peer": "torch", "bench": "gpu-cnn", "error": "CUDA is not available",
                          "torch": torch.__version__}), flush=True)
        return 1

    torch.backends.cudnn.benchmark = True
    tf32 = tf32_state()  # PyTorch's defaults, as found: nothing here changes them
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "cudnn": torch.backends.cudnn.version()}), flush=True)
    failed = 0  # the exit status is 1 only when every row and mode failed
    for row in a.rows:
        for mode in a.modes:
            line = {"peer": "torch", "impl": "torch", "bench": "gpu-cnn", "row": row, "mode": mode,
                    "model": ROWS[row][0], "batch": ROWS[row][2], **tf32}
            try:
                line.update(run(row, mode, a.rounds, a.quick))
            except Exception as e:
                traceback.print_exc()
                line["error"] = str(e)[:4000] or type(e).__name__
                failed += 1
            print(json.dumps(line), flush=True)
            # Free this row's model, optimizer, pool and compiled code before the next is built.
            if mode.startswith("compile"):
                torch.compiler.reset()
            gc.collect()
            torch.cuda.empty_cache()
    return 1 if failed == len(a.rows) * len(a.modes) else 0


if __name__ == "__main__":
    sys.exit(main())
