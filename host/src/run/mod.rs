//! The run as a library: start a run at a location (a directory or `s3://`) from a config,
//! resume one, evaluate a checkpoint. `paddock train`, `paddock eval`, the monitor's
//! `--tui` and a fleet worker call these same functions.
//!
//! - [`Run::create`] / [`Run::resume`] name, claim or fetch the run and open its log and
//!   runtime; [`Run::train`] trains it (mirroring an S3 run to its store) with the caller's
//!   [`Hooks`] acting at the loop's safe points.
//! - [`train`] is the loop on a run directory that already exists ([`trainer`] holds its
//!   named steps: setup, collect, update, evaluate, checkpoint).
//! - [`CheckpointTarget::open`] + [`evaluate_checkpoint`] evaluate a run's checkpoint,
//!   local or in S3.

pub mod carry;
mod checkpoint;
mod eval;
pub mod interrupt;
mod metrics;
pub mod mirror;
pub mod naming;
mod reloads;
pub mod runs;
mod setup;
mod tensorboard;
mod ticker;
mod trainer;

pub use eval::{EvalEpisodes, Evaluation, evaluate, evaluate_checkpoint, evaluate_observed};

use crate::config::RunConfig;
use crate::format::status::{self, State, Status};
use crate::log::{Level, RunLog};
use crate::run::mirror::Mirror;
use crate::runtime::Runtime;
use crate::store::Location;
use anyhow::Context;
use runs::Checkpoints;
use std::path::{Path, PathBuf};

/// What a finished run reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Env steps taken.
    pub steps: u64,
    /// Wall-clock seconds of the loop.
    pub wall_s: f64,
    /// Env steps per second.
    pub steps_per_s: f64,
    /// Best evaluation mean return.
    pub best_eval_return: Option<f64>,
    /// Last evaluation mean return.
    pub last_eval_return: Option<f64>,
    /// Env steps at which an evaluation first reached `train.stop_at_return` (or
    /// `train.stop_at_success`).
    pub solved_at_step: Option<u64>,
    /// Every evaluation.
    pub evals: Vec<Evaluation>,
    /// The learner's device.
    pub device: String,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// Whether the run stopped on request (`control/stop`, `q` in the monitor, a hook)
    /// before its end.
    pub stopped: bool,
    /// What stopped it (`SIGINT`, `SIGTERM`, `a stop request`, `a hook`), when it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// Whether a hook pruned the run after an evaluation (a scheduler's decision).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
    /// Where the run is kept when that is not `run_dir` (an S3 run; `run_dir` is then its
    /// local working copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_location: Option<String>,
}

/// Progress the loop reports after each env step (for a progress bar).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Env steps so far.
    pub steps: u64,
    /// Env steps the run aims for.
    pub total_steps: u64,
    /// Mean return of recent training episodes.
    pub recent_return: Option<f64>,
    /// Last evaluation's mean return.
    pub last_eval: Option<f64>,
}

/// What a hook asks the loop to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Directive {
    /// Go on.
    Continue,
    /// Write a checkpoint at this safe point (or the next one, if an env swap is under way).
    Checkpoint,
    /// Stop before the next step, with a final checkpoint (state `stopped`, resumable).
    Stop,
    /// [`Directive::Stop`], and mark the run pruned (a scheduler such as ASHA gave up on it).
    Prune,
    /// Set these env parameters (over those in effect): each training env takes them at
    /// its next episode boundary, the evaluation envs from the next evaluation. The change
    /// is recorded in the run's checkpoints, so a resume or `paddock eval` builds its envs
    /// with it; parameters the env plugin refuses end the run with the plugin's reason
    /// (its last checkpoint stays).
    SetEnvParams(toml::Table),
}

