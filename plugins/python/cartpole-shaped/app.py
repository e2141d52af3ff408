# world: reward
"""CartPole reward shaping, written in Python: the same reward as the Rust plugin
`plugins/rewards/cartpole-shaped` (keep the pole upright and the cart centred; a penalty
when the episode fails), built into a `reward`-world component by componentize-py.

Build (scripts/build-plugins.sh does this, and caches the result):

    componentize-py -d wit -w reward componentize app \
        -p plugins/python/cartpole-shaped -o target/plugins/cartpole-shaped-py.wasm

Parameters (`[reward.params]`): `angle-weight` (0.5), `position-weight` (0.25),
`fail-penalty` (-1.0).
"""

import math

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import reward_fn
from wit_world.imports import types

THETA_MAX = 12.0 * 2.0 * math.pi / 360.0
X_MAX = 2.4
KNOWN = ("angle-weight", "position-weight", "fail-penalty")


def _real(params, name, default):
    """A real-valued parameter; ints are accepted, anything else is refused by name."""
    for key, value in params:
        if key != name:
            continue
        if isinstance(value, (types.Value_Real, types.Value_Int)):
            return float(value.value)
        raise Err(types.PluginError_InvalidParams(f"parameter `{name}` must be a number"))
    return default


# componentize-py makes a new `RewardFn` for each call: state lives at module level.
_weights = None


class RewardFn(exports.RewardFn):
    def init(self, spec, params):
        global _weights
        for key, _ in params:
            if key not in KNOWN:
                raise Err(types.PluginError_InvalidParams(
                    f"unknown parameter `{key}` (cartpole-shaped-py knows {', '.join(KNOWN)})"))
        obs = spec.observation_space
        if not (isinstance(obs, types.Space_Box) and list(obs.value.shape) == [4]):
            raise Err(types.PluginError_InvalidParams(
                f"cartpole-shaped-py scores CartPole-like envs (4 observation values), not {spec.id}"))
        _weights = (
            _real(params, "angle-weight", 0.5),
            _real(params, "position-weight", 0.25),
            _real(params, "fail-penalty", -1.0),
        )

    def compute(self, batch: reward_fn.Transitions):
        if _weights is None:
            raise Err(types.PluginError_InvalidState("compute before init"))
        angle_w, position_w, fail = _weights
        nxt = batch.next_observations
        out = []
        for i in range(batch.num_envs):
            if batch.terminated[i]:
                out.append(fail)
                continue
            x = nxt[4 * i] / X_MAX
            theta = nxt[4 * i + 2] / THETA_MAX
            out.append(1.0 - angle_w * theta * theta - position_w * x * x)
        return out
