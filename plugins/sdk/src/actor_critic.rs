//! Building blocks shared by actor-critic algorithms (PPO, A2C): separate policy and value
//! MLPs as Stable-Baselines3 builds them (tanh, orthogonal init with gains √2 / 0.01 / 1),
//! a categorical or diagonal-Gaussian head, rollout storage that bootstraps time-limit
//! truncations, and generalized advantage estimation (Schulman et al., 2016).

use crate::Transitions;
use crate::tensor::{Activation, Dtype, MlpSpec, Module, ReduceOp, Tensor, UnaryOp, set_grad_enabled};
use crate::types::{EnvSpec, PluginError, Space};

/// The action distribution's head.
pub enum Head {
    /// Categorical over the policy network's logits.
    Discrete,
    /// Diagonal Gaussian around the policy network's output, with a learned log-std.
    Gaussian {
        /// The log-std parameter (named `<prefix>/log-std`).
        log_std: Module,
    },
}

/// Policy and value networks.
pub struct ActorCritic {
    /// Policy network (logits or means).
    pub policy: Module,
    /// Value network.
    pub value: Module,
    /// Action head.
    pub head: Head,
    /// Flat observation length.
    pub obs_len: i64,
    /// Flat action length.
    pub act_len: i64,
}

fn flat_len(space: &Space) -> Result<i64, PluginError> {
    Ok(match space {
        Space::Discrete(_) => 1,
        Space::Box(b) => b.shape.iter().map(|&d| i64::from(d)).product(),
        Space::MultiDiscrete(_) => return Err(PluginError::Unsupported("multi-discrete action spaces".into())),
    })
}

impl ActorCritic {
    /// Gets or creates `<prefix>/policy`, `<prefix>/value` (and `<prefix>/log-std`).
    pub fn new(prefix: &str, spec: &EnvSpec, hidden: &[u32], log_std_init: f64) -> Result<Self, PluginError> {
        let obs_len = flat_len(&spec.observation_space)?;
        let act_len = flat_len(&spec.action_space)?;
        let out = match &spec.action_space {
            Space::Discrete(d) => d.n,
            _ => act_len as u32,
        };
        let mlp = |name: &str, output: u32, output_gain: f64| {
            Module::get_mlp(
                &format!("{prefix}/{name}"),
                &MlpSpec {
                    input: obs_len as u32,
                    hidden: hidden.to_vec(),
                    output,
                    activation: Activation::Tanh,
                    hidden_gain: 2f64.sqrt(),
                    output_gain,
                },
            )
        };
        let head = match &spec.action_space {
            Space::Discrete(_) => Head::Discrete,
            _ => {
                let init = Tensor::full(&[act_len], log_std_init, Dtype::Float32);
                Head::Gaussian { log_std: Module::parameter(&format!("{prefix}/log-std"), &init).map_err(PluginError::Failed)? }
            }
        };
        Ok(ActorCritic { policy: mlp("policy", out, 0.01)?, value: mlp("value", 1, 1.0)?, head, obs_len, act_len })
    }

    /// Every module, for an optimizer.
    pub fn modules(&self) -> Vec<&Module> {
        let mut m = vec![&self.policy, &self.value];
        if let Head::Gaussian { log_std } = &self.head {
            m.push(log_std);
        }
        m
    }

    /// `[n, act_len]` actions for `[n, obs_len]` observations (without gradients).
    pub fn act(&self, obs: &Tensor, deterministic: bool) -> Tensor {
        let prev = set_grad_enabled(false);
        let out = self.policy.forward(obs);
        let actions = match &self.head {
            Head::Discrete if deterministic => out.reduce(ReduceOp::Argmax, &[-1], false),
            Head::Discrete => crate::tensor::categorical_sample(&out),
            Head::Gaussian { .. } if deterministic => out,
            Head::Gaussian { log_std } => crate::tensor::normal_sample(&out, &log_std.forward(obs)),
        };
        set_grad_enabled(prev);
        actions.reshape(&[obs.shape()[0], self.act_len])
    }

    /// Values `[n]` of observations.
    pub fn values(&self, obs: &Tensor) -> Tensor {
        self.value.forward(obs).reshape(&[-1])
    }

