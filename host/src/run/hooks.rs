//! What the loop reports (a summary, progress, evaluations) and how a caller steers it at
//! its safe points ([`Hooks`], [`Directive`]).

use super::mirror::{Mirror, Uploaded};
use crate::store::Location;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a finished run reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Env steps taken.
    pub steps: u64,
    /// Env steps the run aimed for (`total_steps`).
    pub total_steps: u64,
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
#[derive(Clone, Debug)]
pub struct Progress {
    /// Env steps so far.
    pub steps: u64,
    /// Env steps the run aims for.
    pub total_steps: u64,
    /// Mean return of recent training episodes.
    pub recent_return: Option<f64>,
    /// Last evaluation's mean return.
    pub last_eval: Option<f64>,
    /// News besides the numbers (as `status.json`'s message): an env swap under way, a new
    /// plugin version compiling, waiting for its safe point, just live or refused.
    pub news: Option<String>,
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
    /// Before the loop starts, for a run mirrored to a store: what the mirror has uploaded
    /// complete, kept current as it goes (a worker's heartbeat records it without listing
    /// the store).
    fn mirroring(&mut self, _uploaded: &Uploaded) {}
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
    fn mirroring(&mut self, uploaded: &Uploaded) {
        self.inner.mirroring(uploaded);
    }
    fn uploading(&mut self, to: &Location) {
        self.inner.uploading(to);
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// One evaluation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Env steps of training when it ran.
    pub step: u64,
    /// Mean return.
    pub mean: f64,
    /// Standard deviation of the returns.
    pub std: f64,
    /// Half-width of the 95% confidence interval of the mean (normal approximation).
    pub ci95: f64,
    /// Every episode's return.
    pub returns: Vec<f64>,
    /// Fraction of episodes whose last step reported the info feature `is-success` non-zero
    /// (Gymnasium-Robotics' convention), for envs that report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Mean over the episodes of each info feature at the episode's last step (e.g. how far
    /// a walker got: `distance`), for envs that report info features.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub final_infos: BTreeMap<String, f64>,
}

impl Evaluation {
    /// The statistics of one round of episodes, at training step `step`.
    pub fn of(step: u64, episodes: EvalEpisodes) -> Self {
        let returns = episodes.returns;
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let success_rate = episodes.successes.map(|s| s.iter().filter(|&&x| x).count() as f64 / n);
        let final_infos = episodes
            .info_features
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), episodes.final_infos.iter().map(|v| v[k]).sum::<f64>() / n))
            .collect();
        Evaluation { step, mean, std, ci95: 1.96 * std / n.sqrt(), returns, success_rate, final_infos }
    }

    /// Its `metrics.jsonl` line.
    pub fn metrics_line(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), self.step.into());
        line.insert("eval/return_mean".into(), self.mean.into());
        line.insert("eval/return_std".into(), self.std.into());
        if let Some(rate) = self.success_rate {
            line.insert("eval/success_rate".into(), rate.into());
        }
        for (name, mean) in &self.final_infos {
            line.insert(format!("eval/final/{name}"), (*mean).into());
        }
        line
    }
}

/// What one round of evaluation episodes gave.
pub struct EvalEpisodes {
    /// Each episode's return.
    pub returns: Vec<f64>,
    /// Whether each episode ended in success (envs with an `is-success` info feature).
    pub successes: Option<Vec<bool>>,
    /// The env's info feature names.
    pub info_features: Vec<String>,
    /// Each episode's info values at its last step.
    pub final_infos: Vec<Vec<f64>>,
}
