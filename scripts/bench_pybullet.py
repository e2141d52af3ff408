#!/usr/bin/env python3
"""PyBullet's Reacher (`ReacherBulletEnv` of pybullet_envs, the classic PyBullet gym env)
steps/s on this machine: a peer figure for Paddock's `arm-reach` in BENCHMARKS.md.

Usage: .venv/bin/python scripts/bench_pybullet.py [--seconds S]
(`pip install pybullet gymnasium`). pybullet_envs was written against the old `gym`
package; Gymnasium stands in for it (the env uses only `gym.Env`, `gym.spaces` and
`gym.utils.seeding`, which Gymnasium keeps), and its registering `__init__` is skipped. Random actions, resets when an episode ends
(150 steps); prints one JSON line.
"""
import argparse
import importlib.util
import json
import os
import sys
import time
import types

import gymnasium
import numpy as np

sys.modules["gym"] = gymnasium  # pybullet_envs imports `gym`
# Its __init__ registers every env with the old gym registry (which Gymnasium lacks): load
# the package's modules without running it.
_spec = importlib.util.find_spec("pybullet_envs")
_pkg = types.ModuleType("pybullet_envs")
_pkg.__path__ = [os.path.dirname(_spec.origin)]
sys.modules["pybullet_envs"] = _pkg

from pybullet_envs.gym_manipulator_envs import ReacherBulletEnv  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    env = ReacherBulletEnv()
    env.seed(0)
    env.reset()
    rng = np.random.default_rng(0)
    n, start, t = 0, time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        for _ in range(1000):
            _, _, done, _ = env.step(rng.uniform(-1, 1, size=2).astype(np.float32))
            t += 1
            if done or t >= 150:
                env.reset()
                t = 0
        n += 1000
    print(json.dumps({"env": "ReacherBulletEnv (pybullet 3.2.7)", "setup": "1 env", "steps_per_s": n / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
