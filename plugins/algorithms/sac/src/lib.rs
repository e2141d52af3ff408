//! SAC: Haarnoja, Zhou, Abbeel & Levine, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep
//! Reinforcement Learning with a Stochastic Actor" (ICML 2018), in the form of Haarnoja et
//! al., "Soft Actor-Critic Algorithms and Applications" (2018): twin Q-networks with Polyak
//! target copies (clipped double Q), a tanh-squashed Gaussian policy trained through the
//! reparameterisation trick, and automatic tuning of the entropy coefficient α towards a
//! target entropy of −|A|.
//!
//! Parameters (defaults: Stable-Baselines3's SAC, which rl-baselines3-zoo uses for
//! Pendulum-v1 with `learning-rate` 1e-3): `learning-rate` 3e-4 (all three optimizers),
//! `batch-size` 256, `gamma` 0.99, `tau` 0.005, `hidden` [256, 256], `ent-coef-init` 1.0,
//! `auto-ent-coef` true (false: α fixed at `ent-coef-init`), `target-entropy` (−|A|),
//! `target-update-interval` 1 (gradient steps between Polyak updates), the schedule
//! parameters (`learning-starts` 100, `train-freq` 1, `gradient-steps` 1) and the replay
//! parameters of `paddock_sdk::off_policy` (`buffer-size` 1000000, …). Before
//! `learning-starts` env steps it acts uniformly at random, as SB3 does.
//!
//! While it runs (`algo-tune`) it lets `learning-rate` (all three optimizers), `tau` and
//! `target-entropy` change.

use paddock_sdk::algorithm::{Metric, metric};
use paddock_sdk::off_policy::{self, BoxScale, REPLAY_PARAMS, SCHEDULE_PARAMS, TrainSchedule, TwinQ};
use paddock_sdk::tensor::{Module, Optimizer, OptimizerKind, Replay, Tensor, set_grad_enabled, squashed_normal_sample};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Algorithm, Params, Transitions};

const PARAMS: &[&str] = &[
    "learning-rate",
    "batch-size",
    "gamma",
    "tau",
    "hidden",
    "ent-coef-init",
    "auto-ent-coef",
    "target-entropy",
    "target-update-interval",
];

/// The SAC learner.
pub struct Sac {
    actor: Module,
    critics: TwinQ,
    log_alpha: Module,
    actor_opt: Optimizer,
    critic_opt: Optimizer,
    alpha_opt: Option<Optimizer>,
    replay: Replay,
    scale: BoxScale,
    schedule: TrainSchedule,
    batch_size: u32,
    tau: f64,
    target_entropy: f64,
    target_update_interval: u64,
    gradient_steps_done: u64,
    updates: u64,
}

impl Sac {
    /// Mean and clamped log-std `[n, |A|]` of the policy at `obs`.
    fn policy(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let out = self.actor.forward(obs);
        let a = self.scale.len;
        (out.narrow(1, 0, a), out.narrow(1, a, a).clamp(-20.0, 2.0))
    }

    /// A reparameterised action in `[-1, 1]` and its log-probability `[n]`.
    fn sample_action(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let (mean, log_std) = self.policy(obs);
        squashed_normal_sample(&mean, &log_std)
    }
}

