//! PPO: Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal Policy Optimization
//! Algorithms" (2017), with generalized advantage estimation (Schulman et al., "High-
//! Dimensional Continuous Control Using Generalized Advantage Estimation", 2016), as in
//! Stable-Baselines3: separate policy and value MLPs (tanh, orthogonal init), clipped
//! surrogate objective, optional value clipping, per-minibatch advantage normalisation,
//! entropy bonus, gradient-norm clipping, and bootstrapping of time-limit truncations.
//!
//! Discrete (categorical policy) and box (diagonal Gaussian with a learned log-std) action
//! spaces. Every tensor lives in the host; the plugin only reads back scalars for metrics.
//!
//! Parameters (defaults: rl-baselines3-zoo's CartPole-v1 PPO): `n-steps` 32, `n-epochs`
//! 20, `minibatch-size` 256, `gamma` 0.98, `gae-lambda` 0.8, `clip-range` 0.2,
//! `clip-range-vf` (off), `ent-coef` 0, `vf-coef` 0.5, `max-grad-norm` 0.5,
//! `learning-rate` 1e-3, `hidden` [64, 64], `log-std-init` 0, `normalize-advantage` true.

use paddock_sdk::algorithm::{Metric, metric};
use paddock_sdk::tensor::{Activation, Dtype, MlpSpec, Module, Optimizer, OptimizerKind, ReduceOp, Tensor};
use paddock_sdk::types::{EnvSpec, PluginError, Space};
use paddock_sdk::{Algorithm, Params, Transitions};

const PARAMS: &[&str] = &[
    "n-steps",
    "n-epochs",
    "minibatch-size",
    "gamma",
    "gae-lambda",
    "clip-range",
    "clip-range-vf",
    "ent-coef",
    "vf-coef",
    "max-grad-norm",
    "learning-rate",
    "hidden",
    "log-std-init",
    "normalize-advantage",
];

struct Hyper {
    n_steps: usize,
    n_epochs: usize,
    minibatch: i64,
    gamma: f64,
    lambda: f64,
    clip: f64,
    clip_vf: Option<f64>,
    ent_coef: f64,
    vf_coef: f64,
    max_grad_norm: f64,
    normalize_advantage: bool,
}

enum Head {
    Discrete { n: u32 },
    Gaussian { log_std: Module },
}

/// One rollout step, all host tensors.
struct Step {
    obs: Tensor,
    actions: Tensor,
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    log_probs: Tensor,
}

/// The PPO learner.
pub struct Ppo {
    h: Hyper,
    num_envs: i64,
    obs_len: i64,
    act_len: i64,
    policy: Module,
    value: Module,
    head: Head,
    optimizer: Optimizer,
    rollout: Vec<Step>,
    last_next_obs: Option<Tensor>,
    updates: u64,
}

fn invalid(msg: String) -> PluginError {
    PluginError::InvalidParams(msg)
}

fn flat_len(space: &Space) -> Result<i64, PluginError> {
    Ok(match space {
        Space::Discrete(_) => 1,
        Space::Box(b) => b.shape.iter().map(|&d| i64::from(d)).product(),
        Space::MultiDiscrete(_) => return Err(PluginError::Unsupported("PPO here supports discrete and box action spaces".into())),
    })
}

impl Ppo {
    /// Log-probabilities, entropies and values of `actions` under the current networks.
    fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> (Tensor, Tensor, Tensor) {
        let out = self.policy.forward(obs);
        let value = self.value.forward(obs).reshape(&[-1]);
        match &self.head {
            Head::Discrete { .. } => {
                let a = actions.reshape(&[-1]);
                (paddock_sdk::tensor::categorical_log_prob(&out, &a), paddock_sdk::tensor::categorical_entropy(&out), value)
            }
            Head::Gaussian { log_std } => {
                let ls = log_std.forward(obs);
                let lp = paddock_sdk::tensor::normal_log_prob(&out, &ls, actions);
                let ent = paddock_sdk::tensor::normal_entropy(&ls);
                (lp, ent, value)
            }
        }
    }
}

