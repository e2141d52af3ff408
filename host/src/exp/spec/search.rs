//! `[search]`: a study's sampler, budget, parameters and pruner, checked and put in order
//! (every error names the key).

use crate::format::experiment::{Dist, Param, Pbt, Pruner, Search, When};
use serde::Deserialize;

/// `[search]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    metric: String,
    #[serde(default = "max")]
    mode: String,
    #[serde(default = "tpe")]
    sampler: String,
    #[serde(default)]
    trials: Option<u64>,
    #[serde(default)]
    parallelism: Option<u64>,
    #[serde(default)]
    seed: u64,
    #[serde(default = "ten")]
    startup_trials: u64,
    #[serde(default = "candidates")]
    candidates: u64,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    pruner: Option<RawPruner>,
    /// PBT: members trained side by side.
    #[serde(default)]
    population: Option<u64>,
    /// PBT: env steps per generation.
    #[serde(default)]
    interval: Option<u64>,
    /// PBT: the fraction that copies and is copied.
    #[serde(default)]
    quantile: Option<f64>,
    /// PBT: the factors a copied parameter is multiplied by.
    #[serde(default)]
    perturb: Option<Vec<f64>>,
    /// PBT: the probability a copied parameter is drawn afresh.
    #[serde(default)]
    resample: Option<f64>,
}

/// `[search.pruner]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPruner {
    kind: String,
    #[serde(default)]
    startup_trials: Option<u64>,
    #[serde(default)]
    warmup_steps: u64,
    #[serde(default)]
    min_steps: Option<u64>,
    #[serde(default = "three")]
    eta: u64,
}

fn max() -> String {
    "max".into()
}
fn tpe() -> String {
    "tpe".into()
}
fn ten() -> u64 {
    10
}
fn candidates() -> u64 {
    24
}
fn three() -> u64 {
    3
}

/// The study, with `fixed` (the `[set]` overrides and the seed) given to every trial.
pub(super) fn search(raw: &Raw, fixed: Vec<String>) -> Result<Search, String> {
    if !raw.metric.contains('/') {
        return Err(format!("key `search.metric` = \"{}\": a metrics.jsonl key such as eval/return_mean", raw.metric));
    }
    if raw.mode != "max" && raw.mode != "min" {
        return Err(format!("key `search.mode` = \"{}\": max or min", raw.mode));
    }
    if !["tpe", "random", "grid", "pbt"].contains(&raw.sampler.as_str()) {
        return Err(format!("key `search.sampler` = \"{}\": an unknown sampler (tpe, random, grid or pbt)", raw.sampler));
    }
    if raw.sampler != "pbt"
        && let Some(k) = [
            ("population", raw.population.is_some()),
            ("interval", raw.interval.is_some()),
            ("quantile", raw.quantile.is_some()),
            ("perturb", raw.perturb.is_some()),
            ("resample", raw.resample.is_some()),
        ]
        .iter()
        .find(|(_, set)| *set)
    {
        return Err(format!("key `search.{}` is for population-based training (sampler = \"pbt\")", k.0));
    }
    let params = params(&raw.params)?;
    if params.is_empty() {
        return Err(
            "key `search.params`: no parameter to search (add e.g. \"algorithm.params.gamma\" = { uniform = [0.95, 0.999] })".into()
        );
    }
    let mut search = Search {
        metric: raw.metric.clone(),
        mode: raw.mode.clone(),
        sampler: raw.sampler.clone(),
        trials: 0,
        parallelism: raw.parallelism.unwrap_or(2),
        seed: raw.seed,
        startup_trials: raw.startup_trials,
        candidates: raw.candidates,
        params,
        fixed,
        pruner: Pruner { kind: "none".into(), startup_trials: 5, warmup_steps: 0, min_steps: 0, eta: 3 },
        pbt: None,
    };
    if raw.sampler == "grid" {
        if let Some(p) = search.params.iter().find(|p| !matches!(p.dist, Dist::Choice(_)) || p.when.is_some()) {
            return Err(format!(
                "key `search.params.\"{}\"`: the grid sampler takes lists of values ({{ choice = [...] }}) without `when`; use sampler = \"tpe\" or \"random\" for ranges and conditional parameters",
                p.key
            ));
        }
        let size = crate::exp::search::grid_size(&search);
        search.trials = raw.trials.unwrap_or(size);
        if search.trials > size {
            return Err(format!("key `search.trials` = {}: the grid has only {size} combinations", search.trials));
        }
    } else if raw.sampler == "pbt" {
        search.pbt = Some(pbt(raw, &search)?);
        // Set by the plan once the base config's `total_steps` is known: population × generations.
        search.trials = 1;
        search.parallelism = raw.parallelism.unwrap_or(raw.population.unwrap_or(1));
    } else {
        search.trials = raw.trials.ok_or("key `search.trials` is required: the study's trial budget")?;
    }
    if search.trials == 0 || search.trials > 100_000 {
        return Err(format!("key `search.trials` = {}: a budget from 1 to 100000 trials", search.trials));
    }
    if search.parallelism == 0 || search.parallelism > 256 {
        return Err(format!("key `search.parallelism` = {}: from 1 to 256 trials at once", search.parallelism));
    }
    if search.candidates == 0 || search.candidates > 10_000 {
        return Err(format!("key `search.candidates` = {}: from 1 to 10000", search.candidates));
    }
    if let Some(p) = &raw.pruner {
        search.pruner = pruner(p)?;
    }
    Ok(search)
}

