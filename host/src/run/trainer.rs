//! The training loop, made of named steps: [`Trainer::setup`] (plugins, envs, learner,
//! checkpoint restore), [`Trainer::collect`] (one vectorized env step: `act` → env step →
//! `observe`), [`Trainer::update`] (when the algorithm asks), [`Trainer::evaluate`]
//! (deterministic episodes on envs of their own, on a schedule) and
//! [`Trainer::checkpoint`]. Between updates the caller's [`Hooks`] can act: stop, ask for
//! a checkpoint now, prune after an evaluation.
//!
//! Batch data goes to the algorithm as host tensors on the learner's device.
//! `metrics.jsonl` is deterministic (no wall-clock values), so the same config and seed on
//! CPU give the same bytes; libtorch's generator is reseeded from the run seed and the
//! update count at every update, so a resumed run continues exactly as an uninterrupted
//! one would, without saving generator state.

mod curriculum;

use super::checkpoint::{self, Live, LoopState, Policy};
use super::eval::{actions_for_envs, evaluate, obs_tensor, on_device};
use super::hooks::Evaluation;
use super::hooks::{Directive, Hooks, Progress, TrainSummary};
use super::metrics::MetricsSink;
use super::reloads::{ReloadCtx, Reloads};
use super::setup::{Plugins, record_plugins, reseed_torch, reward, starting_point, watch};
use super::ticker::{ScenePainter, TICK, Ticker};
use crate::config::{RunConfig, merged, stage_key, to_params};
use crate::envset::{EnvSet, EnvSetOptions};
use crate::format::run_dir;
use crate::format::status::{State, Status};
use crate::runtime::bindings::types::Space;
use crate::runtime::{AlgorithmInstance, RewardInstance, Runtime};
use crate::seed::{Stream, derive};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

/// What changes the env parameters.
#[derive(Clone, Copy, Debug)]
pub(in crate::run) enum Cause {
    /// `[[curriculum]]` stage `i` (0-based).
    Stage(usize),
    /// A caller's hook.
    Hook,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Stage(i) => write!(f, "{}", stage_key(*i)),
            Cause::Hook => write!(f, "a hook"),
        }
    }
}

/// Checks, before any step, that the env plugin takes every stage still to come (each
/// over the parameters before it) and keeps the run's spaces with it: a stage the plugin
/// refuses is named now, not hours into the run.
fn check_stages(config: &RunConfig, envs: &EnvSet, st: &LoopState) -> anyhow::Result<()> {
    let mut table = st.env_table(config).clone();
    for (i, stage) in config.curriculum.iter().enumerate().skip(st.curriculum_next) {
        table = merged(&table, &stage.params);
        let key = stage_key(i);
        let opts =
            EnvSetOptions { num_envs: 1, workers: 1, params: to_params(&format!("{key}.params"), &table)?, ..envs.options().clone() };
        let plugin = envs.plugin().info().path.display().to_string();
        let probe = EnvSet::new(envs.plugin(), &opts)
            .with_context(|| format!("key `{key}` ({}): the env plugin {plugin} refused the stage's parameters", stage.trigger()))?;
        envs.same_spaces(probe.spec(), &format!("the parameters of `{key}`"))?;
    }
    Ok(())
}

/// A run being trained: its plugins, envs, learner and counters.
pub(super) struct Trainer<'a> {
    config: &'a RunConfig,
    run_dir: &'a Path,
    device: Device,
    total: u64,
    envs: EnvSet,
    eval_envs: EnvSet,
    algo: AlgorithmInstance,
    space: Space,
    /// Training envs, observation length, action length.
    dims: (usize, usize, usize),
    /// The current observations of the training envs.
    obs: Vec<f32>,
    st: LoopState,
    metrics: MetricsSink,
    reloads: Reloads,
    ticker: Ticker<'a>,
    painter: ScenePainter,
    next_checkpoint: u64,
    resumed_from: Option<PathBuf>,
    /// Where the env's info holds `is-success`, when it reports one.
    success_at: Option<usize>,
    /// The eval envs' snapshots while they have not changed (they change only when they
    /// evaluate): each checkpoint between two evaluations reuses them.
    eval_snapshot: Option<std::sync::Arc<Vec<Vec<u8>>>>,
    /// The step a change of env parameters began, while the envs take it over.
    params_began: Option<u64>,
}