impl Algorithm for Ppo {
    fn new(spec: &EnvSpec, num_envs: u32, p: &Params) -> Result<Self, PluginError> {
        p.check_known(PARAMS)?;
        let count = |name: &str, d: i64| -> Result<usize, PluginError> {
            let v = p.int(name, d)?;
            if v < 1 { Err(invalid(format!("parameter `{name}` must be at least 1, got {v}"))) } else { Ok(v as usize) }
        };
        let h = Hyper {
            n_steps: count("n-steps", 32)?,
            n_epochs: count("n-epochs", 20)?,
            minibatch: count("minibatch-size", 256)? as i64,
            gamma: p.real("gamma", 0.98)?,
            lambda: p.real("gae-lambda", 0.8)?,
            clip: p.real("clip-range", 0.2)?,
            clip_vf: match p.real("clip-range-vf", -1.0)? {
                v if v > 0.0 => Some(v),
                _ => None,
            },
            ent_coef: p.real("ent-coef", 0.0)?,
            vf_coef: p.real("vf-coef", 0.5)?,
            max_grad_norm: p.real("max-grad-norm", 0.5)?,
            normalize_advantage: p.flag("normalize-advantage", true)?,
        };
        let lr = p.real("learning-rate", 1e-3)?;
        let hidden: Vec<u32> = match p.get_reals("hidden")? {
            Some(v) => v.iter().map(|&x| x as u32).collect(),
            None => vec![64, 64],
        };
        let obs_len = flat_len(&spec.observation_space)?;
        let act_len = flat_len(&spec.action_space)?;
        let (out, head_kind) = match &spec.action_space {
            Space::Discrete(d) => (d.n, None),
            Space::Box(_) => (act_len as u32, Some(p.real("log-std-init", 0.0)?)),
            Space::MultiDiscrete(_) => return Err(PluginError::Unsupported("multi-discrete actions".into())),
        };
        let mlp = |name: &str, output: u32, output_gain: f64| {
            Module::get_mlp(
                name,
                &MlpSpec {
                    input: obs_len as u32,
                    hidden: hidden.clone(),
                    output,
                    activation: Activation::Tanh,
                    hidden_gain: 2f64.sqrt(),
                    output_gain,
                },
            )
        };
        let policy = mlp("ppo/policy", out, 0.01)?;
        let value = mlp("ppo/value", 1, 1.0)?;
        let head = match head_kind {
            None => Head::Discrete { n: out },
            Some(init) => {
                let t = Tensor::full(&[act_len], init, Dtype::Float32);
                Head::Gaussian { log_std: Module::parameter("ppo/log-std", &t).map_err(PluginError::Failed)? }
            }
        };
        let mut modules = vec![&policy, &value];
        if let Head::Gaussian { log_std } = &head {
            modules.push(log_std);
        }
        let optimizer = Optimizer::get("ppo/adam", &modules, OptimizerKind::Adam(1e-5), lr).map_err(PluginError::Failed)?;
        Ok(Ppo {
            h,
            num_envs: i64::from(num_envs),
            obs_len,
            act_len,
            policy,
            value,
            head,
            optimizer,
            rollout: Vec::new(),
            last_next_obs: None,
            updates: 0,
        })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        let prev = paddock_sdk::tensor::set_grad_enabled(false);
        let out = self.policy.forward(obs);
        let actions = match &self.head {
            Head::Discrete { .. } if deterministic => out.reduce(ReduceOp::Argmax, &[-1], false),
            Head::Discrete { .. } => paddock_sdk::tensor::categorical_sample(&out),
            Head::Gaussian { .. } if deterministic => out,
            Head::Gaussian { log_std } => paddock_sdk::tensor::normal_sample(&out, &log_std.forward(obs)),
        };
        paddock_sdk::tensor::set_grad_enabled(prev);
        let n = obs.shape()[0];
        Ok(actions.reshape(&[n, self.act_len]))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        let prev = paddock_sdk::tensor::set_grad_enabled(false);
        let (log_probs, _, values) = self.evaluate(t.observations, t.actions);
        // Time-limit truncation is not a terminal state: bootstrap it with V(final obs),
        // as Stable-Baselines3 does.
        let cut = t.truncated.to_float().mul(&t.terminated.unary(paddock_sdk::tensor::UnaryOp::LogicalNot).to_float());
        let v_next = self.value.forward(t.next_observations).reshape(&[-1]);
        let rewards = t.rewards.add(&cut.mul(&v_next).mul_s(self.h.gamma));
        let dones = t.terminated.to_float().maximum(&t.truncated.to_float());
        paddock_sdk::tensor::set_grad_enabled(prev);
        self.rollout.push(Step { obs: t.observations.copy(), actions: t.actions.copy(), rewards, dones, values, log_probs });
        self.last_next_obs = Some(t.next_observations.copy());
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.rollout.len() >= self.h.n_steps
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let h = &self.h;
        let prev = paddock_sdk::tensor::set_grad_enabled(false);
        let last = self.last_next_obs.take().ok_or_else(|| PluginError::InvalidState("update before observe".into()))?;
        let mut next_value = self.value.forward(&last).reshape(&[-1]);
        let mut adv = Tensor::full(&[self.num_envs], 0.0, Dtype::Float32);
        let mut advantages = Vec::with_capacity(self.rollout.len());
        for step in self.rollout.iter().rev() {
            let not_done = step.dones.neg().add_s(1.0);
            let delta = step.rewards.add(&next_value.mul(&not_done).mul_s(h.gamma)).sub(&step.values);
            adv = delta.add(&adv.mul(&not_done).mul_s(h.gamma * h.lambda));
            advantages.push(adv.copy());
            next_value = step.values.copy();
        }
        advantages.reverse();
        let cat = |f: &dyn Fn(&Step) -> &Tensor| Tensor::cat(&self.rollout.iter().map(f).collect::<Vec<_>>(), 0);
        let obs = cat(&|s| &s.obs).reshape(&[-1, self.obs_len]);
        let actions = cat(&|s| &s.actions).reshape(&[-1, self.act_len]);
        let old_values = cat(&|s| &s.values);
        let old_log_probs = cat(&|s| &s.log_probs);
        let advantages = Tensor::cat(&advantages.iter().collect::<Vec<_>>(), 0);
        let returns = advantages.add(&old_values);
        paddock_sdk::tensor::set_grad_enabled(prev);

        let total = obs.shape()[0];
        let mb = h.minibatch.min(total);
        let (mut pg_sum, mut vf_sum, mut ent_sum, mut clip_frac, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..h.n_epochs {
            let perm = Tensor::randperm(total);
            let mut start = 0;
            while start + mb <= total {
                let idx = perm.narrow(0, start, mb);
                start += mb;
                let (lp, ent, v) = self.evaluate(&obs.index_select(0, &idx), &actions.index_select(0, &idx));
                let mut a = advantages.index_select(0, &idx);
                if h.normalize_advantage && mb > 1 {
                    a = a.sub(&a.mean_all()).div(&a.std_all().add_s(1e-8));
                }
                let ratio = lp.sub(&old_log_probs.index_select(0, &idx)).exp();
                let surr1 = ratio.mul(&a);
                let surr2 = ratio.clamp(1.0 - h.clip, 1.0 + h.clip).mul(&a);
                let pg_loss = surr1.minimum(&surr2).mean_all().neg();
                let ret = returns.index_select(0, &idx);
                let v_pred = match h.clip_vf {
                    None => v,
                    Some(c) => {
                        let old = old_values.index_select(0, &idx);
                        old.add(&v.sub(&old).clamp(-c, c))
                    }
                };
                let vf_loss = ret.sub(&v_pred).square().mean_all();
                let ent_loss = ent.mean_all().neg();
                let loss = pg_loss.add(&ent_loss.mul_s(h.ent_coef)).add(&vf_loss.mul_s(h.vf_coef));
                self.optimizer.minimize(&loss, Some(h.max_grad_norm)).map_err(PluginError::Failed)?;
                pg_sum += pg_loss.item();
                vf_sum += vf_loss.item();
                ent_sum += -ent_loss.item();
                clip_frac += ratio
                    .add_s(-1.0)
                    .unary(paddock_sdk::tensor::UnaryOp::Abs)
                    .scalar(paddock_sdk::tensor::BinaryOp::Gt, h.clip)
                    .to_float()
                    .mean_all()
                    .item();
                n += 1.0;
            }
        }
        self.rollout.clear();
        self.updates += 1;
        let n = f64::max(n, 1.0);
        let mut out = vec![
            metric("loss/policy", pg_sum / n),
            metric("loss/value", vf_sum / n),
            metric("entropy", ent_sum / n),
            metric("clip-fraction", clip_frac / n),
            metric("updates", self.updates as f64),
        ];
        if let Head::Discrete { n: actions } = self.head {
            out.push(metric("actions", f64::from(actions)));
        }
        Ok(out)
    }

    fn save_state(&self) -> Vec<u8> {
        self.updates.to_le_bytes().to_vec()
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let bytes: [u8; 8] =
            state.try_into().map_err(|_| PluginError::InvalidParams(format!("PPO state is 8 bytes, got {}", state.len())))?;
        self.updates = u64::from_le_bytes(bytes);
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(Ppo);
