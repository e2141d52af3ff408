//! `paddock report`: learning curves (PNG, the mean over seeds with a band), final tables
//! with 95% intervals and the interquartile mean with bootstrap intervals, and one HTML page
//! that holds them, from runs or an experiment's trials.
//!
//! Runs are grouped into *settings*: an experiment's trials by their overrides without the
//! seed; plain runs by the config keys that differ between them (the seed, store and name
//! aside), so runs of two configs or two algorithms on one env compare side by side.
//! [`gather`] reads the runs, [`summarise`] computes the curves and tables, [`plot`] draws
//! the PNGs (plotters, with DejaVu Sans embedded: no system font needed), [`html`] writes
//! the page.

mod html;
mod plot;

use crate::exp::best::{Stats, stats};
use crate::store::Objects;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run's metric lines.
#[derive(Clone, Debug)]
pub struct RunData {
    /// Its name: the run directory's, or the trial's id.
    pub name: String,
    /// Its setting (see the module docs).
    pub setting: String,
    /// Its seed.
    pub seed: Option<i64>,
    /// Its `metrics.jsonl`, parsed.
    pub lines: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Its config as flat `key = value` (to tell settings apart).
    flat: BTreeMap<String, String>,
}

impl RunData {
    /// The `(step, value)` points of `metric` (finite values only).
    pub fn points(&self, metric: &str) -> Vec<(u64, f64)> {
        self.lines.iter().filter_map(|l| Some((l.get("step")?.as_u64()?, l.get(metric)?.as_f64().filter(|v| v.is_finite())?))).collect()
    }
}

/// Metrics drawn when present, before any asked for.
pub const DEFAULT_METRICS: [&str; 4] = ["eval/return_mean", "eval/success_rate", "rollout/return_mean", "rollout/success_rate"];

/// Metrics whose last value the final table shows, when present.
const FINAL_METRICS: [&str; 2] = ["eval/return_mean", "eval/success_rate"];

/// Reads the runs `inputs` name: run directories, directories of runs, experiments (their
/// location or file). Returns a title and the runs, their settings set.
pub fn gather(inputs: &[String]) -> anyhow::Result<(String, Vec<RunData>)> {
    let mut runs = Vec::new();
    let mut titles = Vec::new();
    let mut plain = Vec::new();
    for input in inputs {
        if let Some(at) = experiment_location(input)? {
            let objects = crate::store::open(&at, &Default::default())?;
            let plan = crate::format::experiment::read_plan(objects.as_ref())
                .with_context(|| format!("{input}: not a run, a folder of runs or an experiment"))?;
            let found = experiment_runs(objects.as_ref(), &plan)?;
            if found.is_empty() {
                anyhow::bail!("{input}: experiment {} has no trial with metrics yet", plan.id);
            }
            titles.push(plan.id.clone());
            runs.extend(found);
            continue;
        }
        let dir = Path::new(input);
        if !dir.is_dir() {
            anyhow::bail!("{input}: no such run directory, folder of runs or experiment");
        }
        let found = run_dirs(dir);
        if found.is_empty() {
            anyhow::bail!("{input}: neither a run (no metrics.jsonl) nor a folder of runs");
        }
        titles.push(dir.file_name().map_or_else(|| input.clone(), |n| n.to_string_lossy().into_owned()));
        for d in found {
            plain.push(read_run(&d)?);
        }
    }
    label_plain(&mut plain);
    runs.extend(plain);
    Ok((titles.join(" + "), runs))
}

/// An experiment's location if `input` names one (its store folder or `s3://…`, or its file).
fn experiment_location(input: &str) -> anyhow::Result<Option<crate::store::Location>> {
    let path = Path::new(input);
    if input.starts_with("s3://") || (path.extension().is_some_and(|e| e == "toml") && path.is_file()) {
        return crate::exp::submit::experiment_at(input).map(Some);
    }
    Ok(path.join(crate::format::experiment::PLAN).is_file().then(|| crate::store::Location::Local(path.to_path_buf())))
}

/// The runs under `dir`: itself, or its subfolders (two levels) that hold `metrics.jsonl`.
fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    if dir.join(crate::format::run_dir::METRICS).is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut subdirs: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    subdirs.sort();
    for d in subdirs {
        if d.join(crate::format::run_dir::METRICS).is_file() {
            out.push(d);
        }
    }
    out
}

fn parse_lines(text: &str, what: &str) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    // A run still training may have a half-written last line: read up to the last newline.
    let text = text.rfind('\n').map_or("", |i| &text[..=i]);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{what} line {}: not a JSON object", i + 1)))
        .collect()
}

