//! Experiment files (`experiments/*.toml`): a base run config, sweep axes, seeds, an early-stop
//! rule and the fleet to run on, expanded into trials, deterministically.
//!
//! ```toml
//! base = "cartpole-ppo.toml"   # beside this file, else on the config search path; or an inline [base] table
//! seeds = [1, 2, 3]                       # or a count: seeds = 3 (1, 2, 3)
//!
//! [set]                                   # overrides every trial gets
//! total_steps = 50_000
//!
//! [grid]                                  # every combination of these lists
//! "algorithm.params.learning-rate" = [3e-4, 1e-3, 3e-3]
//!
//! [random]                                # `count` draws; each key a range, log range or choice
//! count = 8
//! seed = 0
//! "algorithm.params.gamma" = { uniform = [0.95, 0.999] }
//! "algorithm.params.ent-coef" = { log_uniform = [1e-4, 1e-1] }
//! "algorithm.params.n-steps" = { choice = [16, 32, 64] }
//!
//! [early_stop]                            # ASHA / successive halving on an eval metric
//! metric = "eval/return_mean"
//! mode = "max"
//! min_steps = 10_000
//! eta = 3
//!
//! [fleet]                                 # where `exp run --fleet` runs it (see docs/experiments.md)
//! store = "s3://bucket/experiments"
//! ```
//!
//! Trials are the grid's combinations × the random draws (or either alone) × the seeds, in
//! that order; a trial's id is a hash of its overrides, and the experiment's id a hash of
//! the base config and every trial, so the same file plans the same experiment on any
//! machine and submitting it twice adds nothing.

use crate::config::RunConfig;
pub use crate::format::experiment::{EarlyStop, Fleet, Plan, Trial, TrialPolicy};
use serde::Deserialize;
use sha2::Digest;
use std::path::{Path, PathBuf};

mod search;
mod space;
use crate::config::flatten_table as flatten;
use space::{grid, random_draws, seeds};

/// Why an experiment file is refused: the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("experiment file {}: {message}", path.display())]
pub struct SpecError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the key.
    pub message: String,
}

/// The file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    base: toml::Value,
    #[serde(default)]
    seeds: Option<toml::Value>,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    random: Option<toml::Table>,
    #[serde(default)]
    early_stop: Option<EarlyStop>,
    #[serde(default)]
    search: Option<search::Raw>,
    #[serde(default)]
    fleet: Option<Fleet>,
    #[serde(default)]
    trial: TrialPolicy,
}

