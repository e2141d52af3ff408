//! `paddock watch`.

use crate::monitor::{self, App};
use std::path::PathBuf;

/// Arguments of `watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Run directories, or stores holding them (default: `runs/`). New runs in a store show
    /// up as they start.
    #[arg(value_name = "RUN_DIR | STORE")]
    paths: Vec<PathBuf>,
}

pub(crate) fn run(args: WatchArgs) -> anyhow::Result<()> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("runs")] } else { args.paths };
    for p in &paths {
        if !p.exists() {
            anyhow::bail!("{} does not exist (give a run directory or a store of runs)", p.display());
        }
    }
    monitor::run(App::new(paths), None)
}
