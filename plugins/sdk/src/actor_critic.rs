//! Building blocks shared by actor-critic algorithms (PPO, A2C): separate policy and value
//! MLPs as Stable-Baselines3 builds them (tanh, orthogonal init with gains √2 / 0.01 / 1),
//! a categorical or diagonal-Gaussian head, rollout storage that bootstraps time-limit
//! truncations, and generalized advantage estimation (Schulman et al., 2016).

use crate::Transitions;
use crate::tensor::{Activation, Dtype, EncoderArch, EncoderSpec, MlpSpec, Module, ReduceOp, Tensor, UnaryOp, set_grad_enabled};
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

/// Policy and value networks, on a shared convolutional encoder when the observations hold
/// camera images.
pub struct ActorCritic {
    /// The encoder of camera images both networks take their input from, if any.
    pub encoder: Option<Module>,
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

/// The `encoder` parameter: `none`, `nature-cnn` or `drq`, with `encoder-features` (512 for
/// NatureCNN, 50 for DrQ by default); refused where it does not fit the run's observations
/// (an encoder without cameras, cameras without an encoder), naming `algorithm`.
pub fn encoder_param(params: &crate::Params, algorithm: &str) -> Result<Option<EncoderSpec>, PluginError> {
    let arch = match params.text("encoder")?.unwrap_or("none") {
        "none" => None,
        "nature-cnn" => Some(EncoderArch::NatureCnn),
        "drq" => Some(EncoderArch::Drq),
        other => return Err(PluginError::InvalidParams(format!("`encoder` is `none`, `nature-cnn` or `drq`, got `{other}`"))),
    };
    let default = if arch == Some(EncoderArch::Drq) { 50 } else { 512 };
    let features = params.int_in("encoder-features", default, 1..=65536)? as u32;
    let images = crate::tensor::observation_images();
    match (arch, images) {
        (Some(arch), Some(_)) => Ok(Some(EncoderSpec { arch, features })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(PluginError::InvalidParams(format!(
            "{algorithm}: `encoder` is set, but the env's observations hold no camera images (give the env cameras, or drop `encoder`)"
        ))),
        (None, Some(layout)) => Err(PluginError::InvalidParams(format!(
            "{algorithm}: the observations hold camera images ({}), which this algorithm takes only through an encoder: set `encoder = \"nature-cnn\"` (or `\"drq\"`)",
            describe_images(&layout)
        ))),
    }
}

/// What the networks take: the observations themselves, or their encoding.
pub enum Features<'a> {
    /// The observations.
    Raw(&'a Tensor),
    /// The encoder's output.
    Encoded(Tensor),
}

impl core::ops::Deref for Features<'_> {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        match self {
            Features::Raw(t) => t,
            Features::Encoded(t) => t,
        }
    }
}

/// `front 3×64×64, side 3×64×64`.
pub fn describe_images(layout: &crate::tensor::ObservationLayout) -> String {
    layout.images.iter().map(|i| format!("{} {}×{}×{}", i.name, i.channels, i.height, i.width)).collect::<Vec<_>>().join(", ")
}

/// Refuses a run whose observations hold camera images, for an algorithm that takes only
/// vectors (naming it).
pub fn vectors_only(algorithm: &str) -> Result<(), PluginError> {
    match crate::tensor::observation_images() {
        None => Ok(()),
        Some(layout) => Err(PluginError::Unsupported(format!(
            "{algorithm} takes only vector observations, and this env's hold camera images ({}); use an algorithm with an `encoder` (ppo, a2c)",
            describe_images(&layout)
        ))),
    }
}

impl ActorCritic {
    /// Gets or creates `<prefix>/policy`, `<prefix>/value` (and `<prefix>/log-std`); with
    /// camera images in the observations, refused (they need [`ActorCritic::with_encoder`]).
    pub fn new(prefix: &str, spec: &EnvSpec, hidden: &[u32], log_std_init: f64) -> Result<Self, PluginError> {
        if let Some(layout) = crate::tensor::observation_images() {
            return Err(PluginError::InvalidParams(format!(
                "{prefix}: the observations hold camera images ({}): set `encoder = \"nature-cnn\"` (or `\"drq\"`)",
                describe_images(&layout)
            )));
        }
        Self::with_encoder(prefix, spec, hidden, log_std_init, None)
    }