/// Reads an experiment file, applies `--set` style `overrides` to it, and expands it. Every
/// trial's config is checked (keys, types, values) before anything runs.
pub fn plan(path: &Path, overrides: &[String]) -> Result<Plan, SpecError> {
    let err = |message: String| SpecError { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    if let Err(e) = toml::from_str::<File>(&text) {
        return Err(err(e.to_string().trim_end().replace('\n', "\n  ")));
    }
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| err(e.to_string()))?;
    for o in overrides {
        crate::config::apply_override(&mut table, o).map_err(|e| err(e.to_string()))?;
    }
    let file = File::deserialize(table).map_err(|e| err(format!("after --set: {}", e.to_string().trim_end())))?;
    let dir = std::path::absolute(path.parent().unwrap_or(Path::new(""))).unwrap_or_default();
    let (base_path, base_text) = base_config(&file.base, &dir).map_err(err)?;
    let seeds = seeds(file.seeds.as_ref()).map_err(err)?;
    let mut combos = grid(&file.grid).map_err(err)?;
    if let Some(random) = &file.random {
        let draws = random_draws(random).map_err(err)?;
        combos = combos.iter().flat_map(|g| draws.iter().map(move |d| [g.clone(), d.clone()].concat())).collect();
    }
    let fixed: Vec<String> = flatten("", &file.set).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(es) = &file.early_stop {
        check_early_stop(es).map_err(err)?;
    }
    if let Some(f) = &file.fleet {
        check_fleet(f).map_err(err)?;
    }
    if file.trial.max_errors == 0 || file.trial.max_lost == 0 || file.trial.lease_s < 10 {
        return Err(err("keys `trial.max_errors` and `trial.max_lost` (at least 1) and `trial.lease_s` (at least 10 s)".into()));
    }
    let study = match &file.search {
        None => None,
        Some(raw) => {
            if !file.grid.is_empty() || file.random.is_some() {
                return Err(err("[search] and [grid] / [random]: a study suggests its own trials; put the values to try in [search.params] (a list is { choice = [...] })".into()));
            }
            if file.early_stop.is_some() {
                return Err(err("[search] and [early_stop]: a study has its own pruner; write [search.pruner] kind = \"asha\" (with min_steps and eta) instead".into()));
            }
            if seeds.len() > 1 {
                return Err(err(format!(
                    "key `seeds`: a study's trials each run one seed (here {} are listed); rank the winners over seeds afterwards with `paddock exp best`",
                    seeds.len()
                )));
            }
            let mut fixed = fixed.clone();
            fixed.push(format!("seed={}", seeds[0]));
            let mut s = search::search(raw, fixed).map_err(err)?;
            if s.pbt.is_some() {
                pbt_schedule(&mut s, &base_path).map_err(err)?;
            }
            Some(s)
        }
    };
    let mut trials = Vec::new();
    for combo in combos.iter().filter(|_| study.is_none()) {
        for seed in &seeds {
            let mut o = fixed.clone();
            o.extend(combo.iter().map(|(k, v)| format!("{k}={v}")));
            o.push(format!("seed={seed}"));
            let hash = short_hash(&o.join("\n"), 8);
            trials.push(Trial { id: format!("t{:04}-{hash}", trials.len()), overrides: o, start_from: None });
        }
    }
    // Each trial's config must load: a typo in an axis is an error here, not in a worker.
    // A study's trials are not known yet: its parameters at their ends stand for them.
    let mut files = std::collections::BTreeMap::new();
    let stand_ins: Vec<Trial> = match &study {
        Some(s) => search::corners(s)
            .into_iter()
            .enumerate()
            .map(|(i, overrides)| Trial { id: format!("study corner {i}"), overrides, start_from: None })
            .collect(),
        None => Vec::new(),
    };
    for t in trials.iter().chain(&stand_ins) {
        let mut c =
            RunConfig::load_with(&base_path, &t.overrides).map_err(|e| err(format!("trial {} ({}): {e}", t.id, t.overrides.join(" "))))?;
        for (_, p) in c.plugin_paths() {
            add_file(&mut files, p).map_err(err)?;
        }
        for p in c.env.robots.values() {
            add_file(&mut files, p).map_err(err)?;
        }
    }
    let stem = path.file_stem().map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned());
    // Plugins by content, not by where this checkout keeps them: the same file plans the same
    // experiment on any machine.
    let base_config = RunConfig::load(&base_path).map_err(|e| err(format!("key `base`: {e}")))?;
    let mut identity = serde_json::json!({
        "base": identity_of(&base_config).map_err(err)?,
        "trials": trials,
        "early_stop": file.early_stop,
    });
    if let Some(s) = &study {
        // Only a study's id carries it: the ids of experiments without one stay as they were.
        identity["search"] = serde_json::to_value(s).map_err(|e| err(e.to_string()))?;
    }
    let id = format!("{stem}-{}", short_hash(&identity.to_string(), 10));
    Ok(Plan { id, base: base_text, trials, early_stop: file.early_stop, search: study, fleet: file.fleet, trial: file.trial, files })
}

