//! A2C: the synchronous variant of Mnih, Badia, Mirza, Graves, Lillicrap, Harley, Silver &
//! Kavukcuoglu, "Asynchronous Methods for Deep Reinforcement Learning" (2016), as in
//! Stable-Baselines3: every `n-steps` vector steps, one gradient step on the policy-gradient
//! loss with (GAE) advantages, the value loss and an entropy bonus, with RMSprop.
//!
//! Parameters (defaults: Stable-Baselines3's A2C, which rl-baselines3-zoo uses for
//! CartPole-v1 with 8 envs): `n-steps` 5, `gamma` 0.99, `gae-lambda` 1.0 (plain n-step
//! returns), `ent-coef` 0, `vf-coef` 0.5, `max-grad-norm` 0.5, `learning-rate` 7e-4,
//! `rms-alpha` 0.99, `rms-eps` 1e-5, `normalize-advantage` false, `hidden` [64, 64],
//! `log-std-init` 0.

use paddock_sdk::actor_critic::{ActorCritic, Rollout, combined_loss, normalized};
use paddock_sdk::algorithm::{Metric, counter_from_state, counter_to_state, metric};
use paddock_sdk::tensor::{Optimizer, OptimizerKind, Tensor};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Algorithm, Params, Transitions};

const PARAMS: &[&str] = &[
    "n-steps",
    "gamma",
    "gae-lambda",
    "ent-coef",
    "vf-coef",
    "max-grad-norm",
    "learning-rate",
    "rms-alpha",
    "rms-eps",
    "normalize-advantage",
    "hidden",
    "log-std-init",
    "encoder",
    "encoder-features",
];

/// The A2C learner.
pub struct A2c {
    n_steps: usize,
    gamma: f64,
    lambda: f64,
    ent_coef: f64,
    vf_coef: f64,
    max_grad_norm: f64,
    normalize_advantage: bool,
    ac: ActorCritic,
    optimizer: Optimizer,
    rollout: Rollout,
    updates: u64,
}

impl Algorithm for A2c {
    fn new(spec: &EnvSpec, _num_envs: u32, p: &Params) -> Result<Self, PluginError> {
        p.check_known(PARAMS)?;
        let n_steps = p.int("n-steps", 5)?;
        if n_steps < 1 {
            return Err(PluginError::InvalidParams(format!("parameter `n-steps` must be at least 1, got {n_steps}")));
        }
        let hidden = p.widths("hidden", &[64, 64])?;
        let encoder = paddock_sdk::actor_critic::encoder_param(p, "a2c")?;
        let ac = ActorCritic::with_encoder("a2c", spec, &hidden, p.real("log-std-init", 0.0)?, encoder)?;
        let kind = OptimizerKind::Rmsprop((p.fraction("rms-alpha", 0.99)?, p.positive("rms-eps", 1e-5)?));
        let optimizer =
            Optimizer::get("a2c/rmsprop", &ac.modules(), kind, p.positive("learning-rate", 7e-4)?).map_err(PluginError::Failed)?;
        Ok(A2c {
            n_steps: n_steps as usize,
            gamma: p.fraction("gamma", 0.99)?,
            lambda: p.fraction("gae-lambda", 1.0)?,
            ent_coef: p.non_negative("ent-coef", 0.0)?,
            vf_coef: p.non_negative("vf-coef", 0.5)?,
            max_grad_norm: p.positive("max-grad-norm", 0.5)?,
            normalize_advantage: p.flag("normalize-advantage", false)?,
            ac,
            optimizer,
            rollout: Rollout::default(),
            updates: 0,
        })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        Ok(self.rollout.act(&self.ac, obs, deterministic))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        self.rollout.push(&self.ac, &t, self.gamma);
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.rollout.len() >= self.n_steps
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let b = self.rollout.take_batch(&self.ac, self.gamma, self.lambda)?;
        let (log_probs, entropy, values) = self.ac.evaluate(&b.obs, &b.actions);
        let mut adv = b.advantages;
        if self.normalize_advantage {
            adv = normalized(&adv);
        }
        let pg_loss = adv.mul(&log_probs).mean_all().neg();
        let vf_loss = b.returns.sub(&values).square().mean_all();
        let ent_loss = entropy.mean_all().neg();
        let loss = combined_loss(&pg_loss, &ent_loss, &vf_loss, self.ent_coef, self.vf_coef);
        let grad_norm = self.optimizer.minimize(&loss, Some(self.max_grad_norm)).map_err(PluginError::Failed)?;
        self.updates += 1;
        Ok(vec![
            metric("loss/policy", pg_loss.item()),
            metric("loss/value", vf_loss.item()),
            metric("entropy", -ent_loss.item()),
            metric("grad-norm", grad_norm),
            metric("updates", self.updates as f64),
        ])
    }

    fn save_state(&self) -> Vec<u8> {
        counter_to_state(self.updates)
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.updates = counter_from_state("A2C", state)?;
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(A2c);
