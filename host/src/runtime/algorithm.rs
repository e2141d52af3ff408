//! A typed instance of an algorithm plugin. Batch data goes in as host tensors (handles in
//! the store's resource table), actions come back as a host tensor: nothing crosses into
//! Wasm memory unless the plugin reads it back.

use super::bindings::algorithm::Algorithm;
use super::bindings::algorithm::exports::paddock::rl::algo::Metric;
use super::bindings::tunable_algorithm::exports::paddock::rl::algo_tune;
use super::bindings::types::{EnvSpec, Params};
use super::error::{CallError, CallErrorKind, World};
use super::instance::Bridge;
use super::loader::Plugin;
use crate::learner::Learner;
use tch::Tensor;
use wasmtime::component::Resource;

/// One instance of an algorithm component with its learner.
pub struct AlgorithmInstance {
    bridge: Bridge,
    bindings: Algorithm,
    /// Its `algo-tune` export, when it has one.
    tune: Option<algo_tune::Guest>,
}

/// Instantiates `pre` in `bridge`'s store: the `algo` bindings and, for a plugin that
/// exports it, `algo-tune` on the same instance.
fn instantiate(
    bridge: &mut Bridge,
    pre: wasmtime::component::InstancePre<super::sandbox::PluginState>,
    tunable: bool,
) -> Result<(Algorithm, Option<algo_tune::Guest>), CallError> {
    bridge.call("instantiate", |store| {
        let instance = pre.instantiate(&mut *store)?;
        let bindings = Algorithm::new(&mut *store, &instance)?;
        let tune = if tunable { Some(algo_tune::GuestIndices::new(&pre)?.load(&mut *store, &instance)?) } else { None };
        Ok((bindings, tune))
    })
}

impl std::fmt::Debug for AlgorithmInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlgorithmInstance").field("plugin", &self.bridge.name()).finish()
    }
}

impl AlgorithmInstance {
    /// Instantiates `plugin` (world `algorithm`) around `learner`, which owns its named
    /// modules and optimizers (a reloaded plugin gets the same learner back).
    pub fn new(plugin: &Plugin, seed: u64, learner: Learner) -> Result<Self, CallError> {
        let mut bridge = Bridge::new(plugin, seed);
        let pre = bridge.pre_for(World::Algorithm)?;
        bridge.store.data_mut().learner = Some(learner);
        let (bindings, tune) = instantiate(&mut bridge, pre, plugin.info().tunable)?;
        Ok(AlgorithmInstance { bridge, bindings, tune })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.bridge.name()
    }

    /// The learner (named modules and optimizers).
    pub fn learner(&self) -> &Learner {
        self.bridge.store.data().learner.as_ref().expect("algorithm stores always hold a learner")
    }

    /// The learner, to change (e.g. to attach a new goal oracle after an env reload).
    pub fn learner_mut(&mut self) -> &mut Learner {
        self.bridge.store.data_mut().learner.as_mut().expect("algorithm stores always hold a learner")
    }

    /// Takes the learner back out (to hand it to a reloaded plugin, or to checkpoint it).
    pub fn into_learner(mut self) -> Learner {
        self.bridge.store.data_mut().learner.take().expect("algorithm stores always hold a learner")
    }

    /// Hot reload: hands this instance's learner (its named modules, optimizers and replay
    /// buffers) and the plugin's saved state to a new version of the plugin, which `init`s
    /// against the same names, takes the state and must answer a trial `act` on `probe`
    /// observations. Call it between updates (a rollout in progress lives in the old
    /// instance and is not carried over). If any step fails, the new version is dropped,
    /// this instance keeps running unchanged and the error says which call failed.
    pub fn reload(
        &mut self,
        plugin: &Plugin,
        seed: u64,
        spec: &EnvSpec,
        num_envs: u32,
        params: &Params,
        probe: &Tensor,
    ) -> Result<(), CallError> {
        let state = self.save_state()?;
        let learner = self.bridge.store.data_mut().learner.take().expect("algorithm stores always hold a learner");
        let mut bridge = Bridge::new(plugin, seed);
        bridge.store.data_mut().learner = Some(learner);
        let instantiated = bridge.pre_for(World::Algorithm).and_then(|pre| instantiate(&mut bridge, pre, plugin.info().tunable));
        let mut new = match instantiated {
            Ok((bindings, tune)) => AlgorithmInstance { bridge, bindings, tune },
            Err(e) => {
                self.bridge.store.data_mut().learner = bridge.store.data_mut().learner.take();
                return Err(e);
            }
        };
        let trial = new.init(spec, num_envs, params).and_then(|()| new.load_state(&state)).and_then(|()| new.act(probe, true).map(drop));
        match trial {
            Ok(()) => {
                *self = new;
                Ok(())
            }
            Err(e) => {
                self.bridge.store.data_mut().learner = Some(new.into_learner());
                Err(e)
            }
        }
    }

    fn lend(&mut self, t: &Tensor) -> Result<Resource<Tensor>, CallError> {
        self.bridge
            .store
            .data_mut()
            .table
            .push(t.shallow_clone())
            .map_err(|e| self.bridge.error("lend tensor", CallErrorKind::Trap(e.to_string())))
    }

