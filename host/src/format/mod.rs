//! The files Paddock writes and reads, as types with their names and keys in one place: the
//! bottom layer under everything that trains or views. Reading a format never writes.
//!
//! - [`experiment`]: an experiment's plan (`experiment.json`) and the keys of its store.
//! - [`trial`]: a trial's `state.json`.
//! - [`index`]: markers that let readers of a large experiment skip the states of final trials.
//! - [`checkpoint`]: a checkpoint's files and the `COMPLETE` marker it ends with in a store.
//! - [`run_dir`]: the run directory's layout: file names, `plugins.lock`, checkpoint names.
//! - [`scene`]: `scene.json`, one env's projected physics scene.
//! - [`status`]: a run's `status.json` and `control/` requests.

pub mod checkpoint;
pub mod experiment;
pub mod index;
pub mod run_dir;
pub mod scene;
pub mod status;
pub mod trial;
