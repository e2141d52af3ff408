"""Stable-Baselines3's peer figure for benches/ppo_update.rs: one PPO.train() call (10 epochs)
on a rollout of 4096 transitions (16 CartPole-v1 envs x 256 steps), minibatch 4096 or 256,
[64, 64] and [256, 256] networks, on the CPU and (when torch sees one) the GPU. Only train()
is timed, with the GPU synchronised around it; the rollout is collected afresh before each.

Usage: python3 scripts/bench_sb3_update.py [--devices cpu cuda] [--repeats 10] [--threads N]
Needs: pip install torch==2.11.0 stable-baselines3==2.7.0 gymnasium==1.2.2
Prints one JSON line per case: median, min and max milliseconds per update.
"""
import argparse
import json
import statistics
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def case(device, hidden, minibatch, repeats):
    env = make_vec_env("CartPole-v1", n_envs=16, seed=7)
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=minibatch, n_epochs=10, learning_rate=1e-3,
                policy_kwargs=dict(net_arch=[hidden, hidden]), device=device, seed=7, verbose=0)
    _, callback = model._setup_learn(10**9, None)
    callback.on_training_start(locals(), globals())
    times = []
    for i in range(repeats + 2):
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        sync(device)
        t0 = time.perf_counter()
        model.train()
        sync(device)
        if i >= 2:  # two warm-up updates
            times.append((time.perf_counter() - t0) * 1e3)
    return {"device": device, "hidden": [hidden, hidden], "minibatch": minibatch, "median_ms": statistics.median(times),
            "min_ms": min(times), "max_ms": max(times), "repeats": repeats}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"device": "cuda", "skipped": "torch sees no GPU"}))
            continue
        for hidden, minibatch in [(64, 4096), (64, 256), (256, 4096), (256, 256)]:
            print(json.dumps(case(device, hidden, minibatch, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
