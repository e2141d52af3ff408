//! Building blocks shared by off-policy algorithms (DQN, SAC, TD3): the host replay buffer
//! configured from common parameters, the "when to train" schedule of Stable-Baselines3
//! (`learning-starts`, `train-freq`, `gradient-steps`), action scaling for box spaces,
//! twin Q-networks with target copies, and small losses.
//!
//! Replay parameters every off-policy plugin accepts ([`REPLAY_PARAMS`]):
//! `buffer-size` (transitions kept), `n-step` (1), `prioritized` (false), `per-alpha` (0.6),
//! `per-beta` (0.4), `per-beta-final` (1.0), `per-beta-samples` (100000 `sample` calls),
//! `per-epsilon` (1e-6), `her` (`"future"`, `"final"`, `"episode"` or `"none"`, the default;
//! needs a goal-conditioned env), `her-k` (4).

use crate::Params;
use crate::tensor::{
    Activation, Dtype, HindsightSpec, HindsightStrategy, MlpSpec, Module, PrioritizedSpec, Replay, ReplayBatch, ReplaySpec, Tensor,
};
use crate::types::{EnvSpec, PluginError, Space};
use crate::{Transitions, space::flat_len};

/// Parameter names read by [`replay`].
pub const REPLAY_PARAMS: &[&str] =
    &["buffer-size", "n-step", "prioritized", "per-alpha", "per-beta", "per-beta-final", "per-beta-samples", "per-epsilon", "her", "her-k"];

/// Parameter names read by [`TrainSchedule::from_params`].
pub const SCHEDULE_PARAMS: &[&str] = &["learning-starts", "train-freq", "gradient-steps"];

fn positive(p: &Params, name: &str, default: i64) -> Result<u32, PluginError> {
    let v = p.int(name, default)?;
    if v < 1 || v > i64::from(u32::MAX) {
        return Err(PluginError::InvalidParams(format!("parameter `{name}` must be a positive integer, got {v}")));
    }
    Ok(v as u32)
}

/// Gets (or creates) the host replay buffer `name` for transitions of `spec`'s env.
pub fn replay(name: &str, spec: &EnvSpec, num_envs: u32, p: &Params, gamma: f64, default_size: i64) -> Result<Replay, PluginError> {
    let prioritized = p.flag("prioritized", false)?.then(|| -> Result<PrioritizedSpec, PluginError> {
        Ok(PrioritizedSpec {
            alpha: p.real("per-alpha", 0.6)?,
            beta: p.real("per-beta", 0.4)?,
            beta_final: p.real("per-beta-final", 1.0)?,
            beta_samples: u64::from(positive(p, "per-beta-samples", 100_000)?),
            epsilon: p.real("per-epsilon", 1e-6)?,
        })
    });
    let hindsight = match p.text("her")? {
        None | Some("none") => None,
        Some(s) => Some(HindsightSpec {
            strategy: match s {
                "future" => HindsightStrategy::FutureGoal,
                "final" => HindsightStrategy::FinalGoal,
                "episode" => HindsightStrategy::EpisodeGoal,
                other => {
                    return Err(PluginError::InvalidParams(format!(
                        "parameter `her` must be \"future\", \"final\", \"episode\" or \"none\", got {other:?}"
                    )));
                }
            },
            k: positive(p, "her-k", 4)?,
        }),
    };
    let spec = ReplaySpec {
        capacity: positive(p, "buffer-size", default_size)?,
        num_envs,
        observation_len: flat_len(&spec.observation_space) as u32,
        action_len: flat_len(&spec.action_space) as u32,
        action_dtype: if matches!(spec.action_space, Space::Discrete(_)) { Dtype::Int64 } else { Dtype::Float32 },
        n_step: positive(p, "n-step", 1)?,
        gamma,
        prioritized: prioritized.transpose()?,
        hindsight,
    };
    Replay::get(name, spec).map_err(PluginError::InvalidParams)
}

/// Adds `t` to `replay`, with `actions` in place of `t.actions` (e.g. rescaled).
pub fn add(replay: &Replay, t: &Transitions<'_>, actions: &Tensor) -> Result<(), PluginError> {
    replay.add(t.observations, actions, t.rewards, t.next_observations, t.terminated, t.truncated).map_err(PluginError::Failed)
}

/// Samples a batch, turning a refusal into a plugin error.
pub fn sample(replay: &Replay, batch_size: u32) -> Result<ReplayBatch, PluginError> {
    replay.sample(batch_size).map_err(PluginError::Failed)
}

