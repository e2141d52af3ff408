# world: algorithm
"""PPO written in Python over the host's tensors (`paddock:rl/tensor`): the same algorithm as
the Rust plugin `plugins/algorithms/ppo` — the same tensor operations in the same order, so
on the same seed it writes the same metrics — with the networks, the optimizer and every
tensor on the host's device (libtorch; CUDA when the run asks for it). Python only says
what to compute; the host computes it. Change it as you would change PPO in
Stable-Baselines3.

Build (scripts/build-plugins.sh does this):

    componentize-py -d wit -w algorithm --features tensor componentize app \\
        -p plugins/python/ppo -p plugins/python/sdk -o target/plugins/ppo-py.wasm

Parameters (`[algorithm.params]`), as the Rust PPO: `n-steps` (32), `n-epochs` (20),
`minibatch-size` (256), `gamma` (0.98), `gae-lambda` (0.8), `clip-range` (0.2),
`clip-range-vf` (off), `ent-coef` (0), `vf-coef` (0.5), `max-grad-norm` (0.5),
`learning-rate` (1e-3), `hidden` ([64, 64]), `log-std-init` (0), `normalize-advantage`
(true).
"""

import math
import struct

from paddock_sdk import Params, invalid_params, invalid_state, unsupported
from wit_world import exports
from wit_world.exports import algo
from wit_world.imports import tensor as T
from wit_world.imports import types

PARAMS = ("n-steps", "n-epochs", "minibatch-size", "gamma", "gae-lambda", "clip-range", "clip-range-vf", "ent-coef",
          "vf-coef", "max-grad-norm", "learning-rate", "hidden", "log-std-init", "normalize-advantage")
B = T.BinaryOp
U = T.UnaryOp
R = T.ReduceOp


# --- small helpers, as the Rust SDK's `Tensor` methods ------------------------------------------

def add(a, b): return a.binary(B.ADD, b)
def sub(a, b): return a.binary(B.SUB, b)
def mul(a, b): return a.binary(B.MUL, b)
def div(a, b): return a.binary(B.DIV, b)
def add_s(a, v): return a.scalar(B.ADD, v)
def mul_s(a, v): return a.scalar(B.MUL, v)
def mean_all(a): return a.reduce(R.MEAN, [], False)


def flat_len(space):
    if isinstance(space, types.Space_Discrete):
        return 1
    if isinstance(space, types.Space_Box):
        return math.prod(space.value.shape)
    raise unsupported("multi-discrete action spaces")


class ActorCritic:
    """A policy and a value MLP (tanh), and for continuous actions a learned log-std."""

    def __init__(self, prefix, spec, hidden, log_std_init):
        self.obs_len = flat_len(spec.observation_space)
        self.act_len = flat_len(spec.action_space)
        discrete = isinstance(spec.action_space, types.Space_Discrete)
        out = spec.action_space.value.n if discrete else self.act_len

        def mlp(name, output, gain):
            return T.Module.mlp(f"{prefix}/{name}", T.MlpSpec(input=self.obs_len, hidden=list(hidden), output=output,
                                                              activation=T.Activation.TANH, hidden_gain=math.sqrt(2.0),
                                                              output_gain=gain))

        self.policy = mlp("policy", out, 0.01)
        self.value = mlp("value", 1, 1.0)
        self.log_std = None
        if not discrete:
            init = T.Tensor.full([self.act_len], log_std_init, T.Dtype.FLOAT32)
            self.log_std = T.Module.parameter(f"{prefix}/log-std", init)

    def modules(self):
        return [self.policy, self.value] + ([self.log_std] if self.log_std is not None else [])

    def act(self, obs, deterministic):
        prev = T.set_grad_enabled(False)
        out = self.policy.forward(obs)
        if self.log_std is None:
            actions = out.reduce(R.ARGMAX, [-1], False) if deterministic else T.categorical_sample(out)
        else:
            actions = out if deterministic else T.normal_sample(out, self.log_std.forward(obs))
        T.set_grad_enabled(prev)
        return actions.reshape([obs.shape()[0], self.act_len])

    def explore(self, obs):
        prev = T.set_grad_enabled(False)
        out = self.policy.forward(obs)
        if self.log_std is None:
            a = T.categorical_sample(out)
            lp = T.categorical_log_prob(out, a)
        else:
            ls = self.log_std.forward(obs)
            a = T.normal_sample(out, ls)
            lp = T.normal_log_prob(out, ls, a)
        values = self.values(obs)
        T.set_grad_enabled(prev)
        return a.reshape([obs.shape()[0], self.act_len]), lp, values

    def values(self, obs):
        return self.value.forward(obs).reshape([-1])

    def evaluate(self, obs, actions):
        out = self.policy.forward(obs)
        value = self.values(obs)
        if self.log_std is None:
            a = actions.reshape([-1])
            return T.categorical_log_prob(out, a), T.categorical_entropy(out), value
        ls = self.log_std.forward(obs)
        return T.normal_log_prob(out, ls, actions), T.normal_entropy(ls), value


