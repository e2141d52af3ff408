//! `paddock worker`: claims trials of an experiment, trains each through the run library,
//! and gives it back or commits it.
//!
//! For each claimed trial (epoch `e`): the run is built in a local working copy — from the
//! trial's newest complete checkpoint (fetched from the epoch that wrote it) or afresh from
//! the base config and the trial's overrides — mirrored to `trials/<id>/e<e>/` as it
//! trains, and steered by hooks: a heartbeat at updates (a conditional write that extends
//! the lease and records the newest complete checkpoint in the store; a refused one means
//! another worker owns the trial now, and the run stops and writes nothing more), and the
//! early-stop rule after evaluations. A SIGTERM (or a spot notice through
//! [`crate::run::interrupt::request`]) stops the run at its next update with a checkpoint;
//! the worker uploads it and puts the trial back as preempted. An error puts it back with
//! its error counted, or fails it after `max_errors`. The commit that ends a trial writes
//! its result into the state object, once.

//!
//! [`leave`] holds what a worker is told and reports and why it leaves; [`poll`] its loop
//! over the store; [`over_queue`] its loop over a queue; [`trial_run`] one trial trained;
//! [`plan`] the plan's files. This file only declares.

mod leave;
mod over_queue;
mod plan;
mod poll;
mod trial_run;

pub use leave::{
    EXIT_CREDENTIALS, EXIT_DISK_FULL, EXIT_STORE_LOST, Left, WorkerOptions, WorkerSummary, copies_in_store, fatal, lost_summary, plan_copy,
    state_copy, study_trial_copy, worker_name,
};
pub use plan::{localize, upload_files};
pub use poll::work;