/// The places where a caller of [`train`] sees the loop and steers it. Every method has a
/// default that does nothing, so a caller implements only what it needs.
pub trait Hooks {
    /// After every env step.
    fn progress(&mut self, _progress: Progress) {}
    /// Right after each update (the loop's safe point), at env step `step`.
    fn at_update(&mut self, _step: u64) -> Directive {
        Directive::Continue
    }
    /// After each evaluation (a scheduler may prune the run here).
    fn evaluated(&mut self, _evaluation: &Evaluation) -> Directive {
        Directive::Continue
    }
    /// After each checkpoint is complete on disk (a worker uploads it, or records it).
    fn checkpointed(&mut self, _dir: &Path, _step: u64) -> anyhow::Result<()> {
        Ok(())
    }
    /// The loop ended and the rest of an S3 run is being uploaded to `to`.
    fn uploading(&mut self, _to: &Location) {}
}

/// Hooks that forward to `inner` and wake a run's mirror after each checkpoint, so the
/// store holds a checkpoint within one upload rather than one mirror interval.
pub struct UploadOnCheckpoint<'a> {
    inner: &'a mut dyn Hooks,
    wake: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<'a> UploadOnCheckpoint<'a> {
    /// `inner`'s hooks, with `mirror` woken after each checkpoint.
    pub fn new(inner: &'a mut dyn Hooks, mirror: &Mirror) -> Self {
        UploadOnCheckpoint { inner, wake: mirror.waker() }
    }
}

