//! A typed instance of an environment plugin: the `env` interface's calls, each checked
//! (lengths, finite values) so that a broken plugin never hands the learner garbage.

use super::bindings::environment::{Environment, EnvironmentPre};
use super::bindings::types::{BatchStep, EnvSpec, Params, ResetResult, StepResult};
use super::error::{CallError, CallErrorKind, World};
use super::instance::Bridge;
use super::loader::Plugin;
use crate::spaces::flat_len;

/// One instance of an environment component, hosting one or more envs.
pub struct EnvInstance {
    bridge: Bridge,
    bindings: Environment,
    /// The spec the plugin gave.
    spec: Option<EnvSpec>,
    /// The spec callers see: the plugin's, with camera images appended to the observation.
    observed: Option<EnvSpec>,
    /// The cameras' layout, when the envs added cameras.
    layout: Option<crate::spaces::ImageLayout>,
    num_envs: usize,
}

impl EnvInstance {
    /// Lets the env load these robot files by name (before `init`).
    pub fn grant_robots(&mut self, robots: super::Robots) {
        self.bridge.store.data_mut().robots = robots;
    }

    /// The physics scene of this instance's envs: every collider posed, and the fixed bodies.
    /// Empty for envs without physics.
    pub fn scene(&self) -> (Vec<crate::physics::render::SceneShape>, Vec<u64>) {
        self.bridge.store.data().scene(false)
    }

    /// The scene of this instance's oldest simulation alone (normally its first env's).
    pub fn first_scene(&self) -> (Vec<crate::physics::render::SceneShape>, Vec<u64>) {
        self.bridge.store.data().scene(true)
    }
}

impl std::fmt::Debug for EnvInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvInstance").field("plugin", &self.bridge.name()).field("num_envs", &self.num_envs).finish()
    }
}

/// Index of the first non-finite value: a branch-free scan first (it vectorises; this is
/// on the hot path), the position only when something is wrong.
fn first_non_finite<T: Copy>(values: &[T], is_finite: impl Fn(T) -> bool) -> Option<usize> {
    if values.iter().fold(true, |ok, &v| ok & is_finite(v)) { None } else { values.iter().position(|&v| !is_finite(v)) }
}

impl EnvInstance {
    /// Instantiates `plugin` (which must target the `environment` world) in a fresh store.
    pub fn new(plugin: &Plugin, seed: u64) -> Result<Self, CallError> {
        let mut bridge = Bridge::new(plugin, seed);
        let pre = bridge.pre_for(World::Environment)?;
        let bindings = bridge.call("instantiate", |store| EnvironmentPre::new(pre)?.instantiate(store))?;
        Ok(EnvInstance { bridge, bindings, spec: None, observed: None, layout: None, num_envs: 0 })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.bridge.name()
    }

    /// The spec given by the last `init`, with the cameras' images in the observation.
    pub fn spec(&self) -> Option<&EnvSpec> {
        self.observed.as_ref()
    }

    /// How camera images follow the env's own values in an observation, when its envs
    /// added cameras.
    pub fn image_layout(&self) -> Option<&crate::spaces::ImageLayout> {
        self.layout.as_ref()
    }

    /// `env.spec`.
    pub fn describe(&mut self, params: &Params) -> Result<EnvSpec, CallError> {
        let b = &self.bindings;
        let spec = self.bridge.call_result("spec", |s| b.paddock_rl_env().call_spec(s, params))?;
        self.check_spec("spec", &spec)?;
        Ok(spec)
    }

    fn check_spec(&self, call: &'static str, spec: &EnvSpec) -> Result<(), CallError> {
        crate::spaces::check_space(&spec.observation_space)
            .and_then(|_| crate::spaces::check_space(&spec.action_space))
            .map_err(|m| self.bridge.error(call, CallErrorKind::InvalidOutput(format!("env spec `{}`: {m}", spec.id))))
    }

