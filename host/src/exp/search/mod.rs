//! Studies (`[search]` in an experiment file): trials suggested one at a time from the
//! results so far, stopped early by a pruner, with the study's state in the experiment's
//! store so that it survives a kill and any number of workers share it.
//!
//! A worker that finds no trial to claim, while the study is below its budget and fewer
//! than `parallelism` of its trials run, makes the next one: it reads the trials made so
//! far and their results, asks the sampler ([`tpe`]: TPE, random or grid) for trial `n`'s
//! parameters — from an RNG seeded by the study's seed and `n`, so the same seed and the
//! same results give the same suggestion — and creates `study/trials/<n>.json` with a
//! conditional create. Exactly one worker makes each number (another one's create is
//! refused, and it reads the study again), so the study ends with its budget: no trial
//! lost, none made twice. The trial is then claimed, trained and committed as any other;
//! [`prune`] decides after each evaluation whether it goes on.

pub mod prune;
pub mod tpe;

use crate::format::experiment::{Dist, Plan, Search, StudyTrial, Trial, study_trial_key, study_trials};
use crate::format::trial::{Status, TrialState};
use crate::store::Objects;
use rand::SeedableRng;
use std::collections::BTreeMap;
use tpe::{Obs, Settings, from_value, to_value};

/// The number of study trial `id` (`s<n>-<hash>`).
pub fn number_of(id: &str) -> Option<u64> {
    id.strip_prefix('s')?.split('-').next()?.parse().ok()
}

/// What the sampler learns from: the study's trials that ran to their end or were pruned,
/// with a metric.
pub fn observations(search: &Search, made: &[StudyTrial], states: &BTreeMap<String, TrialState>) -> Vec<Obs> {
    let mut out = Vec::new();
    for t in made {
        let Some(s) = states.get(&t.trial.id) else { continue };
        let pruned_at = match s.status {
            Status::Done => None,
            Status::Pruned => Some(s.result.as_ref().map_or(s.step, |r| r.steps)),
            _ => continue,
        };
        let v = match s.result.as_ref().and_then(|r| r.metric).filter(|v| v.is_finite()) {
            Some(v) => v,
            // Pruned for a metric that was not a number (it diverged): the worst there is.
            None if pruned_at.is_some() => {
                if search.mode == "min" {
                    f64::MAX
                } else {
                    f64::MIN
                }
            }
            None => continue,
        };
        let params = search.params.iter().filter_map(|p| Some((p.key.clone(), from_value(&p.dist, t.params.get(&p.key)?)?))).collect();
        out.push(Obs { n: t.n, params, loss: if search.mode == "min" { v } else { -v }, pruned_at });
    }
    out
}

/// The combinations of a grid study (every parameter a choice), in order, the last key
/// fastest.
pub fn grid_size(search: &Search) -> u64 {
    search.params.iter().map(|p| if let Dist::Choice(c) = &p.dist { c.len() as u64 } else { 1 }).product()
}

/// The parameters of study trial `n`, in internal coordinates.
pub fn sample(search: &Search, n: u64, obs: &[Obs]) -> BTreeMap<String, f64> {
    let mut rng =
        rand_pcg::Pcg64Mcg::seed_from_u64(search.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
    match search.sampler.as_str() {
        "grid" => {
            let mut out = BTreeMap::new();
            let mut rest = n;
            for p in search.params.iter().rev() {
                if let Dist::Choice(c) = &p.dist {
                    out.insert(p.key.clone(), (rest % c.len() as u64) as f64);
                    rest /= c.len() as u64;
                }
            }
            out
        }
        "random" => tpe::suggest(&search.params, &[], Settings { startup: usize::MAX, candidates: 1 }, &mut rng),
        _ => tpe::suggest(
            &search.params,
            obs,
            Settings { startup: search.startup_trials as usize, candidates: search.candidates as usize },
            &mut rng,
        ),
    }
}

/// Why a worker makes no trial now.
#[derive(Debug, PartialEq)]
pub enum NotNow {
    /// The study made its budget.
    Spent,
    /// `parallelism` of its trials are running (or waiting to be claimed).
    Busy,
}

/// Makes the study's next trial (see the module docs), or says why not.
pub fn make_next(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Result<StudyTrial, NotNow>> {
    let Some(search) = &plan.search else { return Ok(Err(NotNow::Spent)) };
    loop {
        let made = study_trials(objects)?;
        let n = made.len() as u64;
        if n >= search.trials {
            return Ok(Err(NotNow::Spent));
        }
        let states = states_of(objects, &made)?;
        let open = states.values().filter(|s| !s.status.is_final()).count() as u64;
        if open >= search.parallelism {
            return Ok(Err(NotNow::Busy));
        }
        let obs = observations(search, &made, &states);
        let x = sample(search, n, &obs);
        let params: BTreeMap<String, serde_json::Value> =
            search.params.iter().filter_map(|p| x.get(&p.key).map(|v| (p.key.clone(), to_value(&p.dist, *v)))).collect();
        let mut overrides = search.fixed.clone();
        for (k, v) in &params {
            let v = toml::Value::try_from(v).map_err(|e| anyhow::anyhow!("study parameter {k}: {e}"))?;
            overrides.push(format!("{k}={v}"));
        }
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(overrides.join("\n").as_bytes()));
        let trial = Trial { id: format!("s{n:04}-{}", &hash[..8]), overrides };
        let st = StudyTrial { n, trial, params };
        if objects.put_new(&study_trial_key(n), &serde_json::to_vec_pretty(&st)?)? {
            crate::exp::trial::create(objects, &st.trial.id, &TrialState::queued())?;
            return Ok(Ok(st));
        }
        // Another worker made number n first: read the study again.
    }
}

/// The states of a study's trials, by id (one made but without a state yet: queued).
pub fn states_of(objects: &dyn Objects, made: &[StudyTrial]) -> anyhow::Result<BTreeMap<String, TrialState>> {
    made.iter().map(|t| Ok((t.trial.id.clone(), crate::format::experiment::state_of(objects, &t.trial.id, true)?))).collect()
}

/// Parameters as `key=value …`.
pub fn params_line(params: &BTreeMap<String, serde_json::Value>) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// The study's best trial so far: its id, metric and parameters.
pub fn best(
    search: &Search,
    made: &[StudyTrial],
    states: &BTreeMap<String, TrialState>,
) -> Option<(String, f64, BTreeMap<String, serde_json::Value>)> {
    made.iter()
        .filter_map(|t| {
            let s = states.get(&t.trial.id)?;
            let v = (s.status == Status::Done).then_some(s.result.as_ref()?.metric?)?;
            v.is_finite().then(|| (t.trial.id.clone(), v, t.params.clone()))
        })
        .max_by(|a, b| if search.mode == "min" { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) })
}

#[cfg(test)]
mod tests;