impl<'a> Trainer<'a> {
    /// Loads the plugins, builds the envs and the learner, and restores the run's newest
    /// complete checkpoint when `resume` (or starts afresh if it has none).
    pub fn setup(config: &'a RunConfig, runtime: &Runtime, run_dir: &'a Path, resume: bool, status: Status) -> anyhow::Result<Self> {
        let (resumed_from, mut st) = starting_point(config, run_dir, resume)?;
        let mut plugins = Plugins::load(config, runtime)?;
        // The env parameters in effect: the config's, or those a curriculum stage or a hook set.
        if let Some(table) = &st.env_params {
            plugins.env_params = to_params("env.params", table).context("the checkpoint's env parameters")?;
        }
        let total = config.total_steps.context("the config has no `total_steps`")?;
        let (reward_plugin, reward_seed, reward_params) = reward(config, runtime)?;
        let opts = |num_envs, stream| {
            let mut opts = config.env.set_options(num_envs, None, config.seed, stream)?;
            opts.params.clone_from(&plugins.env_params);
            anyhow::Ok(opts)
        };
        let mut envs = EnvSet::new(&plugins.env, &opts(config.env.num_envs, Stream::Env)?)?;
        let mut eval_envs = EnvSet::new(&plugins.env, &opts(config.train.eval_episodes, Stream::EvalEnv)?)?;
        check_stages(config, &envs, &st)?;
        if let Some(plugin) = &reward_plugin {
            envs.set_reward(RewardInstance::new(plugin, reward_seed, envs.spec(), &reward_params)?);
        }
        let mut learner = plugins.learner(config, resumed_from.as_deref(), config.seed, true)?;
        learner.images = envs.image_layout().cloned();
        // Seeded before `init`: the plugin's networks are initialised from this generator.
        reseed_torch(config.seed, 0);
        let mut algo = AlgorithmInstance::new(&plugins.algorithm, derive(config.seed, Stream::PluginRandom, 1 << 33), learner)?;
        let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
        // Parameters the config changes since the checkpoint: only those the algorithm lets
        // change while it runs, checked before `init` sees them.
        let algo_table = &config.algorithm.as_ref().context("the config has no [algorithm] section")?.params;
        let changed = match (&resumed_from, &st.algorithm_params) {
            (Some(_), Some(before)) => changed_params(before, algo_table)?,
            _ => toml::Table::new(),
        };
        if !changed.is_empty() {
            check_mutable(&mut algo, &changed)?;
        }
        algo.init(envs.spec(), n as u32, &plugins.algorithm_params)?;
        if let Some(dir) = &resumed_from {
            if let Some(state) = checkpoint::read_algorithm_state(dir)? {
                algo.load_state(&state)?;
            }
            if !changed.is_empty() {
                algo.retune(&to_params("algorithm.params", &changed)?)?;
                let before = st.algorithm_params.as_ref().expect("changed only against a checkpoint's parameters");
                let list: Vec<String> = changed
                    .iter()
                    .map(|(k, v)| format!("{k} {} → {v}", before.get(k).map_or("(default)".into(), ToString::to_string)))
                    .collect();
                runtime.options().log.line(
                    crate::log::Level::Info,
                    "host",
                    &format!("algorithm parameters changed since the checkpoint, set with algo-tune.retune: {}", list.join(", ")),
                );
            }
            envs.restore(&st.envs.train, &st.envs.observations)?;
            let eval_obs = vec![0.0; eval_envs.num_envs() * ol];
            eval_envs.restore(&st.envs.eval, &eval_obs)?;
        }
        reseed_torch(config.seed, st.updates);
        st.algorithm_params = Some(algo_table.clone());

        record_plugins(
            config,
            run_dir,
            &plugins,
            reward_plugin.as_ref(),
            resumed_from.is_some().then_some(st.steps),
            &runtime.options().log,
        )?;
        run_dir::remove_partial_checkpoints(run_dir).context("failed to remove a partial checkpoint")?;
        let metrics = MetricsSink::open(run_dir, st.metrics_bytes, resumed_from.is_some())?;
        let log = runtime.options().log.clone();
        let reloads = Reloads {
            watcher: watch(config, runtime, &plugins, reward_plugin.as_ref())?,
            algorithm: None,
            env_began: None,
            reward_seed,
            reward_params,
            algo_params: plugins.algorithm_params.clone(),
            log: log.clone(),
            last: None,
        };
        let obs = if resumed_from.is_some() { std::mem::take(&mut st.envs.observations) } else { envs.reset()? };
        // The eval envs as restored: still their state until they next evaluate. A fresh run
        // takes theirs now, which also finds an env without snapshots before any training.
        let eval_snapshot = if resumed_from.is_some() {
            Some(std::sync::Arc::new(std::mem::take(&mut st.envs.eval)))
        } else {
            first_eval_snapshot(config, &mut eval_envs)?
        };
        st.envs = checkpoint::EnvStates::default();
        let every = config.train.checkpoint_every;
        let next_checkpoint = st.steps.checked_div(every).map_or(u64::MAX, |k| (k + 1) * every);
        let mut status = status;
        status.device = format!("{:?}", plugins.device).to_lowercase();
        let ticker =
            Ticker { run_dir, status, last: Instant::now() - TICK, since: (Instant::now(), st.steps), checkpoint_asked: false, log };
        let success_at = envs.spec().info_features.iter().position(|f| f == "is-success");
        Ok(Trainer {
            config,
            run_dir,
            device: plugins.device,
            total,
            space: envs.spec().action_space.clone(),
            envs,
            eval_envs,
            algo,
            dims: (n, ol, al),
            obs,
            st,
            metrics,
            reloads,
            ticker,
            painter: ScenePainter { last: None, view: None, active: true },
            next_checkpoint,
            resumed_from,
            success_at,
            eval_snapshot,
            params_began: None,
        })
    }

