#!/usr/bin/env python3
"""Paddock's robot tasks beside Stable-Baselines3 on MuJoCo, in one sitting, with identical
PPO settings on both sides (16 envs, 128 steps per rollout, 10 epochs, minibatch 256,
[128, 128] networks, one libtorch thread each), Paddock's checkpoints at their default
interval, evaluations off on both sides (Paddock's one closing evaluation is a single
episode, timed inside its wall clock):

  arm-reach (PPO)    beside  SB3 PPO on Reacher-v5
  hopper (PPO)       beside  SB3 PPO on Hopper-v5
  cartpole-3d (PPO)  beside  SB3 PPO on InvertedPendulum-v5
  arm-reach (SAC)    beside  SB3 SAC on Reacher-v5   (SB3's SAC defaults on both sides)

Usage (the peers' venv, see BENCHMARKS.md):
  cargo build --release -p paddock && scripts/build-plugins.sh
  PEERS/bin/python scripts/bench_robots.py [--ppo-steps 51200] [--sac-steps 5000] [--only arm-reach-ppo ...]
Needs: pip install torch==2.11.0 stable-baselines3==2.7.0 gymnasium==1.2.2 mujoco
Prints one JSON line per run, then a Markdown table for BENCHMARKS.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PADDOCK = os.path.join(ROOT, "target", "release", "paddock")

PPO_SETS = [
    "env.num_envs=16", "algorithm.params.n-steps=128", "algorithm.params.n-epochs=10",
    "algorithm.params.minibatch-size=256", "algorithm.params.hidden=[128,128]", "algorithm.device=cpu",
    "train.threads=1", "train.eval_every=0", "train.eval_episodes=1", "train.hot_reload=false",
]

TASKS = {
    # name: (paddock config, extra --set, SB3 env id, SB3 algorithm)
    "arm-reach-ppo": ("configs/arm-reach-ppo.toml", PPO_SETS, "Reacher-v5", "ppo"),
    "hopper-ppo": ("configs/hopper-ppo.toml", PPO_SETS + ["algorithm.params.log-std-init=0.0"], "Hopper-v5", "ppo"),
    "cartpole-3d-ppo": ("configs/cartpole-3d-ppo.toml", PPO_SETS + ["algorithm.params.gamma=0.99", "algorithm.params.gae-lambda=0.95",
                                                                     "algorithm.params.learning-rate=0.0003"],
                        "InvertedPendulum-v5", "ppo"),
    "arm-reach-sac": ("configs/arm-reach-ppo.toml", ["algorithm.plugin=../target/plugins/sac.wasm", "env.num_envs=1",
                                                     "algorithm.params={}", "algorithm.device=cpu", "train.threads=1",
                                                     "train.eval_every=0", "train.eval_episodes=1", "train.hot_reload=false",
                                                     "train.checkpoint_every=10000"],
                      "Reacher-v5", "sac"),
}


def paddock(task, steps):
    config, sets, _, _ = TASKS[task]
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as store:
        args = [PADDOCK, "train", config, "--json", "--set", f"store={store}", "--set", f"total_steps={steps}"]
        for s in sets:
            args += ["--set", s]
        t0 = time.perf_counter()
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            sys.exit(f"paddock {task} failed:\n{out.stderr}")
        summary = json.loads(out.stdout)
        run_dir = summary["run_dir"]
        checkpoints = os.path.join(run_dir, "checkpoints")
        sizes = []
        for c in sorted(os.listdir(checkpoints)) if os.path.isdir(checkpoints) else []:
            d = os.path.join(checkpoints, c)
            sizes.append(sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)))
        log = open(os.path.join(run_dir, "log.txt")).read()
        return {"side": "paddock", "task": task, "steps": summary["steps"], "loop_s": round(summary["wall_s"], 2),
                "process_s": round(wall, 2), "steps_per_s": round(summary["steps"] / summary["wall_s"]),
                "checkpoint_bytes": sizes, "checkpoints_logged": log.count("checkpoint")}


def sb3(task, steps, seed=1):
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    _, _, env_id, algo = TASKS[task]
    if algo == "ppo":
        env = make_vec_env(env_id, n_envs=16, seed=seed)
        model = PPO("MlpPolicy", env, n_steps=128, batch_size=256, n_epochs=10, gamma=0.98, gae_lambda=0.95,
                    learning_rate=3e-4, ent_coef=0.0, clip_range=0.2, policy_kwargs=dict(net_arch=[128, 128]),
                    seed=seed, device="cpu", verbose=0)
    else:
        model = SAC("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    return {"side": "sb3", "task": task, "env": env_id, "steps": model.num_timesteps, "loop_s": round(wall, 2),
            "steps_per_s": round(model.num_timesteps / wall)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ppo-steps", type=int, default=51_200)
    ap.add_argument("--sac-steps", type=int, default=5_000)
    ap.add_argument("--only", nargs="+", choices=list(TASKS), default=list(TASKS))
    ap.add_argument("--side", choices=["both", "paddock", "sb3"], default="both")
    args = ap.parse_args()
    rows = []
    for task in args.only:
        steps = args.sac_steps if task.endswith("sac") else args.ppo_steps
        pair = {}
        for side in (["paddock", "sb3"] if args.side == "both" else [args.side]):
            r = paddock(task, steps) if side == "paddock" else sb3(task, steps)
            print(json.dumps(r), flush=True)
            pair[side] = r
        rows.append((task, pair))
    print("\n| task | Paddock env steps/s | SB3 env steps/s (MuJoCo) | ratio |")
    print("|---|---:|---:|---:|")
    for task, pair in rows:
        p, s = pair.get("paddock"), pair.get("sb3")
        ratio = f"{p['steps_per_s'] / s['steps_per_s']:.2f}×" if p and s else ""
        print(f"| {task} | {p['steps_per_s'] if p else ''} | {s['steps_per_s'] if s else ''} ({TASKS[task][2]}) | {ratio} |")


if __name__ == "__main__":
    main()