fn read_run(dir: &Path) -> anyhow::Result<RunData> {
    let metrics = dir.join(crate::format::run_dir::METRICS);
    let text = std::fs::read_to_string(&metrics).with_context(|| format!("failed to read {}", metrics.display()))?;
    let lines = parse_lines(&text, &metrics.display().to_string())?;
    let config = dir.join(crate::format::run_dir::CONFIG);
    let flat: BTreeMap<String, String> = std::fs::read_to_string(&config)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .map(|t| crate::config::flatten_table("", &t).into_iter().map(|(k, v)| (k, v.to_string())).collect())
        .unwrap_or_default();
    let seed = flat.get("seed").and_then(|s| s.parse().ok());
    let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(RunData { name, setting: String::new(), seed, lines, flat })
}

/// Plain runs' settings: the config keys whose values differ between them (a plugin by its
/// file name), seed, store and name aside.
fn label_plain(runs: &mut [RunData]) {
    let ignored = |k: &str| k == "seed" || k == "store" || k == "name" || k.starts_with("runtime.");
    let keys: std::collections::BTreeSet<String> = runs.iter().flat_map(|r| r.flat.keys().cloned()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| !ignored(k))
        .filter(|k| {
            let first = runs.first().and_then(|r| r.flat.get(k));
            runs.iter().any(|r| r.flat.get(k) != first)
        })
        .collect();
    for r in runs.iter_mut() {
        let parts: Vec<String> = differing
            .iter()
            .map(|k| {
                let v = r.flat.get(k).cloned().unwrap_or_else(|| "-".into());
                let v = if k.ends_with(".plugin") { v.trim_matches('"').rsplit('/').next().unwrap_or("").to_string() } else { v };
                format!("{k}={v}")
            })
            .collect();
        r.setting = if parts.is_empty() { "all runs".into() } else { parts.join(" ") };
    }
}

/// An experiment's trials that have metrics (the newest epoch's run), by trial.
fn experiment_runs(objects: &dyn Objects, plan: &crate::format::experiment::Plan) -> anyhow::Result<Vec<RunData>> {
    let states = crate::format::experiment::states(objects, plan)?;
    let mut out = Vec::new();
    for t in &plan.trials {
        let Some((_, s)) = states.iter().find(|(id, _)| *id == t.id) else { continue };
        if s.epoch == 0 {
            continue;
        }
        let prefix = s.result.as_ref().map_or_else(|| crate::format::trial::run_prefix(&t.id, s.epoch), |r| r.run.clone());
        let key = format!("{prefix}/{}", crate::format::run_dir::METRICS);
        let Some(data) = objects.get(&key)? else { continue };
        let lines = parse_lines(&String::from_utf8_lossy(&data), &format!("{}/{key}", objects.location()))?;
        let seed = t.overrides.iter().find_map(|o| o.strip_prefix("seed=")?.parse().ok());
        let setting: Vec<&str> = t.overrides.iter().filter(|o| !o.starts_with("seed=")).map(String::as_str).collect();
        // Overrides every trial shares say nothing about the setting.
        let name = if s.status == crate::format::trial::Status::Done { t.id.clone() } else { format!("{} ({})", t.id, s.status.as_str()) };
        out.push(RunData { name, setting: setting.join(" "), seed, lines, flat: BTreeMap::new() });
    }
    // Drop the overrides every run shares from the settings' names.
    let shared: Vec<String> = out
        .first()
        .map(|r| r.setting.split(' ').filter(|p| out.iter().all(|o| o.setting.split(' ').any(|q| q == *p))).map(str::to_string).collect())
        .unwrap_or_default();
    for r in &mut out {
        let own: Vec<&str> = r.setting.split(' ').filter(|p| !shared.iter().any(|s| s == p)).collect();
        r.setting = if own.is_empty() { "all trials".into() } else { own.join(" ") };
    }
    Ok(out)
}

/// A setting's curve of one metric: the mean over its runs at each step, and the standard
/// error (0 with one run).
#[derive(Clone, Debug, Serialize)]
pub struct Curve {
    /// The setting.
    pub setting: String,
    /// Runs that have the metric.
    pub runs: usize,
    /// `(step, mean, standard error, runs at that step)`.
    pub points: Vec<(u64, f64, f64, usize)>,
}

/// One setting's final figures for a metric: each run's last value and their statistics.
#[derive(Clone, Debug, Serialize)]
pub struct Final {
    /// The setting.
    pub setting: String,
    /// `(run, last value)`.
    pub runs: Vec<(String, f64)>,
    /// Mean with its 95% t-interval, IQM with its 95% bootstrap interval.
    pub stats: Stats,
}

/// Everything a report shows.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The title.
    pub title: String,
    /// The settings, in order of first appearance, with their runs.
    pub settings: Vec<(String, Vec<String>)>,
    /// Curves by metric.
    pub curves: BTreeMap<String, Vec<Curve>>,
    /// Final tables by metric.
    pub finals: BTreeMap<String, Vec<Final>>,
}

