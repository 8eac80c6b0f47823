#!/usr/bin/env python3
"""The table of `Benchmarks/run --cnn`: CNN training images/s, ours against PyTorch's from the
same run, and where our step goes against the sgemm peak of the same run.

    python3 Benchmarks/cnn_report.py RESULTS.jsonl THREADS BUSY_BEFORE BUSY_AFTER CPU_MODEL CORES
"""
import datetime
import json
import statistics
import sys

path, threads, busy_before, busy_after, cpu, cores = sys.argv[1:7]
rows = [json.loads(line) for line in open(path) if line.strip()]


def pick(bench, impl, model=None):
    return [r for r in rows if r.get("bench") == bench and r.get("impl") == impl
            and (model is None or r.get("model") == model)]


def med(rs, key):
    values = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def ratio(a, b):
    return "—" if a is None or b in (None, 0) else f"{a / b:.2f}×"


sgemm = {r["n"]: r["gflops"] for r in pick("sgemm", "tefla")}
peak_n = max(sgemm, key=sgemm.get, default=None)
peak = sgemm.get(peak_n)
torch_rows = pick("cnn", "torch")
print(f"\nCNN training, tefla vs PyTorch — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d} — {cpu}, {cores} cores, "
      f"{threads} threads each; CPUs busy {busy_before}% before / {busy_after}% after (other work skews all figures)")
print(f"PyTorch {torch_rows[0]['version'] if torch_rows else 'not run'}; SGD lr 0.01 momentum 0.9, softmax CE, "
      "random data; each run the median of 5 rounds after warm-up, medians over runs")
w = 34
print(f"\n{'':{w}} {'tefla':>10} {'torch':>10} {'tefla/torch':>12}")
for model, label in (("small", "small CNN b64"), ("resnet18", "ResNet-18 64×64 b32")):
    ours, theirs = pick("cnn", "tefla", model), pick("cnn", "torch", model)
    o, t = med(ours, "images_per_s"), med(theirs, "images_per_s")
    print(f"{label + ' images/s':{w}} {fmt(o, '10.1f')} {fmt(t, '10.1f')} {ratio(o, t):>12}")
    print(f"{label + ' ms/step':{w}} {fmt(med(ours, 'ms_per_step'), '10.2f')} {fmt(med(theirs, 'ms_per_step'), '10.2f')}")
    print(f"{label + ' peak RSS MiB':{w}} {fmt(med(ours, 'peak_rss_mib'), '10.1f')} {fmt(med(theirs, 'peak_rss_mib'), '10.1f')}")
    if ours and theirs:
        each = ", ".join(f"{a['images_per_s']:.1f}/{b['images_per_s']:.1f}" for a, b in zip(ours, theirs))
        print(f"{'  runs (tefla/torch images/s)':{w}} {each}")
        # The runs alternate, so each pair shares the machine's state of the moment: the median
        # of the pairs' ratios is the figure least moved by the machine's other work.
        pairs = [a["images_per_s"] / b["images_per_s"] for a, b in zip(ours, theirs) if b["images_per_s"]]
        label_pairs = "  median of the runs' ratios"
        print(f"{label_pairs:{w}} {'':10} {'':10} {statistics.median(pairs):11.2f}×")
for n in sorted(sgemm):
    print(f"{f'our sgemm {n} GFLOP/s':{w}} {sgemm[n]:10.1f}")

for model in ("small", "resnet18"):
    kernels = pick("cnn_kernel", "tefla", model)
    if not kernels:
        continue
    step = next((k["ms"] for k in kernels if k["kind"] == "whole step"), None)
    print(f"\nwhere our {model} step goes (one profiled run, {fmt(step, '.2f')} ms/step; peak = our sgemm {peak_n}: "
          f"{fmt(peak, '.1f')} GFLOP/s)")
    for k in kernels:
        if k["kind"] == "whole step":
            continue
        share = f"{k['ms'] / step:6.1%}" if step else "—"
        rate = k.get("gflops")  # null for kinds that are not sgemm
        vs_peak = f"  {rate:6.1f} GFLOP/s = {rate / peak:4.0%} of peak" if rate and peak else ""
        print(f"  {k['kind']:{w - 2}} {k['ms']:10.2f} ms {share}{vs_peak}")
if not torch_rows:
    print("PyTorch was not run (see the SKIP line above).")
