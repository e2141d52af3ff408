//! DQN: Mnih, Kavukcuoglu, Silver et al., "Human-level control through deep reinforcement
//! learning" (Nature, 2015) — a Q-network trained from a replay buffer towards a periodically
//! copied target network, acting ε-greedily — with the double-DQN target of van Hasselt,
//! Guez & Silver, "Deep Reinforcement Learning with Double Q-learning" (AAAI 2016): the
//! online network picks the next action, the target network values it. The host's replay
//! buffer adds prioritized replay, n-step returns and hindsight relabeling by parameter.
//!
//! Parameters (defaults: Stable-Baselines3's DQN; rl-baselines3-zoo's CartPole-v1 values are
//! in `configs/cartpole-dqn.toml`): `learning-rate` 1e-4, `batch-size` 32, `gamma` 0.99,
//! `target-update-interval` 10000 (env steps between hard copies), `exploration-initial-eps`
//! 1.0, `exploration-final-eps` 0.05, `exploration-steps` 100000 (env steps of the linear
//! decay; SB3's `exploration_fraction × total_timesteps`), `max-grad-norm` 10, `hidden`
//! [64, 64], `double` true, `huber` true (smooth L1; false: squared error), the schedule
//! parameters (`learning-starts` 100, `train-freq` 4, `gradient-steps` 1) and the replay
//! parameters of `paddock_sdk::off_policy` (`buffer-size` 1000000, …).

use paddock_sdk::algorithm::{Metric, metric};
use paddock_sdk::off_policy::{self, REPLAY_PARAMS, SCHEDULE_PARAMS, TrainSchedule};
use paddock_sdk::tensor::{Dtype, Module, Optimizer, OptimizerKind, ReduceOp, Replay, Tensor, UnaryOp, set_grad_enabled};
use paddock_sdk::types::{EnvSpec, PluginError, Space};
use paddock_sdk::{Algorithm, Params, Transitions};

const PARAMS: &[&str] = &[
    "learning-rate",
    "batch-size",
    "gamma",
    "target-update-interval",
    "exploration-initial-eps",
    "exploration-final-eps",
    "exploration-steps",
    "max-grad-norm",
    "hidden",
    "double",
    "huber",
];

/// The DQN learner.
pub struct Dqn {
    q: Module,
    target: Module,
    optimizer: Optimizer,
    replay: Replay,
    prioritized: bool,
    schedule: TrainSchedule,
    actions: u32,
    batch_size: u32,
    target_update_interval: u64,
    since_target_update: u64,
    eps: (f64, f64, f64),
    max_grad_norm: f64,
    double: bool,
    huber: bool,
    updates: u64,
}

impl Dqn {
    fn epsilon(&self) -> f64 {
        let (start, end, steps) = self.eps;
        let frac = if steps <= 0.0 { 1.0 } else { (self.schedule.steps as f64 / steps).min(1.0) };
        start + (end - start) * frac
    }
}

impl Algorithm for Dqn {
    fn new(spec: &EnvSpec, num_envs: u32, p: &Params) -> Result<Self, PluginError> {
        paddock_sdk::actor_critic::vectors_only("dqn")?;
        p.check_known(&[PARAMS, REPLAY_PARAMS, SCHEDULE_PARAMS].concat())?;
        let Space::Discrete(d) = &spec.action_space else {
            return Err(PluginError::Unsupported("DQN needs a discrete action space".into()));
        };
        let obs_len = paddock_sdk::space::flat_len(&spec.observation_space) as i64;
        let hidden = p.widths("hidden", &[64, 64])?;
        let (q, target) = off_policy::with_target("dqn/q", &off_policy::relu_mlp(obs_len, &hidden, i64::from(d.n), 1.0))?;
        let optimizer = Optimizer::get("dqn/adam", &[&q], OptimizerKind::Adam(1e-8), p.positive("learning-rate", 1e-4)?)
            .map_err(PluginError::Failed)?;
        let gamma = p.fraction("gamma", 0.99)?;
        let replay = off_policy::replay("dqn/replay", spec, num_envs, p, gamma, 1_000_000)?;
        let target_update_interval = p.int("target-update-interval", 10_000)?;
        if target_update_interval < 1 {
            return Err(PluginError::InvalidParams(format!(
                "parameter `target-update-interval` must be ≥ 1, got {target_update_interval}"
            )));
        }
        Ok(Dqn {
            q,
            target,
            optimizer,
            replay,
            prioritized: p.flag("prioritized", false)?,
            schedule: TrainSchedule::from_params(p, 100, 4, 1)?,
            actions: d.n,
            batch_size: p.int("batch-size", 32)?.max(1) as u32,
            target_update_interval: target_update_interval as u64,
            since_target_update: 0,
            eps: (
                p.fraction("exploration-initial-eps", 1.0)?,
                p.fraction("exploration-final-eps", 0.05)?,
                p.non_negative("exploration-steps", 100_000.0)?,
            ),
            max_grad_norm: p.positive("max-grad-norm", 10.0)?,
            double: p.flag("double", true)?,
            huber: p.flag("huber", true)?,
            updates: 0,
        })
    }

