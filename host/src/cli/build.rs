//! `paddock plugin build`.

use crate::build::{BuildOptions, Built, WatchEvent};
use std::path::PathBuf;

/// Arguments of `plugin build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The plugin project's folder: app.py (Python), Cargo.toml (Rust), app.js
    /// (JavaScript) or build.sh (C).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where the component goes (default: DIR/NAME.wasm for Python and JavaScript, where
    /// the build puts it for the others).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Build again each time a source file is saved, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Python and JavaScript: a self-contained component (componentize-py over the project;
    /// the project's build.mjs) instead of Paddock's runtime and the project's files; slow,
    /// for packages the runtime lacks.
    #[arg(long)]
    pub bundle: bool,
}

fn told(b: &Built, lang: &str) -> String {
    let what = if b.files > 0 { format!("{lang}, {} file{}", b.files, if b.files == 1 { "" } else { "s" }) } else { lang.to_string() };
    let same = if b.unchanged { "; unchanged, left as it was" } else { "" };
    format!("built {} ({what}) in {:.0} ms{same}", b.output.display(), b.took.as_secs_f64() * 1e3)
}

/// Runs `plugin build`.
pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let project = crate::build::detect(&args.dir)?;
    let opts = BuildOptions { output: args.output, bundle: args.bundle, cache_dir: None };
    let lang = project.lang.name();
    if !args.watch {
        let built = crate::build::build(&project, &opts, &mut |m| eprintln!("{m}"))?;
        println!("{}", told(&built, lang));
        return Ok(());
    }
    eprintln!("watching {} ({lang}); Ctrl-C to stop", project.dir.display());
    crate::build::watch(&project, &opts, &|| false, &mut |e| match e {
        WatchEvent::Note(m) => eprintln!("{m}"),
        WatchEvent::Building(changed) => {
            let names: Vec<String> = changed.iter().map(|p| p.strip_prefix(&project.dir).unwrap_or(p).display().to_string()).collect();
            eprintln!("{} …", names.join(", "));
        }
        WatchEvent::Built(Ok(b)) => println!("{}", told(&b, lang)),
        WatchEvent::Built(Err(e)) => eprintln!("build failed: {e:#}\nwatching for the next change"),
    })
}