/// `[search]`'s population-based training keys, checked (`total_steps` is the plan's to set).
fn pbt(raw: &Raw, search: &Search) -> Result<Pbt, String> {
    if raw.trials.is_some() {
        return Err("key `search.trials`: population-based training's trials are `population` × the generations of `interval` steps in `total_steps`; leave it out".into());
    }
    if raw.pruner.as_ref().is_some_and(|p| p.kind != "none") {
        return Err(
            "key `search.pruner`: population-based training has its own way with poor trials (they copy better ones); leave the pruner out"
                .into(),
        );
    }
    let population = raw.population.ok_or("key `search.population` is required for sampler = \"pbt\": the members trained side by side")?;
    if !(2..=256).contains(&population) {
        return Err(format!("key `search.population` = {population}: from 2 to 256 members"));
    }
    let interval = raw.interval.ok_or("key `search.interval` is required for sampler = \"pbt\": env steps between exploit and explore")?;
    if interval == 0 {
        return Err(
            "key `search.interval` = 0: at least 1 env step (a multiple of the algorithm's update, e.g. PPO's n-steps × num_envs)".into()
        );
    }
    let quantile = raw.quantile.unwrap_or(0.25);
    if !(quantile > 0.0 && quantile <= 0.5) {
        return Err(format!("key `search.quantile` = {quantile}: above 0 and at most 0.5 (the bottom fraction copies the top one)"));
    }
    let perturb = raw.perturb.clone().unwrap_or_else(|| vec![0.8, 1.2]);
    if perturb.is_empty() || perturb.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(format!("key `search.perturb` = {perturb:?}: positive factors, e.g. [0.8, 1.2]"));
    }
    let resample = raw.resample.unwrap_or(0.25);
    if !(0.0..=1.0).contains(&resample) {
        return Err(format!("key `search.resample` = {resample}: a probability from 0 to 1"));
    }
    if let Some(p) = search.params.iter().find(|p| !p.key.starts_with("algorithm.params.") || p.when.is_some()) {
        return Err(format!(
            "key `search.params.\"{}\"`: population-based training changes parameters while trials run, so it takes only algorithm parameters (algorithm.params.*) the algorithm lets change, without `when`",
            p.key
        ));
    }
    Ok(Pbt { population, interval, total_steps: 0, quantile, perturb, resample })
}

fn pruner(p: &RawPruner) -> Result<Pruner, String> {
    let out = Pruner {
        kind: p.kind.clone(),
        startup_trials: p.startup_trials.unwrap_or(5),
        warmup_steps: p.warmup_steps,
        min_steps: p.min_steps.unwrap_or(0),
        eta: p.eta,
    };
    match p.kind.as_str() {
        "none" | "median" => {}
        "asha" | "hyperband" => {
            if out.min_steps == 0 {
                return Err(format!(
                    "key `search.pruner.min_steps` is required for {} (the smallest budget a trial is judged at, in env steps)",
                    p.kind
                ));
            }
            if out.eta < 2 {
                return Err(format!("key `search.pruner.eta` = {}: at least 2", out.eta));
            }
        }
        other => return Err(format!("key `search.pruner.kind` = \"{other}\": an unknown pruner (none, median, asha or hyperband)")),
    }
    Ok(out)
}

/// `[search.params]` (quoted dotted keys, or nested tables; a table with a distribution key
/// is a parameter), parents before the parameters that depend on them.
fn params(t: &toml::Table) -> Result<Vec<Param>, String> {
    let mut all = Vec::new();
    for (key, v) in super::space::flatten_until(t, |inner| DISTRIBUTIONS.iter().any(|d| inner.contains_key(*d))) {
        all.push(param(&key, &v)?);
    }
    // Parents first: a parameter is placed once its parent is.
    let mut ordered: Vec<Param> = Vec::new();
    while !all.is_empty() {
        let before = all.len();
        let mut i = 0;
        while i < all.len() {
            let ready = all[i].when.as_ref().is_none_or(|w| ordered.iter().any(|p| p.key == w.key));
            if ready {
                ordered.push(all.remove(i));
            } else {
                i += 1;
            }
        }
        if all.len() == before {
            let p = &all[0];
            let parent = p.when.as_ref().map_or("", |w| w.key.as_str());
            let why = if all.iter().any(|q| q.key == parent) { "a cycle of conditions" } else { "not a parameter of the search" };
            return Err(format!("key `search.params.\"{}\"`: its `when` names `{parent}`: {why}", p.key));
        }
    }
    for p in &ordered {
        if let Some(w) = &p.when {
            let parent = ordered.iter().find(|q| q.key == w.key).map(|q| &q.dist);
            if let Some(Dist::Choice(values)) = parent
                && let Some(v) = w.is.iter().find(|v| !values.contains(v))
            {
                return Err(format!("key `search.params.\"{}\"`: `when` asks for {} = {v}, which is not one of its choices", p.key, w.key));
            }
        }
    }
    Ok(ordered)
}

