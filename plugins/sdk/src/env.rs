//! Environments: implement [`Environment`] for one env; [`VecEnv`] hosts many of them in
//! one instance and implements the whole `env` interface; [`export_env!`](crate::export_env)
//! exports it.

use crate::Params;
use crate::rng::Rng;
use crate::space::flat_len;
use crate::types::{BatchStep, EnvSpec, EpisodeEnd, PluginError, ResetResult, StepResult, Value};

/// What one step of an env produced (the SDK adds the time limit and the observation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// Reward of the step.
    pub reward: f64,
    /// The MDP reached a terminal state.
    pub terminated: bool,
}

/// One environment, as in Gymnasium's `Env` without the `TimeLimit` wrapper.
pub trait Environment: Sized + Send + 'static {
    /// The spec for these parameters; the SDK applies `max-episode-steps` for you.
    fn spec(params: &Params) -> Result<EnvSpec, PluginError>;

    /// A new env (not yet reset). Refuse unknown parameters with [`Params::check_known`].
    fn new(params: &Params) -> Result<Self, PluginError>;

    /// A new env that knows its index in the instance (what `physics` cameras name as
    /// their `env`). Default: [`Environment::new`].
    fn new_at(params: &Params, _index: u32) -> Result<Self, PluginError> {
        Self::new(params)
    }

    /// Starts an episode, drawing the initial state from `rng` (or taking it from options).
    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError>;

    /// Applies one flat action (its length is checked by the SDK).
    fn step(&mut self, action: &[f32], rng: &mut Rng) -> Result<Transition, PluginError>;

    /// Writes the current observation into `out` (`flat_len(observation-space)` long).
    fn observe(&self, out: &mut [f32]);

    /// Writes the info features (`info-features` long). Default: none.
    fn infos(&self, _out: &mut [f64]) {}

    /// Appends the env's own state to `out` (the SDK adds generator and counters).
    fn save(&self, _out: &mut Vec<u8>) -> Result<(), PluginError> {
        Err(PluginError::Unsupported("this env does not support snapshots".into()))
    }

    /// Restores state written by [`Environment::save`].
    fn load(&mut self, _state: &[u8]) -> Result<(), PluginError> {
        Err(PluginError::Unsupported("this env does not support snapshots".into()))
    }

    /// Asked after each step: `Some(reason)` ends the episode as *truncated* (not
    /// terminated: the learner bootstraps from it) and the reason goes to the run log — for
    /// an action the env cannot apply (NaN, absurd magnitude) or a simulation that blew up.
    /// Default: never.
    fn truncation(&mut self) -> Option<String> {
        None
    }
}

