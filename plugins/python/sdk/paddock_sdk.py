"""Paddock's guest SDK for Python plugins (componentize-py), as thin as the Rust SDK
(`plugins/sdk`): parameters with checks, spaces and specs, errors, the Rust SDK's random
generator (xoshiro256++, so a Python env draws exactly what a Rust one would), and an env
driver: write one env's `reset`/`step`/`observe`, and `export_env` gives the whole `env`
interface — many envs per instance, a vectorised `step-all` with auto-reset, the episode
step limit, seeding, and snapshots (the Rust SDK's layout; the env's own state through
`save`/`load`, by default every attribute of the env, pickled).

    from paddock_sdk import Environment, Params, box, discrete, env_spec, export_env

    class MyEnv(Environment):
        @staticmethod
        def spec(params): return env_spec("MyEnv-v0", box([-1.0], [1.0]), discrete(2), max_episode_steps=200)
        def __init__(self, params): self.x = 0.0
        def reset(self, rng, options): self.x = rng.uniform(-0.1, 0.1)
        def step(self, action, rng): ...; return reward, terminated
        def observe(self): return [self.x]

    Env = export_env(MyEnv)        # the class componentize-py looks for

Build with the SDK on the path: `componentize-py -d wit -w environment componentize app
-p . -p path/to/sdk -o my-env.wasm` (`paddock plugin new --lang python` copies this file
into the project).
"""

import pickle
import struct

from componentize_py_types import Err

MASK = (1 << 64) - 1
SNAPSHOT_MAGIC = b"PDE1"


def _types():
    from wit_world.imports import types

    return types


# --- errors -------------------------------------------------------------------------------


def invalid_params(message):
    """An `invalid-params` error to raise."""
    return Err(_types().PluginError_InvalidParams(message))


def invalid_action(message):
    """An `invalid-action` error to raise."""
    return Err(_types().PluginError_InvalidAction(message))


def invalid_state(message):
    """An `invalid-state` error to raise."""
    return Err(_types().PluginError_InvalidState(message))


def unsupported(message):
    """An `unsupported` error to raise."""
    return Err(_types().PluginError_Unsupported(message))


