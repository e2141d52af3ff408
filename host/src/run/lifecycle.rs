//! The run's lifecycle: a new run ([`Run::create`]), an existing one resumed
//! ([`Run::resume`]), trained ([`Run::train`], [`train`]); a checkpoint to evaluate
//! ([`CheckpointTarget`]).

use super::carry;
use super::checkpoint;
use super::hooks::{Hooks, TrainSummary, UploadOnCheckpoint};
use super::mirror::Mirror;
use super::naming;
use super::runs::{self, Checkpoints};
use super::trainer;
use crate::config::RunConfig;
use crate::format::status::{self, State, Status};
use crate::log::{Level, RunLog};
use crate::registry::ResolvedConfig;
use crate::runtime::Runtime;
use crate::store::Location;
use anyhow::Context;
use std::path::{Path, PathBuf};

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

/// How often an S3 run's mirror uploads its small files (checkpoints go up as soon as they
/// are written), and how long the upload of the rest may take at the end.
#[derive(Clone, Copy, Debug)]
pub struct MirrorPace {
    /// Between passes over the small files (metrics, log, status).
    pub every: std::time::Duration,
    /// For the final upload, after the loop ended.
    pub finish_within: std::time::Duration,
}

impl Default for MirrorPace {
    fn default() -> Self {
        MirrorPace { every: std::time::Duration::from_secs(1), finish_within: std::time::Duration::from_secs(300) }
    }
}

/// A run ready to train: claimed (new) or fetched (resumed), with its log and runtime open.
/// The only way to a trainable run: `paddock train`, a trial on a worker and the monitor's
/// `--tui` all make one of these.
pub struct Run {
    /// The config to run (registry references resolved to cached files, carried plugins
    /// pointed at on a resume).
    pub config: RunConfig,
    /// The directory it trains in (for an S3 run, its local working copy).
    pub dir: PathBuf,
    /// Its place in an S3 store, when it has one.
    pub remote: Option<Location>,
    /// The store it is mirrored to, when it has one.
    store: Option<std::sync::Arc<dyn crate::store::Objects>>,
    /// How its mirror paces itself.
    pub pace: MirrorPace,
    /// Its `log.txt`.
    pub log: RunLog,
    /// The plugin runtime, logging into the run.
    pub runtime: Runtime,
    /// Whether it continues from its newest checkpoint.
    pub resume: bool,
    /// What a person should know before it starts (the registry's warnings, an older
    /// working copy moved aside, what was fetched).
    pub notes: Vec<String>,
    /// How it is tracked with `[tracking] mlflow` (default: [`super::tracking::default_as`]).
    pub track_as: Option<super::tracking::TrackAs>,
}

/// Where a run is mirrored to.
enum Remote {
    /// Nowhere: a local run.
    None,
    /// Its own place in a store, opened with the config's `[s3]` settings.
    Location(Location),
    /// A store the caller opened (a trial's epoch prefix in the experiment's store).
    Store(std::sync::Arc<dyn crate::store::Objects>),
}

/// A config for a new run, loaded and checked, its registry references resolved.
pub struct NewConfig {
    /// What the run trains with, and what it records.
    pub resolved: ResolvedConfig,
    /// Where it came from, for the log: the config file.
    pub source: String,
}

impl NewConfig {
    /// Loads the config file at `path` with `--set` style `overrides` and checks what
    /// training needs (an algorithm, `total_steps`, the robot files and packages it names).
    /// Nothing is created.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<NewConfig> {
        let config = RunConfig::load_with(path, overrides)?;
        if config.algorithm.is_none() {
            anyhow::bail!("config file {}: `paddock train` needs an [algorithm] section", path.display());
        }
        if config.total_steps.is_none() {
            anyhow::bail!("config file {}: key `total_steps` is required to train", path.display());
        }
        let mut plugins = vec![("env", &config.env.plugin)];
        plugins.extend(config.reward.as_ref().map(|r| ("reward", &r.plugin)));
        plugins.extend(config.algorithm.as_ref().map(|a| ("algorithm", &a.plugin)));
        for (role, file) in plugins {
            if !crate::config::is_registry_ref(file) && !file.is_file() {
                let looked: Vec<String> =
                    crate::config::search_path(crate::config::Search::Plugins).iter().map(|d| d.display().to_string()).collect();
                anyhow::bail!(
                    "config file {}: key `{role}.plugin`: {} is not a file (a relative name is looked for beside the config, then in $PADDOCK_PLUGIN_PATH and {})",
                    path.display(),
                    file.display(),
                    looked.join(", ")
                );
            }
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
        let resolved = crate::registry::resolve_config(&config).with_context(|| format!("config file {}", path.display()))?;
        Ok(NewConfig { resolved, source: path.display().to_string() })
    }