def normalized(adv):
    return div(sub(adv, mean_all(adv)), add_s(adv.reduce(R.STD, [], False), 1e-8))


class Rollout:
    """The on-policy buffer: steps of (obs, actions, rewards, dones, values, log-probs), and
    GAE over them."""

    def __init__(self):
        self.steps = []
        self.last_next_obs = None
        self.pending = None

    def act(self, ac, obs, deterministic):
        if deterministic:
            return ac.act(obs, True)
        actions, log_probs, values = ac.explore(obs)
        self.pending = (log_probs, values)
        return actions

    def push(self, ac, obs, actions, rewards, next_obs, terminated, truncated, gamma):
        prev = T.set_grad_enabled(False)
        n = obs.shape()[0]
        pending, self.pending = self.pending, None
        if pending is not None and pending[0].shape() == [n]:
            log_probs, values = pending
        else:
            log_probs, _, values = ac.evaluate(obs, actions)
        trunc = truncated.unary(U.TO_FLOAT)
        if trunc.reduce(R.MAX, [], False).item() > 0.0:
            cut = mul(trunc, terminated.unary(U.LOGICAL_NOT).unary(U.TO_FLOAT))
            rewards = add(rewards, mul_s(mul(cut, ac.values(next_obs)), gamma))
        else:
            rewards = rewards.copy()
        dones = terminated.unary(U.TO_FLOAT).binary(B.MAXIMUM, trunc)
        T.set_grad_enabled(prev)
        self.steps.append((obs.copy(), actions.copy(), rewards, dones, values, log_probs))
        self.last_next_obs = next_obs.copy()

    def take_batch(self, ac, gamma, lam):
        if self.last_next_obs is None:
            raise invalid_state("update before observe")
        last, self.last_next_obs = self.last_next_obs, None
        prev = T.set_grad_enabled(False)
        steps, self.steps = self.steps, []
        t_len = len(steps)
        cat = lambda i: T.Tensor.cat([s[i] for s in steps], 0)  # noqa: E731
        n = steps[0][4].shape()[0]
        values = cat(4)
        values_tn = values.reshape([t_len, n])
        next_values = T.Tensor.cat([values_tn.narrow(0, 1, t_len - 1), ac.values(last).reshape([1, n])], 0)
        not_done = add_s(cat(3).reshape([t_len, n]).unary(U.NEG), 1.0)
        delta = sub(add(cat(2).reshape([t_len, n]), mul_s(mul(next_values, not_done), gamma)), values_tn)
        advantages = []
        adv = delta.narrow(0, t_len - 1, 1)
        for t in range(t_len - 2, -1, -1):
            earlier = add(delta.narrow(0, t, 1), mul_s(mul(adv, not_done.narrow(0, t, 1)), gamma * lam))
            advantages.append(adv)
            adv = earlier
        advantages.append(adv)
        advantages.reverse()
        advantages = T.Tensor.cat(advantages, 0).reshape([-1])
        batch = {
            "obs": cat(0).reshape([-1, ac.obs_len]),
            "actions": cat(1).reshape([-1, ac.act_len]),
            "log_probs": cat(5),
            "returns": add(advantages, values),
            "values": values,
            "advantages": advantages,
        }
        T.set_grad_enabled(prev)
        return batch


