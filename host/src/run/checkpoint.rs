//! Checkpoints: everything a run needs to continue exactly where it was.
//!
//! A checkpoint is taken right after an update (the algorithm's rollout is empty then):
//!
//! - `learner.pt` + `learner.json`: the learner's named tensors and optimizer state;
//! - `replay-<i>.pt/.json` + `replays.json` when `train.checkpoint_replay`;
//! - `algorithm.bin`: the plugin's own state;
//! - `envs.bin`: the training envs' observations and snapshots and the eval envs'
//!   snapshots, binary (see [`EnvStates`]);
//! - `state.json`: the loop's counters and evaluations (small).
//!
//! It is written into `checkpoints/.tmp-<step>/` through buffered writers and renamed to
//! `checkpoints/<step>/`, so a kill at any moment leaves the last complete checkpoint
//! loadable; older ones beyond `train.keep_checkpoints` are removed after the rename.
//! Checkpoints of earlier versions (env snapshots inside `state.json` as JSON arrays) still
//! load.

use super::hooks::Evaluation;
use crate::envset::EnvSet;
use crate::format::checkpoint::{ALGORITHM_STATE, ENV_STATES, ENV_STATES_MAGIC, LOOP_STATE};
use crate::format::run_dir::{self, PARTIAL_PREFIX};
use crate::learner::Learner;
use crate::runtime::AlgorithmInstance;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Everything the loop needs to continue from a checkpoint.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LoopState {
    pub steps: u64,
    pub next_eval: u64,
    pub updates: u64,
    pub running: Vec<(f64, u64)>,
    pub finished: Vec<(f64, u64)>,
    /// The env's own return of each env's episode so far, when a reward plugin replaces
    /// its rewards (training logs both returns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_env: Vec<f64>,
    /// The env's own returns of the episodes finished since the last update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished_env: Vec<f64>,
    /// Whether each episode finished since the last update ended in success (envs that
    /// report `is-success`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished_success: Vec<bool>,
    pub recent: Vec<f64>,
    /// The envs: in `envs.bin` (read from `state.json` only in older checkpoints).
    #[serde(flatten, skip_serializing)]
    pub envs: EnvStates,
    pub evals: Vec<Evaluation>,
    pub best_eval_return: Option<f64>,
    pub last_eval_return: Option<f64>,
    pub solved_at_step: Option<u64>,
    pub metrics_bytes: u64,
    /// The env parameters in effect, once a curriculum stage or a hook has changed them
    /// (`None`: the config's `[env.params]`); a resume builds its envs with these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_params: Option<toml::Table>,
    /// The algorithm parameters in effect when the checkpoint was taken (absent in older
    /// checkpoints): a resume whose config changes some calls `algo-tune.retune` with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_params: Option<toml::Table>,
    /// How many `[[curriculum]]` stages have begun.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub curriculum_next: usize,
    /// A change of env parameters asked for while an env swap was under way, waiting for it
    /// to end (the changes only, set over `env_params` when it begins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_params_pending: Option<toml::Table>,
}

impl LoopState {
    /// The env parameters in effect: those a curriculum stage or a hook set, else the
    /// config's `[env.params]`.
    pub fn env_table<'a>(&'a self, config: &'a crate::config::RunConfig) -> &'a toml::Table {
        self.env_params.as_ref().unwrap_or(&config.env.params)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The envs' part of a checkpoint: the training envs' current observations and snapshots
/// and the eval envs' snapshots. In `envs.bin`: the magic `PDKENVS1`, then the
/// observations (`u64` count, `f32` values), the training snapshots and the eval snapshots
/// (each a `u64` count of `u64`-length-prefixed byte strings), little-endian.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(super) struct EnvStates {
    #[serde(default)]
    pub observations: Vec<f32>,
    #[serde(default, rename = "env_states")]
    pub train: Vec<Vec<u8>>,
    #[serde(default, rename = "eval_env_states")]
    pub eval: Vec<Vec<u8>>,
}

impl EnvStates {
    /// Writes `envs.bin`'s bytes.
    fn write(w: &mut impl Write, observations: &[f32], train: &[Vec<u8>], eval: &[Vec<u8>]) -> std::io::Result<()> {
        w.write_all(ENV_STATES_MAGIC)?;
        w.write_all(&(observations.len() as u64).to_le_bytes())?;
        for x in observations {
            w.write_all(&x.to_le_bytes())?;
        }
        for set in [train, eval] {
            w.write_all(&(set.len() as u64).to_le_bytes())?;
            for s in set {
                w.write_all(&(s.len() as u64).to_le_bytes())?;
                w.write_all(s)?;
            }
        }
        Ok(())
    }

