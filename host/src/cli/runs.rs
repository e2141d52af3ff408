//! `paddock runs ls|pull`: the runs of a store, local or S3.

use crate::run::runs::{self, Checkpoints};
use crate::store::{Location, S3Settings};
use anyhow::Context;
use std::path::PathBuf;

/// `runs ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// The store: a directory (default `runs/`) or `s3://bucket/prefix`.
    store: Option<String>,
    /// Print JSON lines, one per run.
    #[arg(long)]
    json: bool,
}

/// `runs pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The run: `s3://bucket/prefix/RUN` (or a local run directory).
    run: String,
    /// Where to write it (default: `./RUN`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Fetch only the newest complete checkpoint (default: every complete one).
    #[arg(long)]
    latest: bool,
}

pub(crate) fn ls(args: LsArgs) -> anyhow::Result<()> {
    let store = Location::parse(args.store.as_deref().unwrap_or("runs/"))?;
    if let Location::Local(dir) = &store
        && !dir.is_dir()
    {
        // The default store before the first run is empty; a store named by hand must exist.
        if args.store.is_some() {
            anyhow::bail!("run store {} does not exist (give a directory of runs, or s3://bucket/prefix)", dir.display());
        }
        println!("no runs in {store} (it does not exist yet)");
        return Ok(());
    }
    let objects = crate::store::open(&store, &S3Settings::default())?;
    let rows = runs::list_runs(objects.as_ref()).with_context(|| format!("failed to list the runs of {store}"))?;
    if args.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no runs in {store}");
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:9}  {:>17}  {:>9}  {:>12}  {:>5}  TAGS", "RUN", "STATE", "STEP", "BEST EVAL", "CHECKPOINT", "COUNT");
    for r in &rows {
        let step = match (r.step, r.total) {
            (Some(s), Some(t)) => format!("{s}/{t}"),
            (Some(s), None) => s.to_string(),
            _ => "-".into(),
        };
        println!(
            "{:width$}  {:9}  {:>17}  {:>9}  {:>12}  {:>5}  {}",
            r.name,
            r.state.map_or("-", |s| s.as_str()),
            step,
            r.best_eval.map_or_else(|| "-".into(), |b| format!("{b:.1}")),
            r.latest_checkpoint.map_or_else(|| "-".into(), |c| c.to_string()),
            r.checkpoints,
            r.tags.join(",")
        );
    }
    Ok(())
}

pub(crate) fn pull(args: PullArgs) -> anyhow::Result<()> {
    let location = Location::parse(&args.run)?;
    let (objects, name) = runs::open_run(&location)?;
    let dest = match (args.out, &location) {
        (Some(out), _) => out,
        (None, Location::S3 { .. }) => PathBuf::from(&name),
        (None, Location::Local(p)) => {
            anyhow::bail!("{} is a run on this machine already; give --out DIR to copy it (complete checkpoints only)", p.display())
        }
    };
    if dest.join("config.toml").exists() {
        anyhow::bail!("{} already holds a run; choose another --out", dest.display());
    }
    let which = if args.latest { Checkpoints::Latest } else { Checkpoints::All };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
    let mut total = 0u64;
    let pulled = runs::pull_run(objects.as_ref(), &name, &dest, &which, &mut |file, bytes| {
        total += bytes;
        bar.set_message(format!("{:.1} MB · {file}", total as f64 / 1e6));
        bar.tick();
    })?;
    bar.finish_and_clear();
    println!(
        "fetched {location} into {} ({} files, {:.1} MB, {} complete checkpoint(s))",
        dest.display(),
        pulled.files,
        pulled.bytes as f64 / 1e6,
        pulled.checkpoints.len()
    );
    Ok(())
}