    /// `env.spec` then `env.init` with one seed per env.
    pub fn init(&mut self, params: &Params, seeds: &[u64]) -> Result<EnvSpec, CallError> {
        let spec = self.describe(params)?;
        let b = &self.bindings;
        self.bridge.call_result("init", |s| b.paddock_rl_env().call_init(s, params, seeds))?;
        self.num_envs = seeds.len();
        self.spec = Some(spec.clone());
        let cameras = self.bridge.store.data().camera_layout(seeds.len()).map_err(|m| self.invalid("init", m))?;
        let observed = if cameras.is_empty() {
            self.layout = None;
            spec
        } else {
            let layout = crate::spaces::ImageLayout { state_len: flat_len(&spec.observation_space), cameras };
            let observed = self.observed_spec(spec, &layout)?;
            self.layout = Some(layout);
            observed
        };
        self.observed = Some(observed.clone());
        self.bridge.store.data_mut().images_taken();
        Ok(observed)
    }

    /// `spec` with the images of `layout` appended to its observation space (a box).
    fn observed_spec(&self, mut spec: EnvSpec, layout: &crate::spaces::ImageLayout) -> Result<EnvSpec, CallError> {
        use super::bindings::types::{BoxSpace, Space};
        let Space::Box(b) = &spec.observation_space else {
            return Err(self.invalid(
                "init",
                format!(
                    "the envs added cameras, but the observation space is {:?}: cameras need a box, to append their images to",
                    spec.observation_space
                ),
            ));
        };
        let (low, high) = layout.bounds();
        let n = layout.obs_len();
        let n32 = u32::try_from(n).map_err(|_| self.invalid("init", format!("observations of {n} values with the cameras' images")))?;
        spec.observation_space = Space::Box(BoxSpace {
            low: b.low.iter().copied().chain(low).collect(),
            high: b.high.iter().copied().chain(high).collect(),
            shape: vec![n32],
        });
        Ok(spec)
    }

    /// `obs` (observations of `envs`, the plugin's values each) with each env's images
    /// appended: the last views of their episodes when `finals`, else the current ones.
    fn with_images(&mut self, call: &'static str, obs: Vec<f32>, envs: &[u32], finals: bool) -> Result<Vec<f32>, CallError> {
        let Some(layout) = &self.layout else { return Ok(obs) };
        let (sl, il) = (layout.state_len, layout.image_len());
        let mut images = vec![0.0f32; envs.len() * il];
        let rendered = self.bridge.store.data_mut().render_images(layout, envs, finals, &mut images);
        rendered.map_err(|m| self.invalid(call, m))?;
        let mut out = Vec::with_capacity(envs.len() * (sl + il));
        for e in 0..envs.len() {
            out.extend_from_slice(&obs[e * sl..(e + 1) * sl]);
            out.extend_from_slice(&images[e * il..(e + 1) * il]);
        }
        Ok(out)
    }

    fn lens(&self) -> (usize, usize, usize) {
        let spec = self.spec.as_ref().expect("init before use");
        (flat_len(&spec.observation_space), flat_len(&spec.action_space), spec.info_features.len())
    }

    fn invalid(&self, call: &'static str, msg: String) -> CallError {
        self.bridge.error(call, CallErrorKind::InvalidOutput(msg))
    }

    fn check_obs(&self, call: &'static str, obs: &[f32], expected: usize, env_offset: usize) -> Result<(), CallError> {
        if obs.len() != expected {
            return Err(self.invalid(call, format!("{} observation values, expected {expected}", obs.len())));
        }
        if let Some(i) = first_non_finite(obs, f32::is_finite) {
            let v = obs[i];
            let ol = self.lens().0.max(1);
            return Err(self.invalid(call, format!("observation element {} of env {} is {v}", i % ol, env_offset + i / ol)));
        }
        Ok(())
    }

    /// `env.reset` of one env.
    pub fn reset(&mut self, index: u32, seed: Option<u64>, options: &Params) -> Result<ResetResult, CallError> {
        let b = &self.bindings;
        let r = self.bridge.call_result("reset", |s| b.paddock_rl_env().call_reset(s, index, seed, options))?;
        let (ol, _, il) = self.lens();
        self.check_obs("reset", &r.observation, ol, index as usize)?;
        if r.infos.len() != il {
            return Err(self.invalid("reset", format!("{} info values, expected {il}", r.infos.len())));
        }
        let mut r = r;
        r.observation = self.with_images("reset", std::mem::take(&mut r.observation), &[index], false)?;
        self.bridge.store.data_mut().images_taken();
        Ok(r)
    }