    /// One vectorized env step: hot-reloaded versions taken in, `act` on the current
    /// observations, the envs stepped, the transition `observe`d, episodes counted.
    pub fn collect(&mut self) -> anyhow::Result<()> {
        let (n, ol, al) = self.dims;
        self.painter.paint(self.run_dir, &self.envs, &self.obs, self.st.steps);
        let reward = self.config.reward.as_ref().map(|r| r.plugin.as_path());
        let ctx = ReloadCtx { run_dir: self.run_dir, seed: self.config.seed, reward, step: self.st.steps };
        self.reloads.poll(&ctx, &mut self.envs, &mut self.eval_envs, &mut self.algo, &mut self.metrics)?;
        let obs_t = obs_tensor(&self.obs, n, ol, self.device);
        let a = self.algo.act(&obs_t, false)?;
        let actions = actions_for_envs(self.algo.name(), &a, n, al, &self.space)?;
        let step = self.envs.step(&actions).with_context(|| format!("at env step {}", self.st.steps))?;
        self.reloads.env_progress(&self.envs, self.st.steps + n as u64, &mut self.metrics)?;
        self.params_progress(self.st.steps + n as u64);
        let next = step.next_observations(ol);
        let device = self.device;
        let rewards = on_device(Tensor::from_slice(&step.rewards.iter().map(|&r| r as f32).collect::<Vec<_>>()), device);
        let terminated = on_device(Tensor::from_slice(&step.terminated), device);
        let truncated = on_device(Tensor::from_slice(&step.truncated), device);
        self.algo.observe(&obs_t, &a, &rewards, &obs_tensor(&next, n, ol, device), &terminated, &truncated)?;
        let st = &mut self.st;
        st.steps += n as u64;
        if st.running.len() != n {
            st.running = vec![(0.0, 0); n];
        }
        if let Some(env_rewards) = &step.env_rewards {
            st.running_env.resize(n, 0.0);
            for (r, x) in st.running_env.iter_mut().zip(env_rewards) {
                *r += x;
            }
        }
        let info_len = step.infos.len() / n.max(1);
        for i in 0..n {
            st.running[i].0 += step.rewards[i];
            st.running[i].1 += 1;
            if step.terminated[i] || step.truncated[i] {
                st.finished.push(st.running[i]);
                st.recent.push(st.running[i].0);
                st.running[i] = (0.0, 0);
                if step.env_rewards.is_some() {
                    st.finished_env.push(std::mem::take(&mut st.running_env[i]));
                }
                if let Some(k) = self.success_at {
                    st.finished_success.push(step.infos[i * info_len + k] != 0.0);
                }
            }
        }
        if st.recent.len() > 20 {
            st.recent.drain(..st.recent.len() - 20);
        }
        self.obs = step.observations;
        Ok(())
    }

