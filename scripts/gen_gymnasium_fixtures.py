#!/usr/bin/env python3
"""Records Gymnasium trajectories from given initial states and action sequences into
tests/fixtures/gymnasium/<env>.json, for the replay test (tests/gymnasium.rs) that runs
the same states and actions through Paddock's env plugins.

Usage: python3 scripts/gen_gymnasium_fixtures.py   (needs `pip install -r scripts/requirements-peers.txt`)

Each env gets >= 1,000 steps in several episodes: random actions (some outside the action
bounds, to test clipping), controllers that reach the time limit or the goal, so that
terminated and truncated flags are both exercised. Initial states are drawn by NumPy with
a fixed seed and set on the unwrapped env after reset, as Paddock's `initial-state` does.
"""
import json
import math
import pathlib
import sys

import gymnasium as gym
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "gymnasium"
RNG = np.random.default_rng(20261122)


def run_episode(env_id, initial_state, policy, max_steps, state_dtype=np.float64):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.unwrapped.state = np.array(initial_state, dtype=state_dtype)
    obs = env.unwrapped._get_obs() if hasattr(env.unwrapped, "_get_obs") else (
        env.unwrapped._get_ob() if hasattr(env.unwrapped, "_get_ob") else np.array(env.unwrapped.state, dtype=np.float32))
    ep = {"initial_state": [float(x) for x in initial_state], "reset_obs": [float(x) for x in obs],
          "actions": [], "obs": [], "rewards": [], "terminated": [], "truncated": []}
    for _ in range(max_steps):
        action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        ep["actions"].append([float(a) for a in np.atleast_1d(action)])
        ep["obs"].append([float(x) for x in obs])
        ep["rewards"].append(float(reward))
        ep["terminated"].append(bool(terminated))
        ep["truncated"].append(bool(truncated))
        if terminated or truncated:
            break
    env.close()
    return ep


def random_discrete(n):
    return lambda obs: int(RNG.integers(n))


def random_box(low, high):
    return lambda obs: np.array([RNG.uniform(low, high)], dtype=np.float32)


# A PD controller on angle and angular velocity that balances CartPole to its time limit.
CARTPOLE_PD = [0.01, 0.05, 1.0, 0.5]


def cartpole_pd(obs):
    w = CARTPOLE_PD
    # float32 arithmetic in this order, as the Rust test recomputes it.
    return int(obs[2] * np.float32(w[2]) + obs[3] * np.float32(w[3]) + obs[0] * np.float32(w[0]) + obs[1] * np.float32(w[1]) > 0)


def cartpole():
    # Replaying actions open-loop on an unstable pole amplifies a 1-ulp difference (Wasm's
    # libm vs glibc) by ~e^0.11 per step, past 1e-5 after ~230 steps: the controller
    # segments stop at 150 steps. The 500-step truncation is checked closed-loop instead
    # (see `closed_loop` below and tests/gymnasium.rs).
    eps = [run_episode("CartPole-v1", RNG.uniform(-0.05, 0.05, 4), cartpole_pd, 150) for _ in range(4)]
    eps += [run_episode("CartPole-v1", RNG.uniform(-0.15, 0.15, 4), random_discrete(2), 600) for _ in range(30)]
    return eps


def cartpole_closed_loop():
    """Gymnasium's episode lengths under the PD controller, from given initial states."""
    out = []
    for _ in range(3):
        init = RNG.uniform(-0.05, 0.05, 4)
        ep = run_episode("CartPole-v1", init, cartpole_pd, 600)
        out.append({"initial_state": [float(x) for x in init], "length": len(ep["actions"]),
                    "terminated": ep["terminated"][-1], "truncated": ep["truncated"][-1]})
    return {"weights": CARTPOLE_PD, "episodes": out}


def pendulum():
    states = [[RNG.uniform(-math.pi, math.pi), RNG.uniform(-1, 1)] for _ in range(5)] + [[math.pi, 8.0]]
    # Actions up to +-2.5 exercise the torque clipping at +-2.
    return [run_episode("Pendulum-v1", s, random_box(-2.5, 2.5), 300) for s in states]


def acrobot():
    eps = [run_episode("Acrobot-v1", RNG.uniform(-0.1, 0.1, 4), random_discrete(3), 600) for _ in range(2)]
    # Pump energy with the sign of the second joint's velocity: reaches the goal (terminated).
    pump = lambda obs: 2 if obs[5] > 0 else 0
    eps += [run_episode("Acrobot-v1", RNG.uniform(-0.1, 0.1, 4), pump, 600) for _ in range(3)]
    return eps


def mountain_car():
    states = [np.float32(RNG.uniform(-0.6, -0.4)) for _ in range(3)]
    eps = [run_episode("MountainCarContinuous-v0", [states[0], 0.0], random_box(-1.3, 1.3), 1200, np.float32)]
    # Push with the velocity's sign: reaches the goal (terminated, reward +100).
    push = lambda obs: np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32)
    eps += [run_episode("MountainCarContinuous-v0", [s, 0.0], push, 1200, np.float32) for s in states[1:]]
    # Start at the left wall moving left: exercises the position clamp and velocity reset.
    eps += [run_episode("MountainCarContinuous-v0", [np.float32(-1.19), np.float32(-0.06)], random_box(-0.5, 0.5), 50, np.float32)]
    return eps


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for env_id, name, make in [("CartPole-v1", "cartpole", cartpole), ("Pendulum-v1", "pendulum", pendulum),
                               ("Acrobot-v1", "acrobot", acrobot),
                               ("MountainCarContinuous-v0", "mountain-car-continuous", mountain_car)]:
        eps = make()
        steps = sum(len(e["actions"]) for e in eps)
        flags = (sum(e["terminated"][-1] for e in eps), sum(e["truncated"][-1] for e in eps))
        doc = {"env_id": env_id, "plugin": name, "gymnasium": gym.__version__, "numpy": np.__version__,
               "steps": steps, "episodes": eps}
        if name == "cartpole":
            doc["closed_loop"] = cartpole_closed_loop()
        (OUT / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        print(f"{env_id}: {len(eps)} episodes, {steps} steps, {flags[0]} terminated, {flags[1]} truncated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
