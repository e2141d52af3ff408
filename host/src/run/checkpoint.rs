//! Checkpoints: everything a run needs to continue exactly where it was.
//!
//! A checkpoint is taken right after an update (the algorithm's rollout is empty then):
//! the learner's named tensors (`learner.pt` + `learner.json`), the replay buffers when
//! `train.checkpoint_replay`, the plugin's own state (`algorithm.bin`), every env's
//! snapshot and the loop's counters (`state.json`). It is written into
//! `checkpoints/.tmp-<step>/` and renamed to `checkpoints/<step>/`, so a kill at any moment
//! leaves the last complete checkpoint loadable; older ones beyond
//! `train.keep_checkpoints` are removed after the rename.

use super::eval::Evaluation;
use crate::envset::EnvSet;
use crate::learner::Learner;
use crate::rundir::{self, PARTIAL_PREFIX};
use crate::runtime::AlgorithmInstance;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The plugin's own state.
const ALGORITHM_STATE: &str = "algorithm.bin";
/// The loop's counters and the envs' snapshots.
const LOOP_STATE: &str = "state.json";

/// Everything the loop needs to continue from a checkpoint.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LoopState {
    pub steps: u64,
    pub next_eval: u64,
    pub updates: u64,
    pub running: Vec<(f64, u64)>,
    pub finished: Vec<(f64, u64)>,
    pub recent: Vec<f64>,
    pub observations: Vec<f32>,
    pub env_states: Vec<Vec<u8>>,
    pub eval_env_states: Vec<Vec<u8>>,
    pub evals: Vec<Evaluation>,
    pub best_eval_return: Option<f64>,
    pub last_eval_return: Option<f64>,
    pub solved_at_step: Option<u64>,
    pub metrics_bytes: u64,
}

/// What a checkpoint captures beside the loop state.
pub(super) struct Live<'a> {
    pub algo: &'a mut AlgorithmInstance,
    pub envs: &'a mut EnvSet,
    pub eval_envs: &'a mut EnvSet,
    pub observations: &'a [f32],
    /// The length of `metrics.jsonl` (flushed) at this point.
    pub metrics_bytes: u64,
}

/// How many checkpoints to keep and whether they hold the replay buffers.
#[derive(Clone, Copy)]
pub(super) struct Policy {
    pub keep: usize,
    pub replay: bool,
}

/// Captures the envs, observations and metrics length into `state`, then writes a
/// checkpoint of `run_dir`; returns its directory.
pub(super) fn write(run_dir: &Path, policy: Policy, live: Live<'_>, state: &mut LoopState) -> anyhow::Result<PathBuf> {
    state.metrics_bytes = live.metrics_bytes;
    state.observations = live.observations.to_vec();
    state.env_states = live.envs.snapshot()?;
    state.eval_env_states = live.eval_envs.snapshot()?;
    let (algo, state) = (live.algo, &*state);
    let dir = run_dir.join(rundir::CHECKPOINTS);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let name = rundir::checkpoint_name(state.steps);
    let tmp = dir.join(format!("{PARTIAL_PREFIX}{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp)?;
    algo.learner().save(&tmp).map_err(anyhow::Error::msg)?;
    if policy.replay {
        algo.learner().save_replays(&tmp).map_err(anyhow::Error::msg)?;
    }
    std::fs::write(tmp.join(ALGORITHM_STATE), algo.save_state()?)?;
    let f = std::fs::File::create(tmp.join(LOOP_STATE))?;
    serde_json::to_writer(&f, state)?;
    f.sync_all()?;
    let done = dir.join(&name);
    if done.exists() {
        std::fs::remove_dir_all(&done)?;
    }
    std::fs::rename(&tmp, &done).context("failed to publish the checkpoint")?;
    let all = rundir::checkpoints(run_dir);
    for old in all.iter().take(all.len().saturating_sub(policy.keep.max(1))) {
        std::fs::remove_dir_all(old)?;
    }
    Ok(done)
}

/// Reads a checkpoint's loop state.
pub(super) fn read_loop_state(checkpoint: &Path) -> anyhow::Result<LoopState> {
    let path = checkpoint.join(LOOP_STATE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("checkpoint {} is corrupt", checkpoint.display()))
}

/// A checkpoint's algorithm state, if it has one.
pub(super) fn read_algorithm_state(checkpoint: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let path = checkpoint.join(ALGORITHM_STATE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// The learner of a checkpoint (named tensors and optimizer state, and its replay buffers
/// when it holds them), on `device`. `prepare` runs between the two (the goal oracle the
/// replay buffers need must be attached first).
pub(super) fn read_learner(
    checkpoint: &Path,
    device: tch::Device,
    prepare: impl FnOnce(&mut Learner) -> anyhow::Result<()>,
    replays: bool,
) -> anyhow::Result<Learner> {
    let shown = || format!("checkpoint {}", checkpoint.display());
    let mut learner = Learner::load(checkpoint, device).map_err(anyhow::Error::msg).with_context(shown)?;
    prepare(&mut learner)?;
    if replays {
        learner.load_replays(checkpoint).map_err(anyhow::Error::msg).with_context(shown)?;
    }
    Ok(learner)
}