    /// Updates when the algorithm asks (its metrics and the episodes finished since the
    /// last update go to `metrics.jsonl`); a waiting algorithm version takes over right
    /// after. Returns whether it updated: the loop's safe point.
    pub fn update(&mut self) -> anyhow::Result<bool> {
        if !self.algo.wants_update()? {
            return Ok(false);
        }
        let st = &mut self.st;
        let mut line = serde_json::Map::new();
        line.insert("step".into(), st.steps.into());
        if !st.finished.is_empty() {
            let k = st.finished.len() as f64;
            line.insert("rollout/episodes".into(), st.finished.len().into());
            line.insert("rollout/return_mean".into(), (st.finished.iter().map(|e| e.0).sum::<f64>() / k).into());
            line.insert("rollout/length_mean".into(), (st.finished.iter().map(|e| e.1 as f64).sum::<f64>() / k).into());
            st.finished.clear();
        }
        if !st.finished_env.is_empty() {
            // With a reward plugin, `return_mean` is the shaped return; this is the env's own.
            let k = st.finished_env.len() as f64;
            line.insert("rollout/env_return_mean".into(), (st.finished_env.drain(..).sum::<f64>() / k).into());
        }
        if !st.finished_success.is_empty() {
            let k = st.finished_success.len() as f64;
            let ok = st.finished_success.drain(..).filter(|&s| s).count() as f64;
            line.insert("rollout/success_rate".into(), (ok / k).into());
        }
        for m in self.algo.update()? {
            line.insert(format!("train/{}", m.name), m.value.into());
        }
        self.metrics.write(line)?;
        self.st.updates += 1;
        let (n, ol, _) = self.dims;
        let ctx = ReloadCtx { run_dir: self.run_dir, seed: self.config.seed, reward: None, step: self.st.steps };
        let probe = obs_tensor(&self.obs, n, ol, self.device);
        self.reloads.swap_algorithm(&ctx, &mut self.algo, self.envs.spec(), n, &probe, &mut self.metrics)?;
        reseed_torch(self.config.seed, self.st.updates);
        Ok(true)
    }

