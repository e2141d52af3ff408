//! `CartPole-v1`: Barto, Sutton & Anderson, "Neuronlike adaptive elements that can solve
//! difficult learning control problems" (1983), with Gymnasium 1.x's constants, Euler
//! integration, float64 state, float32 observations, reward 1 per step and a 500-step limit.
//!
//! Parameters: `sutton-barto-reward` (bool), `initial-state` (4 reals: x, ẋ, θ, θ̇, used
//! at every reset). Reset options: `initial-state`, `low`, `high` (bounds of the uniform
//! initial state, default ±0.05).

use paddock_sdk::env::state::{load_f64s, save_f64s};
use paddock_sdk::space::{box1d, discrete, discrete_action};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
const LENGTH: f64 = 0.5;
const POLEMASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
const PARAMS: &[&str] = &["sutton-barto-reward", "initial-state"];

/// One Euler step of the dynamics; returns whether the state is terminal.
pub fn dynamics(state: &mut [f64; 4], action: i64) -> bool {
    let [x, x_dot, theta, theta_dot] = *state;
    let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
    let (sintheta, costheta) = paddock_sdk::math::sincos(theta);
    // Operation order as in Gymnasium (`np.square(x)` is computed before the product).
    let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    let thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    *state = [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc];
    let [x, _, theta, _] = *state;
    #[expect(clippy::manual_range_contains, reason = "Gymnasium's comparisons: a NaN state does not terminate, as there")]
    let out = x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD || theta > THETA_THRESHOLD;
    out
}

/// One cart-pole.
pub struct CartPole {
    state: [f64; 4],
    sutton_barto: bool,
    initial: Option<[f64; 4]>,
}

fn four(v: &[f64]) -> [f64; 4] {
    [v[0], v[1], v[2], v[3]]
}

impl Environment for CartPole {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        params.check_known(PARAMS)?;
        let sutton_barto = params.flag("sutton-barto-reward", false)?;
        let high = [(X_THRESHOLD * 2.0) as f32, f32::INFINITY, (THETA_THRESHOLD * 2.0) as f32, f32::INFINITY];
        Ok(EnvSpec {
            id: "CartPole-v1".into(),
            observation_space: box1d(&high.map(|h| -h), &high),
            action_space: discrete(2),
            max_episode_steps: Some(500),
            info_features: vec![],
            reward_threshold: Some(if sutton_barto { 0.0 } else { 475.0 }),
            max_envs_per_instance: 4096,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        params.check_known(PARAMS)?;
        Ok(CartPole {
            state: [0.0; 4],
            sutton_barto: params.flag("sutton-barto-reward", false)?,
            initial: params.reals("initial-state", 4)?.map(four),
        })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["initial-state", "low", "high"])?;
        if let Some(s) = options.reals("initial-state", 4)?.map(four).or(self.initial) {
            self.state = s;
            return Ok(());
        }
        let (low, high) = (options.real("low", -0.05)?, options.real("high", 0.05)?);
        if low > high {
            return Err(PluginError::InvalidParams(format!("reset option low ({low}) > high ({high})")));
        }
        for s in &mut self.state {
            *s = rng.uniform(low, high);
        }
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        let a = discrete_action(action, 2)?;
        let terminated = dynamics(&mut self.state, a);
        let reward = match (self.sutton_barto, terminated) {
            (false, _) => 1.0,
            (true, false) => 0.0,
            (true, true) => -1.0,
        };
        Ok(Transition { reward, terminated })
    }

    fn observe(&self, out: &mut [f32]) {
        for (o, s) in out.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        save_f64s(&self.state, out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        load_f64s(state, &mut self.state)
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_env!(CartPole);
