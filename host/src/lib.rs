//! Paddock's host: loads WebAssembly plugins (environments, reward functions, algorithms),
//! sandboxes them, and runs them fast. `main.rs` is a thin CLI over these modules.
//!
//! - [`runtime`]: the wasmtime engine, the plugin loader (content-hash cache, world and
//!   version checks), the sandbox (no ambient authority, memory cap, call deadline) and
//!   typed instances of each world.
//! - [`envset`]: N envs stepped in batches on worker threads, with autoreset and derived
//!   seeds.
//! - [`learner`]: libtorch behind the `tensor` interface: devices, named modules and
//!   optimizers.
//! - [`config`]: run configs (TOML) with errors that name the file and key.
//! - [`device`]: the learner's device as a config names it.
//! - [`spaces`]: host-side helpers for spaces: sizes, checks and seeded random actions.
//! - [`format`]: the files others read, as serde types with their names and keys in one
//!   place: the run directory (`status.json`, `control/`, checkpoint names and marker),
//!   `scene.json`, and the experiment store (plan, trial state, index, `fleet.json`,
//!   `dispatch.json`). Reads never write.
//! - [`run`]: the run as a library: create, resume, train (the loop's named steps and
//!   hooks), evaluate a checkpoint; carrying, naming, mirroring and listing runs.
//! - [`exp`]: batch experiments: submission, workers, the local runner, the fleet
//!   controller, EC2/SQS behind traits.
//! - [`physics`]: the rapier3d simulation plugins drive through the host, URDF robots,
//!   `scene.json` frames.
//! - [`seed`]: derived seeds.
//! - [`monitor`]: the terminal monitor (`paddock watch`, `train --tui`) over run directories.
//! - [`store`]: run stores on local disk or S3 (`s3://bucket/prefix`): the object
//!   interface and its typed errors.
//! - [`registry`]: the plugin registry (publish, resolve, verified pull, yank) in a store.
//! - [`log`]: the run log that plugin output and host messages go to.
//! - [`build`]: `paddock plugin build`: plugin projects into components, once or on save.
//! - [`cli`]: the `paddock` commands.

// Library code reports through `RunLog` or the values it returns; only the CLI prints.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;
pub mod config;
pub mod device;
pub mod envset;
pub mod exp;
pub mod format;
pub mod learner;
pub mod log;
pub mod monitor;
pub mod physics;
pub mod registry;
pub mod report;
pub mod run;
pub mod runtime;
pub mod seed;
pub mod spaces;
pub mod store;

#[cfg(test)]
mod imports_tests;
