#!/usr/bin/env python3
"""Step rate of each published robot in PyBullet and in Paddock, on the same URDF files
(robots/pybullet_data/, fetched by scripts/setup.sh), in the same sitting: one world with
the robot on a floor, gravity, a 10 ms step, motors off (PyBullet's default joint motors
disabled); arms on a fixed base at the floor, the rest free, dropped from 0.6 m (they land
and settle). One core each, run one after the other.

PyBullet steps its own world (`stepSimulation`, its defaults otherwise: 50 solver
iterations); Paddock's figure is `paddock env robot FILE --seconds S --json` (rapier3d, one
substep of four solver passes, the solver an env gets by default). Load time too: parsing
the URDF, reading meshes, building the world.

Usage: PEER_PYTHON scripts/bench_urdf.py [--seconds 5] [--paddock target/release/paddock]
(`pip install pybullet==3.2.7` in the peers' venv). Prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import pybullet as p
import pybullet_data

ROBOTS = [
    ("kuka_iiwa/model.urdf", True),
    ("franka_panda/panda.urdf", True),
    ("a1/a1.urdf", False),
    ("laikago/laikago_toes_zup.urdf", False),
    ("husky/husky.urdf", False),
    ("r2d2.urdf", False),
]


def pybullet_rate(data, path, fixed, seconds):
    cid = p.connect(p.DIRECT)
    p.setGravity(0, 0, -9.81, physicsClientId=cid)
    p.setTimeStep(0.01, physicsClientId=cid)
    p.loadURDF(os.path.join(pybullet_data.getDataPath(), "plane.urdf"), physicsClientId=cid)
    t = time.perf_counter()
    body = p.loadURDF(path, basePosition=[0, 0, 0 if fixed else 0.6], useFixedBase=fixed, physicsClientId=cid)
    load_ms = (time.perf_counter() - t) * 1e3
    for j in range(p.getNumJoints(body, physicsClientId=cid)):
        p.setJointMotorControl2(body, j, p.VELOCITY_CONTROL, force=0, physicsClientId=cid)
    steps = int(seconds / 0.01)
    t = time.perf_counter()
    for _ in range(steps):
        p.stepSimulation(physicsClientId=cid)
    rate = steps / (time.perf_counter() - t)
    p.disconnect(cid)
    return load_ms, rate


def paddock_rate(binary, path, fixed, seconds):
    args = [binary, "env", "robot", path, "--json", "--seconds", str(seconds), "--floor"]
    args += ["--height", "0"] if fixed else ["--height", "0.6", "--free-base"]
    r = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    return r["load_ms"], r["step_rate"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--paddock", default="target/release/paddock")
    ap.add_argument("--data", default="robots/pybullet_data")
    a = ap.parse_args()
    print("| robot | base | PyBullet steps/s | Paddock steps/s | ratio | load PyBullet / Paddock (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for rel, fixed in ROBOTS:
        path = os.path.join(a.data, rel)
        pl, pr = pybullet_rate(a.data, path, fixed, a.seconds)
        ql, qr = paddock_rate(a.paddock, path, fixed, a.seconds)
        base = "fixed" if fixed else "free"
        sys.stdout.flush()
        print(f"\n| `{rel}` | {base} | {pr:,.0f} | {qr:,.0f} | {qr / pr:.2f}× | {pl:.0f} / {ql:.0f} |")


if __name__ == "__main__":
    main()