class Ppo:
    def __init__(self, spec, params):
        images = T.observation_images()
        if images is not None:
            shown = ", ".join(f"{i.name} {i.channels}×{i.height}×{i.width}" for i in images.images)
            raise unsupported(f"ppo (Python) takes only vector observations, and this env's hold camera images ({shown}); use ppo.wasm with an `encoder`")
        p = Params(params, "ppo-py")
        p.check_known(PARAMS)
        self.n_steps = p.count("n-steps", 32)
        self.n_epochs = p.count("n-epochs", 20)
        self.minibatch = p.count("minibatch-size", 256)
        self.gamma = p.fraction("gamma", 0.98)
        self.lam = p.fraction("gae-lambda", 0.8)
        self.clip = p.positive("clip-range", 0.2)
        vf = p.real("clip-range-vf", -1.0)
        self.clip_vf = vf if vf > 0.0 else None
        self.ent_coef = p.non_negative("ent-coef", 0.0)
        self.vf_coef = p.non_negative("vf-coef", 0.5)
        self.max_grad_norm = p.positive("max-grad-norm", 0.5)
        self.normalize_advantage = p.flag("normalize-advantage", True)
        lr = p.positive("learning-rate", 1e-3)
        self.ac = ActorCritic("ppo", spec, p.widths("hidden", [64, 64]), p.real("log-std-init", 0.0))
        self.optimizer = T.Optimizer.get("ppo/adam", self.ac.modules(), T.OptimizerKind_Adam(1e-5), lr)
        self.rollout = Rollout()
        self.updates = 0

    def step(self, b, sums):
        lp, ent, v = self.ac.evaluate(b["obs"], b["actions"])
        ratio = sub(lp, b["log_probs"]).unary(U.EXP)
        surr1 = mul(ratio, b["advantages"])
        surr2 = mul(ratio.clamp(1.0 - self.clip, 1.0 + self.clip), b["advantages"])
        pg_loss = mean_all(surr1.binary(B.MINIMUM, surr2)).unary(U.NEG)
        v_pred = v if self.clip_vf is None else add(b["values"], sub(v, b["values"]).clamp(-self.clip_vf, self.clip_vf))
        vf_loss = mean_all(sub(b["returns"], v_pred).unary(U.SQUARE))
        ent_loss = mean_all(ent).unary(U.NEG)
        value_term = mul_s(vf_loss, self.vf_coef)
        loss = add(pg_loss, value_term) if self.ent_coef == 0.0 else add(add(pg_loss, mul_s(ent_loss, self.ent_coef)), value_term)
        self.optimizer.minimize(loss, self.max_grad_norm)
        sums[0] += pg_loss.item()
        sums[1] += vf_loss.item()
        sums[2] += -ent_loss.item()
        sums[3] += mean_all(add_s(ratio, -1.0).unary(U.ABS).scalar(B.GT, self.clip).unary(U.TO_FLOAT)).item()
        sums[4] += 1.0

    def update(self):
        b = self.rollout.take_batch(self.ac, self.gamma, self.lam)
        total = b["obs"].shape()[0]
        mb = min(self.minibatch, total)

        def normalize(a):
            return normalized(a) if self.normalize_advantage and a.shape()[0] > 1 else a

        # One minibatch holding the whole rollout: use the batch as it is, normalised once.
        whole = normalize(b["advantages"].copy()) if mb == total else None
        sums = [0.0, 0.0, 0.0, 0.0, 0.0]
        for _ in range(self.n_epochs):
            if whole is not None:
                self.step(dict(b, advantages=whole), sums)
                continue
            perm = T.Tensor.randperm(total)
            start = 0
            while start + mb <= total:
                idx = perm.narrow(0, start, mb)
                start += mb
                pick = {k: b[k].index_select(0, idx) for k in ("obs", "actions", "log_probs", "returns", "values", "advantages")}
                pick["advantages"] = normalize(pick["advantages"])
                self.step(pick, sums)
        self.updates += 1
        n = max(sums[4], 1.0)
        return [algo.Metric(name, value) for name, value in (
            ("loss/policy", sums[0] / n), ("loss/value", sums[1] / n), ("entropy", sums[2] / n),
            ("clip-fraction", sums[3] / n), ("updates", float(self.updates)))]


# componentize-py makes a new `Algo` for each call: the algorithm lives at module level.
_ppo = None


def _get():
    if _ppo is None:
        raise invalid_state("call init first")
    return _ppo


def _host(call):
    """Runs `call`; the host's string errors (a bad name, a failed step) become `failed`."""
    from componentize_py_types import Err

    try:
        return call()
    except Err as e:
        if isinstance(e.value, str):
            raise Err(types.PluginError_Failed(e.value))
        raise


class Algo(exports.Algo):
    def init(self, spec, num_envs, params):
        global _ppo
        _ppo = _host(lambda: Ppo(spec, params))

    def act(self, observations, deterministic):
        p = _get()
        return p.rollout.act(p.ac, observations, deterministic)

    def observe(self, observations, actions, rewards, next_observations, terminated, truncated):
        p = _get()
        p.rollout.push(p.ac, observations, actions, rewards, next_observations, terminated, truncated, p.gamma)

    def wants_update(self):
        return _ppo is not None and len(_ppo.rollout.steps) >= _ppo.n_steps

    def update(self):
        return _host(lambda: _get().update())

    def save_state(self):
        return struct.pack("<Q", _ppo.updates if _ppo is not None else 0)

    def load_state(self, state):
        if len(state) != 8:
            raise invalid_params(f"PPO state is 8 bytes, got {len(state)}")
        _get().updates = struct.unpack("<Q", bytes(state))[0]
