//! The search space of an experiment file: its seeds, its grid (every combination) and its
//! random draws (seeded, reproducible), each trial's overrides as dotted keys.

use sha2::Digest;

pub(super) fn seeds(v: Option<&toml::Value>) -> Result<Vec<i64>, String> {
    match v {
        None => Ok(vec![1]),
        Some(toml::Value::Integer(n)) if *n >= 1 && *n <= 1000 => Ok((1..=*n).collect()),
        Some(toml::Value::Integer(n)) => Err(format!("key `seeds`: a count from 1 to 1000, or a list of seeds, not {n}")),
        Some(toml::Value::Array(a)) if a.is_empty() => Err("key `seeds`: the list is empty (no trial would run)".into()),
        Some(toml::Value::Array(a)) => {
            let s: Vec<i64> = a.iter().filter_map(toml::Value::as_integer).filter(|s| *s >= 0).collect();
            if s.len() != a.len() {
                return Err("key `seeds`: seeds are whole numbers of 0 or more".into());
            }
            let mut dedup = s.clone();
            dedup.sort_unstable();
            dedup.dedup();
            if dedup.len() != s.len() {
                return Err("key `seeds`: a seed is listed twice".into());
            }
            Ok(s)
        }
        Some(other) => Err(format!("key `seeds`: a count or a list of seeds, not {other}")),
    }
}

/// `[grid]`: every combination, keys in sorted order (the table's), the last key fastest.
pub(super) fn grid(t: &toml::Table) -> Result<Vec<Vec<(String, toml::Value)>>, String> {
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, v) in flatten_axes(t) {
        let values = match v {
            toml::Value::Array(a) if a.is_empty() => return Err(format!("key `grid.\"{key}\"`: the axis is empty")),
            toml::Value::Array(a) => a,
            other => return Err(format!("key `grid.\"{key}\"`: an axis is a list of values, not {other}")),
        };
        combos = combos
            .into_iter()
            .flat_map(|c| values.iter().map(|v| [c.clone(), vec![(key.clone(), v.clone())]].concat()).collect::<Vec<_>>())
            .collect();
    }
    Ok(combos)
}

/// Axis keys are quoted dotted paths (`"algorithm.params.gamma"`); nested tables
/// (`[grid.algorithm.params]`) are accepted too.
fn flatten_axes(t: &toml::Table) -> Vec<(String, toml::Value)> {
    flatten_until(t, is_distribution)
}

/// `t`'s dotted keys down to the tables `leaf` takes for values, sorted.
pub(super) fn flatten_until(t: &toml::Table, leaf: fn(&toml::Table) -> bool) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        match v {
            toml::Value::Table(inner) if !leaf(inner) => {
                out.extend(flatten_until(inner, leaf).into_iter().map(|(ik, iv)| (format!("{k}.{ik}"), iv)));
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn is_distribution(t: &toml::Table) -> bool {
    t.len() == 1 && ["uniform", "log_uniform", "int_uniform", "choice"].iter().any(|k| t.contains_key(*k))
}

/// `[random]`: `count` draws of every axis, from `seed`.
pub(super) fn random_draws(t: &toml::Table) -> Result<Vec<Vec<(String, toml::Value)>>, String> {
    let count = match t.get("count") {
        Some(toml::Value::Integer(n)) if *n >= 1 && *n <= 100_000 => *n as u64,
        Some(other) => return Err(format!("key `random.count`: a number of draws from 1 to 100000, not {other}")),
        None => return Err("key `random.count` is required (how many draws)".into()),
    };
    let seed = match t.get("seed") {
        None => 0,
        Some(toml::Value::Integer(n)) if *n >= 0 => *n as u64,
        Some(other) => return Err(format!("key `random.seed`: a whole number, not {other}")),
    };
    let axes: Vec<(String, toml::Value)> = flatten_axes(t).into_iter().filter(|(k, _)| k != "count" && k != "seed").collect();
    if axes.is_empty() {
        return Err("key `random`: no axis to draw (add e.g. \"algorithm.params.gamma\" = { uniform = [0.95, 0.999] })".into());
    }
    let mut draws = Vec::new();
    for i in 0..count {
        let mut d = Vec::new();
        for (key, spec) in &axes {
            d.push((key.clone(), draw(key, spec, unit(seed, i, key))?));
        }
        draws.push(d);
    }
    Ok(draws)
}

/// A number in [0, 1) from the seed, the draw and the key: sha256, so the plan is the same
/// on every machine and version.
fn unit(seed: u64, draw: u64, key: &str) -> f64 {
    let h = sha2::Sha256::digest(format!("{seed}/{draw}/{key}").as_bytes());
    let x = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// `x` to 4 significant digits: plans read `learning-rate=0.0003162`, not 17 digits.
fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

fn draw(key: &str, spec: &toml::Value, u: f64) -> Result<toml::Value, String> {
    let bad = |what: &str| format!("key `random.\"{key}\"`: {what}");
    let toml::Value::Table(t) = spec else {
        return Err(bad("a distribution: { uniform = [a, b] }, { log_uniform = [a, b] }, { int_uniform = [a, b] } or { choice = [...] }"));
    };
    let pair = |v: &toml::Value| -> Result<(f64, f64), String> {
        let a = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| bad("a range is [low, high]"))?;
        let num = |x: &toml::Value| x.as_float().or_else(|| x.as_integer().map(|i| i as f64)).ok_or_else(|| bad("range ends are numbers"));
        let (lo, hi) = (num(&a[0])?, num(&a[1])?);
        if lo.is_nan() || hi.is_nan() || lo >= hi {
            return Err(bad(&format!("the range [{lo}, {hi}] is empty")));
        }
        Ok((lo, hi))
    };
    let (kind, v) = t.iter().next().ok_or_else(|| bad("an empty distribution"))?;
    Ok(match kind.as_str() {
        "uniform" => {
            let (lo, hi) = pair(v)?;
            toml::Value::Float(round4(lo + u * (hi - lo)).clamp(lo, hi))
        }
        "log_uniform" => {
            let (lo, hi) = pair(v)?;
            if lo <= 0.0 {
                return Err(bad("a log range must be above 0"));
            }
            toml::Value::Float(round4((lo.ln() + u * (hi.ln() - lo.ln())).exp()).clamp(lo, hi))
        }
        "int_uniform" => {
            let (lo, hi) = pair(v)?;
            toml::Value::Integer(lo as i64 + (u * (hi as i64 - lo as i64 + 1) as f64) as i64)
        }
        "choice" => {
            let a = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| bad("a choice is a non-empty list"))?;
            a[((u * a.len() as f64) as usize).min(a.len() - 1)].clone()
        }
        other => return Err(bad(&format!("unknown distribution `{other}` (uniform, log_uniform, int_uniform, choice)"))),
    })
}
