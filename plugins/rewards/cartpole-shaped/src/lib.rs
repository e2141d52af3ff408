//! A shaped CartPole reward: instead of a flat +1 per step, reward the pole for being
//! upright and the cart for being centred, and penalise the failure step.
//!
//! r = 1 − w_θ·(θ/θ_max)² − w_x·(x/x_max)²,  and `fail-penalty` (default −1) on a
//! terminating step. Parameters: `angle-weight` (0.5), `position-weight` (0.25),
//! `fail-penalty` (−1). Refuses envs whose observation is not CartPole's 4 values.

use paddock_sdk::reward::TransitionView;
use paddock_sdk::types::{EnvSpec, PluginError, Space};
use paddock_sdk::{Params, RewardFunction};

const THETA_MAX: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_MAX: f64 = 2.4;

/// The shaped reward's weights.
pub struct ShapedCartPole {
    angle_weight: f64,
    position_weight: f64,
    fail_penalty: f64,
}

impl RewardFunction for ShapedCartPole {
    fn new(spec: &EnvSpec, params: &Params) -> Result<Self, PluginError> {
        params.check_known(&["angle-weight", "position-weight", "fail-penalty"])?;
        match &spec.observation_space {
            Space::Box(b) if b.shape == [4] => {}
            _ => {
                return Err(PluginError::InvalidParams(format!(
                    "cartpole-shaped scores CartPole-like envs (4 observation values), not {}",
                    spec.id
                )));
            }
        }
        Ok(ShapedCartPole {
            angle_weight: params.real("angle-weight", 0.5)?,
            position_weight: params.real("position-weight", 0.25)?,
            fail_penalty: params.real("fail-penalty", -1.0)?,
        })
    }

    fn reward(&mut self, t: &TransitionView) -> f64 {
        if t.terminated {
            return self.fail_penalty;
        }
        let x = f64::from(t.next_observation[0]) / X_MAX;
        let theta = f64::from(t.next_observation[2]) / THETA_MAX;
        1.0 - self.angle_weight * theta * theta - self.position_weight * x * x
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_reward!(ShapedCartPole);