impl Hooks for UploadOnCheckpoint<'_> {
    fn progress(&mut self, p: Progress) {
        self.inner.progress(p);
    }
    fn at_update(&mut self, step: u64) -> Directive {
        self.inner.at_update(step)
    }
    fn evaluated(&mut self, e: &Evaluation) -> Directive {
        self.inner.evaluated(e)
    }
    fn checkpointed(&mut self, dir: &Path, step: u64) -> anyhow::Result<()> {
        self.wake.store(true, std::sync::atomic::Ordering::Release);
        self.inner.checkpointed(dir, step)
    }
    fn uploading(&mut self, to: &Location) {
        self.inner.uploading(to);
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Trains per `config`, writing into `run_dir` (which must exist). With `resume`,
/// continues from the run's newest complete checkpoint (or starts afresh if it has none).
/// The run's `status.json` follows it (running, paused, finished, stopped, failed with the
/// error).
pub fn train(config: &RunConfig, runtime: &Runtime, run_dir: &Path, resume: bool, hooks: &mut dyn Hooks) -> anyhow::Result<TrainSummary> {
    let started_unix = status::unix_now();
    let mut status = Status {
        state: State::Starting,
        pid: std::process::id(),
        step: 0,
        total_steps: config.total_steps.unwrap_or(0),
        sps: 0.0,
        best_eval: None,
        last_eval: None,
        device: String::new(),
        started_unix,
        updated_unix: started_unix,
        message: None,
        host: status::this_host(),
    };
    // A resume that cannot start changes nothing: the run keeps the status it had.
    let before = std::fs::read(run_dir.join(crate::format::run_dir::STATUS)).ok();
    let _ = status::write(run_dir, &status);
    let result = match trainer::Trainer::setup(config, runtime, run_dir, resume, status.clone()) {
        Ok(t) => t.run(hooks),
        Err(e) if resume => {
            let path = run_dir.join(crate::format::run_dir::STATUS);
            let _ = match &before {
                Some(bytes) => std::fs::write(&path, bytes),
                None => std::fs::remove_file(&path),
            };
            return Err(e.context("the run could not be resumed; it is as it was"));
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        // The loop writes its own end states; a failure anywhere is written here.
        (status.state, status.message, status.updated_unix) = (State::Failed, Some(format!("{e:#}")), status::unix_now());
        if let Some(Ok(last)) = status::read(run_dir) {
            (status.step, status.best_eval, status.last_eval, status.device) = (last.step, last.best_eval, last.last_eval, last.device);
        }
        let _ = status::write(run_dir, &status);
    }
    result
}

/// The plugin runtime a config asks for (limits, compile cache), logging to `log`.
pub fn runtime_for(section: &crate::config::RuntimeSection, log: RunLog) -> anyhow::Result<Runtime> {
    let cache_dir = section.cache_dir.clone().or_else(crate::runtime::default_cache_dir);
    Runtime::new(crate::runtime::RuntimeOptions { limits: section.limits(), cache_dir, log })
}

/// A run ready to train: claimed (new) or fetched (resumed), with its log and runtime open.
pub struct Run {
    /// The config to run (registry references resolved to cached files).
    pub config: RunConfig,
    /// The directory it trains in (for an S3 run, its local working copy).
    pub dir: PathBuf,
    /// Its place in an S3 store, when it has one.
    pub remote: Option<Location>,
    /// Its `log.txt`.
    pub log: RunLog,
    /// The plugin runtime, logging into the run.
    pub runtime: Runtime,
    /// Whether it continues from its newest checkpoint.
    pub resume: bool,
    /// What a person should know before it starts (the registry's warnings, an older
    /// working copy moved aside, what was fetched).
    pub notes: Vec<String>,
}

impl Run {
    /// A new run from the config file at `path` with `--set` style `overrides`, named and
    /// claimed in the config's `store`.
    pub fn create(path: &Path, overrides: &[String]) -> anyhow::Result<Run> {
        let config = RunConfig::load_with(path, overrides)?;
        if config.algorithm.is_none() {
            anyhow::bail!("config file {}: `paddock train` needs an [algorithm] section", path.display());
        }
        if config.total_steps.is_none() {
            anyhow::bail!("config file {}: key `total_steps` is required to train", path.display());
        }
        for (name, file) in &config.env.robots {
            if !file.is_file() {
                anyhow::bail!("config file {}: key `env.robots.{name}`: {} is not a file", path.display(), file.display());
            }
        }
        for dir in &config.env.packages {
            if !dir.is_dir() {
                anyhow::bail!("config file {}: key `env.packages`: {} is not a folder", path.display(), dir.display());
            }
        }
        let (to_run, record, warnings) =
            crate::registry::resolve_config(&config).with_context(|| format!("config file {}", path.display()))?;
        let text = toml::to_string_pretty(&record)?;
        let store = Location::parse(&config.store).with_context(|| format!("config file {}: key `store`", path.display()))?;
        let claimed = naming::claim(&store, &config.s3, &naming::base_name(&config), &text)?;
        let mut warnings = warnings;
        warnings.extend(
            crate::run::carry::carry_robots(&claimed.dir, &to_run.env.robot_grants())
                .with_context(|| format!("config file {}", path.display()))?,
        );
        Run::open(to_run, claimed.dir, claimed.remote, false, &path.display().to_string(), warnings)
    }

    /// An existing run, to continue from its newest complete checkpoint: a run directory,
    /// or `s3://bucket/prefix/RUN` (fetched first into a fresh working copy).
    ///
    /// Each plugin is the version `plugins.lock` recorded as live at that checkpoint (the
    /// run carries a copy of each), unless `replace` names another file for its role
    /// (`env`, `reward`, `algorithm`), which the run then records like a hot reload.
    pub fn resume(target: &str, replace: &std::collections::BTreeMap<String, PathBuf>) -> anyhow::Result<Run> {
        let location = Location::parse(target)?;
        let mut notes = Vec::new();
        let (dir, remote) = match &location {
            Location::S3 { .. } => {
                let f = naming::fetch(&location, &Checkpoints::Latest)?;
                if let Some(a) = &f.moved_aside {
                    notes.push(format!("the older local working copy of this run was moved to {}", a.display()));
                }
                let checkpoint = f
                    .pulled
                    .checkpoints
                    .last()
                    .and_then(|c| c.file_name())
                    .map_or_else(|| ", no complete checkpoint".to_string(), |n| format!(", checkpoint {}", n.to_string_lossy()));
                notes.push(format!(
                    "fetched {} files ({:.1} MB) of {location}{checkpoint} into {}",
                    f.pulled.files,
                    f.pulled.bytes as f64 / 1e6,
                    f.dir.display()
                ));
                (f.dir, Some(location.clone()))
            }
            Location::Local(p) => (p.clone(), None),
        };
        let config_path = dir.join(crate::format::run_dir::CONFIG);
        if !config_path.exists() {
            anyhow::bail!("{target} is not a run directory (it has no {})", crate::format::run_dir::CONFIG);
        }
        let record = RunConfig::load_resolved(&config_path)?;
        let step = crate::format::run_dir::latest_checkpoint(&dir).and_then(|c| crate::format::run_dir::checkpoint_step(&c)).unwrap_or(0);
        let (carried, mut carry_notes) =
            crate::run::carry::resolve(&record, &dir, step, replace).with_context(|| format!("run {target}"))?;
        let (config, _, warnings) = crate::registry::resolve_config(&carried).with_context(|| format!("run {}", dir.display()))?;
        let config = RunConfig { sources: carried.sources.into_iter().chain(config.sources.clone()).collect(), ..config };
        let mut run = Run::open(config, dir, remote, true, target, warnings)?;
        for n in &carry_notes {
            run.log.line(Level::Info, "paddock", n);
        }
        notes.append(&mut carry_notes);
        notes.append(&mut run.notes);
        run.notes = notes;
        Ok(run)
    }

    fn open(
        config: RunConfig,
        dir: PathBuf,
        remote: Option<Location>,
        resume: bool,
        source: &str,
        warnings: Vec<String>,
    ) -> anyhow::Result<Run> {
        let log_path = dir.join(crate::format::run_dir::LOG);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let log = RunLog::new(Box::new(file), Level::Info);
        let shown = remote.as_ref().map_or_else(|| dir.display().to_string(), |r| format!("{r} (working copy {})", dir.display()));
        let what = match (resume, crate::format::run_dir::latest_checkpoint(&dir).and_then(|c| crate::format::run_dir::checkpoint_step(&c)))
        {
            (false, _) => format!("starting run {shown} from the config {source}"),
            (true, Some(step)) => format!("resuming run {shown} at step {step} (its newest complete checkpoint)"),
            (true, None) => format!("resuming run {shown} from its start (it has no complete checkpoint)"),
        };
        log.line(Level::Info, "paddock", &what);
        for w in &warnings {
            log.line(Level::Warn, "paddock", w);
        }
        for (path, src) in &config.sources {
            log.line(Level::Info, "paddock", &format!("plugin {} from {src}", path.display()));
        }
        let runtime = runtime_for(&config.runtime, log.clone())?;
        Ok(Run { config, dir, remote, log, runtime, resume, notes: warnings.into_iter().map(|w| format!("warning: {w}")).collect() })
    }

    /// Trains the run to its end (or a stop), mirroring an S3 run to its store as it goes
    /// and uploading the rest at the end; logs how it ended.
    pub fn train(&self, hooks: &mut dyn Hooks) -> anyhow::Result<TrainSummary> {
        let mirror = match &self.remote {
            Some(r) => Some(Mirror::start(
                &self.dir,
                crate::store::open(r, &self.config.s3)?,
                self.log.clone(),
                std::time::Duration::from_secs(1),
            )?),
            None => None,
        };
        let mut result = match &mirror {
            // Each new checkpoint goes up at once, not at the mirror's next pass.
            Some(m) => train(&self.config, &self.runtime, &self.dir, self.resume, &mut UploadOnCheckpoint::new(&mut *hooks, m)),
            None => train(&self.config, &self.runtime, &self.dir, self.resume, hooks),
        };
        if let (Some(m), Some(r)) = (mirror, &self.remote) {
            hooks.uploading(r);
            let uploaded = m
                .finish(std::time::Duration::from_secs(300))
                .with_context(|| format!("its local copy is complete at {}", self.dir.display()));
            result = result.and_then(|mut s| {
                uploaded?;
                s.store_location = Some(r.to_string());
                Ok(s)
            });
        }
        match &result {
            Ok(s) => self.log.line(
                Level::Info,
                "paddock",
                &format!(
                    "done: {} steps in {:.2} s ({:.0} steps/s), last eval {}",
                    s.steps,
                    s.wall_s,
                    s.steps_per_s,
                    s.last_eval_return.map_or_else(|| "none".into(), |e| format!("{e:.2}"))
                ),
            ),
            Err(e) => self.log.line(Level::Error, "paddock", &format!("{e:#}")),
        }
        result
    }
}

/// A checkpoint to evaluate: a run directory (its newest complete checkpoint), one
/// checkpoint directory, or the same in an S3 store (fetched into a temporary directory).
pub struct CheckpointTarget {
    /// The run's config, registry references resolved.
    pub config: RunConfig,
    /// The checkpoint directory (local).
    pub checkpoint: PathBuf,
    /// How to name it to a person (the S3 URI for a fetched one).
    pub shown: String,
    /// The env parameters the run had at this checkpoint when a curriculum stage or a hook
    /// had changed them (already in `config.env.params`).
    pub env_params: Option<toml::Table>,
    _fetched: Option<tempfile::TempDir>,
}

impl CheckpointTarget {
    /// Finds (and for S3, fetches) the checkpoint `target` names.
    pub fn open(target: &str) -> anyhow::Result<Self> {
        let mut fetched = None;
        let dir = match Location::parse(target)? {
            Location::Local(p) => p,
            loc @ Location::S3 { .. } => {
                let text = loc.to_string();
                let (run_loc, which) = match text.rsplit_once(&format!("/{}/", crate::format::run_dir::CHECKPOINTS)) {
                    Some((run, step)) => (Location::parse(run)?, Checkpoints::One(step.trim_end_matches('/').to_string())),
                    None => (loc.clone(), Checkpoints::Latest),
                };
                let (objects, name) = runs::open_run(&run_loc)?;
                let tmp = tempfile::Builder::new().prefix("paddock-eval-").tempdir().context("failed to make a temporary directory")?;
                let dir = tmp.path().join(&name);
                let pulled = runs::pull_run(objects.as_ref(), &name, &dir, &which, &mut |_, _| {})?;
                let c = pulled.checkpoints.last().with_context(|| format!("{run_loc} has no complete checkpoint"))?.clone();
                let shown = format!(
                    "{run_loc}/{}/{}",
                    crate::format::run_dir::CHECKPOINTS,
                    c.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                );
                fetched = Some((tmp, shown));
                c
            }
        };
        let (run_dir, checkpoint) = match crate::format::run_dir::run_of_checkpoint(&dir) {
            Some(run_dir) => (run_dir, dir.clone()),
            None => {
                let c = crate::format::run_dir::latest_checkpoint(&dir)
                    .with_context(|| format!("{target} has no complete checkpoint (is it a run directory?)"))?;
                (dir.clone(), c)
            }
        };
        let record = RunConfig::load_resolved(&run_dir.join(crate::format::run_dir::CONFIG))?;
        let step = crate::format::run_dir::checkpoint_step(&checkpoint).unwrap_or(0);
        let (carried, _) = crate::run::carry::resolve(&record, &run_dir, step, &Default::default())
            .with_context(|| format!("run {}", run_dir.display()))?;
        let (mut config, _, _) = crate::registry::resolve_config(&carried)?;
        // The env as the run had it at this checkpoint: a curriculum may have changed its parameters.
        let env_params = checkpoint::read_env_params(&checkpoint)?;
        if let Some(table) = &env_params {
            config.env.params.clone_from(table);
        }
        let (fetched, shown) = match fetched {
            Some((tmp, shown)) => (Some(tmp), shown),
            None => (None, checkpoint.display().to_string()),
        };
        Ok(CheckpointTarget { config, checkpoint, shown, env_params, _fetched: fetched })
    }
}