    /// As [`ActorCritic::new`], with both networks on the encoder `<prefix>/encoder` when
    /// `encoder` is given.
    pub fn with_encoder(
        prefix: &str,
        spec: &EnvSpec,
        hidden: &[u32],
        log_std_init: f64,
        encoder: Option<EncoderSpec>,
    ) -> Result<Self, PluginError> {
        let obs_len = flat_len(&spec.observation_space)?;
        let (encoder, input_len) = match encoder {
            Some(e) => {
                let layout = crate::tensor::observation_images()
                    .ok_or_else(|| PluginError::InvalidParams(format!("{prefix}: an encoder needs camera images in the observations")))?;
                let m = Module::encoder(&format!("{prefix}/encoder"), e).map_err(PluginError::Failed)?;
                (Some(m), i64::from(layout.state_len) + i64::from(e.features))
            }
            None => (None, obs_len),
        };
        let act_len = flat_len(&spec.action_space)?;
        let out = match &spec.action_space {
            Space::Discrete(d) => d.n,
            _ => act_len as u32,
        };
        let mlp = |name: &str, output: u32, output_gain: f64| {
            Module::get_mlp(
                &format!("{prefix}/{name}"),
                &MlpSpec {
                    input: input_len as u32,
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
        Ok(ActorCritic { encoder, policy: mlp("policy", out, 0.01)?, value: mlp("value", 1, 1.0)?, head, obs_len, act_len })
    }

    /// Every module, for an optimizer.
    pub fn modules(&self) -> Vec<&Module> {
        let mut m: Vec<&Module> = self.encoder.iter().collect();
        m.extend([&self.policy, &self.value]);
        if let Head::Gaussian { log_std } = &self.head {
            m.push(log_std);
        }
        m
    }

    /// `[n, act_len]` actions for `[n, obs_len]` observations (without gradients).
    pub fn act(&self, obs: &Tensor, deterministic: bool) -> Tensor {
        let prev = set_grad_enabled(false);
        let n = obs.shape()[0];
        let features = self.features(obs);
        let obs = &*features;
        let out = self.policy.forward(obs);
        let actions = match &self.head {
            Head::Discrete if deterministic => out.reduce(ReduceOp::Argmax, &[-1], false),
            Head::Discrete => crate::tensor::categorical_sample(&out),
            Head::Gaussian { .. } if deterministic => out,
            Head::Gaussian { log_std } => crate::tensor::normal_sample(&out, &log_std.forward(obs)),
        };
        set_grad_enabled(prev);
        actions.reshape(&[n, self.act_len])
    }

    /// The networks' input: the observations, or their encoding.
    pub fn features<'a>(&self, obs: &'a Tensor) -> Features<'a> {
        match &self.encoder {
            Some(e) => Features::Encoded(e.forward(obs)),
            None => Features::Raw(obs),
        }
    }

    /// Exploration actions `[n, act_len]` for `[n, obs_len]` observations, with their
    /// log-probabilities `[n]` and the observations' values `[n]` from the same forward pass
    /// (without gradients) — what a rollout stores for each step.
    pub fn explore(&self, obs: &Tensor) -> (Tensor, Tensor, Tensor) {
        let prev = set_grad_enabled(false);
        let n = obs.shape()[0];
        let features = self.features(obs);
        let obs = &*features;
        let out = self.policy.forward(obs);
        let (actions, log_probs) = match &self.head {
            Head::Discrete => {
                let a = crate::tensor::categorical_sample(&out);
                let lp = crate::tensor::categorical_log_prob(&out, &a);
                (a, lp)
            }
            Head::Gaussian { log_std } => {
                let ls = log_std.forward(obs);
                let a = crate::tensor::normal_sample(&out, &ls);
                let lp = crate::tensor::normal_log_prob(&out, &ls, &a);
                (a, lp)
            }
        };
        let values = self.value.forward(obs).reshape(&[-1]);
        set_grad_enabled(prev);
        (actions.reshape(&[n, self.act_len]), log_probs, values)
    }

    /// Values `[n]` of observations.
    pub fn values(&self, obs: &Tensor) -> Tensor {
        self.value.forward(&self.features(obs)).reshape(&[-1])
    }

    /// Log-probabilities `[n]`, entropies and values `[n]` of `actions` (with gradients
    /// when enabled).
    pub fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> (Tensor, Tensor, Tensor) {
        let features = self.features(obs);
        let obs = &*features;
        let out = self.policy.forward(obs);
        let value = self.value.forward(obs).reshape(&[-1]);
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

/// Advantages scaled to mean 0 and standard deviation 1 (Stable-Baselines3's
/// `normalize_advantage`).
pub fn normalized(advantages: &Tensor) -> Tensor {
    advantages.sub(&advantages.mean_all()).div(&advantages.std_all().add_s(1e-8))
}

/// The actor-critic loss `pg + ent_coef·ent + vf_coef·vf`. With `ent_coef` 0 (the zoo's
/// usual setting) the entropy term stays out of the graph: the same gradient without the
/// entropy's backward ops.
pub fn combined_loss(pg_loss: &Tensor, ent_loss: &Tensor, vf_loss: &Tensor, ent_coef: f64, vf_coef: f64) -> Tensor {
    let value_term = vf_loss.mul_s(vf_coef);
    if ent_coef == 0.0 { pg_loss.add(&value_term) } else { pg_loss.add(&ent_loss.mul_s(ent_coef)).add(&value_term) }
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
    /// Log-probabilities and values computed by the last exploring [`Rollout::act`], for
    /// the [`Rollout::push`] of the same step (so the policy runs once per step, as in
    /// Stable-Baselines3, not again in `observe`).
    pending: Option<(Tensor, Tensor)>,
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

    /// Actions for `obs`: deterministic ones for evaluation, or exploration actions whose
    /// log-probabilities and values are kept for the next [`Rollout::push`].
    pub fn act(&mut self, ac: &ActorCritic, obs: &Tensor, deterministic: bool) -> Tensor {
        if deterministic {
            return ac.act(obs, true);
        }
        let (actions, log_probs, values) = ac.explore(obs);
        self.pending = Some((log_probs, values));
        actions
    }

    /// Stores one transition of every env. A time-limit truncation is not a terminal state:
    /// its reward is bootstrapped with γ·V(final observation), as Stable-Baselines3 does.
    ///
    /// The log-probabilities and values come from the exploring [`Rollout::act`] that chose
    /// these actions (the host calls `observe` with the observations and actions of its last
    /// `act`); without one — the first step after a reload, say — they are computed here.
    pub fn push(&mut self, ac: &ActorCritic, t: &Transitions<'_>, gamma: f64) {
        let prev = set_grad_enabled(false);
        let n = t.observations.shape()[0];
        let (log_probs, values) = match self.pending.take() {
            Some((lp, v)) if lp.shape() == [n] => (lp, v),
            _ => {
                let (lp, _, v) = ac.evaluate(t.observations, t.actions);
                (lp, v)
            }
        };
        let truncated = t.truncated.to_float();
        // V(final observation) only on a step where some episode was cut short.
        let rewards = if truncated.reduce(crate::tensor::ReduceOp::Max, &[], false).item() > 0.0 {
            let cut = truncated.mul(&t.terminated.unary(UnaryOp::LogicalNot).to_float());
            t.rewards.add(&cut.mul(&ac.values(t.next_observations)).mul_s(gamma))
        } else {
            t.rewards.copy()
        };
        let dones = t.terminated.to_float().maximum(&truncated);
        set_grad_enabled(prev);
        self.steps.push(Step { obs: t.observations.copy(), actions: t.actions.copy(), rewards, dones, values, log_probs });
        self.last_next_obs = Some(t.next_observations.copy());
    }

    /// GAE(γ, λ) over the stored steps, flattened; empties the storage.
    pub fn take_batch(&mut self, ac: &ActorCritic, gamma: f64, lambda: f64) -> Result<Batch, PluginError> {
        let last = self.last_next_obs.take().ok_or_else(|| PluginError::InvalidState("update before observe".into()))?;
        let prev = set_grad_enabled(false);
        let steps = std::mem::take(&mut self.steps);
        let t_len = steps.len() as i64;
        let cat = |f: &dyn Fn(&Step) -> &Tensor| Tensor::cat(&steps.iter().map(f).collect::<Vec<_>>(), 0);
        // [T, n] at once: δ_t = r_t + γ·V_{t+1}·(1 − d_t) − V_t, with V_T = V(last next obs).
        let n = steps.first().map_or(0, |s| s.values.shape()[0]);
        let values = cat(&|s| &s.values);
        let values_tn = values.reshape(&[t_len, n]);
        let next_values = Tensor::cat(&[&values_tn.narrow(0, 1, t_len - 1), &ac.values(&last).reshape(&[1, n])], 0);
        let not_done = cat(&|s| &s.dones).reshape(&[t_len, n]).neg().add_s(1.0);
        let delta = cat(&|s| &s.rewards).reshape(&[t_len, n]).add(&next_values.mul(&not_done).mul_s(gamma)).sub(&values_tn);
        // A_t = δ_t + γλ·(1 − d_t)·A_{t+1}, backwards (two ops a step).
        let mut advantages = Vec::with_capacity(steps.len());
        let mut adv = delta.narrow(0, t_len - 1, 1);
        for t in (0..t_len - 1).rev() {
            let earlier = delta.narrow(0, t, 1).add(&adv.mul(&not_done.narrow(0, t, 1)).mul_s(gamma * lambda));
            advantages.push(std::mem::replace(&mut adv, earlier));
        }
        advantages.push(adv);
        advantages.reverse();
        let advantages = Tensor::cat(&advantages.iter().collect::<Vec<_>>(), 0).reshape(&[-1]);
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
