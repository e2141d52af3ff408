#!/usr/bin/env python3
"""Gymnasium's CartPole-v1 steps/s on this machine, for BENCHMARKS.md (the peer figure).

Usage: python3 scripts/bench_gymnasium.py [--seconds S]
Prints one JSON line per setup: a single env via gym.make (as most users step it), the
raw env without wrappers, and Gymnasium's own vectorised CartPoleVectorEnv with 64 envs.
"""
import argparse
import json
import time

import gymnasium as gym
import numpy as np


def measure(step, seconds):
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(1000):
            step()
        n += 1000
        el = time.perf_counter() - start
        if el >= seconds:
            return n / el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    for label, env in [("gym.make single env", gym.make("CartPole-v1")),
                       ("unwrapped single env", gym.make("CartPole-v1").unwrapped)]:
        env.reset(seed=0)
        acts = rng.integers(0, 2, 4096).tolist()
        i = [0]

        def step():
            a = acts[i[0] & 4095]
            i[0] += 1
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        print(json.dumps({"setup": label, "gymnasium": gym.__version__, "env_steps_per_s": round(measure(step, args.seconds))}))

    venv = gym.make_vec("CartPole-v1", num_envs=64, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    acts = rng.integers(0, 2, (256, 64))
    j = [0]

    def vstep():
        venv.step(acts[j[0] & 255])
        j[0] += 1
    sps = measure(vstep, args.seconds) * 64
    print(json.dumps({"setup": "CartPoleVectorEnv 64 envs", "gymnasium": gym.__version__, "env_steps_per_s": round(sps)}))


if __name__ == "__main__":
    main()