    fn act(&mut self, obs: &Tensor, deterministic: bool) -> Result<Tensor, PluginError> {
        let n = obs.shape()[0];
        let prev = set_grad_enabled(false);
        let greedy = self.q.forward(obs).reduce(ReduceOp::Argmax, &[-1], false);
        set_grad_enabled(prev);
        let eps = if deterministic { 0.0 } else { self.epsilon() };
        let actions = if eps <= 0.0 {
            greedy
        } else {
            let random = Tensor::uniform(&[n], 0.0, f64::from(self.actions)).to_dtype(Dtype::Int64).clamp(0.0, f64::from(self.actions - 1));
            Tensor::uniform(&[n], 0.0, 1.0).scalar(paddock_sdk::tensor::BinaryOp::Lt, eps).select(&random, &greedy)
        };
        Ok(actions.reshape(&[n, 1]))
    }

    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError> {
        if self.schedule.steps == 0 {
            // A fresh learner: the target starts as a copy (a resumed one keeps its own).
            off_policy::polyak(&self.target, &self.q, 1.0)?;
        }
        off_policy::add(&self.replay, &t, t.actions)?;
        let n = t.rewards.shape()[0] as u64;
        self.schedule.observed(n);
        self.since_target_update += n;
        if self.since_target_update >= self.target_update_interval {
            self.since_target_update = 0;
            off_policy::polyak(&self.target, &self.q, 1.0)?;
        }
        Ok(())
    }

    fn wants_update(&self) -> bool {
        self.schedule.due()
    }

    fn update(&mut self) -> Result<Vec<Metric>, PluginError> {
        let (mut loss_sum, mut q_sum, mut norm_sum) = (0.0, 0.0, 0.0);
        let steps = self.schedule.gradient_steps;
        for _ in 0..steps {
            let b = off_policy::sample(&self.replay, self.batch_size)?;
            let prev = set_grad_enabled(false);
            let next_target = self.target.forward(&b.next_observations);
            let next_value = if self.double {
                let best = self.q.forward(&b.next_observations).reduce(ReduceOp::Argmax, &[-1], true);
                next_target.gather(1, &best).reshape(&[-1])
            } else {
                next_target.reduce(ReduceOp::Max, &[-1], false)
            };
            let y = off_policy::td_target(&b, &next_value);
            set_grad_enabled(prev);
            let q = self.q.forward(&b.observations).gather(1, &b.actions.to_dtype(Dtype::Int64)).reshape(&[-1]);
            let td = q.sub(&y);
            let per = if self.huber { off_policy::huber(&td) } else { td.square() };
            let loss = per.mul(&b.weights).mean_all();
            norm_sum += self.optimizer.minimize(&loss, Some(self.max_grad_norm)).map_err(PluginError::Failed)?;
            if self.prioritized {
                self.replay.update_priorities(&b.indices, &td.detach().unary(UnaryOp::Abs)).map_err(PluginError::Failed)?;
            }
            loss_sum += loss.item();
            q_sum += q.mean_all().item();
        }
        self.schedule.updated();
        self.updates += 1;
        let k = f64::from(steps);
        Ok(vec![
            metric("loss/q", loss_sum / k),
            metric("q-mean", q_sum / k),
            metric("grad-norm", norm_sum / k),
            metric("epsilon", self.epsilon()),
            metric("updates", self.updates as f64),
        ])
    }

    fn save_state(&self) -> Vec<u8> {
        off_policy::state_of(&self.schedule, [self.since_target_update, self.updates])
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), PluginError> {
        [self.since_target_update, self.updates] = off_policy::load_state("DQN", state, &mut self.schedule)?;
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_algorithm!(Dqn);
