//! TD3: Fujimoto, van Hoof & Meger, "Addressing Function Approximation Error in Actor-Critic
//! Methods" (ICML 2018): a deterministic actor with twin Q-networks; the target takes the
//! minimum of the two target critics (clipped double Q), adds clipped Gaussian noise to the
//! target action (target policy smoothing), and the actor and the targets are updated only
//! every `policy-delay` critic updates. Exploration adds Gaussian noise to the actor's action.
//!
//! Parameters (defaults: Stable-Baselines3's TD3; rl-baselines3-zoo's Pendulum-v1 values are
//! in `configs/pendulum-td3.toml`): `learning-rate` 1e-3, `batch-size` 256, `gamma` 0.99,
//! `tau` 0.005, `hidden` [400, 300], `policy-delay` 2, `target-policy-noise` 0.2,
//! `target-noise-clip` 0.5, `action-noise` 0.1 (std of the exploration noise, in units of
//! half the action range), the schedule parameters (`learning-starts` 100, `train-freq` 1,
//! `gradient-steps` 1) and the replay parameters of `paddock_sdk::off_policy`
//! (`buffer-size` 1000000, …). Before `learning-starts` env steps it acts uniformly at
//! random.

use paddock_sdk::algorithm::{Metric, metric};
use paddock_sdk::off_policy::{self, BoxScale, REPLAY_PARAMS, SCHEDULE_PARAMS, TrainSchedule, TwinQ};
use paddock_sdk::tensor::{Module, Optimizer, OptimizerKind, Replay, Tensor, set_grad_enabled};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Algorithm, Params, Transitions};

const PARAMS: &[&str] =
    &["learning-rate", "batch-size", "gamma", "tau", "hidden", "policy-delay", "target-policy-noise", "target-noise-clip", "action-noise"];

/// The TD3 learner.
pub struct Td3 {
    actor: Module,
    actor_target: Module,
    critics: TwinQ,
    actor_opt: Optimizer,
    critic_opt: Optimizer,
    replay: Replay,
    scale: BoxScale,
    schedule: TrainSchedule,
    batch_size: u32,
    tau: f64,
    policy_delay: u64,
    target_noise: f64,
    noise_clip: f64,
    action_noise: f64,
    critic_updates: u64,
    updates: u64,
}

impl Algorithm for Td3 {
    fn new(spec: &EnvSpec, num_envs: u32, p: &Params) -> Result<Self, PluginError> {
        paddock_sdk::actor_critic::vectors_only("td3")?;
        p.check_known(&[PARAMS, REPLAY_PARAMS, SCHEDULE_PARAMS].concat())?;
        let scale = BoxScale::new(&spec.action_space)?;
        let obs_len = paddock_sdk::space::flat_len(&spec.observation_space) as i64;
        let hidden = p.widths("hidden", &[400, 300])?;
        let (actor, actor_target) = off_policy::with_target("td3/actor", &off_policy::relu_mlp(obs_len, &hidden, scale.len, 0.01))?;
        let critics = TwinQ::new("td3/critic", obs_len, scale.len, &hidden)?;
        let lr = p.positive("learning-rate", 1e-3)?;
        let adam =
            |name: &str, modules: &[&Module]| Optimizer::get(name, modules, OptimizerKind::Adam(1e-8), lr).map_err(PluginError::Failed);
        let actor_opt = adam("td3/actor-adam", &[&actor])?;
        let critic_opt = adam("td3/critic-adam", &critics.online())?;
        let gamma = p.fraction("gamma", 0.99)?;
        let policy_delay = p.int("policy-delay", 2)?;
        if policy_delay < 1 {
            return Err(PluginError::InvalidParams(format!("parameter `policy-delay` must be ≥ 1, got {policy_delay}")));
        }
        Ok(Td3 {
            replay: off_policy::replay("td3/replay", spec, num_envs, p, gamma, 1_000_000)?,
            schedule: TrainSchedule::from_params(p, 100, 1, 1)?,
            batch_size: p.int("batch-size", 256)?.max(1) as u32,
            tau: p.fraction("tau", 0.005)?,
            policy_delay: policy_delay as u64,
            target_noise: p.non_negative("target-policy-noise", 0.2)?,
            noise_clip: p.non_negative("target-noise-clip", 0.5)?,
            action_noise: p.non_negative("action-noise", 0.1)?,
            critic_updates: 0,
            updates: 0,
            actor,
            actor_target,
            critics,
            actor_opt,
            critic_opt,
            scale,
        })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        let n = obs.shape()[0];
        if !deterministic && self.schedule.warming_up() {
            return Ok(self.scale.random(n));
        }
        let prev = set_grad_enabled(false);
        let mut unit = self.actor.forward(obs).tanh();
        if !deterministic && self.action_noise > 0.0 {
            unit = unit.add(&Tensor::normal(&[n, self.scale.len]).mul_s(self.action_noise)).clamp(-1.0, 1.0);
        }
        set_grad_enabled(prev);
        Ok(self.scale.from_unit(&unit))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        if self.schedule.steps == 0 {
            self.critics.soft_update(1.0)?;
            off_policy::polyak(&self.actor_target, &self.actor, 1.0)?;
        }
        off_policy::add(&self.replay, &t, &self.scale.to_unit(t.actions))?;
        self.schedule.observed(t.rewards.shape()[0] as u64);
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.schedule.due()
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let (mut critic_sum, mut actor_sum, mut actor_n) = (0.0, 0.0, 0u32);
        let steps = self.schedule.gradient_steps;
        for _ in 0..steps {
            let b = off_policy::sample(&self.replay, self.batch_size)?;
            let prev = set_grad_enabled(false);
            let shape = b.actions.shape();
            let noise = Tensor::normal(&shape).mul_s(self.target_noise).clamp(-self.noise_clip, self.noise_clip);
            let next_a = self.actor_target.forward(&b.next_observations).tanh().add(&noise).clamp(-1.0, 1.0);
            let y = off_policy::td_target(&b, &self.critics.target_min(&b.next_observations, &next_a));
            set_grad_enabled(prev);
            let (q1, q2) = self.critics.values(&b.observations, &b.actions);
            let critic_loss = q1.sub(&y).square().mean_all().add(&q2.sub(&y).square().mean_all());
            self.critic_opt.minimize(&critic_loss, None).map_err(PluginError::Failed)?;
            critic_sum += critic_loss.item();
            self.critic_updates += 1;
            if self.critic_updates % self.policy_delay == 0 {
                let a = self.actor.forward(&b.observations).tanh();
                let x = Tensor::cat(&[&b.observations, &a], 1);
                let actor_loss = self.critics.q1.forward(&x).mean_all().neg();
                self.actor_opt.minimize(&actor_loss, None).map_err(PluginError::Failed)?;
                self.critics.soft_update(self.tau)?;
                off_policy::polyak(&self.actor_target, &self.actor, self.tau)?;
                actor_sum += actor_loss.item();
                actor_n += 1;
            }
        }
        self.schedule.updated();
        self.updates += 1;
        let mut m = vec![metric("loss/critic", critic_sum / f64::from(steps)), metric("updates", self.updates as f64)];
        if actor_n > 0 {
            m.push(metric("loss/actor", actor_sum / f64::from(actor_n)));
        }
        Ok(m)
    }

    fn save_state(&self) -> Vec<u8> {
        off_policy::state_of(&self.schedule, [self.critic_updates, self.updates])
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        [self.critic_updates, self.updates] = off_policy::load_state("TD3", state, &mut self.schedule)?;
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(Td3);
