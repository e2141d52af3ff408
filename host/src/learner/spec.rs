//! The learner's own descriptions of what a plugin asks for: module, optimizer and replay
//! specs. They mirror the contract's records (`paddock:rl/tensor`) field for field, and the
//! tensor host converts the generated binding types into them at the boundary
//! (`runtime::tensor_host`), so the learner and its checkpoint format do not depend on the
//! bindings. Checkpoints store them as JSON in these kebab-case names (`learner.json`): a
//! renamed field here changes the format, and the resume tests fail.

use serde::{Deserialize, Serialize};

/// A tensor element type (`dtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dtype {
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// 64-bit integer.
    Int64,
    /// Boolean.
    Boolean,
}

/// A hidden-layer activation (`activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// tanh.
    Tanh,
    /// ReLU.
    Relu,
    /// ELU.
    Elu,
}

/// A multilayer perceptron (`mlp-spec`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MlpSpec {
    /// Input width.
    pub input: u32,
    /// Hidden layer widths.
    pub hidden: Vec<u32>,
    /// Output width.
    pub output: u32,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Orthogonal-init gain of the hidden layers.
    pub hidden_gain: f64,
    /// Orthogonal-init gain of the output layer.
    pub output_gain: f64,
}

/// Which convolutional encoder (`encoder-arch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderArch {
    /// Stable-Baselines3's `NatureCNN`.
    NatureCnn,
    /// The DrQ-v2 encoder.
    Drq,
}

/// A convolutional encoder of the observation's camera images (`encoder-spec`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EncoderSpec {
    /// Which architecture.
    pub arch: EncoderArch,
    /// Image features it puts out (after the env's own values).
    pub features: u32,
}

/// An optimizer and its constants (`optimizer-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam with this ε.
    Adam(f64),
    /// RMSprop with (α, ε).
    Rmsprop((f64, f64)),
    /// SGD with this momentum.
    Sgd(f64),
}

/// Prioritized replay's constants (`prioritized-spec`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PrioritizedSpec {
    /// Priority exponent α.
    pub alpha: f64,
    /// Importance-sampling exponent β at the start.
    pub beta: f64,
    /// β at the end of the annealing.
    pub beta_final: f64,
    /// Samples over which β anneals.
    pub beta_samples: u64,
    /// Added to |δ| so no priority is zero.
    pub epsilon: f64,
}

/// Where hindsight goals come from (`hindsight-strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HindsightStrategy {
    /// A goal achieved later in the episode.
    FutureGoal,
    /// The episode's last achieved goal.
    FinalGoal,
    /// Any goal achieved in the episode.
    EpisodeGoal,
}

/// Hindsight relabeling (`hindsight-spec`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HindsightSpec {
    /// The strategy.
    pub strategy: HindsightStrategy,
    /// Relabeled per real transition (a fraction k/(k+1) of a batch).
    pub k: u32,
}

/// A replay buffer (`replay-spec`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReplaySpec {
    /// Transitions held.
    pub capacity: u32,
    /// Envs adding a row each per `add`.
    pub num_envs: u32,
    /// Observation length.
    pub observation_len: u32,
    /// Action length.
    pub action_len: u32,
    /// Action element type.
    pub action_dtype: Dtype,
    /// Steps per stored return (1: plain).
    pub n_step: u32,
    /// Discount of the n-step returns.
    pub gamma: f64,
    /// Prioritized replay, if asked for.
    pub prioritized: Option<PrioritizedSpec>,
    /// Hindsight relabeling, if asked for.
    pub hindsight: Option<HindsightSpec>,
}
