//! How checkpoints spell the WIT records the learner keeps (module specs, optimizer kinds,
//! replay specs). The generated binding types cannot derive serde themselves (a record of
//! the same interface holds resource handles), so serde's remote derive describes them here
//! field by field; a changed record fails to compile here rather than silently.

use crate::runtime::bindings::algorithm::paddock::rl::tensor::{
    Activation, Dtype, HindsightSpec, HindsightStrategy, MlpSpec, OptimizerKind, PrioritizedSpec, ReplaySpec,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(remote = "Activation", rename_all = "kebab-case")]
enum ActivationDef {
    Tanh,
    Relu,
    Elu,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "MlpSpec", rename_all = "kebab-case")]
struct MlpSpecDef {
    input: u32,
    hidden: Vec<u32>,
    output: u32,
    #[serde(with = "ActivationDef")]
    activation: Activation,
    hidden_gain: f64,
    output_gain: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "OptimizerKind", rename_all = "kebab-case")]
enum OptimizerKindDef {
    Adam(f64),
    Rmsprop((f64, f64)),
    Sgd(f64),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Dtype", rename_all = "kebab-case")]
enum DtypeDef {
    Float32,
    Float64,
    Int64,
    Boolean,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "HindsightStrategy", rename_all = "kebab-case")]
#[expect(clippy::enum_variant_names, reason = "mirrors the WIT enum `hindsight-strategy`")]
enum HindsightStrategyDef {
    FutureGoal,
    FinalGoal,
    EpisodeGoal,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "PrioritizedSpec", rename_all = "kebab-case")]
struct PrioritizedSpecDef {
    alpha: f64,
    beta: f64,
    beta_final: f64,
    beta_samples: u64,
    epsilon: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "HindsightSpec", rename_all = "kebab-case")]
struct HindsightSpecDef {
    #[serde(with = "HindsightStrategyDef")]
    strategy: HindsightStrategy,
    k: u32,
}

#[derive(Serialize, Deserialize)]
struct PrioritizedW(#[serde(with = "PrioritizedSpecDef")] PrioritizedSpec);

#[derive(Serialize, Deserialize)]
struct HindsightW(#[serde(with = "HindsightSpecDef")] HindsightSpec);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ReplaySpecMirror {
    capacity: u32,
    num_envs: u32,
    observation_len: u32,
    action_len: u32,
    #[serde(with = "DtypeDef")]
    action_dtype: Dtype,
    n_step: u32,
    gamma: f64,
    prioritized: Option<PrioritizedW>,
    hindsight: Option<HindsightW>,
}

/// An MLP spec as checkpoints store it.
#[derive(Serialize, Deserialize)]
pub struct MlpSpecJson(#[serde(with = "MlpSpecDef")] pub MlpSpec);

/// An optimizer kind as checkpoints store it.
#[derive(Serialize, Deserialize)]
pub struct OptimizerKindJson(#[serde(with = "OptimizerKindDef")] pub OptimizerKind);

/// A replay spec as checkpoints store it.
pub struct ReplaySpecJson(pub ReplaySpec);

impl Serialize for ReplaySpecJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        ReplaySpecMirror {
            capacity: r.capacity,
            num_envs: r.num_envs,
            observation_len: r.observation_len,
            action_len: r.action_len,
            action_dtype: r.action_dtype,
            n_step: r.n_step,
            gamma: r.gamma,
            prioritized: r.prioritized.map(PrioritizedW),
            hindsight: r.hindsight.map(HindsightW),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReplaySpecJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = ReplaySpecMirror::deserialize(d)?;
        Ok(ReplaySpecJson(ReplaySpec {
            capacity: m.capacity,
            num_envs: m.num_envs,
            observation_len: m.observation_len,
            action_len: m.action_len,
            action_dtype: m.action_dtype,
            n_step: m.n_step,
            gamma: m.gamma,
            prioritized: m.prioritized.map(|p| p.0),
            hindsight: m.hindsight.map(|h| h.0),
        }))
    }
}

/// Whether two replay specs are the same (by their stored form).
pub fn same_replay_spec(a: &ReplaySpec, b: &ReplaySpec) -> bool {
    let j = |r: &ReplaySpec| serde_json::to_string(&ReplaySpecJson(*r)).ok();
    j(a) == j(b)
}
