//! `paddock report`: curves, final tables and a page from runs or an experiment.

use std::path::PathBuf;

/// Arguments of `paddock report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Runs (a run directory, or a folder of them such as runs/) or experiments (their
    /// location STORE/EXPERIMENT_ID, s3://…, or the experiment file); several compare side
    /// by side.
    #[arg(required = true, value_name = "RUNS|EXPERIMENT")]
    inputs: Vec<String>,
    /// The folder to write the report into (PNGs, report.json, index.html).
    #[arg(short = 'o', long = "out", default_value = "report")]
    out: PathBuf,
    /// Another metric to draw and tabulate (repeatable): any key of metrics.jsonl.
    #[arg(long = "metric", value_name = "KEY")]
    metrics: Vec<String>,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<()> {
    let (title, runs) = crate::report::gather(&args.inputs)?;
    for m in &args.metrics {
        if !runs.iter().any(|r| !r.points(m).is_empty()) {
            let mut keys: Vec<String> = runs.iter().flat_map(|r| r.lines.iter().flat_map(|l| l.keys().cloned())).collect();
            keys.sort();
            keys.dedup();
            keys.retain(|k| k != "step");
            anyhow::bail!("--metric {m}: no run reports it; their metrics: {}", keys.join(", "));
        }
    }
    let summary = crate::report::summarise(&title, &runs, &args.metrics);
    let files = crate::report::write(&summary, &args.out)?;
    for (metric, rows) in &summary.finals {
        println!("final {metric}:");
        for r in rows {
            let s = &r.stats;
            if s.n > 1 {
                println!(
                    "  {:<48} {} runs  mean {:.3} ± {:.3}  IQM {:.3} [{:.3}, {:.3}]",
                    r.setting, s.n, s.mean, s.ci95, s.iqm, s.iqm_ci95.0, s.iqm_ci95.1
                );
            } else {
                println!("  {:<48} 1 run   {:.3}", r.setting, s.mean);
            }
        }
    }
    let pngs = files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")).count();
    println!("{} runs in {} settings; {pngs} curves; open {}", runs.len(), summary.settings.len(), args.out.join("index.html").display());
    Ok(())
}