/// When to train, as Stable-Baselines3 counts it: nothing before `learning-starts` env
/// steps, then `gradient-steps` gradient steps every `train-freq` steps of the vector env
/// (each of which is `num-envs` env steps).
#[derive(Clone, Debug)]
pub struct TrainSchedule {
    /// Env steps before the first update.
    pub learning_starts: u64,
    /// Vector-env steps between updates.
    pub train_freq: u64,
    /// Gradient steps per update.
    pub gradient_steps: u32,
    /// Env steps observed.
    pub steps: u64,
    /// Vector-env steps since the last update.
    pub since_update: u64,
}

impl TrainSchedule {
    /// From `learning-starts`, `train-freq`, `gradient-steps` with these defaults.
    pub fn from_params(p: &Params, learning_starts: i64, train_freq: i64, gradient_steps: i64) -> Result<Self, PluginError> {
        let ls = p.int("learning-starts", learning_starts)?;
        if ls < 0 {
            return Err(PluginError::InvalidParams(format!("parameter `learning-starts` must be ≥ 0, got {ls}")));
        }
        Ok(TrainSchedule {
            learning_starts: ls as u64,
            train_freq: u64::from(positive(p, "train-freq", train_freq)?),
            gradient_steps: positive(p, "gradient-steps", gradient_steps)?,
            steps: 0,
            since_update: 0,
        })
    }

    /// Counts one vector-env step of `num_envs` envs.
    pub fn observed(&mut self, num_envs: u64) {
        self.steps += num_envs;
        self.since_update += 1;
    }

    /// Whether it is time for an update.
    pub fn due(&self) -> bool {
        self.steps >= self.learning_starts && self.since_update >= self.train_freq
    }

    /// Whether the learner is still collecting its first `learning-starts` steps.
    pub fn warming_up(&self) -> bool {
        self.steps < self.learning_starts
    }

    /// Marks an update done.
    pub fn updated(&mut self) {
        self.since_update = 0;
    }

    /// The counters, for `save-state`.
    pub fn to_state(&self) -> Vec<u64> {
        vec![self.steps, self.since_update]
    }

    /// Restores [`TrainSchedule::to_state`]'s counters.
    pub fn load(&mut self, v: &[u64]) {
        if let [steps, since, ..] = v {
            (self.steps, self.since_update) = (*steps, *since);
        }
    }
}

/// Maps a box action space to `[-1, 1]` and back (tanh-squashed policies act in `[-1, 1]`).
pub struct BoxScale {
    mid: Tensor,
    half: Tensor,
    low: Vec<f64>,
    high: Vec<f64>,
    /// Flat action length.
    pub len: i64,
}

impl BoxScale {
    /// For a bounded box action space (an error otherwise).
    pub fn new(space: &Space) -> Result<Self, PluginError> {
        let Space::Box(b) = space else {
            return Err(PluginError::Unsupported("this algorithm needs a box (continuous) action space".into()));
        };
        if b.low.iter().chain(&b.high).any(|x| !x.is_finite()) {
            return Err(PluginError::Unsupported("this algorithm needs a bounded action space (finite low and high)".into()));
        }
        let mid: Vec<f32> = b.low.iter().zip(&b.high).map(|(l, h)| (l + h) / 2.0).collect();
        let half: Vec<f32> = b.low.iter().zip(&b.high).map(|(l, h)| (h - l) / 2.0).collect();
        let len = mid.len() as i64;
        Ok(BoxScale {
            mid: Tensor::from_f32(&mid, &[len]),
            half: Tensor::from_f32(&half, &[len]),
            low: b.low.iter().map(|&x| f64::from(x)).collect(),
            high: b.high.iter().map(|&x| f64::from(x)).collect(),
            len,
        })
    }

    /// Env units → `[-1, 1]`.
    pub fn to_unit(&self, a: &Tensor) -> Tensor {
        a.sub(&self.mid).div(&self.half).clamp(-1.0, 1.0)
    }

    /// `[-1, 1]` → env units.
    pub fn from_unit(&self, u: &Tensor) -> Tensor {
        u.mul(&self.half).add(&self.mid)
    }

    /// Uniform random actions in env units for `n` envs.
    pub fn random(&self, n: i64) -> Tensor {
        let parts: Vec<Tensor> = self.low.iter().zip(&self.high).map(|(&l, &h)| Tensor::uniform(&[n, 1], l, h)).collect();
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1)
    }
}

/// An MLP spec with ReLU hidden layers, orthogonal init (gain √2, output gain `out_gain`).
pub fn relu_mlp(input: i64, hidden: &[u32], output: i64, out_gain: f64) -> MlpSpec {
    MlpSpec {
        input: input as u32,
        hidden: hidden.to_vec(),
        output: output as u32,
        activation: Activation::Relu,
        hidden_gain: 2f64.sqrt(),
        output_gain: out_gain,
    }
}

