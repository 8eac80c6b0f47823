"""PyTorch's figures for the CUDA shim's check program, measured on the same GPU in the same run.

fp32 sgemm at 1024/2048/4096 with TF32 off (the shim's sgemm is pedantic fp32), a large
device-to-device copy, and a fused Adam step (torch.optim.Adam(foreach=False, fused=True)) over
10M parameters. Prints one JSON object per figure. Times with CUDA events, median of many reps.
"""
import json
import statistics

import torch


def time_ms(fn, warmup=5, reps=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__}))
    for n in (1024, 2048, 4096):
        a = torch.randn(n, n, device=dev)
        b = torch.randn(n, n, device=dev)
        c = torch.empty(n, n, device=dev)
        ms = time_ms(lambda: torch.mm(a, b, out=c))
        print(json.dumps({"peer": "torch", "op": "sgemm", "n": n, "ms": ms, "gflops": 2 * n**3 / ms / 1e6}))
    n = 256 * 1024 * 1024 // 4
    src = torch.randn(n, device=dev)
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    print(json.dumps({"peer": "torch", "op": "copy_d2d", "bytes": 2 * 4 * n, "ms": ms, "gbps": 2 * 4 * n / ms / 1e6}))
    p = torch.nn.Parameter(torch.randn(10_000_000, device=dev))
    p.grad = torch.randn_like(p)
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    ms = time_ms(opt.step)
    # Adam reads w, g, m, v and writes w, m, v: 7 passes of 4 bytes.
    print(json.dumps({"peer": "torch", "op": "adam_10M", "ms": ms, "gbps": 7 * 4 * 10_000_000 / ms / 1e6}))
    for batch in (128, 1024):
        mlp(batch)


def mlp(batch, steps=50, rounds=5, warmup=20):
    """The MLP of tefla-bench gpu-mlp: 784-512-512-10 ReLU, cross-entropy, Adam lr 1e-3, the loss
    read back every step (loss.item()), on a pool of 64 random batches already on the GPU."""
    from torch_steps import median_rate

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    ).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    pool = [(torch.randn(batch, 784, device=dev), torch.randint(0, 10, (batch,), device=dev)) for _ in range(64)]
    sps, _ = median_rate(model, opt, loss_fn, pool, batch, warmup, rounds, steps, sync=torch.cuda.synchronize)
    print(json.dumps({"peer": "torch", "op": "gpu-mlp", "batch": batch, "samples_per_s": sps, "ms_per_step": 1000 * batch / sps}))


if __name__ == "__main__":
    main()
