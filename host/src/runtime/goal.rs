//! A goal-conditioned env's `goal-env` on an instance of its own: the [`GoalOracle`] that
//! hindsight relabeling asks for the rewards of relabelled transitions. It lives in the
//! algorithm's learner (sampling happens inside the algorithm's `replay.sample` call) and
//! never touches the envs that are being stepped.

use super::bindings::goal_environment::{GoalEnvironment, GoalEnvironmentPre};
use super::bindings::types::Params;
use super::error::{CallError, CallErrorKind, World};
use super::instance::Bridge;
use super::loader::Plugin;
use crate::learner::GoalOracle;

/// `goal-env` of one instance of a goal-conditioned env component.
pub struct GoalInstance {
    bridge: Bridge,
    bindings: GoalEnvironment,
    params: Params,
    layout: (usize, usize),
}

impl GoalInstance {
    /// Instantiates `plugin` (an env that exports `goal-env`) and reads its goal layout for
    /// `params`.
    pub fn new(plugin: &Plugin, seed: u64, params: &Params) -> Result<Self, CallError> {
        let mut bridge = Bridge::new(plugin, seed);
        let pre = bridge.pre_for(World::Environment)?;
        if !plugin.info().goals {
            return Err(bridge
                .error("instantiate", CallErrorKind::Trap("not a goal-conditioned env (it does not export paddock:rl/goal-env)".into())));
        }
        let bindings = bridge.call("instantiate", |store| GoalEnvironmentPre::new(pre)?.instantiate(store))?;
        let b = &bindings;
        let layout = bridge.call_result("goal-env.layout", |s| b.paddock_rl_goal_env().call_layout(s, params))?;
        let layout = (layout.observation_len as usize, layout.goal_len as usize);
        if layout.1 == 0 {
            return Err(bridge.error("goal-env.layout", CallErrorKind::InvalidOutput("goal-len is 0".into())));
        }
        Ok(GoalInstance { bridge, bindings, params: params.clone(), layout })
    }
}

impl GoalOracle for GoalInstance {
    fn layout(&self) -> (usize, usize) {
        self.layout
    }

    fn outcomes(&mut self, achieved: &[f32], desired: &[f32]) -> Result<Vec<(f64, bool)>, String> {
        let b = &self.bindings;
        let params = &self.params;
        let out = self
            .bridge
            .call_result("goal-env.compute-outcomes", |s| b.paddock_rl_goal_env().call_compute_outcomes(s, params, achieved, desired))
            .map_err(|e| e.to_string())?;
        if let Some(o) = out.iter().find(|o| !o.reward.is_finite()) {
            return Err(format!("plugin `{}` failed in `goal-env.compute-outcomes`: reward {}", self.bridge.name(), o.reward));
        }
        Ok(out.into_iter().map(|o| (o.reward, o.terminated)).collect())
    }
}