    /// `env.step` of one env (no autoreset).
    pub fn step(&mut self, index: u32, action: &[f32]) -> Result<StepResult, CallError> {
        let b = &self.bindings;
        let r = self.bridge.call_result("step", |s| b.paddock_rl_env().call_step(s, index, action))?;
        let (ol, _, il) = self.lens();
        self.check_obs("step", &r.observation, ol, index as usize)?;
        if !r.reward.is_finite() {
            return Err(self.invalid("step", format!("reward {} for env {index}", r.reward)));
        }
        if r.infos.len() != il {
            return Err(self.invalid("step", format!("{} info values, expected {il}", r.infos.len())));
        }
        let mut r = r;
        r.observation = self.with_images("step", std::mem::take(&mut r.observation), &[index], false)?;
        self.bridge.store.data_mut().images_taken();
        Ok(r)
    }

    /// `env.reset-all`.
    pub fn reset_all(&mut self) -> Result<Vec<f32>, CallError> {
        let b = &self.bindings;
        let obs = self.bridge.call_result("reset-all", |s| b.paddock_rl_env().call_reset_all(s))?;
        self.check_obs("reset-all", &obs, self.num_envs * self.lens().0, 0)?;
        let all: Vec<u32> = (0..self.num_envs as u32).collect();
        let obs = self.with_images("reset-all", obs, &all, false)?;
        self.bridge.store.data_mut().images_taken();
        Ok(obs)
    }

    /// `env.step-all`, with every length and value checked.
    pub fn step_all(&mut self, actions: &[f32]) -> Result<BatchStep, CallError> {
        const CALL: &str = "step-all";
        let b = &self.bindings;
        let r = self.bridge.call_result(CALL, |s| b.paddock_rl_env().call_step_all(s, actions))?;
        let n = self.num_envs;
        let (ol, _, il) = self.lens();
        self.check_obs(CALL, &r.observations, n * ol, 0)?;
        if r.rewards.len() != n || r.infos.len() != n * il {
            return Err(self.invalid(CALL, format!("batch of {} rewards and {} info values for {n} envs", r.rewards.len(), r.infos.len())));
        }
        if let Some(i) = first_non_finite(&r.rewards, f64::is_finite) {
            return Err(self.invalid(CALL, format!("reward {} for env {i}", r.rewards[i])));
        }
        let mut previous = None;
        for e in &r.ended {
            if e.env as usize >= n || previous.is_some_and(|p| p >= e.env) || !(e.terminated || e.truncated) {
                return Err(
                    self.invalid(CALL, format!("`ended` entry {e:?} is out of range, out of order or neither terminated nor truncated"))
                );
            }
            previous = Some(e.env);
        }
        if r.final_observations.len() != r.ended.len() * ol {
            return Err(
                self.invalid(CALL, format!("{} final observation values for {} ended envs", r.final_observations.len(), r.ended.len()))
            );
        }
        if let Some(i) = first_non_finite(&r.final_observations, f32::is_finite) {
            return Err(self.invalid(
                CALL,
                format!("final observation element {} of env {} is {}", i % ol, r.ended[i / ol].env, r.final_observations[i]),
            ));
        }
        if self.layout.is_some() {
            let mut r = r;
            let ended: Vec<u32> = r.ended.iter().map(|e| e.env).collect();
            r.final_observations = self.with_images(CALL, std::mem::take(&mut r.final_observations), &ended, true)?;
            let all: Vec<u32> = (0..n as u32).collect();
            r.observations = self.with_images(CALL, std::mem::take(&mut r.observations), &all, false)?;
            self.bridge.store.data_mut().images_taken();
            return Ok(r);
        }
        Ok(r)
    }

    /// `env.snapshot` of one env.
    pub fn snapshot(&mut self, index: u32) -> Result<Vec<u8>, CallError> {
        let b = &self.bindings;
        self.bridge.call_result("snapshot", |s| b.paddock_rl_env().call_snapshot(s, index))
    }

    /// `env.restore` of one env.
    pub fn restore(&mut self, index: u32, state: &[u8]) -> Result<(), CallError> {
        let b = &self.bindings;
        self.bridge.call_result("restore", |s| b.paddock_rl_env().call_restore(s, index, state))?;
        self.bridge.store.data_mut().images_taken();
        Ok(())
    }

    /// Custom metrics the plugin reported since the last call of this.
    pub fn take_metrics(&mut self) -> Vec<super::sandbox::PluginMetric> {
        std::mem::take(&mut self.bridge.store.data_mut().metrics)
    }
}