    fn reclaim(&mut self, r: Resource<Tensor>) -> Option<Tensor> {
        self.bridge.store.data_mut().table.delete(r).ok()
    }

    /// `algo.init`.
    pub fn init(&mut self, spec: &EnvSpec, num_envs: u32, params: &Params) -> Result<(), CallError> {
        let b = &self.bindings;
        self.bridge.call_result("init", |s| b.paddock_rl_algo().call_init(s, spec, num_envs, params))
    }

    /// `algo.act`: actions for a `[num_envs, obs_len]` batch.
    pub fn act(&mut self, observations: &Tensor, deterministic: bool) -> Result<Tensor, CallError> {
        let obs = self.lend(observations)?;
        let b = &self.bindings;
        let obs_rep = Resource::<Tensor>::new_borrow(obs.rep());
        let result = self.bridge.call_result("act", |s| b.paddock_rl_algo().call_act(s, obs_rep, deterministic));
        self.reclaim(obs);
        let actions = result?;
        self.reclaim(actions).ok_or_else(|| self.bridge.error("act", CallErrorKind::InvalidOutput("returned a dead tensor handle".into())))
    }

    /// `algo.observe`.
    pub fn observe(
        &mut self,
        observations: &Tensor,
        actions: &Tensor,
        rewards: &Tensor,
        next_observations: &Tensor,
        terminated: &Tensor,
        truncated: &Tensor,
    ) -> Result<(), CallError> {
        let lent = [observations, actions, rewards, next_observations, terminated, truncated]
            .into_iter()
            .map(|t| self.lend(t))
            .collect::<Result<Vec<_>, _>>()?;
        let r: Vec<Resource<Tensor>> = lent.iter().map(|l| Resource::new_borrow(l.rep())).collect();
        let b = &self.bindings;
        let result = self.bridge.call_result("observe", |s| {
            b.paddock_rl_algo().call_observe(s, clone(&r[0]), clone(&r[1]), clone(&r[2]), clone(&r[3]), clone(&r[4]), clone(&r[5]))
        });
        for l in lent {
            self.reclaim(l);
        }
        result
    }

    /// `algo.wants-update`.
    pub fn wants_update(&mut self) -> Result<bool, CallError> {
        let b = &self.bindings;
        self.bridge.call("wants-update", |s| b.paddock_rl_algo().call_wants_update(s))
    }

    /// `algo.update`: metrics to log.
    pub fn update(&mut self) -> Result<Vec<Metric>, CallError> {
        let b = &self.bindings;
        let metrics = self.bridge.call_result("update", |s| b.paddock_rl_algo().call_update(s))?;
        if let Some(m) = metrics.iter().find(|m| !m.value.is_finite()) {
            return Err(self.bridge.error("update", CallErrorKind::InvalidOutput(format!("metric `{}` is {}", m.name, m.value))));
        }
        Ok(metrics)
    }

    /// `algo.save-state`.
    pub fn save_state(&mut self) -> Result<Vec<u8>, CallError> {
        let b = &self.bindings;
        self.bridge.call("save-state", |s| b.paddock_rl_algo().call_save_state(s))
    }

    /// `algo.load-state`.
    pub fn load_state(&mut self, state: &[u8]) -> Result<(), CallError> {
        let b = &self.bindings;
        self.bridge.call_result("load-state", |s| b.paddock_rl_algo().call_load_state(s, state))
    }
}

/// What an algorithm lets change while it runs, for a refusal: `it lets a, b change`, or
/// `it lets none change`.
pub fn lets_change(allowed: &[String]) -> String {
    if allowed.is_empty() { "it lets none change".to_string() } else { format!("it lets {} change", allowed.join(", ")) }
}

impl AlgorithmInstance {
    /// `algo-tune.mutable-params`: the parameters this algorithm lets change while it runs
    /// (none when it does not export `algo-tune`).
    pub fn mutable_params(&mut self) -> Result<Vec<String>, CallError> {
        let Some(t) = &self.tune else { return Ok(Vec::new()) };
        self.bridge.call("algo-tune.mutable-params", |s| t.call_mutable_params(s))
    }

    /// `algo-tune.retune`: sets `params` on the running instance. Each key must be one of
    /// [`Self::mutable_params`]; a key that is not, or a plugin without `algo-tune`, is
    /// refused by name before the plugin is called.
    pub fn retune(&mut self, params: &Params) -> Result<(), CallError> {
        let allowed = self.mutable_params()?;
        if let Some((k, _)) = params.iter().find(|(k, _)| !allowed.contains(k)) {
            let why = format!("parameter `{k}` cannot change while the algorithm runs ({})", lets_change(&allowed));
            let why = if self.tune.is_none() { format!("{why}: it does not export paddock:rl/algo-tune") } else { why };
            return Err(self.bridge.error("algo-tune.retune", CallErrorKind::Refused(why)));
        }
        let Some(t) = &self.tune else { return Ok(()) };
        self.bridge.call_result("algo-tune.retune", |s| t.call_retune(s, params))
    }
}

fn clone(r: &Resource<Tensor>) -> Resource<Tensor> {
    Resource::new_borrow(r.rep())
}
