#!/usr/bin/env python3
"""NumPy peer of `tefla-bench sgemm`: float32 N×N matmul GFLOP/s at 512/1024/2048 (median of
repeated calls after a warm-up call), on the thread count given (2 by default), plus which
BLAS library and kernel family NumPy runs. Prints JSON lines.

Usage: numpy_sgemm.py [--threads 2] [--reps 0] [N ...]
Set OPENBLAS_NUM_THREADS/OMP_NUM_THREADS before starting it; threadpoolctl (when installed)
also limits the pool and names the BLAS and its kernels.
"""
import argparse
import io
import json
import statistics
import sys
import time
from contextlib import redirect_stdout


def blas_info(np):
    try:
        import threadpoolctl
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            return {"blas": f"{i.get('internal_api')} {i.get('version')}", "blas_core": i.get("architecture"),
                    "blas_threads": i.get("num_threads"), "blas_source": "threadpoolctl"}
    except ImportError:
        pass
    try:  # NumPy >= 1.26
        b = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"blas": f"{b.get('name')} {b.get('version')}", "blas_core": None,
                "blas_source": "numpy.show_config (kernel family unknown without threadpoolctl)"}
    except Exception:
        buf = io.StringIO()
        with redirect_stdout(buf):
            np.show_config()
        text = " ".join(buf.getvalue().split())
        return {"blas": text[:200], "blas_core": None, "blas_source": "numpy.show_config"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("sizes", nargs="*", type=int, default=[512, 1024, 2048])
    args = ap.parse_args()
    try:
        import numpy as np
    except ImportError:
        print(json.dumps({"bench": "sgemm", "impl": "numpy", "skipped": "numpy is not installed"}))
        return 0
    limiter = None
    try:
        import threadpoolctl
        limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        pass
    info = blas_info(np)
    rng = np.random.default_rng(42)
    for n in args.sizes:
        a = (rng.random((n, n), dtype=np.float32) - 0.5)
        b = (rng.random((n, n), dtype=np.float32) - 0.5)
        c = np.empty((n, n), dtype=np.float32)
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        first = time.perf_counter() - t0
        reps = args.reps if args.reps > 0 else max(5, min(200, int(1.0 / max(first, 1e-6))))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        gflops = 2.0 * n ** 3 / statistics.median(times) / 1e9
        print(json.dumps({"bench": "sgemm", "impl": "numpy", "version": np.__version__, "n": n, "gflops": gflops,
                          "reps": reps, "threads": args.threads, **info}))
    del limiter
    return 0


if __name__ == "__main__":
    sys.exit(main())
