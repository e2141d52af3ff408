#!/usr/bin/env python3
"""The compute floor under a gradient step: single-thread GFLOP/s of the matrix products a
PPO or SAC gradient step is made of, on this CPU, through PyTorch's CPU kernels (MKL, the
same BLAS libtorch uses for Paddock's learner and SB3's alike). For BENCHMARKS.md.

Usage: PEERS/bin/python scripts/bench_gemm.py
Prints one JSON line per shape: forward x @ W^T ([batch, in] x [out, in]^T), and the two
backward products (grad wrt input, grad wrt weight), with GFLOP/s.
"""
import json
import time

import torch

SHAPES = [
    # (what, batch, in, out)
    ("ppo arm-reach layer 1", 256, 24, 128),
    ("ppo [128,128] hidden", 256, 128, 128),
    ("ppo arm-reach policy head", 256, 128, 7),
    ("sac arm-reach critic layer 1", 256, 31, 256),
    ("sac [256,256] hidden", 256, 256, 256),
    ("sac critic head", 256, 256, 1),
]


def timed(f, reps):
    for _ in range(10):
        f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps


def main():
    torch.set_num_threads(1)
    for what, b, i, o in SHAPES:
        x, w, g = torch.randn(b, i), torch.randn(o, i), torch.randn(b, o)
        flops = 2 * b * i * o
        fwd = timed(lambda: x @ w.t(), 2000)
        dx = timed(lambda: g @ w, 2000)
        dw = timed(lambda: g.t() @ x, 2000)
        print(json.dumps({"shape": what, "batch": b, "in": i, "out": o, "torch": torch.__version__,
                          "fwd_us": round(fwd * 1e6, 2), "fwd_gflops": round(flops / fwd / 1e9, 1),
                          "dx_gflops": round(flops / dx / 1e9, 1), "dw_gflops": round(flops / dw / 1e9, 1)}))


if __name__ == "__main__":
    main()
