//! `Pendulum-v1`: the inverted pendulum swing-up of Gymnasium 1.x: torque in [-2, 2],
//! observation (cos θ, sin θ, θ̇), reward −(θ² + 0.1 θ̇² + 0.001 u²), 200-step limit.
//! Float32 and float64 steps follow Gymnasium/NumPy 2 exactly (u·3 is a float32 product).
//!
//! Parameters: `g` (gravity, default 10), `initial-state` (θ, θ̇). Reset options:
//! `initial-state`, `x-init`, `y-init` (bounds of the uniform initial θ and θ̇).

use paddock_sdk::env::state::{load_f64s, save_f64s};
use paddock_sdk::space::{box1d, check_finite};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};
use std::f64::consts::PI;

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
const PARAMS: &[&str] = &["g", "initial-state"];

/// One pendulum.
pub struct Pendulum {
    th: f64,
    thdot: f64,
    g: f64,
    initial: Option<[f64; 2]>,
}

fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Environment for Pendulum {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        params.check_known(PARAMS)?;
        let high = [1.0, 1.0, MAX_SPEED as f32];
        Ok(EnvSpec {
            id: "Pendulum-v1".into(),
            observation_space: box1d(&high.map(|h| -h), &high),
            action_space: box1d(&[-MAX_TORQUE], &[MAX_TORQUE]),
            max_episode_steps: Some(200),
            info_features: vec![],
            reward_threshold: None,
            max_envs_per_instance: 4096,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        params.check_known(PARAMS)?;
        Ok(Pendulum { th: 0.0, thdot: 0.0, g: params.real("g", 10.0)?, initial: params.reals("initial-state", 2)?.map(|v| [v[0], v[1]]) })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["initial-state", "x-init", "y-init"])?;
        if let Some([th, thdot]) = options.reals("initial-state", 2)?.map(|v| [v[0], v[1]]).or(self.initial) {
            (self.th, self.thdot) = (th, thdot);
            return Ok(());
        }
        let (x, y) = (options.real("x-init", PI)?, options.real("y-init", 1.0)?);
        self.th = rng.uniform(-x, x);
        self.thdot = rng.uniform(-y, y);
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        check_finite(action)?;
        let u = action[0].clamp(-MAX_TORQUE, MAX_TORQUE);
        let costs = angle_normalize(self.th).powi(2) + 0.1 * self.thdot.powi(2) + f64::from(0.001f32 * (u * u));
        let acc = 3.0 * self.g / 2.0 * self.th.sin() + f64::from(3.0f32 * u);
        let newthdot = (self.thdot + acc * DT).clamp(-MAX_SPEED, MAX_SPEED);
        self.th += newthdot * DT;
        self.thdot = newthdot;
        Ok(Transition { reward: -costs, terminated: false })
    }

    fn observe(&self, out: &mut [f32]) {
        out[0] = self.th.cos() as f32;
        out[1] = self.th.sin() as f32;
        out[2] = self.thdot as f32;
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        save_f64s(&[self.th, self.thdot], out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let mut s = [0.0; 2];
        load_f64s(state, &mut s)?;
        (self.th, self.thdot) = (s[0], s[1]);
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_env!(Pendulum);