    /// Evaluates when due (every `train.eval_every` steps, and at the end): one
    /// deterministic episode per eval env. Returns the evaluation and whether it reached
    /// `train.stop_at_return` or `train.stop_at_success`.
    pub fn evaluate(&mut self) -> anyhow::Result<Option<(Evaluation, bool)>> {
        let st = &mut self.st;
        if st.steps < st.next_eval && st.steps < self.total {
            return Ok(None);
        }
        st.next_eval = st.next_eval.saturating_add(self.config.train.eval_every);
        self.eval_snapshot = None;
        let e = Evaluation::of(st.steps, evaluate(&mut self.algo, &mut self.eval_envs, self.device)?);
        self.metrics.write(e.metrics_line())?;
        let st = &mut self.st;
        st.best_eval_return = Some(st.best_eval_return.map_or(e.mean, |b: f64| b.max(e.mean)));
        st.last_eval_return = Some(e.mean);
        let train = &self.config.train;
        let solved = train.stop_at_return.is_some_and(|t| e.mean >= t)
            || train.stop_at_success.is_some_and(|t| e.success_rate.is_some_and(|r| r >= t));
        if solved && st.solved_at_step.is_none() {
            st.solved_at_step = Some(st.steps);
        }
        st.evals.push(e.clone());
        Ok(Some((e, solved)))
    }

    /// Whether a checkpoint is due now (on the interval, or asked for). Not while an env
    /// swap is under way: every env of a checkpoint is of one version.
    fn checkpoint_due(&self) -> bool {
        let due = self.st.steps >= self.next_checkpoint || self.ticker.checkpoint_asked;
        due && self.st.steps < self.total && self.envs.swapping().is_none()
    }

    /// Writes a checkpoint of the run as it is now.
    pub fn checkpoint(&mut self) -> anyhow::Result<PathBuf> {
        let every = self.config.train.checkpoint_every;
        if let Some(k) = self.st.steps.checked_div(every) {
            self.next_checkpoint = (k + 1) * every;
        }
        let asked = std::mem::take(&mut self.ticker.checkpoint_asked);
        let started = Instant::now();
        let metrics_bytes = self.metrics.flush()?;
        let eval_states = match &self.eval_snapshot {
            Some(s) => s.clone(),
            None => self.eval_snapshot.insert(std::sync::Arc::new(self.eval_envs.snapshot()?)).clone(),
        };
        let live = Live { algo: &mut self.algo, envs: &mut self.envs, eval_states, observations: &self.obs, metrics_bytes };
        let policy = Policy { keep: self.config.train.keep_checkpoints, replay: self.config.train.checkpoint_replay };
        let mut written = checkpoint::write(self.run_dir, policy, live, &mut self.st)?;
        written.total = started.elapsed();
        let bytes: u64 = std::fs::read_dir(&written.dir)
            .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        let msg = format!(
            "checkpoint at step {} written{} in {:.0} ms (envs {:.0} ms), {:.2} MB",
            self.st.steps,
            if asked { " as asked" } else { "" },
            written.total.as_secs_f64() * 1e3,
            written.envs.as_secs_f64() * 1e3,
            bytes as f64 / 1e6
        );
        self.ticker.log.line(crate::log::Level::Info, "host", &msg);
        // The status never lags behind a checkpoint.
        self.ticker.write(State::Running, &self.st, None);
        Ok(written.dir)
    }

    /// Acts on a hook's directive; a stop is taken at the next safe point.
    fn steer(&mut self, d: Directive, stop: &mut Option<PendingStop>) -> anyhow::Result<()> {
        match d {
            Directive::Continue => {}
            Directive::Checkpoint => self.ticker.checkpoint_asked = true,
            Directive::Stop => _ = stop.get_or_insert_with(|| PendingStop::new("a hook", false)),
            Directive::Prune => stop.get_or_insert_with(|| PendingStop::new("a hook", true)).pruned = true,
            Directive::SetEnvParams(changes) => self.change_env_params(changes, Cause::Hook)?,
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        let recent = &self.st.recent;
        Progress {
            steps: self.st.steps,
            total_steps: self.total,
            recent_return: (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64),
            last_eval: self.st.last_eval_return,
            news: self.news(),
        }
    }

    /// What the run says besides its numbers: an env swap under way, a new plugin version
    /// compiling, waiting or just live.
    fn news(&self) -> Option<String> {
        let swap = self.envs.swapping().map(|(m, n)| format!("env swap under way: {m} of {n} envs on the new version"));
        match (swap, self.reloads.news()) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        }
    }

