#!/usr/bin/env python3
"""PyTorch CPU peer of `tefla-bench mlp`: the same MLP 784-512-512-10 (ReLU), softmax
cross-entropy, Adam (lr 1e-3), batch 128, the same warm-up/rounds/steps, on a pool of 64
pre-generated random batches, in its own process (so its peak RSS is its own).

Prints one JSON line. Usage: torch_mlp.py [--steps 50] [--warmup 20] [--rounds 5] [--batch 128] [--threads 2]
"""
import argparse
import json
import resource
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    try:
        import torch
    except ImportError:
        print(json.dumps({"bench": "mlp", "impl": "torch", "skipped": "torch is not installed"}))
        return 0
    from torch_steps import median_rate

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(7)
    pool = [(torch.randn(args.batch, 784, generator=g), torch.randint(0, 10, (args.batch,), generator=g))
            for _ in range(64)]

    sps, last = median_rate(model, opt, loss_fn, pool, args.batch, args.warmup, args.rounds, args.steps)
    ms = 1000.0 * args.batch / sps
    macs = 784 * 512 + 512 * 512 + 512 * 10
    flops = 6.0 * args.batch * macs
    executed = flops - 2.0 * args.batch * 784 * 512
    print(json.dumps({
        "bench": "mlp", "impl": "torch", "version": torch.__version__,
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "batch": args.batch, "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup,
        "samples_per_s": sps, "ms_per_step": ms,
        "gflops": flops / (ms / 1000) / 1e9, "gflops_executed": executed / (ms / 1000) / 1e9,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "threads": torch.get_num_threads(), "final_loss": last,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
