//! A typed instance of a reward plugin.

use super::bindings::reward::exports::paddock::rl::reward_fn::Transitions;
use super::bindings::reward::{Reward, RewardPre};
use super::bindings::types::{EnvSpec, Params};
use super::error::{CallError, CallErrorKind, World};
use super::instance::Bridge;
use super::loader::Plugin;

/// One instance of a reward component.
pub struct RewardInstance {
    bridge: Bridge,
    bindings: Reward,
}

impl std::fmt::Debug for RewardInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardInstance").field("plugin", &self.bridge.name()).finish()
    }
}

impl RewardInstance {
    /// Instantiates `plugin` (world `reward`) and calls `init` with the env's spec.
    pub fn new(plugin: &Plugin, seed: u64, spec: &EnvSpec, params: &Params) -> Result<Self, CallError> {
        let mut bridge = Bridge::new(plugin, seed);
        let pre = bridge.pre_for(World::Reward)?;
        let bindings = bridge.call("instantiate", |store| RewardPre::new(pre)?.instantiate(store))?;
        let mut r = RewardInstance { bridge, bindings };
        let b = &r.bindings;
        r.bridge.call_result("init", |s| b.paddock_rl_reward_fn().call_init(s, spec, params))?;
        Ok(r)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.bridge.name()
    }

    /// `reward-fn.compute`: one finite reward per transition.
    pub fn compute(&mut self, batch: &Transitions) -> Result<Vec<f64>, CallError> {
        let b = &self.bindings;
        let rewards = self.bridge.call_result("compute", |s| b.paddock_rl_reward_fn().call_compute(s, batch))?;
        if rewards.len() != batch.num_envs as usize {
            return Err(self
                .bridge
                .error("compute", CallErrorKind::InvalidOutput(format!("{} rewards for {} transitions", rewards.len(), batch.num_envs))));
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            return Err(self.bridge.error("compute", CallErrorKind::InvalidOutput(format!("reward {} for env {i}", rewards[i]))));
        }
        Ok(rewards)
    }
}
