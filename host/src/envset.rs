//! A vectorized set of envs: `num_envs` envs of one environment plugin, split into shards
//! (one component instance and store each) that are stepped with one `step-all` call per
//! shard, shards in parallel on worker threads. Envs auto-reset; the final observation of
//! an ended episode is handed back beside the first observation of the next. Env `i` is
//! seeded with `seed::derive(run_seed, stream, i)`, so trajectories depend on the seed and
//! not on how envs are spread over workers.

use crate::runtime::bindings::reward::exports::paddock::rl::reward_fn::Transitions;
use crate::runtime::bindings::types::{EnvSpec, Params};
use crate::runtime::{CallError, EnvInstance, Plugin, RewardInstance};
use crate::seed::{Stream, derive};
use crate::spaces::flat_len;
use rayon::prelude::*;

mod swap;

/// How an [`EnvSet`] is made.
#[derive(Clone, Debug)]
pub struct EnvSetOptions {
    /// Number of envs.
    pub num_envs: usize,
    /// Worker shards; 0 picks automatically (one shard for small sets, where a thread
    /// hand-off costs more than the stepping).
    pub workers: usize,
    /// The run seed.
    pub seed: u64,
    /// Which seed stream (training or evaluation envs).
    pub stream: Stream,
    /// The env plugin's parameters.
    pub params: Params,
    /// Robot files the env may load by name (`[env] robots`).
    pub robots: crate::runtime::Robots,
}

/// Errors of an [`EnvSet`].
#[derive(Debug, thiserror::Error)]
pub enum EnvSetError {
    /// A plugin call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The caller passed the wrong number of action values.
    #[error("expected {expected} action values ({num_envs} envs × {per_env}), got {got}")]
    ActionCount {
        /// Values expected.
        expected: usize,
        /// Envs.
        num_envs: usize,
        /// Values per env.
        per_env: usize,
        /// Values given.
        got: usize,
    },
    /// The options are invalid.
    #[error("{0}")]
    Options(String),
}

struct Shard {
    inst: EnvInstance,
    first: usize,
    len: usize,
    /// A hot-reloaded version taking over this shard's envs one episode boundary at a time.
    incoming: Option<swap::Incoming>,
}

/// One step of every env.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VecStep {
    /// Observations after the step, `num_envs × obs_len`; for envs that ended, the first
    /// observation of their next episode.
    pub observations: Vec<f32>,
    /// Rewards: the reward plugin's if there is one, else the env's.
    pub rewards: Vec<f64>,
    /// The env's own rewards, when a reward plugin replaced them in `rewards`.
    pub env_rewards: Option<Vec<f64>>,
    /// Terminated flags.
    pub terminated: Vec<bool>,
    /// Truncated flags.
    pub truncated: Vec<bool>,
    /// Info values, `num_envs × info_len`.
    pub infos: Vec<f64>,
    /// Indices of the envs whose episode ended, ascending.
    pub ended: Vec<u32>,
    /// Their final observations, `ended.len() × obs_len`, in the order of `ended`.
    pub final_observations: Vec<f32>,
}

impl VecStep {
    /// Observations after the step with each ended env's final observation in place of its
    /// reset one: the `next-observations` of a transition (`obs_len` values per env).
    pub fn next_observations(&self, obs_len: usize) -> Vec<f32> {
        let mut next = self.observations.clone();
        for (&i, fin) in self.ended.iter().zip(self.final_observations.chunks_exact(obs_len)) {
            let i = i as usize;
            next[i * obs_len..(i + 1) * obs_len].copy_from_slice(fin);
        }
        next
    }
}

/// Envs stepped in batches; see the module docs.
pub struct EnvSet {
    shards: Vec<Shard>,
    spec: EnvSpec,
    num_envs: usize,
    obs_len: usize,
    act_len: usize,
    reward: Option<RewardInstance>,
    /// Current observations (kept only when a reward plugin needs transitions).
    current: Vec<f32>,
    /// How the shards were made (for hot-reloaded versions and parameter changes); its
    /// `params` are the newest ones (those taking over during a change).
    opts: EnvSetOptions,
    /// The newest version of the env plugin (the one taking over during a swap).
    plugin: Plugin,
    /// What the last swap replaced (the plugin, and a pending swap it took the place of),
    /// for [`EnvSet::cancel_swap`] to put back.
    undo: Option<(Plugin, Vec<Option<swap::Incoming>>)>,
}

impl std::fmt::Debug for EnvSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSet").field("env", &self.spec.id).field("num_envs", &self.num_envs).field("shards", &self.shards.len()).finish()
    }
}

/// The seeds of envs `first..first + len`: env `i`'s depends on the run seed, the stream and
/// `i` only, not on the shard it lands in.
fn env_seeds(opts: &EnvSetOptions, first: usize, len: usize) -> Vec<u64> {
    (first..first + len).map(|i| derive(opts.seed, opts.stream, i as u64)).collect()
}