    fn read_from(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != ENV_STATES_MAGIC {
            return Err("it does not start with PDKENVS1".into());
        }
        let n = r.count()?;
        let raw = r.take(n.checked_mul(4).ok_or("too many observations")?)?;
        let observations = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let mut sets = [Vec::new(), Vec::new()];
        for set in &mut sets {
            let k = r.count()?;
            for _ in 0..k {
                let len = r.count()?;
                set.push(r.take(len)?.to_vec());
            }
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes after the end", bytes.len() - r.at));
        }
        let [train, eval] = sets;
        Ok(EnvStates { observations, train, eval })
    }
}

/// Reads `envs.bin`, naming where it is cut off.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("cut off at byte {} of {}", self.at, self.bytes.len()))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn count(&mut self) -> Result<usize, String> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        usize::try_from(v).map_err(|e| e.to_string())
    }
}

/// What a checkpoint captures beside the loop state.
pub(super) struct Live<'a> {
    pub algo: &'a mut AlgorithmInstance,
    pub envs: &'a mut EnvSet,
    /// The eval envs' snapshots (taken by the caller, which keeps them while the eval envs
    /// do not change).
    pub eval_states: std::sync::Arc<Vec<Vec<u8>>>,
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

/// Writes `bytes` to a new file through a buffer.
fn write_file(path: &Path, f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("failed to create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    f(&mut w).and_then(|()| w.flush()).with_context(|| format!("failed to write {}", path.display()))
}

/// A written checkpoint: its directory, and how long it took.
pub(super) struct Written {
    pub dir: PathBuf,
    /// Snapshotting the training envs.
    pub envs: std::time::Duration,
    /// All of it.
    pub total: std::time::Duration,
}

/// Records the metrics length in `state`, snapshots the training envs, and writes a
/// checkpoint of `run_dir`.
pub(super) fn write(run_dir: &Path, policy: Policy, live: Live<'_>, state: &mut LoopState) -> anyhow::Result<Written> {
    let started = std::time::Instant::now();
    state.metrics_bytes = live.metrics_bytes;
    let train = live.envs.snapshot()?;
    let envs = started.elapsed();
    let (algo, state) = (live.algo, &*state);
    let dir = run_dir.join(run_dir::CHECKPOINTS);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let name = run_dir::checkpoint_name(state.steps);
    // A checkpoint is about as large as the last one: refuse before writing a part of it
    // when the disk cannot hold that (the last complete checkpoint stays).
    if let Some(last) = run_dir::checkpoints(run_dir).last() {
        let needed: u64 = crate::store::walk(last)?.iter().map(|(_, n)| n).sum();
        crate::store::ensure_space(&dir, needed + (1 << 20), &format!("checkpoint {name}"))?;
    }
    let tmp = dir.join(format!("{PARTIAL_PREFIX}{name}"));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp)?;
    }
    fs_err::create_dir(&tmp)?;
    let written = (|| -> anyhow::Result<()> {
        algo.learner().save(&tmp).map_err(anyhow::Error::msg)?;
        if policy.replay {
            algo.learner().save_replays(&tmp).map_err(anyhow::Error::msg)?;
        }
        let algo_state = algo.save_state()?;
        write_file(&tmp.join(ALGORITHM_STATE), |w| w.write_all(&algo_state))?;
        write_file(&tmp.join(ENV_STATES), |w| EnvStates::write(w, live.observations, &train, &live.eval_states))?;
        write_file(&tmp.join(LOOP_STATE), |w| serde_json::to_writer(&mut *w, state).map_err(std::io::Error::other))?;
        Ok(())
    })();
    if let Err(e) = written {
        // Nothing half-written is left to fill the disk further.
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(crate::store::name_full_disk(e, &dir, &format!("checkpoint {name} did not fit")));
    }
    let done = dir.join(&name);
    if done.exists() {
        fs_err::remove_dir_all(&done)?;
    }
    std::fs::rename(&tmp, &done).context("failed to publish the checkpoint")?;
    let all = run_dir::checkpoints(run_dir);
    for old in all.iter().take(all.len().saturating_sub(policy.keep.max(1))) {
        fs_err::remove_dir_all(old)?;
    }
    Ok(Written { dir: done, envs, total: started.elapsed() })
}