/// The base config's path and its text with plugin and robot paths absolute.
fn base_config(base: &toml::Value, dir: &Path) -> Result<(PathBuf, String), String> {
    match base {
        toml::Value::String(p) => {
            // Beside the experiment file, else (a relative name) on the config search path.
            let beside = crate::config::normalize(&dir.join(p));
            let search = if Path::new(p).is_relative() { crate::config::search_path(crate::config::Search::Configs) } else { Vec::new() };
            let Some(path) = std::iter::once(beside.clone()).chain(search.iter().map(|d| d.join(p))).find(|c| c.is_file()) else {
                let places: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
                return Err(format!(
                    "key `base`: the base config {p} is not a file (looked for beside the experiment file, {}{})",
                    beside.display(),
                    if places.is_empty() { String::new() } else { format!(", then in $PADDOCK_CONFIG_PATH and {}", places.join(", ")) }
                ));
            };
            let config = RunConfig::load(&path).map_err(|e| format!("key `base`: {e}"))?;
            let text = toml::to_string_pretty(&config).map_err(|e| format!("key `base`: {e}"))?;
            Ok((path, text))
        }
        toml::Value::Table(t) => {
            // Inline: written beside the file's directory so its relative paths resolve there.
            let text = toml::to_string_pretty(t).map_err(|e| format!("key `base`: {e}"))?;
            let tmp = std::env::temp_dir().join(format!("paddock-base-{}.toml", short_hash(&text, 12)));
            let resolved = resolve_inline(t, dir);
            let text = toml::to_string_pretty(&resolved).map_err(|e| format!("key `base`: {e}"))?;
            std::fs::write(&tmp, &text).map_err(|e| format!("key `base`: {e}"))?;
            RunConfig::load(&tmp)
                .map_err(|e| format!("key `base` (inline): {}", e.to_string().replace(&tmp.display().to_string(), "[base]")))?;
            Ok((tmp, text))
        }
        _ => Err("key `base`: a path to a run config, or an inline [base] table".into()),
    }
}

/// An inline base with its plugin and robot paths that are beside `dir` made absolute.
fn resolve_inline(t: &toml::Table, dir: &Path) -> toml::Table {
    let mut t = t.clone();
    let abs = |v: &mut toml::Value| {
        // A path beside the experiment file; any other is looked for on the search path
        // when the base loads (`config::search_path`).
        if let toml::Value::String(s) = v
            && !s.starts_with(crate::registry::REF_PREFIX)
            && dir.join(&*s).exists()
        {
            *s = crate::config::normalize(&dir.join(&*s)).display().to_string();
        }
    };
    for section in ["env", "reward", "algorithm"] {
        if let Some(toml::Value::Table(sec)) = t.get_mut(section)
            && let Some(p) = sec.get_mut("plugin")
        {
            abs(p);
        }
    }
    if let Some(toml::Value::Table(env)) = t.get_mut("env")
        && let Some(toml::Value::Table(robots)) = env.get_mut("robots")
    {
        robots.iter_mut().for_each(|(_, v)| abs(v));
    }
    t
}

fn check_early_stop(es: &EarlyStop) -> Result<(), String> {
    if !es.metric.contains('/') {
        return Err(format!("key `early_stop.metric` = \"{}\": a metrics.jsonl key such as eval/return_mean", es.metric));
    }
    if es.mode != "max" && es.mode != "min" {
        return Err(format!("key `early_stop.mode` = \"{}\": max or min", es.mode));
    }
    if es.eta < 2 {
        return Err(format!("key `early_stop.eta` = {}: at least 2", es.eta));
    }
    if es.min_steps == 0 {
        return Err("key `early_stop.min_steps`: at least 1".into());
    }
    Ok(())
}

fn check_fleet(f: &Fleet) -> Result<(), String> {
    if !f.store.starts_with("s3://") {
        return Err(format!("key `fleet.store` = \"{}\": an S3 location, s3://bucket/prefix", f.store));
    }
    if f.budget_dollars.is_some_and(|b| b.is_nan() || b <= 0.0) {
        return Err(format!("key `fleet.budget_dollars` = {}: above 0", f.budget_dollars.unwrap_or_default()));
    }
    if f.max_price.is_some_and(|p| p.is_nan() || p <= 0.0) {
        return Err("key `fleet.max_price`: above 0 dollars per hour".into());
    }
    if f.target_capacity == 0 || f.max_capacity < f.target_capacity {
        return Err(format!(
            "keys `fleet.target_capacity` ({}) and `fleet.max_capacity` ({}): at least 1, and max at least target",
            f.target_capacity, f.max_capacity
        ));
    }
    if f.api != "fleet" && f.api != "spot-fleet" {
        return Err(format!("key `fleet.api` = \"{}\": fleet (EC2 CreateFleet) or spot-fleet (RequestSpotFleet)", f.api));
    }
    if f.api == "spot-fleet" && f.spot_fleet_role.is_none() {
        return Err("key `fleet.spot_fleet_role`: `api = \"spot-fleet\"` needs the IAM role Spot Fleet launches with (its ARN)".into());
    }
    if let Some(t) = f.instance_types.iter().find(|t| t.is_empty() || !t.contains('.')) {
        return Err(format!("key `fleet.instance_types`: `{t}` is not an instance type (like c7i.xlarge)"));
    }
    Ok(())
}