/// Writes a warning to the run log (a no-op outside a Wasm host).
fn warn(message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::env_bindings::paddock::rl::log::write(crate::env_bindings::paddock::rl::log::Level::Warn, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = message;
}

/// The truncation an env asks for, logged with the env's index.
fn cut<E: Environment>(env: &mut E, index: usize) -> bool {
    match env.truncation() {
        Some(reason) => {
            warn(&format!("env {index}: episode truncated: {reason}"));
            true
        }
        None => false,
    }
}

struct Slot<E> {
    env: E,
    rng: Rng,
    elapsed: u32,
    /// Reset and not yet ended.
    live: bool,
}

/// Many envs of one kind in one instance: the implementation of the `env` interface.
pub struct VecEnv<E> {
    spec: EnvSpec,
    slots: Vec<Slot<E>>,
    obs_len: usize,
    act_len: usize,
    info_len: usize,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"PDE1";

impl<E: Environment> VecEnv<E> {
    /// Creates `seeds.len()` envs.
    pub fn new(params: &[(String, Value)], seeds: &[u64]) -> Result<Self, PluginError> {
        let p = Params::new(params);
        let spec = E::spec(&p)?;
        let max = spec.max_envs_per_instance.max(1) as usize;
        if seeds.is_empty() || seeds.len() > max {
            return Err(PluginError::InvalidParams(format!("{} hosts 1 to {max} envs per instance, asked for {}", spec.id, seeds.len())));
        }
        if flat_len(&spec.observation_space) == 0 || flat_len(&spec.action_space) == 0 {
            return Err(PluginError::InvalidParams(format!("{}: observation and action spaces need at least one element", spec.id)));
        }
        let slots = seeds
            .iter()
            .enumerate()
            .map(|(i, &seed)| Ok(Slot { env: E::new_at(&p, i as u32)?, rng: Rng::seed_from_u64(seed), elapsed: 0, live: false }))
            .collect::<Result<Vec<_>, PluginError>>()?;
        Ok(VecEnv {
            obs_len: flat_len(&spec.observation_space),
            act_len: flat_len(&spec.action_space),
            info_len: spec.info_features.len(),
            spec,
            slots,
        })
    }

    fn slot(&mut self, index: u32) -> Result<&mut Slot<E>, PluginError> {
        let n = self.slots.len();
        self.slots.get_mut(index as usize).ok_or_else(|| PluginError::InvalidState(format!("env index {index} out of range (0..{n})")))
    }

    fn check_action_len(&self, len: usize, expected: usize) -> Result<(), PluginError> {
        if len != expected {
            return Err(PluginError::InvalidAction(format!("{}: expected {expected} action values, got {len}", self.spec.id)));
        }
        Ok(())
    }

    /// `env.reset`.
    pub fn reset(&mut self, index: u32, seed: Option<u64>, options: &[(String, Value)]) -> Result<ResetResult, PluginError> {
        let (obs_len, info_len) = (self.obs_len, self.info_len);
        let slot = self.slot(index)?;
        if let Some(seed) = seed {
            slot.rng = Rng::seed_from_u64(seed);
        }
        slot.env.reset(&mut slot.rng, &Params::new(options))?;
        slot.elapsed = 0;
        slot.live = true;
        let mut observation = vec![0.0; obs_len];
        slot.env.observe(&mut observation);
        let mut infos = vec![0.0; info_len];
        slot.env.infos(&mut infos);
        Ok(ResetResult { observation, infos })
    }

    /// `env.step`.
    pub fn step(&mut self, index: u32, action: &[f32]) -> Result<StepResult, PluginError> {
        self.check_action_len(action.len(), self.act_len)?;
        let (obs_len, info_len, limit) = (self.obs_len, self.info_len, self.spec.max_episode_steps);
        let slot = self.slot(index)?;
        if !slot.live {
            return Err(PluginError::InvalidState(format!("env {index}: step before reset, or after its episode ended")));
        }
        let t = slot.env.step(action, &mut slot.rng)?;
        slot.elapsed += 1;
        let truncated = cut(&mut slot.env, index as usize) | limit.is_some_and(|m| slot.elapsed >= m);
        slot.live = !(t.terminated || truncated);
        let mut observation = vec![0.0; obs_len];
        slot.env.observe(&mut observation);
        let mut infos = vec![0.0; info_len];
        slot.env.infos(&mut infos);
        Ok(StepResult { observation, reward: t.reward, terminated: t.terminated, truncated, infos })
    }

    /// `env.reset-all`.
    pub fn reset_all(&mut self) -> Result<Vec<f32>, PluginError> {
        let mut out = vec![0.0; self.slots.len() * self.obs_len];
        for (slot, obs) in self.slots.iter_mut().zip(out.chunks_exact_mut(self.obs_len.max(1))) {
            slot.env.reset(&mut slot.rng, &Params::empty())?;
            slot.elapsed = 0;
            slot.live = true;
            slot.env.observe(obs);
        }
        Ok(out)
    }

    /// `env.step-all`: steps every env, auto-resetting those whose episode ended.
    pub fn step_all(&mut self, actions: &[f32]) -> Result<BatchStep, PluginError> {
        let n = self.slots.len();
        self.check_action_len(actions.len(), n * self.act_len)?;
        let (obs_len, info_len, act_len, limit) = (self.obs_len, self.info_len, self.act_len, self.spec.max_episode_steps);
        let limit = limit.unwrap_or(u32::MAX);
        let mut out = BatchStep {
            observations: vec![0.0; n * obs_len],
            rewards: vec![0.0; n],
            infos: vec![0.0; n * info_len],
            ended: Vec::new(),
            final_observations: Vec::new(),
        };
        // Zipped chunk iterators: no bounds checks in the per-env loop. Spaces have at least
        // one element (checked by the host); info features may be none, so infos are
        // sliced by index rather than zipped (an empty vector would end the zip at once).
        let per_env = self
            .slots
            .iter_mut()
            .zip(actions.chunks_exact(act_len))
            .zip(out.observations.chunks_exact_mut(obs_len))
            .zip(out.rewards.iter_mut());
        for (i, (((slot, action), obs), reward)) in per_env.enumerate() {
            if !slot.live {
                return Err(PluginError::InvalidState(format!("env {i}: step-all before reset-all")));
            }
            let t = slot.env.step(action, &mut slot.rng)?;
            slot.elapsed += 1;
            let trunc = cut(&mut slot.env, i) | (slot.elapsed >= limit);
            slot.env.infos(&mut out.infos[i * info_len..(i + 1) * info_len]);
            slot.env.observe(obs);
            if t.terminated || trunc {
                out.ended.push(EpisodeEnd { env: i as u32, terminated: t.terminated, truncated: trunc });
                out.final_observations.extend_from_slice(obs);
                slot.env.reset(&mut slot.rng, &Params::empty())?;
                slot.elapsed = 0;
                slot.env.observe(obs);
            }
            *reward = t.reward;
        }
        Ok(out)
    }

    /// `env.snapshot`: magic, generator, counters, then the env's own bytes.
    pub fn snapshot(&mut self, index: u32) -> Result<Vec<u8>, PluginError> {
        let slot = self.slot(index)?;
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&slot.rng.to_bytes());
        out.extend_from_slice(&slot.elapsed.to_le_bytes());
        out.push(slot.live as u8);
        slot.env.save(&mut out)?;
        Ok(out)
    }

    /// `env.restore`.
    pub fn restore(&mut self, index: u32, state: &[u8]) -> Result<(), PluginError> {
        let slot = self.slot(index)?;
        let header = 4 + 32 + 4 + 1;
        if state.len() < header || &state[..4] != SNAPSHOT_MAGIC {
            return Err(PluginError::InvalidParams("snapshot bytes are not from this SDK version".into()));
        }
        let mut rng = [0u8; 32];
        rng.copy_from_slice(&state[4..36]);
        let mut elapsed = [0u8; 4];
        elapsed.copy_from_slice(&state[36..40]);
        slot.env.load(&state[header..])?;
        slot.rng = Rng::from_bytes(&rng);
        slot.elapsed = u32::from_le_bytes(elapsed);
        slot.live = state[40] != 0;
        Ok(())
    }
}

/// Helpers for envs whose state is a vector of `f64`.
pub mod state {
    use crate::types::PluginError;

    /// Appends `values` as little-endian bytes.
    pub fn save_f64s(values: &[f64], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads exactly `out.len()` little-endian `f64`s.
    pub fn load_f64s(bytes: &[u8], out: &mut [f64]) -> Result<(), PluginError> {
        if bytes.len() != out.len() * 8 {
            return Err(PluginError::InvalidParams(format!("snapshot holds {} bytes of state, expected {}", bytes.len(), out.len() * 8)));
        }
        for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *v = f64::from_le_bytes(b);
        }
        Ok(())
    }
}

/// A goal-conditioned environment (world `goal-environment`, SDK feature `goals`): its
/// flat observation is `[observation, achieved-goal, desired-goal]` and the outcome of a
/// transition can be recomputed for another goal, so hindsight replay can relabel it.
#[cfg(feature = "goals")]
pub trait GoalEnvironment: Environment {
    /// `(observation-len, goal-len)` for these parameters.
    fn goal_layout(params: &Params) -> Result<(u32, u32), PluginError>;
    /// Reward and termination of a transition that achieved `achieved` if the desired goal
    /// had been `desired` (both `goal-len` long). Depends on nothing but its arguments.
    fn outcome(params: &Params, achieved: &[f32], desired: &[f32]) -> (f64, bool);
}

/// Exports an [`Environment`] as the component's `env` interface.
///
/// ```ignore
/// struct CartPole { /* … */ }
/// impl paddock_sdk::Environment for CartPole { /* … */ }
/// paddock_sdk::export_env!(CartPole);
/// ```
#[macro_export]
macro_rules! export_env {
    ($ty:ty) => {
        const _: () = {
            $crate::__env_guest!($ty);
    $crate::env_bindings::__export_environment!(PaddockEnvExport with_types_in $crate::env_bindings);
        };
    };
}

/// Exports a [`GoalEnvironment`] as the component's `env` and `goal-env` interfaces
/// (SDK feature `goals`).
#[cfg(feature = "goals")]
#[macro_export]
macro_rules! export_goal_env {
    ($ty:ty) => {
        const _: () = {
            $crate::__env_guest!($ty);
            impl $crate::env_bindings::exports::paddock::rl::goal_env::Guest for PaddockEnvExport {
                fn layout(
                    params: $crate::types::Params,
                ) -> Result<$crate::env_bindings::exports::paddock::rl::goal_env::GoalLayout, $crate::types::PluginError> {
                    let (observation_len, goal_len) = <$ty as $crate::env::GoalEnvironment>::goal_layout(&$crate::Params::new(&params))?;
                    Ok($crate::env_bindings::exports::paddock::rl::goal_env::GoalLayout { observation_len, goal_len })
                }
                fn compute_outcomes(
                    params: $crate::types::Params,
                    achieved: Vec<f32>,
                    desired: Vec<f32>,
                ) -> Result<Vec<$crate::env_bindings::exports::paddock::rl::goal_env::GoalOutcome>, $crate::types::PluginError> {
                    let p = $crate::Params::new(&params);
                    let (_, g) = <$ty as $crate::env::GoalEnvironment>::goal_layout(&p)?;
                    let g = g as usize;
                    if g == 0 || achieved.len() != desired.len() || achieved.len() % g != 0 {
                        return Err($crate::types::PluginError::InvalidState(format!(
                            "compute-outcomes: {} achieved and {} desired values for goals of length {g}",
                            achieved.len(),
                            desired.len()
                        )));
                    }
                    Ok(achieved
                        .chunks_exact(g)
                        .zip(desired.chunks_exact(g))
                        .map(|(a, d)| {
                            let (reward, terminated) = <$ty as $crate::env::GoalEnvironment>::outcome(&p, a, d);
                            $crate::env_bindings::exports::paddock::rl::goal_env::GoalOutcome { reward, terminated }
                        })
                        .collect())
                }
            }
    $crate::env_bindings::__export_environment!(PaddockEnvExport with_types_in $crate::env_bindings);
        };
    };
}

/// The `env` implementation shared by [`export_env!`] and [`export_goal_env!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __env_guest {
    ($ty:ty) => {
        use $crate::env_bindings::exports::paddock::rl::env::Guest;
        use $crate::types as __t;
        static STATE: ::std::sync::Mutex<::std::option::Option<$crate::VecEnv<$ty>>> = ::std::sync::Mutex::new(::std::option::Option::None);

        fn with<R>(f: impl FnOnce(&mut $crate::VecEnv<$ty>) -> Result<R, __t::PluginError>) -> Result<R, __t::PluginError> {
            let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut() {
                Some(v) => f(v),
                None => Err(__t::PluginError::InvalidState("call `init` first".into())),
            }
        }

        struct PaddockEnvExport;
        impl Guest for PaddockEnvExport {
            fn spec(params: __t::Params) -> Result<__t::EnvSpec, __t::PluginError> {
                <$ty as $crate::Environment>::spec(&$crate::Params::new(&params))
            }
            fn init(params: __t::Params, seeds: Vec<u64>) -> Result<(), __t::PluginError> {
                let v = $crate::VecEnv::<$ty>::new(&params, &seeds)?;
                *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
                Ok(())
            }
            fn reset(index: u32, seed: Option<u64>, options: __t::Params) -> Result<__t::ResetResult, __t::PluginError> {
                with(|v| v.reset(index, seed, &options))
            }
            fn step(index: u32, action: Vec<f32>) -> Result<__t::StepResult, __t::PluginError> {
                with(|v| v.step(index, &action))
            }
            fn reset_all() -> Result<Vec<f32>, __t::PluginError> {
                with(|v| v.reset_all())
            }
            fn step_all(actions: Vec<f32>) -> Result<__t::BatchStep, __t::PluginError> {
                with(|v| v.step_all(&actions))
            }
            fn snapshot(index: u32) -> Result<Vec<u8>, __t::PluginError> {
                with(|v| v.snapshot(index))
            }
            fn restore(index: u32, state: Vec<u8>) -> Result<(), __t::PluginError> {
                with(|v| v.restore(index, &state))
            }
        }
    };
}
