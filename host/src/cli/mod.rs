//! The `paddock` command line. Exit codes: 0 success, 1 a failed command (the message
//! names the file, key, plugin or call), 2 a usage error.

mod build;
mod env_run;
mod eval;
mod exp;
mod inspect;
mod new;
mod registry;
mod report;
mod robot;
mod runs;
mod track;
mod train;
mod watch;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Paddock: reinforcement learning whose environments, rewards and algorithms are
/// WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "paddock", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Work with environments.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Train an agent: the env, reward and algorithm plugins a config names.
    Train(train::TrainArgs),
    /// Evaluate a trained run or checkpoint: mean, std and 95% confidence interval.
    Eval(eval::EvalArgs),
    /// Learning curves (PNG: mean and a band over seeds), final tables with 95% intervals
    /// and the interquartile mean, and one HTML page, from runs or an experiment.
    Report(report::ReportArgs),
    /// Send what a run logged while its MLflow server (`[tracking] mlflow`) was away, and
    /// record the run's end there.
    Track(track::TrackArgs),
    /// Runs in a store (local or `s3://`): list them, fetch one.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Batch experiments: sweeps of trials from one experiment file.
    #[command(subcommand)]
    Exp(ExpCommand),
    /// Claim and train the trials of an experiment until none is left (what `exp run`
    /// starts, and what a fleet instance runs).
    Worker(exp::WorkerArgs),
    /// Watch runs in a terminal monitor: status, charts, plugins and reloads, log; pause,
    /// checkpoint or stop them from the keyboard.
    Watch(watch::WatchArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Show a plugin's world, package version, imports, sha256 and (for envs) its spec.
    Inspect(inspect::InspectArgs),
    /// Write a starter plugin project that builds into a working component: Rust or Python
    /// for any world, JavaScript or C for envs and rewards.
    New(new::NewArgs),
    /// Build a plugin project (Python, Rust, JavaScript or C) into its component, once or
    /// on every save (`--watch`); Python and JavaScript plugins build in milliseconds on
    /// Paddock's runtimes.
    Build(build::BuildArgs),
    /// Publish a component to the registry as TEAM/NAME@VERSION (immutable; optionally signed).
    Publish(registry::PublishArgs),
    /// Fetch and verify a published plugin (sha256, signature, trusted keys).
    Pull(registry::PullArgs),
    /// List published plugins and versions.
    Ls(registry::LsArgs),
    /// Mark a published version yanked (requirements skip it; exact pins still resolve).
    Yank(registry::YankArgs),
    /// Make an ed25519 signing key for `plugin publish --sign`.
    Keygen(registry::KeygenArgs),
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// List the runs of a store: state, step, best eval, newest complete checkpoint.
    Ls(runs::LsArgs),
    /// Fetch a run (its files and complete checkpoints, each checked) to a local directory.
    Pull(runs::PullArgs),
}

#[derive(Debug, Subcommand)]
enum ExpCommand {
    /// Print an experiment's trials, one line each (id, overrides), and its id.
    Plan(exp::PlanArgs),
    /// Submit an experiment to its store (the plan, a state per trial, the plugin and robot
    /// files) and print the `paddock worker` command that works on it from any machine.
    Submit(exp::SubmitArgs),
    /// Submit an experiment and run its trials (`--local -j N`: N local worker processes;
    /// `--fleet`: EC2 Spot capacity).
    Run(exp::RunArgs),
    /// An experiment's trials by state, and each trial's epoch, step, checkpoint, heartbeat,
    /// preemptions, errors, dollars and result; its fleet's instances, cost and queues.
    Status(exp::StatusArgs),
    /// The winning setting across seeds (interquartile mean with a 95% bootstrap interval,
    /// mean with a t-interval), every setting ranked, and the winner written as a runnable
    /// config.
    Best(exp::BestArgs),
    /// Delete an experiment's fleet with its instances (trials keep their state).
    Cancel(exp::CancelArgs),
    /// Put an experiment back into a store that lost it (a bucket recreated, a prefix
    /// deleted) from the working copies its workers kept: the plan, finished trials with
    /// their results, running ones queued from their newest checkpoint.
    Restore(exp::RestoreArgs),
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// Step an environment with random or given actions and summarise the episodes.
    Run(env_run::RunArgs),
    /// Load a robot file (URDF) as an env would and show its links, joints, limits and
    /// mass; then let it hang under gravity to show that it simulates.
    Robot(robot::RobotArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin(PluginCommand::Inspect(a)) => {
            quiet_on_broken_pipe();
            inspect::run(a)
        }
        Command::Plugin(PluginCommand::New(a)) => new::run(a),
        Command::Plugin(PluginCommand::Build(a)) => build::run(a),
        Command::Plugin(PluginCommand::Publish(a)) => registry::publish(a),
        Command::Plugin(PluginCommand::Pull(a)) => registry::pull(a),
        Command::Plugin(PluginCommand::Ls(a)) => {
            quiet_on_broken_pipe();
            registry::ls(a)
        }
        Command::Plugin(PluginCommand::Yank(a)) => registry::yank(a),
        Command::Plugin(PluginCommand::Keygen(a)) => registry::keygen(a),
        Command::Runs(RunsCommand::Ls(a)) => {
            quiet_on_broken_pipe();
            runs::ls(a)
        }
        Command::Runs(RunsCommand::Pull(a)) => runs::pull(a),
        Command::Env(EnvCommand::Run(a)) => env_run::run(a),
        Command::Env(EnvCommand::Robot(a)) => robot::run(a),
        Command::Exp(ExpCommand::Plan(a)) => {
            quiet_on_broken_pipe();
            exp::plan(a)
        }
        Command::Exp(ExpCommand::Run(a)) => exp::run(a),
        Command::Exp(ExpCommand::Submit(a)) => exp::submit_cmd(a),
        Command::Exp(ExpCommand::Cancel(a)) => exp::cancel(a),
        Command::Exp(ExpCommand::Best(a)) => exp::best(a),
        Command::Exp(ExpCommand::Restore(a)) => exp::restore(a),
        Command::Exp(ExpCommand::Status(a)) => {
            quiet_on_broken_pipe();
            exp::status(a)
        }
        Command::Worker(a) => exp::worker(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Report(a) => report::run(a),
        Command::Track(a) => track::run(a),
        Command::Watch(a) => watch::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

/// For commands that print listings: a closed pipe (`paddock plugin inspect … | head`)
/// ends the process quietly, as it does other Unix tools, instead of a panic in `println!`.
pub(crate) fn quiet_on_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread that could
    // race it starts; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks names, ids and flags only when a (sub)command is parsed: check all.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
