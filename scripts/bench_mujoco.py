#!/usr/bin/env python3
"""MuJoCo envs' steps/s through Gymnasium on this machine: the peer figures for Paddock's
physics envs in BENCHMARKS.md — InvertedPendulum-v5 (a cart-pole) beside `cartpole-3d`,
Reacher-v5 beside `arm-reach`.

Usage: .venv/bin/python scripts/bench_mujoco.py [--env ID] [--seconds S] [--envs N]
(`pip install 'gymnasium[mujoco]'`). Prints one JSON line per setup: one env via gym.make
with random actions, auto-resetting; and N envs in Gymnasium's SyncVectorEnv.
"""
import argparse
import json
import time

import gymnasium as gym
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--env", default="InvertedPendulum-v5")
    args = ap.parse_args()

    name = args.env
    env = gym.make(name)
    low, high = env.action_space.low, env.action_space.high
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for _ in range(1000):
            _, _, term, trunc, _ = env.step(rng.uniform(low, high).astype(np.float32))
            if term or trunc:
                env.reset()
        n += 1000
    print(json.dumps({"env": name, "setup": "gym.make, 1 env", "steps_per_s": n / (time.perf_counter() - start)}))

    venv = gym.vector.SyncVectorEnv([lambda: gym.make(name) for _ in range(args.envs)])
    venv.reset(seed=0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for _ in range(100):
            venv.step(rng.uniform(low, high, size=(args.envs, len(low))).astype(np.float32))
        n += 100 * args.envs
    print(json.dumps({"env": name, "setup": f"SyncVectorEnv, {args.envs} envs", "steps_per_s": n / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