    /// Log-probabilities `[n]`, entropies and values `[n]` of `actions` (with gradients
    /// when enabled).
    pub fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> (Tensor, Tensor, Tensor) {
        let out = self.policy.forward(obs);
        let value = self.values(obs);
        match &self.head {
            Head::Discrete => {
                let a = actions.reshape(&[-1]);
                (crate::tensor::categorical_log_prob(&out, &a), crate::tensor::categorical_entropy(&out), value)
            }
            Head::Gaussian { log_std } => {
                let ls = log_std.forward(obs);
                (crate::tensor::normal_log_prob(&out, &ls, actions), crate::tensor::normal_entropy(&ls), value)
            }
        }
    }
}

struct Step {
    obs: Tensor,
    actions: Tensor,
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    log_probs: Tensor,
}

/// A rollout flattened for learning: `[T·n, …]` tensors.
pub struct Batch {
    /// Observations.
    pub obs: Tensor,
    /// Actions.
    pub actions: Tensor,
    /// Values when collected.
    pub values: Tensor,
    /// Log-probabilities when collected.
    pub log_probs: Tensor,
    /// GAE advantages.
    pub advantages: Tensor,
    /// Value targets (advantages + values).
    pub returns: Tensor,
}

/// Rollout storage: all host tensors.
#[derive(Default)]
pub struct Rollout {
    steps: Vec<Step>,
    last_next_obs: Option<Tensor>,
}

impl Rollout {
    /// Steps stored.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Stores one transition of every env. A time-limit truncation is not a terminal state:
    /// its reward is bootstrapped with γ·V(final observation), as Stable-Baselines3 does.
    pub fn push(&mut self, ac: &ActorCritic, t: &Transitions<'_>, gamma: f64) {
        let prev = set_grad_enabled(false);
        let (log_probs, _, values) = ac.evaluate(t.observations, t.actions);
        let cut = t.truncated.to_float().mul(&t.terminated.unary(UnaryOp::LogicalNot).to_float());
        let rewards = t.rewards.add(&cut.mul(&ac.values(t.next_observations)).mul_s(gamma));
        let dones = t.terminated.to_float().maximum(&t.truncated.to_float());
        set_grad_enabled(prev);
        self.steps.push(Step { obs: t.observations.copy(), actions: t.actions.copy(), rewards, dones, values, log_probs });
        self.last_next_obs = Some(t.next_observations.copy());
    }

    /// GAE(γ, λ) over the stored steps, flattened; empties the storage.
    pub fn take_batch(&mut self, ac: &ActorCritic, gamma: f64, lambda: f64) -> Result<Batch, PluginError> {
        let last = self.last_next_obs.take().ok_or_else(|| PluginError::InvalidState("update before observe".into()))?;
        let prev = set_grad_enabled(false);
        let mut next_value = ac.values(&last);
        let n = next_value.shape()[0];
        let mut adv = Tensor::full(&[n], 0.0, Dtype::Float32);
        let mut advantages = Vec::with_capacity(self.steps.len());
        for step in self.steps.iter().rev() {
            let not_done = step.dones.neg().add_s(1.0);
            let delta = step.rewards.add(&next_value.mul(&not_done).mul_s(gamma)).sub(&step.values);
            adv = delta.add(&adv.mul(&not_done).mul_s(gamma * lambda));
            advantages.push(adv.copy());
            next_value = step.values.copy();
        }
        advantages.reverse();
        let steps = std::mem::take(&mut self.steps);
        let cat = |f: &dyn Fn(&Step) -> &Tensor| Tensor::cat(&steps.iter().map(f).collect::<Vec<_>>(), 0);
        let values = cat(&|s| &s.values);
        let advantages = Tensor::cat(&advantages.iter().collect::<Vec<_>>(), 0);
        let batch = Batch {
            obs: cat(&|s| &s.obs).reshape(&[-1, ac.obs_len]),
            actions: cat(&|s| &s.actions).reshape(&[-1, ac.act_len]),
            log_probs: cat(&|s| &s.log_probs),
            returns: advantages.add(&values),
            values,
            advantages,
        };
        set_grad_enabled(prev);
        Ok(batch)
    }
}
