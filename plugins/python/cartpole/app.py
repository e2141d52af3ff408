# world: environment
"""CartPole-v1 written in Python on the guest SDK (`plugins/python/sdk/paddock_sdk.py`): the
same env as the Rust plugin `plugins/envs/cartpole`, step for step — the same dynamics, the
same seeded start states (the SDK's generator is the Rust SDK's), the same snapshots'
layout — built into an `environment` component by componentize-py:

    componentize-py -d wit -w environment componentize app \\
        -p plugins/python/cartpole -p plugins/python/sdk -o target/plugins/cartpole-py.wasm

Parameters: `sutton-barto-reward` (bool), `initial-state` (4 reals, used at every reset).
Reset options: `initial-state`, `low`, `high` (bounds of the uniform start, default ±0.05).
"""

import math

from paddock_sdk import Environment, box, discrete, discrete_action, env_spec, export_env, invalid_params

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
LENGTH = 0.5
POLEMASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12.0 * 2.0 * math.pi / 360.0
X_THRESHOLD = 2.4
PARAMS = ("sutton-barto-reward", "initial-state")


class CartPole(Environment):
    NAME = "cartpole-py"

    @staticmethod
    def spec(params):
        params.check_known(PARAMS)
        sutton_barto = params.flag("sutton-barto-reward", False)
        high = [X_THRESHOLD * 2.0, math.inf, THETA_THRESHOLD * 2.0, math.inf]
        return env_spec(
            "CartPole-v1",
            box([-h for h in high], high),
            discrete(2),
            max_episode_steps=500,
            reward_threshold=0.0 if sutton_barto else 475.0,
            max_envs_per_instance=4096,
        )

    def __init__(self, params):
        params.check_known(PARAMS)
        self.state = [0.0, 0.0, 0.0, 0.0]
        self.sutton_barto = params.flag("sutton-barto-reward", False)
        self.initial = params.reals("initial-state", 4)

    def reset(self, rng, options):
        options.check_known(("initial-state", "low", "high"))
        start = options.reals("initial-state", 4) or self.initial
        if start is not None:
            self.state = list(start)
            return
        low, high = options.real("low", -0.05), options.real("high", 0.05)
        if low > high:
            raise invalid_params(f"reset option low ({low}) > high ({high})")
        self.state = [rng.uniform(low, high) for _ in range(4)]

    def step(self, action, rng):
        a = discrete_action(action, 2, self.NAME)
        x, x_dot, theta, theta_dot = self.state
        force = FORCE_MAG if a == 1 else -FORCE_MAG
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS))
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        x = x + TAU * x_dot
        x_dot = x_dot + TAU * xacc
        theta = theta + TAU * theta_dot
        theta_dot = theta_dot + TAU * thetaacc
        self.state = [x, x_dot, theta, theta_dot]
        terminated = x < -X_THRESHOLD or x > X_THRESHOLD or theta < -THETA_THRESHOLD or theta > THETA_THRESHOLD
        if not self.sutton_barto:
            reward = 1.0
        else:
            reward = -1.0 if terminated else 0.0
        return reward, terminated

    def observe(self):
        return self.state

    # The state is the four reals (the run's params are not part of a snapshot).
    def save(self):
        import struct

        return struct.pack("<4d", *self.state)

    def load(self, data):
        import struct

        if len(data) != 32:
            raise invalid_params(f"a cartpole-py snapshot holds 32 bytes, not {len(data)}")
        self.state = list(struct.unpack("<4d", data))


Env = export_env(CartPole)
