//! The contract's tensor records (generated binding types) as the learner's own spec types
//! ([`crate::learner::spec`]): the one place the two meet, so the learner and its checkpoint
//! format do not depend on the bindings.

use super::bindings::algorithm::paddock::rl::tensor as wit;
use crate::learner::spec;

impl From<wit::Dtype> for spec::Dtype {
    fn from(d: wit::Dtype) -> Self {
        match d {
            wit::Dtype::Float32 => spec::Dtype::Float32,
            wit::Dtype::Float64 => spec::Dtype::Float64,
            wit::Dtype::Int64 => spec::Dtype::Int64,
            wit::Dtype::Boolean => spec::Dtype::Boolean,
        }
    }
}

impl From<wit::EncoderSpec> for spec::EncoderSpec {
    fn from(e: wit::EncoderSpec) -> Self {
        let arch = match e.arch {
            wit::EncoderArch::NatureCnn => spec::EncoderArch::NatureCnn,
            wit::EncoderArch::Drq => spec::EncoderArch::Drq,
        };
        spec::EncoderSpec { arch, features: e.features }
    }
}

impl From<wit::MlpSpec> for spec::MlpSpec {
    fn from(m: wit::MlpSpec) -> Self {
        spec::MlpSpec {
            input: m.input,
            hidden: m.hidden,
            output: m.output,
            activation: match m.activation {
                wit::Activation::Tanh => spec::Activation::Tanh,
                wit::Activation::Relu => spec::Activation::Relu,
                wit::Activation::Elu => spec::Activation::Elu,
            },
            hidden_gain: m.hidden_gain,
            output_gain: m.output_gain,
        }
    }
}

impl From<wit::OptimizerKind> for spec::OptimizerKind {
    fn from(k: wit::OptimizerKind) -> Self {
        match k {
            wit::OptimizerKind::Adam(eps) => spec::OptimizerKind::Adam(eps),
            wit::OptimizerKind::Rmsprop(ae) => spec::OptimizerKind::Rmsprop(ae),
            wit::OptimizerKind::Sgd(m) => spec::OptimizerKind::Sgd(m),
        }
    }
}

impl From<wit::ReplaySpec> for spec::ReplaySpec {
    fn from(r: wit::ReplaySpec) -> Self {
        spec::ReplaySpec {
            capacity: r.capacity,
            num_envs: r.num_envs,
            observation_len: r.observation_len,
            action_len: r.action_len,
            action_dtype: r.action_dtype.into(),
            n_step: r.n_step,
            gamma: r.gamma,
            prioritized: r.prioritized.map(|p| spec::PrioritizedSpec {
                alpha: p.alpha,
                beta: p.beta,
                beta_final: p.beta_final,
                beta_samples: p.beta_samples,
                epsilon: p.epsilon,
            }),
            hindsight: r.hindsight.map(|h| spec::HindsightSpec {
                strategy: match h.strategy {
                    wit::HindsightStrategy::FutureGoal => spec::HindsightStrategy::FutureGoal,
                    wit::HindsightStrategy::FinalGoal => spec::HindsightStrategy::FinalGoal,
                    wit::HindsightStrategy::EpisodeGoal => spec::HindsightStrategy::EpisodeGoal,
                },
                k: h.k,
            }),
        }
    }
}