    /// The config the run records (`config.toml`).
    pub fn record_text(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(&self.resolved.record)?)
    }
}

/// Applies `sets` to the run's recorded `config.toml` in `dir` (see [`Run::resume`]);
/// returns the text it had, when it changed.
fn set_recorded(dir: &Path, sets: &[String]) -> anyhow::Result<Option<String>> {
    if sets.is_empty() {
        return Ok(None);
    }
    let path = dir.join(crate::format::run_dir::CONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut table: toml::Table = text.parse().with_context(|| format!("{} is not TOML", path.display()))?;
    let old_params = table.get("algorithm").and_then(|a| a.get("params")).cloned();
    for s in sets {
        let key = s.split_once('=').map_or(s.as_str(), |(k, _)| k.trim());
        if key != "total_steps" && !key.starts_with("algorithm.params.") {
            anyhow::bail!(
                "--set {s}: a resumed run changes only `total_steps` and the `algorithm.params` its algorithm lets change while it runs; start a new run for other settings"
            );
        }
        crate::config::apply_override(&mut table, s)?;
    }
    let new_text = toml::to_string_pretty(&table)?;
    crate::store::write_atomically(&path, new_text.as_bytes())?;
    let checked = (|| -> anyhow::Result<()> {
        // The config as a resume reads it: each plugin the run's carried copy.
        let step = crate::format::run_dir::latest_checkpoint(dir).and_then(|c| crate::format::run_dir::checkpoint_step(&c)).unwrap_or(0);
        let (config, _, _) = recorded_config(dir, step, &Default::default()).with_context(|| format!("after --set {}", sets.join(" ")))?;
        if table.get("algorithm").and_then(|a| a.get("params")) == old_params.as_ref() {
            return Ok(());
        }
        let (name, allowed) = mutable_params(&config)?;
        for key in sets.iter().filter_map(|s| s.split_once('=').map(|(k, _)| k.trim())) {
            if let Some(k) = key.strip_prefix("algorithm.params.")
                && !allowed.iter().any(|a| a == k)
            {
                let lets = crate::runtime::lets_change(&allowed);
                anyhow::bail!("--set {key}=…: algorithm plugin `{name}` cannot change `{k}` while it runs ({lets}); the run is as it was");
            }
        }
        Ok(())
    })();
    if let Err(e) = checked {
        crate::store::write_atomically(&path, text.as_bytes())?;
        return Err(e);
    }
    Ok(Some(text))
}

/// The algorithm of `config` (registry references resolved) and the parameters it lets
/// change while it runs (`algo-tune.mutable-params`, on a fresh instance with a CPU learner;
/// none when it does not export `algo-tune`): its name and the list.
pub fn mutable_params(config: &RunConfig) -> anyhow::Result<(String, Vec<String>)> {
    let resolved = crate::registry::resolve_config(config)?;
    let algo = resolved.run.algorithm.as_ref().context("the config has no [algorithm] section")?;
    let runtime = runtime_for(&resolved.run.runtime, crate::log::RunLog::discard())?;
    let plugin = runtime.load(&algo.plugin, crate::runtime::World::Algorithm)?;
    let mut instance = crate::runtime::AlgorithmInstance::new(&plugin, 0, crate::learner::Learner::new(tch::Device::Cpu))?;
    Ok((plugin.name().to_string(), instance.mutable_params()?))
}

/// The config to run from a run's recorded `config.toml` in `dir`, at checkpoint `step`:
/// each plugin the version `plugins.lock` says was live then (its carried copy), unless
/// `replace` names another file for its role; registry references resolved. Returns it,
/// what the carry chose (notes) and the registry's warnings.
pub fn recorded_config(
    dir: &Path,
    step: u64,
    replace: &std::collections::BTreeMap<String, PathBuf>,
) -> anyhow::Result<(RunConfig, Vec<String>, Vec<String>)> {
    let record = RunConfig::load_resolved(&dir.join(crate::format::run_dir::CONFIG))?;
    let (carried, notes) = carry::resolve(&record, dir, step, replace)?;
    let resolved = crate::registry::resolve_config(&carried)?;
    let config = RunConfig { sources: carried.sources.into_iter().chain(resolved.run.sources.clone()).collect(), ..resolved.run };
    Ok((config, notes, resolved.warnings))
}

impl Run {
    /// A new run from the config file at `path` with `--set` style `overrides`, named and
    /// claimed in the config's `store`. Nothing is created when the config does not load.
    pub fn create(path: &Path, overrides: &[String]) -> anyhow::Result<Run> {
        let new = NewConfig::load(path, overrides)?;
        let config = &new.resolved.run;
        let store = Location::parse(&config.store).with_context(|| format!("config file {}: key `store`", path.display()))?;
        let claimed = naming::claim(&store, &config.s3, &naming::base_name(config), &new.record_text()?)?;
        Run::start(new, claimed.dir, claimed.remote.map_or(Remote::None, Remote::Location))
    }

    /// A new run in `dir` (which exists; its `config.toml` is written here unless
    /// `record` is given, written already), mirrored to `store` when given: a trial's run
    /// on a worker.
    pub fn create_in(
        new: NewConfig,
        dir: PathBuf,
        store: Option<std::sync::Arc<dyn crate::store::Objects>>,
        record: Option<String>,
    ) -> anyhow::Result<Run> {
        let text = match record {
            Some(t) => t,
            None => new.record_text()?,
        };
        std::fs::write(dir.join(crate::format::run_dir::CONFIG), text)
            .with_context(|| format!("failed to write {}", dir.join(crate::format::run_dir::CONFIG).display()))?;
        Run::start(new, dir, store.map_or(Remote::None, Remote::Store))
    }

    fn start(new: NewConfig, dir: PathBuf, remote: Remote) -> anyhow::Result<Run> {
        let NewConfig { resolved, source } = new;
        let mut warnings = resolved.warnings;
        warnings.extend(carry::carry_robots(&dir, &resolved.run.env.robot_grants()).with_context(|| format!("config file {source}"))?);
        Run::open(resolved.run, dir, remote, false, &source, warnings)
    }

    /// An existing run, to continue from its newest complete checkpoint: a run directory,
    /// or `s3://bucket/prefix/RUN` (fetched first into a fresh working copy).
    ///
    /// Each plugin is the version `plugins.lock` recorded as live at that checkpoint (the
    /// run carries a copy of each), unless `replace` names another file for its role
    /// (`env`, `reward`, `algorithm`), which the run then records like a hot reload.
    ///
    /// `sets` (`--set` style) change the recorded config first: only `total_steps` (to train
    /// on past the old end) and the `algorithm.params` the algorithm lets change while it
    /// runs (`algo-tune`); anything else is refused by key and the run is left as it was.
    pub fn resume(target: &str, replace: &std::collections::BTreeMap<String, PathBuf>, sets: &[String]) -> anyhow::Result<Run> {
        let location = Location::parse(target)?;
        let mut notes = Vec::new();
        let (dir, store) = match &location {
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
                (f.dir, Remote::Location(location.clone()))
            }
            Location::Local(p) => (p.clone(), Remote::None),
        };
        let before = set_recorded(&dir, sets).with_context(|| format!("run {target}"))?;
        let mut run = match Run::resume_at(dir.clone(), store, replace, target) {
            Ok(r) => r,
            Err(e) => {
                if let Some(text) = before {
                    let _ = crate::store::write_atomically(&dir.join(crate::format::run_dir::CONFIG), text.as_bytes());
                }
                return Err(e);
            }
        };
        if !sets.is_empty() {
            run.log.line(Level::Info, "paddock", &format!("config changed at resume: {}", sets.join(" ")));
        }
        notes.append(&mut run.notes);
        run.notes = notes;
        Ok(run)
    }

    /// The run in `dir` (local, fetched already when it lives in a store), continued from
    /// its newest complete checkpoint and mirrored to `store` when given; `shown` names it in
    /// errors (its directory, or the URI it was fetched from).
    pub fn resume_in(
        dir: PathBuf,
        store: Option<std::sync::Arc<dyn crate::store::Objects>>,
        replace: &std::collections::BTreeMap<String, PathBuf>,
        shown: &str,
    ) -> anyhow::Result<Run> {
        Run::resume_at(dir, store.map_or(Remote::None, Remote::Store), replace, shown)
    }

    fn resume_at(dir: PathBuf, remote: Remote, replace: &std::collections::BTreeMap<String, PathBuf>, shown: &str) -> anyhow::Result<Run> {
        if !dir.join(crate::format::run_dir::CONFIG).exists() {
            anyhow::bail!("{shown} is not a run directory (it has no {})", crate::format::run_dir::CONFIG);
        }
        let step = crate::format::run_dir::latest_checkpoint(&dir).and_then(|c| crate::format::run_dir::checkpoint_step(&c)).unwrap_or(0);
        let (config, mut carry_notes, warnings) = recorded_config(&dir, step, replace).with_context(|| format!("run {shown}"))?;
        let mut run = Run::open(config, dir, remote, true, shown, warnings)?;
        for n in &carry_notes {
            run.log.line(Level::Info, "paddock", n);
        }
        carry_notes.append(&mut run.notes);
        run.notes = carry_notes;
        Ok(run)
    }

    fn open(config: RunConfig, dir: PathBuf, remote: Remote, resume: bool, source: &str, warnings: Vec<String>) -> anyhow::Result<Run> {
        let log_path = dir.join(crate::format::run_dir::LOG);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let log = RunLog::new(Box::new(file), Level::Info);
        let store = match remote {
            Remote::None => None,
            // A run's own store, reached with its config's `[s3]` settings.
            Remote::Location(at) => Some(crate::store::open(&at, &config.s3)?),
            Remote::Store(s) => Some(s),
        };
        let remote = store.as_ref().map(|s| s.location().clone());
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
        Ok(Run {
            config,
            dir,
            remote,
            store,
            pace: MirrorPace::default(),
            log,
            runtime,
            resume,
            notes: warnings.into_iter().map(|w| format!("warning: {w}")).collect(),
            track_as: None,
        })
    }

    /// Trains the run to its end (or a stop), mirroring an S3 run to its store as it goes
    /// (the hooks learn what it uploaded, [`Hooks::mirroring`]) and uploading the rest at
    /// the end; logs how it ended.
    pub fn train(&self, hooks: &mut dyn Hooks) -> anyhow::Result<TrainSummary> {
        let mirror = match &self.store {
            Some(s) => Some(Mirror::start(&self.dir, s.clone(), self.log.clone(), self.pace.every)?),
            None => None,
        };
        let tracker = self.config.tracking.mlflow.as_ref().map(|server| {
            let as_ = self.track_as.clone().unwrap_or_else(|| super::tracking::default_as(&self.config, &self.dir));
            super::tracking::Tracker::start(server, as_, &self.dir, self.log.clone())
        });
        let mut result = match &mirror {
            // Each new checkpoint goes up at once, not at the mirror's next pass.
            Some(m) => {
                hooks.mirroring(&m.uploaded());
                train(&self.config, &self.runtime, &self.dir, self.resume, &mut UploadOnCheckpoint::new(&mut *hooks, m))
            }
            None => train(&self.config, &self.runtime, &self.dir, self.resume, hooks),
        };
        if let (Some(m), Some(r)) = (mirror, &self.remote) {
            hooks.uploading(r);
            let uploaded =
                m.finish(self.pace.finish_within).with_context(|| format!("its local copy is complete at {}", self.dir.display()));
            result = result.and_then(|mut s| {
                uploaded?;
                s.store_location = Some(r.to_string());
                Ok(s)
            });
        }
        if let Some(t) = tracker {
            t.finish(match &result {
                Ok(s) if s.stopped && !s.pruned => "KILLED",
                Ok(_) => "FINISHED",
                Err(_) => "FAILED",
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
        let step = crate::format::run_dir::checkpoint_step(&checkpoint).unwrap_or(0);
        let (mut config, _, _) =
            recorded_config(&run_dir, step, &Default::default()).with_context(|| format!("run {}", run_dir.display()))?;
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