const DISTRIBUTIONS: [&str; 5] = ["uniform", "log_uniform", "int_uniform", "int_log_uniform", "choice"];

fn param(key: &str, v: &toml::Value) -> Result<Param, String> {
    let bad = |what: &str| format!("key `search.params.\"{key}\"`: {what}");
    let toml::Value::Table(t) = v else {
        return Err(bad(
            "a distribution: { uniform = [a, b] }, { log_uniform = [a, b] }, { int_uniform = [a, b] }, { int_log_uniform = [a, b] } or { choice = [...] }",
        ));
    };
    let mut dist = None;
    let mut when = None;
    for (k, v) in t {
        match k.as_str() {
            "when" => when = Some(condition(key, v)?),
            d if DISTRIBUTIONS.contains(&d) => {
                if dist.is_some() {
                    return Err(bad("one distribution per parameter"));
                }
                dist = Some(distribution(key, d, v)?);
            }
            other => {
                return Err(bad(&format!(
                    "unknown key `{other}` (a distribution: uniform, log_uniform, int_uniform, int_log_uniform, choice; and `when`)"
                )));
            }
        }
    }
    let dist = dist.ok_or_else(|| bad("no distribution (uniform, log_uniform, int_uniform, int_log_uniform or choice)"))?;
    Ok(Param { key: key.to_string(), dist, when })
}

fn distribution(key: &str, kind: &str, v: &toml::Value) -> Result<Dist, String> {
    let bad = |what: &str| format!("key `search.params.\"{key}\".{kind}`: {what}");
    if kind == "choice" {
        let a = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| bad("a non-empty list of values"))?;
        let values: Vec<serde_json::Value> =
            a.iter().map(|x| serde_json::to_value(x).map_err(|e| bad(&e.to_string()))).collect::<Result<_, _>>()?;
        return Ok(Dist::Choice(values));
    }
    let a = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| bad("a range [low, high]"))?;
    let num = |x: &toml::Value| x.as_float().or_else(|| x.as_integer().map(|i| i as f64)).ok_or_else(|| bad("range ends are numbers"));
    let (lo, hi) = (num(&a[0])?, num(&a[1])?);
    if !lo.is_finite() || !hi.is_finite() || lo >= hi {
        return Err(bad(&format!("the range [{lo}, {hi}] is empty or inverted (low must be below high)")));
    }
    let log = kind.contains("log");
    if log && lo <= 0.0 {
        return Err(bad(&format!("a log range must be above 0, not [{lo}, {hi}]")));
    }
    Ok(if kind.starts_with("int") {
        if lo.fract() != 0.0 || hi.fract() != 0.0 {
            return Err(bad("whole-number range ends"));
        }
        Dist::Int { low: lo as i64, high: hi as i64, log }
    } else {
        Dist::Float { low: lo, high: hi, log }
    })
}

/// `when = { "parent.key" = value }` or `= [values]`.
fn condition(key: &str, v: &toml::Value) -> Result<When, String> {
    let bad = || {
        format!(
            "key `search.params.\"{key}\".when`: one parent and its values, e.g. when = {{ \"algorithm.params.kind\" = [\"a\", \"b\"] }}"
        )
    };
    let t = v.as_table().filter(|t| t.len() == 1).ok_or_else(bad)?;
    let (parent, values) = t.iter().next().ok_or_else(bad)?;
    let values = match values {
        toml::Value::Array(a) if !a.is_empty() => a.clone(),
        toml::Value::Array(_) => return Err(bad()),
        one => vec![one.clone()],
    };
    let is = values.iter().map(|x| serde_json::to_value(x).map_err(|_| bad())).collect::<Result<_, _>>()?;
    if parent == key {
        return Err(format!("key `search.params.\"{key}\".when`: a parameter cannot depend on itself"));
    }
    Ok(When { key: parent.clone(), is })
}

/// Configs that stand for the study's trials when its file is checked: every parameter at
/// its low end, at its high end, and each choice once (conditions ignored: every key is
/// tried).
pub(super) fn corners(search: &Search) -> Vec<Vec<String>> {
    let value = |d: &Dist, high: bool, i: usize| -> serde_json::Value {
        match d {
            Dist::Float { low, high: h, .. } => serde_json::json!(if high { *h } else { *low }),
            Dist::Int { low, high: h, .. } => serde_json::json!(if high { *h } else { *low }),
            Dist::Choice(c) => c[i.min(c.len() - 1)].clone(),
        }
    };
    let widest = search.params.iter().map(|p| if let Dist::Choice(c) = &p.dist { c.len() } else { 2 }).max().unwrap_or(1);
    (0..widest.max(2))
        .map(|i| {
            let mut o = search.fixed.clone();
            for p in &search.params {
                let v = value(&p.dist, i % 2 == 1, i);
                if let Ok(v) = toml::Value::try_from(&v) {
                    o.push(format!("{}={v}", p.key));
                }
            }
            o
        })
        .collect()
}
