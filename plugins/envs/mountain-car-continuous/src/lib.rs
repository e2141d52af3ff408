//! `MountainCarContinuous-v0`: Moore, "Efficient memory-based learning for robot control"
//! (1990), continuous-action version as in Gymnasium 1.x: force in [-1, 1], reward 100 at
//! the goal minus 0.1·force², 999-step limit. The state is stored as float32 after each
//! step and the arithmetic follows NumPy 2's float32/float64 promotion, as Gymnasium's does.
//!
//! Parameters: `goal-velocity` (default 0), `initial-state` (position, velocity). Reset
//! options: `initial-state`, `low`, `high` (bounds of the initial position, default
//! −0.6 … −0.4).

use paddock_sdk::env::state::{load_f64s, save_f64s};
use paddock_sdk::space::{box1d, check_finite};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};

const MIN_POSITION: f32 = -1.2;
const MAX_POSITION: f32 = 0.6;
const MAX_SPEED: f32 = 0.07;
const GOAL_POSITION: f64 = 0.45;
const POWER: f64 = 0.0015;

/// One car in the valley.
pub struct MountainCar {
    position: f32,
    velocity: f32,
    goal_velocity: f64,
    initial: Option<[f64; 2]>,
}

impl Environment for MountainCar {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        params.check_known(&["goal-velocity", "initial-state"])?;
        Ok(EnvSpec {
            id: "MountainCarContinuous-v0".into(),
            observation_space: box1d(&[MIN_POSITION, -MAX_SPEED], &[MAX_POSITION, MAX_SPEED]),
            action_space: box1d(&[-1.0], &[1.0]),
            max_episode_steps: Some(999),
            info_features: vec![],
            reward_threshold: Some(90.0),
            max_envs_per_instance: 4096,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        params.check_known(&["goal-velocity", "initial-state"])?;
        Ok(MountainCar {
            position: 0.0,
            velocity: 0.0,
            goal_velocity: params.real("goal-velocity", 0.0)?,
            initial: params.reals("initial-state", 2)?.map(|v| [v[0], v[1]]),
        })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["initial-state", "low", "high"])?;
        if let Some([p, v]) = options.reals("initial-state", 2)?.map(|v| [v[0], v[1]]).or(self.initial) {
            (self.position, self.velocity) = (p as f32, v as f32);
            return Ok(());
        }
        let (low, high) = (options.real("low", -0.6)?, options.real("high", -0.4)?);
        self.position = rng.uniform(low, high) as f32;
        self.velocity = 0.0;
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        check_finite(action)?;
        let a = action[0];
        let cos_term = 0.0025 * f64::from(3.0f32 * self.position).cos();
        // `min(max(a, -1.0), 1.0)` keeps a float32 inside the range but yields a Python
        // float (float64) at the bounds, which changes the precision of the update.
        let dv: f32 = if (-1.0..=1.0).contains(&a) {
            (a * POWER as f32) - cos_term as f32
        } else {
            (f64::from(a.clamp(-1.0, 1.0)) * POWER - cos_term) as f32
        };
        let mut velocity = self.velocity + dv;
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        let mut position = self.position + velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        // NumPy 2 compares a float32 with a Python float in float32.
        let terminated = position >= GOAL_POSITION as f32 && velocity >= self.goal_velocity as f32;
        let mut reward = if terminated { 100.0 } else { 0.0 };
        reward -= f64::from(a).powi(2) * 0.1;
        (self.position, self.velocity) = (position, velocity);
        Ok(Transition { reward, terminated })
    }

    fn observe(&self, out: &mut [f32]) {
        out[0] = self.position;
        out[1] = self.velocity;
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        save_f64s(&[f64::from(self.position), f64::from(self.velocity)], out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let mut s = [0.0; 2];
        load_f64s(state, &mut s)?;
        (self.position, self.velocity) = (s[0] as f32, s[1] as f32);
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_env!(MountainCar);