    /// A stop asked for from outside the loop (`control/stop`, SIGINT/SIGTERM), noted once.
    fn stop_asked_outside(&mut self, stop: &mut Option<PendingStop>) {
        // The news is formatted only when the status is due to be written (4× a second), not
        // at every step.
        let news = if self.ticker.due() { self.news() } else { None };
        let by = if self.ticker.tick(&self.st, news) { Some("a stop request") } else { super::interrupt::requested() };
        if let (Some(by), None) = (by, stop.as_ref()) {
            let msg = format!("{by} at step {}: stopping at the next update with a checkpoint", self.st.steps);
            let msg = if by.starts_with("SIG") { format!("{msg} (a second {by} stops at once)") } else { msg };
            self.ticker.log.line(crate::log::Level::Info, "host", &msg);
            *stop = Some(PendingStop::new(by, false));
        }
    }

    /// The loop: collect, update, evaluate and checkpoint until `total_steps`, a solved
    /// evaluation, or a stop (from `control/`, a signal, or `hooks`) taken at the next safe
    /// point: right after an update, where a checkpoint resumes exactly.
    pub fn run(mut self, hooks: &mut dyn Hooks) -> anyhow::Result<TrainSummary> {
        let start = Instant::now();
        let start_steps = self.st.steps;
        let mut stop: Option<PendingStop> = None;
        // Whether the loop is at a safe point: its start (a checkpoint's state) or right after an update.
        let (mut stopped, mut safe) = (false, true);
        while self.st.steps < self.total {
            self.stop_asked_outside(&mut stop);
            if let Some(s) = &stop
                && (safe || s.since.elapsed() > STOP_GRACE)
            {
                if !safe {
                    let msg = format!(
                        "no safe point (an update with no env change under way) came within {} s of the stop; stopping at step {} (resuming repeats this rollout's steps, and envs still changing over run their episodes on under the new version or parameters)",
                        STOP_GRACE.as_secs(),
                        self.st.steps
                    );
                    self.ticker.log.line(crate::log::Level::Warn, "host", &msg);
                }
                stopped = true;
                break;
            }
            self.collect()?;
            let updated = self.update()?;
            if updated {
                self.advance_curriculum(None)?;
                self.steer(hooks.at_update(self.st.steps), &mut stop)?;
            }
            // Safe to stop: right after an update, with every env on one version and one set
            // of parameters (a checkpoint then resumes exactly).
            safe = updated && self.envs.swapping().is_none();
            let mut solved = false;
            if let Some((e, reached)) = self.evaluate()? {
                solved = reached;
                self.advance_curriculum(Some(&e))?;
                self.steer(hooks.evaluated(&e), &mut stop)?;
            }
            if updated && !solved && self.checkpoint_due() {
                let dir = self.checkpoint()?;
                hooks.checkpointed(&dir, self.st.steps)?;
            }
            hooks.progress(self.progress());
            if solved {
                break;
            }
        }
        self.metrics.flush()?;
        // A final checkpoint, for `paddock eval` and for resuming with more steps. (The rollout
        // may be part-filled here; resuming continues from the last update-time checkpoint
        // unless this one is newer.)
        let name = run_dir::checkpoint_name(self.st.steps);
        let stale = run_dir::latest_checkpoint(self.run_dir).is_none_or(|c| c.file_name().is_some_and(|n| n != name.as_str()));
        if (self.config.train.checkpoint_every > 0 || stopped) && stale {
            self.note_unfinished_change();
            let dir = self.checkpoint()?;
            hooks.checkpointed(&dir, self.st.steps)?;
        }
        let wall_s = start.elapsed().as_secs_f64();
        let sps = (self.st.steps - start_steps) as f64 / wall_s.max(1e-9);
        self.ticker.status.sps = sps;
        let by = stop.as_ref().filter(|_| stopped).map(|s| format!("stopped by {} at step {}", s.by, self.st.steps));
        let pruned = stopped && stop.as_ref().is_some_and(|s| s.pruned);
        let state = match (stopped, pruned) {
            (true, true) => State::Pruned,
            (true, false) => State::Stopped,
            (false, _) => State::Finished,
        };
        self.ticker.write(state, &self.st, by.clone());
        Ok(TrainSummary {
            run_dir: self.run_dir.to_path_buf(),
            steps: self.st.steps,
            total_steps: self.total,
            wall_s,
            steps_per_s: sps,
            best_eval_return: self.st.best_eval_return,
            last_eval_return: self.st.last_eval_return,
            solved_at_step: self.st.solved_at_step,
            evals: self.st.evals,
            device: format!("{:?}", self.device).to_lowercase(),
            resumed_from: self.resumed_from,
            stopped,
            stopped_by: stop.as_ref().filter(|_| stopped).map(|s| s.by.to_string()),
            pruned: stopped && stop.is_some_and(|s| s.pruned),
            store_location: None,
        })
    }
}