/// Envs per shard above which extra worker threads pay off (automatic choice).
const ENVS_PER_AUTO_SHARD: usize = 256;
/// The same for envs on the host's physics, whose steps cost tens of microseconds (a
/// 16-env arm-reach set steps 27k env steps/s on one shard, 41k on two).
const PHYSICS_ENVS_PER_AUTO_SHARD: usize = 8;

impl EnvSet {
    /// Instantiates the shards and `init`s every env (not yet reset).
    pub fn new(plugin: &Plugin, opts: &EnvSetOptions) -> Result<Self, EnvSetError> {
        let n = opts.num_envs;
        if n == 0 {
            return Err(EnvSetError::Options("num_envs must be at least 1".into()));
        }
        let mut probe = EnvInstance::new(plugin, derive(opts.seed, Stream::PluginRandom, 0))?;
        probe.grant_robots(opts.robots.clone());
        let spec = probe.describe(&opts.params)?;
        let max_per = spec.max_envs_per_instance.max(1) as usize;
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let physics = plugin.info().imports.iter().any(|i| i.starts_with("paddock:rl/physics"));
        let per_auto_shard = if physics { PHYSICS_ENVS_PER_AUTO_SHARD } else { ENVS_PER_AUTO_SHARD };
        let wanted = if opts.workers == 0 { n.div_ceil(per_auto_shard).min(cores).max(1) } else { opts.workers.min(n) };
        let count = wanted.max(n.div_ceil(max_per));
        let mut shards = Vec::with_capacity(count);
        let mut first = 0;
        let mut probe = Some(probe);
        for s in 0..count {
            let len = n / count + usize::from(s < n % count);
            let mut inst = match probe.take() {
                Some(p) => p,
                None => {
                    let mut inst = EnvInstance::new(plugin, derive(opts.seed, Stream::PluginRandom, s as u64))?;
                    inst.grant_robots(opts.robots.clone());
                    inst
                }
            };
            inst.init(&opts.params, &env_seeds(opts, first, len))?;
            shards.push(Shard { inst, first, len, incoming: None });
            first += len;
        }
        // The spec with the cameras' images (known once the envs added them in `init`);
        // every shard's the same.
        let spec = shards.first().and_then(|s| s.inst.spec().cloned()).unwrap_or(spec);
        if let Some(other) = shards.iter().find(|s| s.inst.image_layout() != shards[0].inst.image_layout()) {
            return Err(EnvSetError::Options(format!(
                "envs {}.. added other cameras than env 0 ({:?} against {:?})",
                other.first,
                other.inst.image_layout(),
                shards[0].inst.image_layout()
            )));
        }
        Ok(EnvSet {
            obs_len: flat_len(&spec.observation_space),
            act_len: flat_len(&spec.action_space),
            spec,
            shards,
            num_envs: n,
            reward: None,
            current: Vec::new(),
            opts: opts.clone(),
            plugin: plugin.clone(),
            undo: None,
        })
    }

    /// Uses `reward` in place of the env's own reward. Call it before [`EnvSet::reset`].
    pub fn set_reward(&mut self, reward: RewardInstance) {
        self.reward = Some(reward);
    }

    /// The env spec.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The physics scene of the first shard (env 0 alone when every env has its shard):
    /// colliders posed, and fixed bodies. Empty for envs without physics.
    pub fn scene(&self) -> (Vec<crate::physics::render::SceneShape>, Vec<u64>) {
        self.shards.first().map(|s| s.inst.scene()).unwrap_or_default()
    }

    /// The physics scene of one env (the first shard's oldest simulation, normally env 0's),
    /// for a live picture. Empty for envs without physics.
    pub fn first_scene(&self) -> (Vec<crate::physics::render::SceneShape>, Vec<u64>) {
        self.shards.first().map(|s| s.inst.first_scene()).unwrap_or_default()
    }

