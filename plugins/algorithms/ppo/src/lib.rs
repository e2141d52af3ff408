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
//!
//! While it runs (`algo-tune`: population-based training, a resume with new values) it lets
//! `learning-rate`, `ent-coef`, `clip-range`, `vf-coef` and `max-grad-norm` change.
//!
//! Learning-rate schedule (off by default): with `anneal-steps` N the rate falls linearly
//! from `learning-rate` to `learning-rate-end` (default 0) over the first N env steps, as
//! Stable-Baselines3's `linear_schedule` does over a run; it is set before each update from
//! the update count, so a resumed run follows the same schedule.

use paddock_sdk::actor_critic::{ActorCritic, Rollout, combined_loss, normalized};
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
    "anneal-steps",
    "learning-rate-end",
    "encoder",
    "encoder-features",
    "random-shift",
];

/// A linear learning-rate schedule over env steps.
struct Anneal {
    start: f64,
    end: f64,
    steps: f64,
    /// Env steps per update: `n-steps` × the number of envs.
    per_update: f64,
}

impl Anneal {
    fn rate(&self, updates: u64) -> f64 {
        let progress = (updates as f64 * self.per_update / self.steps).min(1.0);
        self.start + (self.end - self.start) * progress
    }
}

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
    /// DrQ's random shift of camera images in updates, pixels (0: none).
    random_shift: u32,
}

/// The PPO learner.
pub struct Ppo {
    h: Hyper,
    ac: ActorCritic,
    optimizer: Optimizer,
    rollout: Rollout,
    updates: u64,
    anneal: Option<Anneal>,
}

/// One minibatch of a rollout (advantages already normalised when asked).
struct Minibatch<'a> {
    obs: &'a Tensor,
    actions: &'a Tensor,
    advantages: &'a Tensor,
    log_probs: &'a Tensor,
    returns: &'a Tensor,
    values: &'a Tensor,
}

/// Loss terms summed over an update's minibatches, for its metrics.
#[derive(Default)]
struct Sums {
    pg: f64,
    vf: f64,
    ent: f64,
    clip_frac: f64,
    n: f64,
}

impl Ppo {
    /// One gradient step on the clipped surrogate, value and entropy losses.
    fn step(&mut self, b: &Minibatch<'_>, sums: &mut Sums) -> Result<(), PluginError> {
        let h = &self.h;
        let shifted = (h.random_shift > 0).then(|| paddock_sdk::tensor::random_shift(b.obs, h.random_shift));
        let (lp, ent, v) = self.ac.evaluate(shifted.as_ref().unwrap_or(b.obs), b.actions);
        let ratio = lp.sub(b.log_probs).exp();
        let surr1 = ratio.mul(b.advantages);
        let surr2 = ratio.clamp(1.0 - h.clip, 1.0 + h.clip).mul(b.advantages);
        let pg_loss = surr1.minimum(&surr2).mean_all().neg();
        let v_pred = match h.clip_vf {
            None => v,
            Some(c) => b.values.add(&v.sub(b.values).clamp(-c, c)),
        };
        let vf_loss = b.returns.sub(&v_pred).square().mean_all();
        let ent_loss = ent.mean_all().neg();
        let loss = combined_loss(&pg_loss, &ent_loss, &vf_loss, h.ent_coef, h.vf_coef);
        self.optimizer.minimize(&loss, Some(h.max_grad_norm)).map_err(PluginError::Failed)?;
        sums.pg += pg_loss.item();
        sums.vf += vf_loss.item();
        sums.ent += -ent_loss.item();
        sums.clip_frac += ratio.add_s(-1.0).unary(UnaryOp::Abs).scalar(BinaryOp::Gt, h.clip).to_float().mean_all().item();
        sums.n += 1.0;
        Ok(())
    }
}

