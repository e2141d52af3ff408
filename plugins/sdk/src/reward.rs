//! Reward functions: implement [`RewardFunction`] and export it with
//! [`export_reward!`](crate::export_reward).

use crate::Params;
use crate::reward_bindings::exports::paddock::rl::reward_fn::Transitions;
use crate::types::{EnvSpec, PluginError};

/// One transition, sliced out of a batch.
#[derive(Clone, Copy, Debug)]
pub struct TransitionView<'a> {
    /// Observation before the step.
    pub observation: &'a [f32],
    /// Action taken.
    pub action: &'a [f32],
    /// Observation after the step (the final one if the episode ended).
    pub next_observation: &'a [f32],
    /// The env's own reward.
    pub env_reward: f64,
    /// The episode terminated.
    pub terminated: bool,
    /// The episode was truncated.
    pub truncated: bool,
    /// Info features, in the spec's order.
    pub infos: &'a [f64],
}

/// A reward function: a reward per transition.
pub trait RewardFunction: Sized + Send + 'static {
    /// Set up for the env described by `spec`; refuse an env you cannot score.
    fn new(spec: &EnvSpec, params: &Params) -> Result<Self, PluginError>;

    /// The reward of one transition.
    fn reward(&mut self, t: &TransitionView) -> f64;

    /// Rewards of a batch; the default slices it and calls [`RewardFunction::reward`].
    fn compute(&mut self, batch: &Transitions) -> Result<Vec<f64>, PluginError> {
        let n = batch.num_envs as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let (ol, al, il) = (batch.observations.len() / n, batch.actions.len() / n, batch.infos.len() / n);
        let lens_ok = batch.next_observations.len() == n * ol
            && batch.env_rewards.len() == n
            && batch.terminated.len() == n
            && batch.truncated.len() == n;
        if !lens_ok {
            return Err(PluginError::InvalidState("transition batch has inconsistent lengths".into()));
        }
        Ok((0..n)
            .map(|i| {
                self.reward(&TransitionView {
                    observation: &batch.observations[i * ol..(i + 1) * ol],
                    action: &batch.actions[i * al..(i + 1) * al],
                    next_observation: &batch.next_observations[i * ol..(i + 1) * ol],
                    env_reward: batch.env_rewards[i],
                    terminated: batch.terminated[i],
                    truncated: batch.truncated[i],
                    infos: &batch.infos[i * il..(i + 1) * il],
                })
            })
            .collect())
    }
}

/// Exports a [`RewardFunction`] as the component's `reward-fn` interface.
#[macro_export]
macro_rules! export_reward {
    ($ty:ty) => {
        const _: () = {
            use $crate::reward_bindings::exports::paddock::rl::reward_fn::{Guest, Transitions};
            use $crate::types as __t;
            static STATE: ::std::sync::Mutex<::std::option::Option<$ty>> = ::std::sync::Mutex::new(::std::option::Option::None);

            struct PaddockRewardExport;
            impl Guest for PaddockRewardExport {
                fn init(spec: __t::EnvSpec, params: __t::Params) -> Result<(), __t::PluginError> {
                    let r = <$ty as $crate::RewardFunction>::new(&spec, &$crate::Params::new(&params))?;
                    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    Ok(())
                }
                fn compute(batch: Transitions) -> Result<Vec<f64>, __t::PluginError> {
                    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
                    match guard.as_mut() {
                        Some(r) => $crate::RewardFunction::compute(r, &batch),
                        None => Err(__t::PluginError::InvalidState("call `init` first".into())),
                    }
                }
            }
    $crate::reward_bindings::__export_reward!(PaddockRewardExport with_types_in $crate::reward_bindings);
        };
    };
}
