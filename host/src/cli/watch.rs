//! `paddock watch`.

use crate::monitor::{self, App};
use std::path::PathBuf;

/// Arguments of `watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Run directories, or stores holding them (default: `runs/`), or one S3 run or store
    /// (`s3://bucket/prefix[/RUN]`), or one experiment (`STORE/EXPERIMENT_ID`, local or S3:
    /// its trials, each its newest epoch), followed read-only. New runs in a store show up
    /// as they start.
    #[arg(value_name = "RUN_DIR | STORE | S3_URI")]
    paths: Vec<PathBuf>,
}

pub(crate) fn run(args: WatchArgs) -> anyhow::Result<()> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("runs")] } else { args.paths };
    let followed = |p: &PathBuf| p.to_string_lossy().starts_with("s3://") || p.join(crate::format::experiment::PLAN).is_file();
    if let Some(s3) = paths.iter().find(|p| followed(p)) {
        if paths.len() > 1 {
            anyhow::bail!("watch one S3 store, S3 run or experiment at a time (without other paths beside it)");
        }
        let location = crate::store::Location::parse(&s3.to_string_lossy())?;
        let follower = crate::monitor::follow::Follower::start(&location, &Default::default())?;
        let mut app = App::new(vec![follower.path.clone()]);
        app.read_only = Some(location.to_string());
        return monitor::run(app, None);
    }
    for p in &paths {
        if !p.exists() {
            anyhow::bail!("{} does not exist (give a run directory or a store of runs)", p.display());
        }
    }
    monitor::run(App::new(paths), None)
}