fn invalid(msg: String) -> PluginError {
    PluginError::InvalidParams(msg)
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
            gamma: p.fraction("gamma", 0.98)?,
            lambda: p.fraction("gae-lambda", 0.8)?,
            clip: p.positive("clip-range", 0.2)?,
            clip_vf: match p.real("clip-range-vf", -1.0)? {
                v if v > 0.0 => Some(v),
                _ => None,
            },
            ent_coef: p.non_negative("ent-coef", 0.0)?,
            vf_coef: p.non_negative("vf-coef", 0.5)?,
            max_grad_norm: p.positive("max-grad-norm", 0.5)?,
            normalize_advantage: p.flag("normalize-advantage", true)?,
            random_shift: p.int_in("random-shift", 0, 0..=64)? as u32,
        };
        let lr = p.positive("learning-rate", 1e-3)?;
        let anneal = match p.int("anneal-steps", 0)? {
            0 if p.has("learning-rate-end") => {
                return Err(invalid("parameter `learning-rate-end` needs `anneal-steps`: the env steps over which the rate falls".into()));
            }
            0 => None,
            n if n < 0 => return Err(invalid(format!("parameter `anneal-steps` must be 0 (no schedule) or more, got {n}"))),
            n => Some(Anneal {
                start: lr,
                end: p.non_negative("learning-rate-end", 0.0)?,
                steps: n as f64,
                per_update: (h.n_steps as u64 * u64::from(num_envs)) as f64,
            }),
        };
        let hidden = p.widths("hidden", &[64, 64])?;
        let encoder = paddock_sdk::actor_critic::encoder_param(p, "ppo")?;
        if h.random_shift > 0 && encoder.is_none() {
            return Err(invalid("parameter `random-shift` shifts camera images: it needs an `encoder`".into()));
        }
        let ac = ActorCritic::with_encoder("ppo", spec, &hidden, p.real("log-std-init", 0.0)?, encoder)?;
        let optimizer = Optimizer::get("ppo/adam", &ac.modules(), OptimizerKind::Adam(1e-5), lr).map_err(PluginError::Failed)?;
        Ok(Ppo { h, ac, optimizer, rollout: Rollout::default(), updates: 0, anneal })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        Ok(self.rollout.act(&self.ac, obs, deterministic))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        self.rollout.push(&self.ac, &t, self.h.gamma);
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.rollout.len() >= self.h.n_steps
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let (n_epochs, minibatch, normalize_advantage) = (self.h.n_epochs, self.h.minibatch, self.h.normalize_advantage);
        let b = self.rollout.take_batch(&self.ac, self.h.gamma, self.h.lambda)?;
        let rate = self.anneal.as_ref().map(|a| a.rate(self.updates));
        if let Some(rate) = rate {
            self.optimizer.set_learning_rate(rate);
        }
        let total = b.obs.shape()[0];
        let mb = minibatch.min(total);
        let normalize = |a: Tensor| {
            if normalize_advantage && a.shape()[0] > 1 { normalized(&a) } else { a }
        };
        // One minibatch holding the whole rollout (the zoo's CartPole setting): the loss is a
        // mean, so shuffling changes nothing; use the batch as it is and normalise once.
        let whole = (mb == total).then(|| normalize(b.advantages.copy()));
        let mut sums = Sums::default();
        for _ in 0..n_epochs {
            if let Some(adv) = &whole {
                let mb = Minibatch {
                    obs: &b.obs,
                    actions: &b.actions,
                    advantages: adv,
                    log_probs: &b.log_probs,
                    returns: &b.returns,
                    values: &b.values,
                };
                self.step(&mb, &mut sums)?;
                continue;
            }
            let perm = Tensor::randperm(total);
            let mut start = 0;
            while start + mb <= total {
                let idx = perm.narrow(0, start, mb);
                start += mb;
                let pick = |t: &Tensor| t.index_select(0, &idx);
                let (obs, actions, log_probs, returns, values) =
                    (pick(&b.obs), pick(&b.actions), pick(&b.log_probs), pick(&b.returns), pick(&b.values));
                let advantages = normalize(pick(&b.advantages));
                let m = Minibatch {
                    obs: &obs,
                    actions: &actions,
                    advantages: &advantages,
                    log_probs: &log_probs,
                    returns: &returns,
                    values: &values,
                };
                self.step(&m, &mut sums)?;
            }
        }
        self.updates += 1;
        let n = f64::max(sums.n, 1.0);
        let mut metrics = vec![
            metric("loss/policy", sums.pg / n),
            metric("loss/value", sums.vf / n),
            metric("entropy", sums.ent / n),
            metric("clip-fraction", sums.clip_frac / n),
            metric("updates", self.updates as f64),
        ];
        if let Some(rate) = rate {
            metrics.push(metric("learning-rate", rate));
        }
        Ok(metrics)
    }

    const MUTABLE_PARAMS: &'static [&'static str] = &["learning-rate", "ent-coef", "clip-range", "vf-coef", "max-grad-norm"];

    fn retune(&mut self, p: &Params) -> Result<(), PluginError> {
        p.check_known(Self::MUTABLE_PARAMS)?;
        if p.has("learning-rate") {
            let lr = p.positive("learning-rate", 1e-3)?;
            match &mut self.anneal {
                // The schedule goes on from the new rate at the same progress.
                Some(a) => a.start = lr,
                None => self.optimizer.set_learning_rate(lr),
            }
        }
        if p.has("ent-coef") {
            self.h.ent_coef = p.non_negative("ent-coef", 0.0)?;
        }
        if p.has("clip-range") {
            self.h.clip = p.positive("clip-range", 0.2)?;
        }
        if p.has("vf-coef") {
            self.h.vf_coef = p.non_negative("vf-coef", 0.5)?;
        }
        if p.has("max-grad-norm") {
            self.h.max_grad_norm = p.positive("max-grad-norm", 0.5)?;
        }
        Ok(())
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