impl Algorithm for Sac {
    fn new(spec: &EnvSpec, num_envs: u32, p: &Params) -> Result<Self, PluginError> {
        paddock_sdk::actor_critic::vectors_only("sac")?;
        p.check_known(&[PARAMS, REPLAY_PARAMS, SCHEDULE_PARAMS].concat())?;
        let scale = BoxScale::new(&spec.action_space)?;
        let obs_len = paddock_sdk::space::flat_len(&spec.observation_space) as i64;
        let hidden = p.widths("hidden", &[256, 256])?;
        let actor = Module::get_mlp("sac/actor", &off_policy::relu_mlp(obs_len, &hidden, 2 * scale.len, 0.01))?;
        let critics = TwinQ::new("sac/critic", obs_len, scale.len, &hidden)?;
        let init = p.real("ent-coef-init", 1.0)?;
        if init <= 0.0 {
            return Err(PluginError::InvalidParams(format!("parameter `ent-coef-init` must be positive, got {init}")));
        }
        let log_alpha = Module::parameter("sac/log-alpha", &Tensor::full(&[1], init.ln(), paddock_sdk::tensor::Dtype::Float32))
            .map_err(PluginError::Failed)?;
        let lr = p.positive("learning-rate", 3e-4)?;
        let adam =
            |name: &str, modules: &[&Module]| Optimizer::get(name, modules, OptimizerKind::Adam(1e-8), lr).map_err(PluginError::Failed);
        let actor_opt = adam("sac/actor-adam", &[&actor])?;
        let critic_opt = adam("sac/critic-adam", &critics.online())?;
        let alpha_opt = if p.flag("auto-ent-coef", true)? { Some(adam("sac/alpha-adam", &[&log_alpha])?) } else { None };
        let gamma = p.fraction("gamma", 0.99)?;
        Ok(Sac {
            replay: off_policy::replay("sac/replay", spec, num_envs, p, gamma, 1_000_000)?,
            schedule: TrainSchedule::from_params(p, 100, 1, 1)?,
            batch_size: p.int("batch-size", 256)?.max(1) as u32,
            tau: p.fraction("tau", 0.005)?,
            target_entropy: p.real("target-entropy", -(scale.len as f64))?,
            target_update_interval: p.int("target-update-interval", 1)?.max(1) as u64,
            gradient_steps_done: 0,
            updates: 0,
            actor,
            critics,
            log_alpha,
            actor_opt,
            critic_opt,
            alpha_opt,
            scale,
        })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        let n = obs.shape()[0];
        if !deterministic && self.schedule.warming_up() {
            return Ok(self.scale.random(n));
        }
        let prev = set_grad_enabled(false);
        let unit = if deterministic { self.policy(obs).0.tanh() } else { self.sample_action(obs).0 };
        set_grad_enabled(prev);
        Ok(self.scale.from_unit(&unit))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        if self.schedule.steps == 0 {
            self.critics.soft_update(1.0)?;
        }
        off_policy::add(&self.replay, &t, &self.scale.to_unit(t.actions))?;
        self.schedule.observed(t.rewards.shape()[0] as u64);
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.schedule.due()
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let mut sums = [0.0f64; 4];
        let steps = self.schedule.gradient_steps;
        for _ in 0..steps {
            let b = off_policy::sample(&self.replay, self.batch_size)?;
            // Entropy coefficient (SB3's order: α first, from the current policy's sample).
            let (action, log_prob) = self.sample_action(&b.observations);
            let alpha_t = self.log_alpha.forward(&b.observations).detach().exp();
            if let Some(opt) = &self.alpha_opt {
                let la = self.log_alpha.forward(&b.observations);
                let alpha_loss = la.mul(&log_prob.detach().add_s(self.target_entropy)).mean_all().neg();
                opt.minimize(&alpha_loss, None).map_err(PluginError::Failed)?;
            }
            // Critics towards r + γ (min Q'(s', a') − α log π(a'|s')).
            let prev = set_grad_enabled(false);
            let (next_a, next_lp) = self.sample_action(&b.next_observations);
            let next_q = self.critics.target_min(&b.next_observations, &next_a).sub(&next_lp.mul(&alpha_t));
            let y = off_policy::td_target(&b, &next_q);
            set_grad_enabled(prev);
            let (q1, q2) = self.critics.values(&b.observations, &b.actions);
            let critic_loss = q1.sub(&y).square().mean_all().add(&q2.sub(&y).square().mean_all()).mul_s(0.5);
            self.critic_opt.minimize(&critic_loss, None).map_err(PluginError::Failed)?;
            // Actor: minimise α log π(a|s) − min Q(s, a).
            let (q1_pi, q2_pi) = self.critics.values(&b.observations, &action);
            let actor_loss = log_prob.mul(&alpha_t).sub(&q1_pi.minimum(&q2_pi)).mean_all();
            self.actor_opt.minimize(&actor_loss, None).map_err(PluginError::Failed)?;
            self.gradient_steps_done += 1;
            if self.gradient_steps_done % self.target_update_interval == 0 {
                self.critics.soft_update(self.tau)?;
            }
            sums[0] += critic_loss.item();
            sums[1] += actor_loss.item();
            sums[2] += alpha_t.item();
            sums[3] += log_prob.mean_all().item();
        }
        self.schedule.updated();
        self.updates += 1;
        let k = f64::from(steps);
        Ok(vec![
            metric("loss/critic", sums[0] / k),
            metric("loss/actor", sums[1] / k),
            metric("ent-coef", sums[2] / k),
            metric("entropy", -sums[3] / k),
            metric("updates", self.updates as f64),
        ])
    }

    const MUTABLE_PARAMS: &'static [&'static str] = &["learning-rate", "tau", "target-entropy"];

    fn retune(&mut self, p: &Params) -> Result<(), PluginError> {
        p.check_known(Self::MUTABLE_PARAMS)?;
        if p.has("learning-rate") {
            let lr = p.positive("learning-rate", 3e-4)?;
            for opt in [Some(&self.actor_opt), Some(&self.critic_opt), self.alpha_opt.as_ref()].into_iter().flatten() {
                opt.set_learning_rate(lr);
            }
        }
        if p.has("tau") {
            self.tau = p.fraction("tau", 0.005)?;
        }
        if p.has("target-entropy") {
            self.target_entropy = p.real("target-entropy", self.target_entropy)?;
        }
        Ok(())
    }

    fn save_state(&self) -> Vec<u8> {
        off_policy::state_of(&self.schedule, [self.gradient_steps_done, self.updates])
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        [self.gradient_steps_done, self.updates] = off_policy::load_state("SAC", state, &mut self.schedule)?;
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(Sac);