/// Records a plugin or robot file (not a registry reference) under its content's key.
fn add_file(files: &mut std::collections::BTreeMap<String, String>, p: &Path) -> Result<(), String> {
    let shown = p.display().to_string();
    if crate::config::is_registry_ref(p) || files.contains_key(&shown) {
        return Ok(());
    }
    let sha = crate::run::carry::file_sha256(p).map_err(|e| format!("{shown}: {e}"))?;
    let name = p.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    files.insert(shown, format!("files/{sha}/{name}"));
    Ok(())
}

/// A config with each plugin and robot path replaced by its file's sha256.
fn identity_of(config: &RunConfig) -> Result<String, String> {
    let mut c = config.clone();
    let sha = |p: &Path| -> Result<PathBuf, String> {
        if crate::config::is_registry_ref(p) {
            return Ok(p.to_path_buf());
        }
        crate::run::carry::file_sha256(p).map(PathBuf::from).map_err(|e| format!("key `base`: {}: {e}", p.display()))
    };
    for (_, p) in c.plugin_paths() {
        *p = sha(p)?;
    }
    for p in c.env.robots.values_mut() {
        *p = sha(p)?;
    }
    toml::to_string(&c).map_err(|e| e.to_string())
}

/// The first `n` hex digits of the sha256 of `text`.
fn short_hash(text: &str, n: usize) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))[..n].to_string()
}

/// A PBT study's schedule from the base config (its `total_steps`: the generations and the
/// trial budget), and its parameters checked against what the algorithm lets change while
/// it runs — before anything runs.
fn pbt_schedule(s: &mut crate::format::experiment::Search, base: &Path) -> Result<(), String> {
    let config = RunConfig::load_with(base, &s.fixed).map_err(|e| format!("key `base`: {e}"))?;
    let total = config.total_steps.ok_or("key `base`: the base config has no `total_steps`, which PBT's generations divide")?;
    let pbt = s.pbt.as_mut().expect("a PBT study");
    if pbt.interval > total {
        return Err(format!("key `search.interval` = {}: longer than the base config's total_steps ({total})", pbt.interval));
    }
    pbt.total_steps = total;
    s.trials = pbt.population * pbt.generations();
    if s.trials > 100_000 {
        return Err(format!("keys `search.population` and `search.interval`: {} trials; at most 100000", s.trials));
    }
    let (name, allowed) = crate::run::mutable_params(&config).map_err(|e| format!("key `base`: the algorithm plugin: {e:#}"))?;
    for p in &s.params {
        let key = p.key.trim_start_matches("algorithm.params.");
        if !allowed.iter().any(|a| a == key) {
            let lets = crate::runtime::lets_change(&allowed);
            return Err(format!(
                "key `search.params.\"{}\"`: algorithm plugin `{name}` cannot change `{key}` while it runs ({lets}), which population-based training needs",
                p.key
            ));
        }
    }
    Ok(())
}

/// The rungs of `es` up to `total_steps`: `min_steps × eta^k`.
pub fn rungs(es: &EarlyStop, total_steps: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut r = es.min_steps;
    while r < total_steps {
        out.push(r);
        r = r.saturating_mul(es.eta);
    }
    out
}

#[cfg(test)]
mod tests;
