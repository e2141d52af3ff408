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

pub mod pbt;
pub mod prune;
pub mod tpe;

use crate::format::experiment::{Dist, Lineage, Pbt, Plan, Search, StartFrom, StudyTrial, Trial, study_trial_key, study_trials};
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
    let mut rng = rng_for(search, n);
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
        "random" => tpe::random(&search.params, &mut rng),
        _ => tpe::suggest(
            &search.params,
            obs,
            Settings { startup: search.startup_trials as usize, candidates: search.candidates as usize },
            &mut rng,
        ),
    }
}

/// The generator of study trial `n`: seeded by the study's seed and `n`, so the same seed
/// and the same results give the same suggestion.
fn rng_for(search: &Search, n: u64) -> rand_pcg::Pcg64Mcg {
    rand_pcg::Pcg64Mcg::seed_from_u64(search.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// Parameters in internal coordinates (`x`) as the values a trial's config takes.
fn values(search: &Search, x: &BTreeMap<String, f64>) -> BTreeMap<String, serde_json::Value> {
    search.params.iter().filter_map(|p| x.get(&p.key).map(|v| (p.key.clone(), to_value(&p.dist, *v)))).collect()
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
        // The first number not made (a restored study may lack one a lost copy held).
        let n = made.iter().enumerate().find(|(i, t)| t.n != *i as u64).map_or(made.len(), |(i, _)| i) as u64;
        if made.len() as u64 >= search.trials {
            return Ok(Err(NotNow::Spent));
        }
        let states = states_of(objects, &made)?;
        let open = states.values().filter(|s| !s.status.is_final()).count() as u64;
        if open >= search.parallelism {
            return Ok(Err(NotNow::Busy));
        }
        // A PBT member that nothing can be continued for (`dead`) fails at once: the study
        // still ends with its budget, every trial final.
        let (params, start_from, lineage, dead) = match &search.pbt {
            None => {
                let obs = observations(search, &made, &states);
                let x = sample(search, n, &obs);
                let params = values(search, &x);
                (params, None, None, None)
            }
            Some(pbt) => match next_member(search, pbt, n, &made, &states) {
                Some(next) => next,
                None => return Ok(Err(NotNow::Busy)),
            },
        };
        let mut overrides = search.fixed.clone();
        for (k, v) in &params {
            let v = toml::Value::try_from(v).map_err(|e| anyhow::anyhow!("study parameter {k}: {e}"))?;
            overrides.push(format!("{k}={v}"));
        }
        if let Some(pbt) = &search.pbt {
            // Each generation trains to its own end (a `total_steps` in [set] is the last one's).
            overrides.retain(|o| !o.starts_with("total_steps="));
            overrides.push(format!("total_steps={}", ((n / pbt.population + 1) * pbt.interval).min(pbt.total_steps)));
        }
        let mut hashed = overrides.join("\n");
        if let Some(f) = &start_from {
            hashed.push_str(&format!("\nfrom {} e{} {}", f.trial, f.checkpoint.epoch, f.checkpoint.step));
        }
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(hashed.as_bytes()));
        let trial = Trial { id: format!("s{n:04}-{}", &hash[..8]), overrides, start_from };
        let st = StudyTrial { n, trial, params, lineage };
        if objects.put_new(&study_trial_key(n), &serde_json::to_vec_pretty(&st)?)? {
            let mut state = TrialState::queued();
            if let Some(why) = dead {
                (state.status, state.error) = (Status::Failed, Some(why));
            }
            crate::exp::trial::create(objects, &st.trial.id, &state)?;
            return Ok(Ok(st));
        }
        // Another worker made number n first: read the study again.
    }
}

/// A study trial to make: its parameters, the checkpoint it starts from, (PBT) its lineage,
/// and why it fails at once, if it does.
type Next = (BTreeMap<String, serde_json::Value>, Option<StartFrom>, Option<Lineage>, Option<String>);

/// PBT's trial `n`: member `n % population` of generation `n / population` — its
/// parameters, the checkpoint it continues from and its lineage; `None` while the
/// generation before has trials that have not ended.
fn next_member(search: &Search, pbt: &Pbt, n: u64, made: &[StudyTrial], states: &BTreeMap<String, TrialState>) -> Option<Next> {
    let (m, g) = (n % pbt.population, n / pbt.population);
    let mut rng = rng_for(search, n);
    if g == 0 {
        let x = tpe::random(&search.params, &mut rng);
        let params = values(search, &x);
        return Some((params, None, Some(Lineage { member: m, generation: 0, parent: None, copied: None, scores: None }), None));
    }
    let prev: Vec<&StudyTrial> = made.iter().filter(|t| t.n / pbt.population == g - 1).collect();
    if prev.len() as u64 != pbt.population || prev.iter().any(|t| states.get(&t.trial.id).is_none_or(|s| !s.status.is_final())) {
        return None;
    }
    let members: Vec<pbt::Member> = prev
        .iter()
        .map(|t| {
            let s = &states[&t.trial.id];
            let done = s.status == Status::Done;
            pbt::Member {
                trial: t.trial.id.clone(),
                params: t.params.clone(),
                score: s.result.as_ref().and_then(|r| r.metric).filter(|v| done && v.is_finite()),
                checkpoint: s.checkpoint.filter(|_| done).map(|c| StartFrom { trial: t.trial.id.clone(), checkpoint: c }),
            }
        })
        .collect();
    let own = members[m as usize].params.clone();
    let Some(d) = pbt::decide(pbt, &search.params, &search.mode, m as usize, &members, &mut rng) else {
        let why = format!("no trial of generation {} ended with a checkpoint and a metric to continue from", g - 1);
        return Some((own, None, Some(Lineage { member: m, generation: g, parent: None, copied: None, scores: None }), Some(why)));
    };
    let scores = Some((members[m as usize].score, d.copied.and_then(|c| members[c as usize].score)));
    let lineage = Lineage { member: m, generation: g, parent: Some(d.from.trial.clone()), copied: d.copied, scores };
    Some((d.params, Some(d.from), Some(lineage), None))
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
    // PBT: a member's metric at the end of training, not at an earlier generation's end.
    let last = search.pbt.as_ref().map(|p| (p.population, p.generations().saturating_sub(1)));
    made.iter()
        .filter(|t| last.is_none_or(|(pop, g)| t.n / pop == g))
        .filter_map(|t| {
            let s = states.get(&t.trial.id)?;
            let v = (s.status == Status::Done).then_some(s.result.as_ref()?.metric?)?;
            v.is_finite().then(|| (t.trial.id.clone(), v, t.params.clone()))
        })
        .max_by(|a, b| if search.mode == "min" { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) })
}

#[cfg(test)]
mod tests;