# --- the generator ------------------------------------------------------------------------


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Rng:
    """xoshiro256++ seeded by splitmix64: the Rust SDK's `Rng`, draw for draw."""

    __slots__ = ("s",)

    def __init__(self, seed=0):
        x = seed & MASK
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            s.append(z ^ (z >> 31))
        self.s = s

    def next_u64(self):
        """The next 64 random bits."""
        s = self.s
        result = (_rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def next_f64(self):
        """A uniform draw in [0, 1) with 53 random bits."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def uniform(self, low, high):
        """A uniform draw in [low, high)."""
        return low + (high - low) * self.next_f64()

    def below(self, n):
        """A uniform integer in [0, n)."""
        return self.next_u64() % n

    def to_bytes(self):
        """The state as 32 bytes (for snapshots)."""
        return struct.pack("<4Q", *self.s)

    @classmethod
    def from_bytes(cls, data):
        """The generator whose state `to_bytes` gave."""
        r = cls.__new__(cls)
        r.s = list(struct.unpack("<4Q", data))
        return r


# --- parameters ---------------------------------------------------------------------------


class Params:
    """A plugin's parameters (`[env.params]`, reset options): typed reads whose errors name
    the key, and a check for unknown keys."""

    def __init__(self, pairs, who="plugin"):
        self.pairs = list(pairs)
        self.who = who

    def _get(self, name):
        for key, value in self.pairs:
            if key == name:
                return value
        return None

    def check_known(self, known):
        """Refuses any key not in `known`, naming it and the keys this plugin knows."""
        for key, _ in self.pairs:
            if key not in known:
                raise invalid_params(f"unknown parameter `{key}` ({self.who} knows {', '.join(known) or 'none'})")

    def real(self, name, default):
        """A number (an int is accepted)."""
        v = self._get(name)
        if v is None:
            return default
        t = _types()
        if isinstance(v, (t.Value_Real, t.Value_Int)):
            return float(v.value)
        raise invalid_params(f"parameter `{name}` must be a number")

    def int(self, name, default):
        """A whole number."""
        v = self._get(name)
        if v is None:
            return default
        t = _types()
        if isinstance(v, t.Value_Int):
            return int(v.value)
        if isinstance(v, t.Value_Real) and float(v.value).is_integer():
            return int(v.value)
        raise invalid_params(f"parameter `{name}` must be a whole number")

    def flag(self, name, default):
        """A boolean."""
        v = self._get(name)
        if v is None:
            return default
        if isinstance(v, _types().Value_Bool):
            return bool(v.value)
        raise invalid_params(f"parameter `{name}` must be true or false")

    def text(self, name, default):
        """A string."""
        v = self._get(name)
        if v is None:
            return default
        if isinstance(v, _types().Value_Text):
            return v.value
        raise invalid_params(f"parameter `{name}` must be a string")

    def reals(self, name, length=None):
        """A list of numbers (of `length`, when given), or None when absent."""
        v = self._get(name)
        if v is None:
            return None
        if not isinstance(v, _types().Value_Reals):
            raise invalid_params(f"parameter `{name}` must be a list of numbers")
        values = [float(x) for x in v.value]
        if length is not None and len(values) != length:
            raise invalid_params(f"parameter `{name}` must be {length} numbers, got {len(values)}")
        return values

    def widths(self, name, default):
        """Layer widths: whole numbers from 1 to 65536."""
        values = self.reals(name)
        if values is None:
            return list(default)
        for x in values:
            if not (x == int(x) and 1 <= x <= 65536):
                raise invalid_params(f"parameter `{name}` must list whole widths from 1 to 65536, got {x}")
        return [int(x) for x in values]

    def count(self, name, default):
        """A whole number of at least 1."""
        v = self.int(name, default)
        if v < 1:
            raise invalid_params(f"parameter `{name}` must be at least 1, got {v}")
        return v

    def positive(self, name, default):
        """A number above 0."""
        x = self.real(name, default)
        if not x > 0:
            raise invalid_params(f"`{name}` must be above 0, got {x}")
        return x

    def fraction(self, name, default):
        """A number from 0 to 1."""
        x = self.real(name, default)
        if not 0.0 <= x <= 1.0:
            raise invalid_params(f"`{name}` must be from 0 to 1, got {x}")
        return x

    def non_negative(self, name, default):
        """A number of 0 or more."""
        x = self.real(name, default)
        if not x >= 0:
            raise invalid_params(f"`{name}` must be 0 or more, got {x}")
        return x


# --- spaces and specs ---------------------------------------------------------------------


def box(low, high):
    """A 1-D box space."""
    if len(low) != len(high):
        raise invalid_params("box: low and high differ in length")
    return _types().Space_Box(_types().BoxSpace(low=list(low), high=list(high), shape=[len(low)]))


def discrete(n, start=0):
    """A discrete space of `n` actions from `start`."""
    return _types().Space_Discrete(_types().DiscreteSpace(n=n, start=start))


def flat_len(space):
    """How many values a point of `space` has."""
    t = _types()
    if isinstance(space, t.Space_Discrete):
        return 1
    if isinstance(space, t.Space_Box):
        n = 1
        for d in space.value.shape:
            n *= d
        return n
    return len(space.value.nvec)


def env_spec(id, observation_space, action_space, max_episode_steps=None, info_features=(), reward_threshold=None,
             max_envs_per_instance=1024, supports_snapshot=True):
    """An env's spec (the SDK applies `max_episode_steps` for you)."""
    return _types().EnvSpec(
        id=id,
        observation_space=observation_space,
        action_space=action_space,
        max_episode_steps=max_episode_steps,
        info_features=list(info_features),
        reward_threshold=reward_threshold,
        max_envs_per_instance=max_envs_per_instance,
        supports_snapshot=supports_snapshot,
    )


def discrete_action(action, n, who="env"):
    """The action of a `Discrete(n)` space as an int, or an `invalid-action` error."""
    if len(action) != 1:
        raise invalid_action(f"{who}: expected 1 action value, got {len(action)}")
    a = action[0]
    if not (a == int(a) and 0 <= a < n):
        raise invalid_action(f"action {a:g} is not in Discrete({n})")
    return int(a)


def log(message, level="info"):
    """A line in the run's log (`debug`, `info`, `warn`, `error`)."""
    from wit_world.imports import log as _log

    _log.write(getattr(_log.Level, level.upper()), message)


# --- envs ---------------------------------------------------------------------------------


class Environment:
    """One env. Implement `spec` (a static method), `__init__(params)`, `reset(rng,
    options)`, `step(action, rng) -> (reward, terminated)` and `observe() -> list`; optionally
    `infos() -> list` (one value per spec `info_features`), `truncation() -> str | None`
    (ends the episode as truncated, logged), and `save() -> bytes` / `load(bytes)` when
    pickling every attribute is not what you want."""

    def infos(self):
        return []

    def truncation(self):
        return None

    def save(self):
        return pickle.dumps(self.__dict__, protocol=4)

    def load(self, data):
        self.__dict__.update(pickle.loads(data))


class _Slot:
    __slots__ = ("env", "rng", "elapsed", "live")

    def __init__(self, env, seed):
        self.env = env
        self.rng = Rng(seed)
        self.elapsed = 0
        self.live = False


def export_env(cls):
    """The `env` interface over envs of class `cls` (the class componentize-py exports)."""
    from wit_world import exports

    state = {"spec": None, "slots": None, "obs": 0, "act": 0, "info": 0}

    def params_of(pairs):
        return Params(pairs, getattr(cls, "NAME", cls.__name__))

    def slots():
        if state["slots"] is None:
            raise invalid_state("call init first")
        return state["slots"]

    def slot(index):
        s = slots()
        if index >= len(s):
            raise invalid_state(f"env index {index} out of range (0..{len(s)})")
        return s[index]

    def observe(env):
        obs = env.observe()
        if len(obs) != state["obs"]:
            raise invalid_state(f"{state['spec'].id}: observe gave {len(obs)} values, the spec says {state['obs']}")
        return obs

    def cut(env, index):
        reason = env.truncation()
        if reason:
            log(f"env {index}: episode truncated: {reason}", "warn")
            return True
        return False

    class Env(exports.Env):
        def spec(self, params):
            return cls.spec(params_of(params))

        def init(self, params, seeds):
            p = params_of(params)
            spec = cls.spec(p)
            most = max(spec.max_envs_per_instance, 1)
            if not seeds or len(seeds) > most:
                raise invalid_params(f"{spec.id} hosts 1 to {most} envs per instance, asked for {len(seeds)}")
            state["spec"] = spec
            state["obs"] = flat_len(spec.observation_space)
            state["act"] = flat_len(spec.action_space)
            state["info"] = len(spec.info_features)
            state["slots"] = [_Slot(cls(params_of(params)), seed) for seed in seeds]

        def reset(self, index, seed, options):
            s = slot(index)
            if seed is not None:
                s.rng = Rng(seed)
            s.env.reset(s.rng, params_of(options))
            s.elapsed = 0
            s.live = True
            return _types().ResetResult(observation=observe(s.env), infos=list(s.env.infos()))

        def step(self, index, action):
            if len(action) != state["act"]:
                raise invalid_action(f"{state['spec'].id}: expected {state['act']} action values, got {len(action)}")
            s = slot(index)
            if not s.live:
                raise invalid_state(f"env {index}: step before reset, or after its episode ended")
            reward, terminated = s.env.step(action, s.rng)
            s.elapsed += 1
            limit = state["spec"].max_episode_steps
            truncated = cut(s.env, index) | (limit is not None and s.elapsed >= limit)
            s.live = not (terminated or truncated)
            return _types().StepResult(
                observation=observe(s.env), reward=float(reward), terminated=bool(terminated), truncated=truncated,
                infos=list(s.env.infos()))

        def reset_all(self):
            out = []
            empty = params_of([])
            for s in slots():
                s.env.reset(s.rng, empty)
                s.elapsed = 0
                s.live = True
                out.extend(observe(s.env))
            return out

        def step_all(self, actions):
            ss = slots()
            act = state["act"]
            if len(actions) != len(ss) * act:
                raise invalid_action(f"{state['spec'].id}: expected {len(ss) * act} action values, got {len(actions)}")
            limit = state["spec"].max_episode_steps
            empty = params_of([])
            t = _types()
            observations, rewards, infos, ended, finals = [], [], [], [], []
            for i, s in enumerate(ss):
                if not s.live:
                    raise invalid_state(f"env {i}: step-all before reset-all")
                reward, terminated = s.env.step(actions[i * act:(i + 1) * act], s.rng)
                s.elapsed += 1
                trunc = cut(s.env, i) | (limit is not None and s.elapsed >= limit)
                infos.extend(s.env.infos())
                obs = observe(s.env)
                if terminated or trunc:
                    ended.append(t.EpisodeEnd(env=i, terminated=bool(terminated), truncated=trunc))
                    finals.extend(obs)
                    s.env.reset(s.rng, empty)
                    s.elapsed = 0
                    obs = observe(s.env)
                observations.extend(obs)
                rewards.append(float(reward))
            return t.BatchStep(observations=observations, rewards=rewards, infos=infos, ended=ended,
                               final_observations=finals)

        def snapshot(self, index):
            s = slot(index)
            return SNAPSHOT_MAGIC + s.rng.to_bytes() + struct.pack("<IB", s.elapsed, int(s.live)) + bytes(s.env.save())

        def restore(self, index, data):
            s = slot(index)
            data = bytes(data)
            if len(data) < 41 or data[:4] != SNAPSHOT_MAGIC:
                raise invalid_params("snapshot bytes are not from this SDK version")
            s.env.load(data[41:])
            s.rng = Rng.from_bytes(data[4:36])
            s.elapsed, live = struct.unpack("<IB", data[36:41])
            s.live = live != 0

    return Env
