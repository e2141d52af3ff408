//! The run as a library: start a run at a location (a directory or `s3://`) from a config,
//! resume one, evaluate a checkpoint. `paddock train`, `paddock eval`, the monitor's
//! `--tui` and a fleet worker call these same functions.
//!
//! - [`Run::create`] / [`Run::resume`] name, claim or fetch the run and open its log and
//!   runtime; [`Run::train`] trains it (mirroring an S3 run to its store) with the caller's
//!   [`Hooks`] acting at the loop's safe points ([`lifecycle`]).
//! - [`train`] is the loop on a run directory that already exists ([`trainer`] holds its
//!   named steps: setup, collect, update, evaluate, checkpoint).
//! - [`CheckpointTarget::open`] + [`evaluate_checkpoint`] evaluate a run's checkpoint,
//!   local or in S3.
//! - What a run carries ([`carry`]), how a new one is named ([`naming`]), its mirror to a
//!   store ([`mirror`]) and listing and fetching runs ([`runs`]).
//!
//! This file only declares; each file imports the files it needs and none imports back.

pub mod carry;
mod checkpoint;
mod eval;
mod hooks;
pub mod interrupt;
mod lifecycle;
mod metrics;
pub mod mirror;
pub mod naming;
mod reloads;
pub mod runs;
mod setup;
mod tensorboard;
mod ticker;
pub mod tracking;
mod trainer;

pub use eval::{evaluate, evaluate_checkpoint, evaluate_observed};
pub use hooks::{Directive, EvalEpisodes, Evaluation, Hooks, NoHooks, Progress, TrainSummary, UploadOnCheckpoint};
pub use lifecycle::{CheckpointTarget, MirrorPace, NewConfig, Run, mutable_params, recorded_config, runtime_for, train};
