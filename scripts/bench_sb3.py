#!/usr/bin/env python3
"""Stable-Baselines3's PPO on CartPole-v1 with rl-baselines3-zoo's hyperparameters, timed the
way `paddock train configs/cartpole-ppo.toml` is: wall-clock time until a 10-episode
deterministic evaluation reaches 475 (evaluating every 10k env steps), and training env
steps per second. For BENCHMARKS.md (the peer figure).

Usage: python3 scripts/bench_sb3.py [--algo ppo|a2c] [--seeds 1 2 3] [--max-steps N]
(`--algo a2c`: the zoo's CartPole-v1 A2C, 8 envs and SB3's defaults, up to 500k steps.)
Needs: pip install torch==2.11.0 stable-baselines3==2.7.0 gymnasium==1.2.2
"""
import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.callbacks import BaseCallback


class EvalUntilSolved(BaseCallback):
    def __init__(self, every, episodes, threshold):
        super().__init__()
        self.every, self.episodes, self.threshold = every, episodes, threshold
        self.next = every
        self.solved_at = None
        self.eval_env = gym.make("CartPole-v1")
        self.eval_time = 0.0

    def _on_step(self):
        if self.num_timesteps < self.next:
            return True
        self.next += self.every
        t0 = time.perf_counter()
        returns = []
        for ep in range(self.episodes):
            obs, _ = self.eval_env.reset(seed=10_000 + ep)
            done, total = False, 0.0
            while not done:
                action, _ = self.model.predict(obs, deterministic=True)
                obs, r, term, trunc, _ = self.eval_env.step(action)
                total += r
                done = term or trunc
            returns.append(total)
        self.eval_time += time.perf_counter() - t0
        if np.mean(returns) >= self.threshold:
            self.solved_at = self.num_timesteps
            return False
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--algo", choices=["ppo", "a2c"], default="ppo")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
        if args.algo == "ppo":
            max_steps = args.max_steps or 100_000
            model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                        ent_coef=0.0, learning_rate=0.001, clip_range=0.2, seed=seed, device="cpu", verbose=0)
        else:
            # The zoo's CartPole-v1 A2C: 8 envs, SB3's A2C defaults (ent_coef 0).
            max_steps = args.max_steps or 500_000
            model = A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu", verbose=0)
        cb = EvalUntilSolved(10_000, 10, 475.0)
        t0 = time.perf_counter()
        model.learn(total_timesteps=max_steps, callback=cb)
        wall = time.perf_counter() - t0
        steps = model.num_timesteps
        print(json.dumps({"peer": "stable-baselines3", "algo": args.algo, "version": __import__("stable_baselines3").__version__,
                          "torch": torch.__version__, "seed": seed, "solved_at_step": cb.solved_at,
                          "wall_s": round(wall, 2), "train_steps_per_s": round(steps / max(wall - cb.eval_time, 1e-9))}))


if __name__ == "__main__":
    main()
