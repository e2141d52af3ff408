//! A checkpoint directory's files (`checkpoints/<step>/`), and the `COMPLETE` marker a
//! checkpoint ends with in a store. What each file holds is written by `run::checkpoint`
//! (the loop's state, the envs, the plugin's state) and the learner (`learner.pt`,
//! `learner.json`, replays).
//!
//! ```text
//! checkpoints/<step>/
//!   learner.pt, learner.json   the learner's tensors and optimizer state, and what they are
//!   replays.json, replay-<i>.* replay buffers (with `train.checkpoint_replay`)
//!   algorithm.bin              the algorithm plugin's own state
//!   envs.bin                   the envs' observations and snapshots (PDKENVS1)
//!   state.json                 the loop's counters and evaluations
//!   COMPLETE                   (in a store only) every file's size and sha256
//! ```

/// The plugin's own state.
pub const ALGORITHM_STATE: &str = "algorithm.bin";
/// The loop's counters.
pub const LOOP_STATE: &str = "state.json";
/// The envs' observations and snapshots.
pub const ENV_STATES: &str = "envs.bin";
/// The first bytes of `envs.bin` (format version 1).
pub const ENV_STATES_MAGIC: &[u8; 8] = b"PDKENVS1";

/// The learner's tensors (libtorch's multi-tensor format).
pub const LEARNER_TENSORS: &str = "learner.pt";
/// What the learner's modules and optimizers are.
pub const LEARNER_MANIFEST: &str = "learner.json";
/// The names of the replay buffers saved (`replay-<i>.*`).
pub const REPLAYS: &str = "replays.json";

/// The marker a complete checkpoint ends with in a store.
pub const COMPLETE: &str = "COMPLETE";

/// One checkpoint file as its `COMPLETE` marker lists it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MarkedFile {
    /// Path inside the checkpoint directory (`/`-separated).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, hex.
    pub sha256: String,
}

/// The content of a `COMPLETE` marker.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Every file of the checkpoint.
    pub files: Vec<MarkedFile>,
}