/// How long a stop waits for a safe point (an update) before it stops mid-rollout.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// A stop asked for and not yet taken.
struct PendingStop {
    /// What asked (`SIGINT`, `a stop request`, `a hook`).
    by: &'static str,
    /// Whether a scheduler pruned the run.
    pruned: bool,
    since: Instant,
}

impl PendingStop {
    fn new(by: &'static str, pruned: bool) -> Self {
        PendingStop { by, pruned, since: Instant::now() }
    }
}

/// A fresh run's eval envs, snapshotted before any training (when checkpoints are on), with
/// an error that says what to do when the env has no snapshots.
fn first_eval_snapshot(config: &RunConfig, eval_envs: &mut EnvSet) -> anyhow::Result<Option<std::sync::Arc<Vec<Vec<u8>>>>> {
    if config.train.checkpoint_every == 0 {
        return Ok(None);
    }
    let snap = eval_envs.snapshot().map_err(|e| {
        let unsupported = matches!(&e, crate::envset::EnvSetError::Call(c) if matches!(c.kind, crate::runtime::CallErrorKind::Unsupported(_)));
        let e = anyhow::Error::from(e);
        if unsupported {
            e.context(format!(
                "checkpoints need the env's snapshots, and the env plugin {} has none: implement `snapshot`/`restore`, or set `train.checkpoint_every = 0` to train without checkpoints (the run then cannot be resumed)",
                config.env.plugin.display()
            ))
        } else {
            e.context("failed to snapshot the eval envs")
        }
    })?;
    Ok(Some(std::sync::Arc::new(snap)))
}

/// The algorithm parameters of `now` that differ from (or are missing in) `before`, the
/// checkpoint's. One the checkpoint had set and the config no longer sets is refused: its
/// old value goes on in the plugin's state, so the config must name the value it wants.
fn changed_params(before: &toml::Table, now: &toml::Table) -> anyhow::Result<toml::Table> {
    if let Some(k) = before.keys().find(|k| !now.contains_key(*k)) {
        anyhow::bail!(
            "key `algorithm.params.{k}` was {} when the checkpoint was taken and is not set now: set the value it should have from here on",
            before[k]
        );
    }
    Ok(now.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Refuses changed parameters the algorithm does not let change while it runs, by key.
fn check_mutable(algo: &mut AlgorithmInstance, changed: &toml::Table) -> anyhow::Result<()> {
    let allowed = algo.mutable_params()?;
    if let Some(k) = changed.keys().find(|k| !allowed.contains(k)) {
        let lets = crate::runtime::lets_change(&allowed);
        anyhow::bail!(
            "key `algorithm.params.{k}` differs from the checkpoint's, and algorithm plugin `{}` cannot change it while it runs ({lets}); resume with the checkpoint's value or start a new run",
            algo.name()
        );
    }
    Ok(())
}
