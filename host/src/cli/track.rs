//! `paddock track RUN_DIR`: sends what a run did not send to its MLflow server.

use std::path::PathBuf;

/// Arguments of `paddock track`.
#[derive(Debug, clap::Args)]
pub struct TrackArgs {
    /// The run directory (its config's `[tracking] mlflow` names the server).
    run: PathBuf,
    /// The MLflow run's status to record: finished, failed or killed.
    #[arg(long, default_value = "finished")]
    status: String,
}

pub(crate) fn run(args: TrackArgs) -> anyhow::Result<()> {
    let status = match args.status.as_str() {
        "finished" => "FINISHED",
        "failed" => "FAILED",
        "killed" => "KILLED",
        other => anyhow::bail!("--status {other}: finished, failed or killed"),
    };
    if !args.run.join(crate::format::run_dir::CONFIG).is_file() {
        anyhow::bail!("{}: not a run directory (no config.toml)", args.run.display());
    }
    let (server, lines) = crate::run::tracking::catch_up(&args.run, status)?;
    println!("{}: {lines} metric lines sent to MLflow at {server}; run marked {}", args.run.display(), args.status);
    Ok(())
}