/// Gets or creates `name` and `name/target` with the same spec; the target starts as a
/// copy.
pub fn with_target(name: &str, spec: &MlpSpec) -> Result<(Module, Module), PluginError> {
    let online = Module::get_mlp(name, spec)?;
    let target = Module::get_mlp(&format!("{name}/target"), spec)?;
    Ok((online, target))
}

/// Copies `source` into `target` (Polyak with τ = τ).
pub fn polyak(target: &Module, source: &Module, tau: f64) -> Result<(), PluginError> {
    target.soft_update(source, tau).map_err(PluginError::Failed)
}

/// Twin Q-networks `Q(s, a)` with target copies (Fujimoto et al. 2018's clipped double Q).
pub struct TwinQ {
    /// First critic.
    pub q1: Module,
    /// Second critic.
    pub q2: Module,
    /// Target of the first.
    pub q1_target: Module,
    /// Target of the second.
    pub q2_target: Module,
}

impl TwinQ {
    /// Gets or creates `<prefix>/q1`, `<prefix>/q2` and their targets. `fresh` says whether
    /// they were just made (then targets are synced); a reloaded plugin keeps its targets.
    pub fn new(prefix: &str, obs_len: i64, act_len: i64, hidden: &[u32]) -> Result<Self, PluginError> {
        let spec = relu_mlp(obs_len + act_len, hidden, 1, 1.0);
        let (q1, q1_target) = with_target(&format!("{prefix}/q1"), &spec)?;
        let (q2, q2_target) = with_target(&format!("{prefix}/q2"), &spec)?;
        Ok(TwinQ { q1, q2, q1_target, q2_target })
    }

    /// Online critics' values `[b]` of `(obs, act)`.
    pub fn values(&self, obs: &Tensor, act: &Tensor) -> (Tensor, Tensor) {
        let x = Tensor::cat(&[obs, act], 1);
        (self.q1.forward(&x).reshape(&[-1]), self.q2.forward(&x).reshape(&[-1]))
    }

    /// `min(Q1', Q2')` of the targets, `[b]`.
    pub fn target_min(&self, obs: &Tensor, act: &Tensor) -> Tensor {
        let x = Tensor::cat(&[obs, act], 1);
        self.q1_target.forward(&x).minimum(&self.q2_target.forward(&x)).reshape(&[-1])
    }

    /// Polyak-averages both targets towards the online critics.
    pub fn soft_update(&self, tau: f64) -> Result<(), PluginError> {
        polyak(&self.q1_target, &self.q1, tau)?;
        polyak(&self.q2_target, &self.q2, tau)
    }

    /// Both online critics (for an optimizer).
    pub fn online(&self) -> Vec<&Module> {
        vec![&self.q1, &self.q2]
    }
}

/// `r + γ^k (1 − done) · next` — the bootstrapped target of a replay batch.
pub fn td_target(b: &ReplayBatch, next_value: &Tensor) -> Tensor {
    let not_done = b.dones.mul_s(-1.0).add_s(1.0);
    b.rewards.add(&b.discounts.mul(&not_done).mul(next_value))
}

/// Huber loss (smooth L1 with δ = 1) elementwise: `0.5 x²` for `|x| ≤ 1`, else `|x| − 0.5`.
pub fn huber(x: &Tensor) -> Tensor {
    let a = x.unary(crate::tensor::UnaryOp::Abs);
    let quad = a.clamp(0.0, 1.0);
    quad.square().mul_s(0.5).add(&a.sub(&quad))
}

/// Plugin state of an off-policy learner for `save-state`: the schedule's counters and two
/// of the plugin's own (e.g. gradient steps and updates done).
pub fn state_of(schedule: &TrainSchedule, own: [u64; 2]) -> Vec<u8> {
    let mut c = schedule.to_state();
    c.extend(own);
    c.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// Restores [`state_of`]'s bytes into `schedule` and returns the plugin's own two counters;
/// `plugin` names the plugin in errors.
pub fn load_state(plugin: &str, state: &[u8], schedule: &mut TrainSchedule) -> Result<[u64; 2], PluginError> {
    if state.len() != 32 {
        return Err(PluginError::InvalidParams(format!("{plugin} state is 32 bytes, got {}", state.len())));
    }
    let c: Vec<u64> = state.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect();
    schedule.load(&c);
    Ok([c[2], c[3]])
}
