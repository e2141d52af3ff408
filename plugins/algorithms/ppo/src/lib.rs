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

use paddock_sdk::actor_critic::{ActorCritic, Rollout};
use paddock_sdk::algorithm::{Metric, counter_from_state, counter_to_state, metric};
use paddock_sdk::tensor::{BinaryOp, Optimizer, OptimizerKind, Tensor, UnaryOp};
use paddock_sdk::types::{EnvSpec, PluginError};
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

/// The PPO learner.
pub struct Ppo {
    h: Hyper,
    ac: ActorCritic,
    optimizer: Optimizer,
    rollout: Rollout,
    updates: u64,
}

fn invalid(msg: String) -> PluginError {
    PluginError::InvalidParams(msg)
}

impl Algorithm for Ppo {
    fn new(spec: &EnvSpec, _num_envs: u32, p: &Params) -> Result<Self, PluginError> {
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
        let hidden = p.widths("hidden", &[64, 64])?;
        let ac = ActorCritic::new("ppo", spec, &hidden, p.real("log-std-init", 0.0)?)?;
        let optimizer = Optimizer::get("ppo/adam", &ac.modules(), OptimizerKind::Adam(1e-5), lr).map_err(PluginError::Failed)?;
        Ok(Ppo { h, ac, optimizer, rollout: Rollout::default(), updates: 0 })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        Ok(self.ac.act(obs, deterministic))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        self.rollout.push(&self.ac, &t, self.h.gamma);
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.rollout.len() >= self.h.n_steps
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let h = &self.h;
        let b = self.rollout.take_batch(&self.ac, h.gamma, h.lambda)?;
        let total = b.obs.shape()[0];
        let mb = h.minibatch.min(total);
        let (mut pg_sum, mut vf_sum, mut ent_sum, mut clip_frac, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..h.n_epochs {
            let perm = Tensor::randperm(total);
            let mut start = 0;
            while start + mb <= total {
                let idx = perm.narrow(0, start, mb);
                start += mb;
                let (lp, ent, v) = self.ac.evaluate(&b.obs.index_select(0, &idx), &b.actions.index_select(0, &idx));
                let mut a = b.advantages.index_select(0, &idx);
                if h.normalize_advantage && mb > 1 {
                    a = a.sub(&a.mean_all()).div(&a.std_all().add_s(1e-8));
                }
                let ratio = lp.sub(&b.log_probs.index_select(0, &idx)).exp();
                let surr1 = ratio.mul(&a);
                let surr2 = ratio.clamp(1.0 - h.clip, 1.0 + h.clip).mul(&a);
                let pg_loss = surr1.minimum(&surr2).mean_all().neg();
                let ret = b.returns.index_select(0, &idx);
                let v_pred = match h.clip_vf {
                    None => v,
                    Some(c) => {
                        let old = b.values.index_select(0, &idx);
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
                clip_frac += ratio.add_s(-1.0).unary(UnaryOp::Abs).scalar(BinaryOp::Gt, h.clip).to_float().mean_all().item();
                n += 1.0;
            }
        }
        self.updates += 1;
        let n = f64::max(n, 1.0);
        Ok(vec![
            metric("loss/policy", pg_sum / n),
            metric("loss/value", vf_sum / n),
            metric("entropy", ent_sum / n),
            metric("clip-fraction", clip_frac / n),
            metric("updates", self.updates as f64),
        ])
    }

    fn save_state(&self) -> Vec<u8> {
        counter_to_state(self.updates)
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.updates = counter_from_state("PPO", state)?;
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(Ppo);
