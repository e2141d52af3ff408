//! `Acrobot-v1`: Sutton, "Generalization in reinforcement learning: successful examples
//! using sparse coarse coding" (1996), as in Gymnasium 1.x ("book" dynamics, RK4 over one
//! 0.2 s step, angles wrapped to [-π, π], velocities bounded, reward −1 per step, 500-step
//! limit). Float64 state; the random initial state is rounded to float32 as Gymnasium does.
//!
//! Parameters: `initial-state` (θ1, θ2, θ̇1, θ̇2). Reset options: `initial-state`, `low`,
//! `high` (bounds of the uniform initial state, default ±0.1).

use paddock_sdk::env::state::{load_f64s, save_f64s};
use paddock_sdk::space::{box1d, discrete, discrete_action};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};
use std::f64::consts::PI;

const DT: f64 = 0.2;
const L1: f64 = 1.0;
const M1: f64 = 1.0;
const M2: f64 = 1.0;
const LC1: f64 = 0.5;
const LC2: f64 = 0.5;
const I1: f64 = 1.0;
const I2: f64 = 1.0;
const G: f64 = 9.8;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const TORQUES: [f64; 3] = [-1.0, 0.0, 1.0];

/// One acrobot.
pub struct Acrobot {
    s: [f64; 4],
    initial: Option<[f64; 4]>,
}

fn dsdt(s: &[f64; 5]) -> [f64; 5] {
    let (a, theta1, theta2, dtheta1, dtheta2) = (s[4], s[0], s[1], s[2], s[3]);
    let d1 = M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2 + 2.0 * L1 * LC2 * theta2.cos()) + I1 + I2;
    let d2 = M2 * (LC2 * LC2 + L1 * LC2 * theta2.cos()) + I2;
    let phi2 = M2 * LC2 * G * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -M2 * L1 * LC2 * dtheta2 * dtheta2 * theta2.sin() - 2.0 * M2 * L1 * LC2 * dtheta2 * dtheta1 * theta2.sin()
        + (M1 * LC1 + M2 * L1) * G * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * dtheta1 * dtheta1 * theta2.sin() - phi2) / (M2 * LC2 * LC2 + I2 - d2 * d2 / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

fn axpy(y: &[f64; 5], a: f64, k: &[f64; 5]) -> [f64; 5] {
    std::array::from_fn(|i| y[i] + a * k[i])
}

/// Gymnasium's `rk4` over `[0, dt]` (one interval), in the same operation order.
fn rk4(y0: &[f64; 5]) -> [f64; 5] {
    let dt2 = DT / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(&axpy(y0, dt2, &k1));
    let k3 = dsdt(&axpy(y0, dt2, &k2));
    let k4 = dsdt(&axpy(y0, DT, &k3));
    std::array::from_fn(|i| y0[i] + DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

impl Environment for Acrobot {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        params.check_known(&["initial-state"])?;
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Ok(EnvSpec {
            id: "Acrobot-v1".into(),
            observation_space: box1d(&high.map(|h| -h), &high),
            action_space: discrete(3),
            max_episode_steps: Some(500),
            info_features: vec![],
            reward_threshold: Some(-100.0),
            max_envs_per_instance: 4096,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        params.check_known(&["initial-state"])?;
        Ok(Acrobot { s: [0.0; 4], initial: params.reals("initial-state", 4)?.map(|v| [v[0], v[1], v[2], v[3]]) })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["initial-state", "low", "high"])?;
        if let Some(s) = options.reals("initial-state", 4)?.map(|v| [v[0], v[1], v[2], v[3]]).or(self.initial) {
            self.s = s;
            return Ok(());
        }
        let (low, high) = (options.real("low", -0.1)?, options.real("high", 0.1)?);
        for s in &mut self.s {
            *s = f64::from(rng.uniform(low, high) as f32);
        }
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        let a = discrete_action(action, 3)?;
        let y0 = [self.s[0], self.s[1], self.s[2], self.s[3], TORQUES[a as usize]];
        let ns = rk4(&y0);
        self.s = [wrap(ns[0], -PI, PI), wrap(ns[1], -PI, PI), ns[2].clamp(-MAX_VEL_1, MAX_VEL_1), ns[3].clamp(-MAX_VEL_2, MAX_VEL_2)];
        let terminated = -self.s[0].cos() - (self.s[1] + self.s[0]).cos() > 1.0;
        Ok(Transition { reward: if terminated { 0.0 } else { -1.0 }, terminated })
    }

    fn observe(&self, out: &mut [f32]) {
        let s = &self.s;
        let obs = [s[0].cos(), s[0].sin(), s[1].cos(), s[1].sin(), s[2], s[3]];
        for (o, v) in out.iter_mut().zip(obs) {
            *o = v as f32;
        }
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        save_f64s(&self.s, out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        load_f64s(state, &mut self.s)
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_env!(Acrobot);
