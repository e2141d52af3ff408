//! The `paddock` command line. Exit codes: 0 success, 1 a failed command (the message
//! names the file, key, plugin or call), 2 a usage error.

mod env_run;
mod eval;
mod inspect;
mod new;
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
    /// Watch runs in a terminal monitor: status, charts, plugins and reloads, log; pause,
    /// checkpoint or stop them from the keyboard.
    Watch(watch::WatchArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Show a plugin's world, package version, imports, sha256 and (for envs) its spec.
    Inspect(inspect::InspectArgs),
    /// Write a starter plugin project (Rust) that builds into a working component.
    New(new::NewArgs),
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// Step an environment with random or given actions and summarise the episodes.
    Run(env_run::RunArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin(PluginCommand::Inspect(a)) => inspect::run(a),
        Command::Plugin(PluginCommand::New(a)) => new::run(a),
        Command::Env(EnvCommand::Run(a)) => env_run::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
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

/// A runtime for one command, from a config's `[runtime]` section.
pub(crate) fn runtime_for(section: &crate::config::RuntimeSection, log: crate::log::RunLog) -> anyhow::Result<crate::runtime::Runtime> {
    let cache_dir = section.cache_dir.clone().or_else(crate::runtime::default_cache_dir);
    crate::runtime::Runtime::new(crate::runtime::RuntimeOptions { limits: section.limits(), cache_dir, log })
}

/// `true` if `path` names a TOML config rather than a component.
pub(crate) fn is_config(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}
