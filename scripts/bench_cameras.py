#!/usr/bin/env python3
"""Peer figures for Paddock's camera renderer (`cargo bench --bench camera`): 64×64 colour
+ depth images per second, on one core, of a 7-joint arm on a floor with a target ball seen
from the front, by PyBullet's `getCameraImage` (its CPU TinyRenderer, which also returns a
segmentation mask) and MuJoCo's `Renderer` (OpenGL through OSMesa, the CPU path on a machine
without a GPU: `MUJOCO_GL=osmesa`, Debian's libosmesa6).

Usage: MUJOCO_GL=osmesa python scripts/bench_cameras.py [--seconds S] [--size N]
(`pip install pybullet mujoco numpy` in a separate venv). PyBullet loads robots/arm7.urdf
itself; MuJoCo gets the same arm written as MJCF below (capsules of the same sizes). Prints
one JSON line per renderer.
"""
import argparse
import json
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
READY = [0.0, 0.4, 0.0, -1.6, 0.0, 1.2, 0.0]


def bench(fn, seconds):
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - start)


def pybullet_rate(size, seconds):
    import pybullet as p

    p.connect(p.DIRECT)
    floor = p.createCollisionShape(p.GEOM_BOX, halfExtents=[1, 1, 0.05])
    p.createMultiBody(0, floor, basePosition=[0, 0, -0.05])
    arm = p.loadURDF(os.path.join(HERE, "..", "robots", "arm7.urdf"), useFixedBase=True)
    movable = [j for j in range(p.getNumJoints(arm)) if p.getJointInfo(arm, j)[2] != p.JOINT_FIXED]
    for j, q in zip(movable, READY):
        p.resetJointState(arm, j, q)
    ball = p.createVisualShape(p.GEOM_SPHERE, radius=0.05, rgbaColor=[1, 0, 0, 1])
    p.createMultiBody(0, -1, ball, basePosition=[0.4, 0.3, 0.6])
    view = p.computeViewMatrix([2.0, 0, 0.8], [0, 0, 0.55], [0, 0, 1])
    proj = p.computeProjectionMatrixFOV(50, 1.0, 0.01, 10.0)
    render = lambda: p.getCameraImage(size, size, view, proj, renderer=p.ER_TINY_RENDERER)
    rate = bench(render, seconds)
    p.disconnect()
    return {"renderer": f"pybullet {p.getAPIVersion()} getCameraImage (TinyRenderer; rgb+depth+seg)", "size": size, "images_per_s": rate}


MJCF = """
<mujoco>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom type="box" size="1 1 0.05" pos="0 0 -0.05" rgba="0.55 0.55 0.52 1"/>
    <geom type="sphere" size="0.05" pos="0.4 0.3 0.6" rgba="1 0 0 1" contype="0" conaffinity="0"/>
    <camera name="front" pos="2 0 0.8" xyaxes="0 1 0 -0.124 0 0.992" fovy="50"/>
    <body pos="0 0 0"><geom type="capsule" fromto="0 0 0.05 0 0 0.051" size="0.1"/>
      <body pos="0 0 0.1"><joint axis="0 0 1"/><geom type="capsule" fromto="0 0 0.07 0 0 0.13" size="0.07"/>
        <body pos="0 0 0.2"><joint axis="0 1 0"/><geom type="capsule" fromto="0 0 0.06 0 0 0.24" size="0.06"/>
          <body pos="0 0 0.3"><joint axis="0 0 1"/><geom type="capsule" fromto="0 0 0.055 0 0 0.145" size="0.055"/>
            <body pos="0 0 0.2"><joint axis="0 1 0"/><geom type="capsule" fromto="0 0 0.05 0 0 0.25" size="0.05"/>
              <body pos="0 0 0.3"><joint axis="0 0 1"/><geom type="capsule" fromto="0 0 0.045 0 0 0.055" size="0.045"/>
                <body pos="0 0 0.1"><joint axis="0 1 0"/><geom type="capsule" fromto="0 0 0.04 0 0 0.06" size="0.04"/>
                  <body pos="0 0 0.1"><joint axis="0 0 1"/><geom type="capsule" fromto="0 0 0.025 0 0 0.026" size="0.04"/>
                    <body pos="0 0 0.05"><geom type="box" size="0.08 0.02 0.03" pos="0 0 0.03"/></body>
                  </body></body></body></body></body></body></body></body>
  </worldbody>
</mujoco>
"""


def mujoco_rate(size, seconds):
    import mujoco

    model = mujoco.MjModel.from_xml_string(MJCF)
    data = mujoco.MjData(model)
    data.qpos[:] = READY
    mujoco.mj_forward(model, data)
    r = mujoco.Renderer(model, size, size)

    def render():
        r.update_scene(data, camera="front")
        r.disable_depth_rendering()
        rgb = r.render()
        r.enable_depth_rendering()
        depth = r.render()
        return rgb, depth

    rate = bench(render, seconds)
    return {"renderer": f"mujoco {mujoco.__version__} Renderer ({os.environ.get('MUJOCO_GL', 'default GL')}; rgb then depth)", "size": size, "images_per_s": rate}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for fn in (pybullet_rate, mujoco_rate):
        try:
            print(json.dumps(fn(args.size, args.seconds)), flush=True)
        except Exception as e:  # a renderer that cannot start here is reported, not fatal
            print(json.dumps({"renderer": fn.__name__, "error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