/// Reads a checkpoint's loop state.
pub(super) fn read_loop_state(checkpoint: &Path) -> anyhow::Result<LoopState> {
    let path = checkpoint.join(LOOP_STATE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut state: LoopState = serde_json::from_str(&text).with_context(|| format!("checkpoint {} is corrupt", checkpoint.display()))?;
    let envs = checkpoint.join(ENV_STATES);
    match std::fs::read(&envs) {
        Ok(bytes) => {
            state.envs = EnvStates::read_from(&bytes).map_err(|e| anyhow::anyhow!("checkpoint file {} is corrupt: {e}", envs.display()))?;
        }
        // A checkpoint of an earlier version keeps the envs in `state.json`.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", envs.display())),
    }
    Ok(state)
}

/// The env parameters a checkpoint's run had in effect when a curriculum stage or a hook
/// changed them (from `state.json` alone; `None`: the config's).
pub(super) fn read_env_params(checkpoint: &Path) -> anyhow::Result<Option<toml::Table>> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        env_params: Option<toml::Table>,
    }
    let path = checkpoint.join(LOOP_STATE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let p: Params = serde_json::from_str(&text).with_context(|| format!("checkpoint {} is corrupt", checkpoint.display()))?;
    Ok(p.env_params)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_states_round_trip_and_damage_is_named() {
        let e = EnvStates { observations: vec![1.5, -0.0, f32::MAX], train: vec![vec![1, 2, 3], vec![]], eval: vec![vec![9; 1000]] };
        let mut bytes = Vec::new();
        EnvStates::write(&mut bytes, &e.observations, &e.train, &e.eval).expect("write");
        let back = EnvStates::read_from(&bytes).expect("read");
        assert_eq!(
            back.observations.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            e.observations.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!((back.train, back.eval), (e.train.clone(), e.eval.clone()));
        assert!(EnvStates::read_from(&bytes[..bytes.len() - 1]).expect_err("cut").contains("cut off"));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(EnvStates::read_from(&extra).expect_err("extra").contains("after the end"));
        assert!(EnvStates::read_from(b"JSONJSON").expect_err("magic").contains("PDKENVS1"));
    }

    #[test]
    fn the_loop_state_keeps_envs_out_of_state_json_and_reads_older_checkpoints() {
        let mut st = LoopState { steps: 10_240, ..LoopState::default() };
        st.envs.train = vec![vec![7; 50_000]];
        let json = serde_json::to_string(&st).expect("json");
        assert!(json.len() < 1000 && !json.contains("env_states"), "{} bytes", json.len());
        // An older checkpoint: the envs inside state.json.
        let old = json.trim_end_matches('}').to_string() + r#","observations":[0.5],"env_states":[[1,2]],"eval_env_states":[[3]]}"#;
        let back: LoopState = serde_json::from_str(&old).expect("old");
        assert_eq!(
            (back.steps, back.envs.observations, back.envs.train, back.envs.eval),
            (10_240, vec![0.5], vec![vec![1, 2]], vec![vec![3]])
        );
        assert_eq!((back.env_params, back.curriculum_next), (None, 0));
    }

    #[test]
    fn env_parameters_in_effect_round_trip_with_their_types() {
        let table: toml::Table =
            "range = 0.5\nsteps = 3\nfast = true\nname = \"a\"\nstart = [0.0, 1.5]\nwhole = 2.0".parse().expect("toml");
        let st = LoopState { env_params: Some(table.clone()), curriculum_next: 2, ..LoopState::default() };
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join(LOOP_STATE), serde_json::to_string(&st).expect("json")).expect("write");
        let back = read_loop_state(dir.path()).expect("read");
        assert_eq!((back.env_params.as_ref(), back.curriculum_next), (Some(&table), 2));
        assert_eq!(read_env_params(dir.path()).expect("params"), Some(table));
    }
}