/// The curve of `metric` over `runs` (one setting): at each step any run reported, the mean
/// of each run's last value at or before it (among the runs that reached it).
pub fn curve(setting: &str, runs: &[&RunData], metric: &str) -> Curve {
    let per_run: Vec<Vec<(u64, f64)>> = runs.iter().map(|r| r.points(metric)).filter(|p| !p.is_empty()).collect();
    let mut steps: Vec<u64> = per_run.iter().flat_map(|p| p.iter().map(|(s, _)| *s)).collect();
    steps.sort_unstable();
    steps.dedup();
    let points = steps
        .into_iter()
        .filter_map(|s| {
            let at: Vec<f64> = per_run
                .iter()
                .filter(|p| p.last().is_some_and(|(last, _)| *last >= s))
                .filter_map(|p| p.iter().rev().find(|(x, _)| *x <= s).map(|(_, v)| *v))
                .collect();
            if at.is_empty() {
                return None;
            }
            let n = at.len() as f64;
            let mean = at.iter().sum::<f64>() / n;
            let se = if at.len() > 1 { (at.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt() } else { 0.0 };
            Some((s, mean, se, at.len()))
        })
        .collect();
    Curve { setting: setting.to_string(), runs: per_run.len(), points }
}

/// Curves and final tables of `runs` for the default metrics present and `extra`.
pub fn summarise(title: &str, runs: &[RunData], extra: &[String]) -> Summary {
    let mut settings: Vec<(String, Vec<String>)> = Vec::new();
    for r in runs {
        match settings.iter_mut().find(|(s, _)| *s == r.setting) {
            Some((_, names)) => names.push(r.name.clone()),
            None => settings.push((r.setting.clone(), vec![r.name.clone()])),
        }
    }
    let present = |m: &str| runs.iter().any(|r| !r.points(m).is_empty());
    let mut metrics: Vec<String> = DEFAULT_METRICS.iter().filter(|m| present(m)).map(|m| m.to_string()).collect();
    for m in extra {
        if !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    let of = |s: &str| -> Vec<&RunData> { runs.iter().filter(|r| r.setting == s).collect() };
    let mut curves = BTreeMap::new();
    for m in &metrics {
        let cs: Vec<Curve> = settings.iter().map(|(s, _)| curve(s, &of(s), m)).filter(|c| !c.points.is_empty()).collect();
        curves.insert(m.clone(), cs);
    }
    let mut finals = BTreeMap::new();
    let final_metrics: Vec<String> =
        FINAL_METRICS.iter().map(|m| m.to_string()).chain(extra.iter().cloned()).filter(|m| present(m)).collect();
    for m in final_metrics {
        let rows: Vec<Final> = settings
            .iter()
            .filter_map(|(s, _)| {
                let last: Vec<(String, f64)> = of(s).iter().filter_map(|r| Some((r.name.clone(), r.points(&m).last()?.1))).collect();
                if last.is_empty() {
                    return None;
                }
                let xs: Vec<f64> = last.iter().map(|(_, v)| *v).collect();
                Some(Final { setting: s.clone(), runs: last, stats: stats(&xs, 0) })
            })
            .collect();
        let mut rows = rows;
        // Best first (by IQM, higher is better for returns and success rates).
        rows.sort_by(|a, b| b.stats.iqm.total_cmp(&a.stats.iqm));
        finals.insert(m, rows);
    }
    Summary { title: title.to_string(), settings, curves, finals }
}

/// A setting as legends and tables show it: each key by its last part (`algorithm.params.gamma=0.99`
/// → `gamma=0.99`), at most 60 characters.
pub fn short(setting: &str) -> String {
    let s: Vec<String> = setting
        .split(' ')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{}={v}", k.rsplit('.').next().unwrap_or(k)),
            None => p.to_string(),
        })
        .collect();
    let s = s.join(" ");
    if s.chars().count() > 60 { format!("{}…", s.chars().take(59).collect::<String>()) } else { s }
}

/// The file a metric's curve is drawn in (`eval/return_mean` → `eval-return_mean.png`).
pub fn png_name(metric: &str) -> String {
    let safe: String = metric.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    format!("{safe}.png")
}

/// Writes the report into `out`: a PNG per metric, `report.json`, `index.html`. Returns the
/// files written.
pub fn write(summary: &Summary, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fs_err::create_dir_all(out)?;
    let mut written = Vec::new();
    for (metric, curves) in &summary.curves {
        if curves.is_empty() {
            continue;
        }
        let path = out.join(png_name(metric));
        plot::curves(metric, curves, &path).with_context(|| format!("failed to draw {}", path.display()))?;
        written.push(path);
    }
    let json = out.join("report.json");
    crate::store::write_atomically(&json, &serde_json::to_vec_pretty(summary)?)?;
    written.push(json);
    let page = out.join("index.html");
    crate::store::write_atomically(&page, html::page(summary).as_bytes())?;
    written.push(page);
    Ok(written)
}

#[cfg(test)]
mod tests;
