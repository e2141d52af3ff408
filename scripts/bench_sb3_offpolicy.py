#!/usr/bin/env python3
"""Stable-Baselines3's off-policy peers for BENCHMARKS.md, with rl-baselines3-zoo's
hyperparameters, timed the way `paddock train` is:

  --algo sac   SAC on Pendulum-v1, 20k steps (zoo: learning_rate 1e-3, SB3 defaults otherwise)
  --algo td3   TD3 on Pendulum-v1, 20k steps (zoo: [400, 300], gamma 0.98, 10k random steps,
               normal action noise 0.1, buffer 200k)
  --algo dqn   DQN on CartPole-v1 until a 10-episode deterministic eval reaches 475 (every 10k)
  --replay     ReplayBuffer.sample(256) at 1M transitions (obs 17, action 6)

Prints one JSON line per seed: wall time, env steps/s (training, evaluation excluded) and
the final 10-episode deterministic evaluation mean.

Usage: python3 scripts/bench_sb3_offpolicy.py --algo sac [--seeds 1] [--threads 2] [--device cuda] [--steps N]
Needs: pip install torch==2.11.0 stable-baselines3==2.7.0 gymnasium==1.2.2
"""
import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch


def evaluate(model, env_id, episodes=10):
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(action)
            total += float(r)
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


def run(algo, seed, device="auto", sac_steps=20_000):
    from stable_baselines3 import DQN, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    if algo == "sac":
        env_id, steps = "Pendulum-v1", sac_steps
        model = SAC("MlpPolicy", gym.make(env_id), learning_rate=1e-3, seed=seed, device=device, verbose=0)
    elif algo == "td3":
        env_id, steps = "Pendulum-v1", 20_000
        env = gym.make(env_id)
        noise = NormalActionNoise(mean=np.zeros(1), sigma=0.1 * np.ones(1))
        model = TD3("MlpPolicy", env, learning_rate=1e-3, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
                    action_noise=noise, policy_kwargs=dict(net_arch=[400, 300]), seed=seed, verbose=0)
    else:
        env_id, steps = "CartPole-v1", 100_000
        model = DQN("MlpPolicy", gym.make(env_id), learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                    learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                    exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
                    seed=seed, verbose=0)
    if algo == "dqn":
        # Learn in 10k chunks, evaluating between them, until solved (zoo's total is 50k).
        train_time, done_steps, solved_at, mean = 0.0, 0, None, None
        while done_steps < steps:
            t0 = time.perf_counter()
            model.learn(10_000, reset_num_timesteps=False)
            train_time += time.perf_counter() - t0
            done_steps += 10_000
            mean = evaluate(model, env_id)
            if mean >= 475:
                solved_at = done_steps
                break
        return {"algo": algo, "seed": seed, "steps": done_steps, "train_s": train_time, "sps": done_steps / train_time,
                "solved_at_step": solved_at, "final_eval": mean}
    t0 = time.perf_counter()
    model.learn(steps)
    train_time = time.perf_counter() - t0
    return {"algo": algo, "seed": seed, "steps": steps, "train_s": train_time, "sps": steps / train_time,
            "final_eval": evaluate(model, env_id)}


def replay_bench():
    from stable_baselines3.common.buffers import ReplayBuffer
    obs_space = gym.spaces.Box(-1, 1, (17,), np.float32)
    act_space = gym.spaces.Box(-1, 1, (6,), np.float32)
    buf = ReplayBuffer(1_000_000, obs_space, act_space, device="cpu", n_envs=1000, handle_timeout_termination=False)
    for _ in range(1000):
        o = np.random.randn(1000, 17).astype(np.float32)
        buf.add(o, o, np.random.randn(1000, 6).astype(np.float32), np.random.randn(1000).astype(np.float32),
                np.zeros(1000, dtype=np.float32), [{}] * 1000)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        buf.sample(256)
    dt = (time.perf_counter() - t0) / n
    return {"bench": "sb3-replay-sample-256-at-1M", "us_per_sample": dt * 1e6, "transitions_per_s": 256 / dt}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--algo", choices=["sac", "td3", "dqn"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--replay", action="store_true")
    p.add_argument("--device", default="auto", help="torch device for SAC (auto: the GPU when torch sees one)")
    p.add_argument("--steps", type=int, default=20_000, help="SAC's env steps (the bar's figure is 20k)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.replay:
        print(json.dumps(replay_bench()), flush=True)
    if a.algo:
        for s in a.seeds:
            r = run(a.algo, s, a.device, a.steps)
            r["threads"] = a.threads
            r["device"] = a.device
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