    /// How camera images follow the env's own values in each observation, when the envs
    /// have cameras.
    pub fn image_layout(&self) -> Option<&crate::spaces::ImageLayout> {
        self.shards.first().and_then(|s| s.inst.image_layout())
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Number of shards (instances).
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// Flat observation length of one env.
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// Flat action length of one env.
    pub fn act_len(&self) -> usize {
        self.act_len
    }

    /// Swaps in a new reward instance (hot reload), after a trial `compute` on the current
    /// observations (as a batch of still transitions): a version that traps or returns
    /// garbage on its first call is refused and handed back with the error, and the old
    /// one stays. Returns the old instance on success.
    #[expect(clippy::result_large_err, reason = "a refused instance goes back to its caller whole, once per hot reload")]
    pub fn swap_reward(&mut self, mut new: RewardInstance) -> Result<Option<RewardInstance>, (RewardInstance, CallError)> {
        let n = self.num_envs;
        if self.current.len() == n * self.obs_len {
            let trial = Transitions {
                num_envs: n as u32,
                observations: self.current.clone(),
                actions: vec![0.0; n * self.act_len],
                next_observations: self.current.clone(),
                env_rewards: vec![0.0; n],
                terminated: vec![false; n],
                truncated: vec![false; n],
                infos: vec![0.0; n * self.spec.info_features.len()],
            };
            if let Err(e) = new.compute(&trial) {
                return Err((new, e));
            }
        }
        Ok(self.reward.replace(new))
    }

    /// The reward plugin's name, if one is used.
    pub fn reward_name(&self) -> Option<&str> {
        self.reward.as_ref().map(|r| r.name())
    }

    /// Resets every env; returns `num_envs × obs_len` observations.
    pub fn reset(&mut self) -> Result<Vec<f32>, EnvSetError> {
        for sh in &mut self.shards {
            if let Some(inc) = sh.incoming.take() {
                sh.inst = inc.inst;
            }
        }
        let parts = self.map_shards(|sh| sh.inst.reset_all())?;
        let obs = parts.concat();
        if self.reward.is_some() {
            self.current.clone_from(&obs);
        }
        Ok(obs)
    }

    fn map_shards<R: Send>(&mut self, f: impl Fn(&mut Shard) -> Result<R, CallError> + Sync + Send) -> Result<Vec<R>, CallError> {
        if self.shards.len() == 1 {
            return Ok(vec![f(&mut self.shards[0])?]);
        }
        self.shards.par_iter_mut().map(f).collect()
    }

    /// Steps every env with `num_envs × act_len` flat actions.
    pub fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvSetError> {
        let (n, al, ol) = (self.num_envs, self.act_len, self.obs_len);
        if actions.len() != n * al {
            return Err(EnvSetError::ActionCount { expected: n * al, num_envs: n, per_env: al, got: actions.len() });
        }
        let il = self.spec.info_features.len();
        let parts = self.map_shards(|sh| sh.step(&actions[sh.first * al..(sh.first + sh.len) * al], ol, il))?;
        // One shard (the common case): its vectors move into the result uncopied.
        let single = parts.len() == 1;
        let mut out = VecStep { terminated: vec![false; n], truncated: vec![false; n], ..VecStep::default() };
        for (shard, part) in self.shards.iter().zip(parts) {
            for e in &part.ended {
                let i = shard.first + e.env as usize;
                out.ended.push(i as u32);
                out.terminated[i] = e.terminated;
                out.truncated[i] = e.truncated;
            }
            if single {
                out.observations = part.observations;
                out.rewards = part.rewards;
                out.infos = part.infos;
                out.final_observations = part.final_observations;
            } else {
                out.observations.extend_from_slice(&part.observations);
                out.rewards.extend_from_slice(&part.rewards);
                out.infos.extend_from_slice(&part.infos);
                out.final_observations.extend_from_slice(&part.final_observations);
            }
        }
        match &mut self.reward {
            None => {}
            Some(_) if self.current.len() != n * ol => {
                return Err(EnvSetError::Options("the reward plugin was set after reset; set it first".into()));
            }
            Some(reward) => {
                let next = out.next_observations(ol);
                let shaped = reward.compute(&Transitions {
                    num_envs: n as u32,
                    observations: std::mem::take(&mut self.current),
                    actions: actions.to_vec(),
                    next_observations: next,
                    env_rewards: out.rewards.clone(),
                    terminated: out.terminated.clone(),
                    truncated: out.truncated.clone(),
                    infos: out.infos.clone(),
                })?;
                out.env_rewards = Some(std::mem::replace(&mut out.rewards, shaped));
            }
        }
        if self.reward.is_some() {
            self.current.clone_from(&out.observations);
        }
        Ok(out)
    }

    /// The complete state of every env (for checkpoints), env order.
    pub fn snapshot(&mut self) -> Result<Vec<Vec<u8>>, EnvSetError> {
        let parts = self.map_shards(|sh| (0..sh.len).map(|i| sh.owner(i).snapshot(i as u32)).collect::<Result<Vec<_>, _>>())?;
        Ok(parts.concat())
    }

    /// Restores every env from [`EnvSet::snapshot`] and the observations current then.
    pub fn restore(&mut self, states: &[Vec<u8>], observations: &[f32]) -> Result<(), EnvSetError> {
        if states.len() != self.num_envs || observations.len() != self.num_envs * self.obs_len {
            return Err(EnvSetError::Options(format!(
                "snapshot holds {} envs and {} observation values; this set has {} envs",
                states.len(),
                observations.len(),
                self.num_envs
            )));
        }
        self.map_shards(|sh| {
            let first = sh.first;
            (0..sh.len).try_for_each(|i| sh.owner(i).restore(i as u32, &states[first + i]))
        })?;
        self.current = observations.to_vec();
        Ok(())
    }
}
