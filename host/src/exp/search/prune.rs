//! A study's pruners: the median rule (Optuna's `MedianPruner`), ASHA and Hyperband
//! (Li et al. 2018; asynchronous, an ASHA per bracket, as Optuna's `HyperbandPruner`), and
//! the trial's view of them ([`TrialPruner`]), which the worker asks after each evaluation.
//!
//! A value that is not a number (a diverging run: NaN, ±∞) prunes the trial at once.

use crate::exp::asha::Asha;
use crate::format::experiment::{EarlyStop, Pruner, Search, curve_key};
use crate::store::Objects;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A trial's learning curve in the store (`curves/<trial>.json`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Curve {
    /// `(env step, metric)` at each evaluation.
    pub points: Vec<(u64, f64)>,
    /// Whether the trial ran to its end (only those are compared with, as Optuna's median).
    pub finished: bool,
    /// Whether the trial ended (finished or pruned): the curve no longer changes.
    #[serde(default)]
    pub ended: bool,
}

/// The median rule: prune at `step` when this trial's best value so far is worse than the
/// median of the finished trials' values there (each finished trial's value at its last
/// evaluation at or before `step`), once `startup` trials finished and from `warmup` steps.
pub fn median_prunes(mine: &[(u64, f64)], step: u64, finished: &[&[(u64, f64)]], maximize: bool, startup: usize, warmup: u64) -> bool {
    if finished.len() < startup.max(1) || step < warmup {
        return false;
    }
    let mine = mine.iter().filter(|(s, _)| *s <= step).map(|(_, v)| *v);
    let best = if maximize { mine.fold(f64::NEG_INFINITY, f64::max) } else { mine.fold(f64::INFINITY, f64::min) };
    if !best.is_finite() {
        return false;
    }
    let mut at: Vec<f64> = finished
        .iter()
        .filter(|c| c.last().is_some_and(|(s, _)| *s >= step))
        .filter_map(|c| c.iter().rev().find(|(s, _)| *s <= step).map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .collect();
    if at.is_empty() {
        return false;
    }
    at.sort_by(f64::total_cmp);
    let m = at.len();
    let median = if m % 2 == 1 { at[m / 2] } else { (at[m / 2 - 1] + at[m / 2]) / 2.0 };
    if maximize { best < median } else { best > median }
}

/// One Hyperband bracket: `n` trials from budget `r` (in units of the smallest budget),
/// halved by `eta` over its rounds `(nᵢ, rᵢ)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bracket {
    /// Its index `s` (the most aggressive is `s_max`).
    pub s: u32,
    /// Trials it starts.
    pub n: u64,
    /// Their first budget.
    pub r: f64,
    /// Each round's trials and budget.
    pub rounds: Vec<(u64, f64)>,
}

/// Hyperband's brackets for a largest budget of `r_max` smallest budgets and reduction
/// factor `eta` (Li et al. 2018, Algorithm 1): `s_max = ⌊log_η R⌋`, `B = (s_max + 1) R`, and
/// for `s = s_max … 0`: `n = ⌈B/R · ηˢ/(s+1)⌉`, `r = R η⁻ˢ`, rounds `nᵢ = ⌊n η⁻ⁱ⌋`, `rᵢ = r ηⁱ`.
pub fn brackets(r_max: u64, eta: u64) -> Vec<Bracket> {
    let eta = eta.max(2);
    let mut s_max = 0u32;
    while eta.saturating_pow(s_max + 1) <= r_max {
        s_max += 1;
    }
    let (big_r, e) = (r_max as f64, eta as f64);
    (0..=s_max)
        .rev()
        .map(|s| {
            let n = (f64::from(s_max + 1) * e.powi(s as i32) / f64::from(s + 1) - 1e-9).ceil() as u64;
            let r = big_r * e.powi(-(s as i32));
            let rounds = (0..=s).map(|i| ((n as f64 * e.powi(-(i as i32)) + 1e-9).floor() as u64, r * e.powi(i as i32))).collect();
            Bracket { s, n, r, rounds }
        })
        .collect()
}

/// The bracket of study trial `n`: trials are dealt to brackets in proportion to the
/// trials each starts (`n` of [`Bracket`]), interleaved, so that a budget smaller than a
/// full Hyperband round still spreads over them.
pub fn bracket_of(n: u64, brackets: &[Bracket]) -> u32 {
    let total: u64 = brackets.iter().map(|b| b.n).sum();
    let mut dealt = vec![0u64; brackets.len()];
    let mut pick = 0;
    for i in 0..=n {
        // The bracket furthest behind its share.
        pick = (0..brackets.len())
            .max_by(|&a, &b| {
                let lag = |k: usize| brackets[k].n as f64 * (i + 1) as f64 / total as f64 - dealt[k] as f64;
                lag(a).total_cmp(&lag(b)).then(b.cmp(&a))
            })
            .unwrap_or(0);
        dealt[pick] += 1;
    }
    brackets.get(pick).map_or(0, |b| b.s)
}

/// The early-stop rule of a study's pruner, as ASHA's (ASHA and Hyperband).
pub fn as_rule(search: &Search) -> EarlyStop {
    EarlyStop { metric: search.metric.clone(), mode: search.mode.clone(), min_steps: search.pruner.min_steps, eta: search.pruner.eta }
}

/// A trial's view of its experiment's pruner.
pub enum TrialPruner {
    /// The experiment's `[early_stop]`, or a study's `asha` / `hyperband` pruner.
    Asha(Asha),
    /// A study's median pruner.
    Median(Median),
    /// A study without pruning: the metric is still recorded.
    None,
}

impl TrialPruner {
    /// The pruner of a study's trial `n` (`trial`), whose runs train `total_steps`.
    pub fn for_study(objects: Arc<dyn Objects>, search: &Search, trial: &str, n: u64, total_steps: u64) -> Self {
        let p: &Pruner = &search.pruner;
        match p.kind.as_str() {
            "asha" => TrialPruner::Asha(Asha::new(objects, as_rule(search), trial, total_steps)),
            "hyperband" => {
                let all = brackets(total_steps / p.min_steps.max(1), p.eta);
                let s = bracket_of(n, &all);
                let s_max = all.first().map_or(0, |b| b.s);
                let mut rule = as_rule(search);
                rule.min_steps = p.min_steps.saturating_mul(p.eta.saturating_pow(s_max - s));
                TrialPruner::Asha(Asha::in_bracket(objects, rule, trial, total_steps, s))
            }
            "median" => TrialPruner::Median(Median {
                // A trial that resumes (or is taken over) goes on from its recorded curve.
                curve: objects
                    .get(&curve_key(trial))
                    .ok()
                    .flatten()
                    .and_then(|d| serde_json::from_slice::<Curve>(&d).ok())
                    .unwrap_or_default(),
                objects,
                trial: trial.to_string(),
                finished: HashMap::new(),
                maximize: search.mode != "min",
                startup: p.startup_trials as usize,
                warmup: p.warmup_steps,
            }),
            _ => TrialPruner::None,
        }
    }

    /// After an evaluation at env step `step` with the metric's `value`: whether the trial
    /// goes on. A value that is not a finite number prunes it.
    pub fn decide(&mut self, step: u64, value: Option<f64>, in_study: bool) -> anyhow::Result<bool> {
        if in_study && value.is_some_and(|v| !v.is_finite()) {
            if let TrialPruner::Median(m) = self {
                m.curve.ended = true;
                m.record(step, value.unwrap_or(f64::NAN))?;
            }
            return Ok(false);
        }
        match self {
            TrialPruner::Asha(a) => a.decide(step, value),
            TrialPruner::Median(m) => match value {
                Some(v) => m.decide(step, v),
                None => Ok(true),
            },
            TrialPruner::None => Ok(true),
        }
    }

    /// At the trial's end (not pruned): its curve is marked finished, for the median rule.
    pub fn finished(&mut self) -> anyhow::Result<()> {
        if let TrialPruner::Median(m) = self {
            m.curve.finished = true;
            m.curve.ended = true;
            m.objects.put(&curve_key(&m.trial), &serde_json::to_vec(&m.curve)?)?;
        }
        Ok(())
    }
}

/// The median rule over a store: each trial keeps its curve in `curves/<trial>.json`.
pub struct Median {
    objects: Arc<dyn Objects>,
    trial: String,
    curve: Curve,
    /// Ended trials' curves (they do not change), by key: the points of a finished one,
    /// `None` for a pruned one.
    finished: HashMap<String, Option<Vec<(u64, f64)>>>,
    maximize: bool,
    startup: usize,
    warmup: u64,
}

impl Median {
    fn record(&mut self, step: u64, value: f64) -> anyhow::Result<()> {
        self.curve.points.retain(|(s, _)| *s < step);
        self.curve.points.push((step, value));
        self.objects.put(&curve_key(&self.trial), &serde_json::to_vec(&self.curve)?)
    }

    fn decide(&mut self, step: u64, value: f64) -> anyhow::Result<bool> {
        self.record(step, value)?;
        let mine = curve_key(&self.trial);
        for e in self.objects.list("curves")? {
            if e.key == mine || self.finished.contains_key(&e.key) {
                continue;
            }
            if let Some(data) = self.objects.get(&e.key)?
                && let Ok(c) = serde_json::from_slice::<Curve>(&data)
                && (c.finished || c.ended)
            {
                self.finished.insert(e.key.clone(), c.finished.then_some(c.points));
            }
        }
        let finished: Vec<&[(u64, f64)]> = self.finished.values().flatten().map(Vec::as_slice).collect();
        let prune = median_prunes(&self.curve.points, step, &finished, self.maximize, self.startup, self.warmup);
        if prune {
            self.curve.ended = true;
            self.objects.put(&curve_key(&self.trial), &serde_json::to_vec(&self.curve)?)?;
        }
        Ok(!prune)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Li et al. 2018, Table 1: R = 81, η = 3.
    #[test]
    fn hyperband_brackets_match_the_paper() {
        let b = brackets(81, 3);
        let table: Vec<(u32, Vec<(u64, f64)>)> = b.iter().map(|b| (b.s, b.rounds.clone())).collect();
        assert_eq!(
            table,
            vec![
                (4, vec![(81, 1.0), (27, 3.0), (9, 9.0), (3, 27.0), (1, 81.0)]),
                (3, vec![(34, 3.0), (11, 9.0), (3, 27.0), (1, 81.0)]),
                (2, vec![(15, 9.0), (5, 27.0), (1, 81.0)]),
                (1, vec![(8, 27.0), (2, 81.0)]),
                (0, vec![(5, 81.0)]),
            ]
        );
        // η = 2, R = 8: s_max = 3, B = 32.
        let b = brackets(8, 2);
        assert_eq!(b.iter().map(|b| (b.s, b.n, b.r)).collect::<Vec<_>>(), vec![(3, 8, 1.0), (2, 6, 2.0), (1, 4, 4.0), (0, 4, 8.0)]);
        // Trials are dealt in proportion to each bracket's n, interleaved.
        let b = brackets(81, 3);
        let mut count = HashMap::new();
        for n in 0..143 {
            *count.entry(bracket_of(n, &b)).or_insert(0u64) += 1;
        }
        for br in &b {
            assert_eq!(count[&br.s], br.n, "bracket {} gets its {} trials in a full round", br.s, br.n);
        }
        let first: std::collections::HashSet<u32> = (0..10).map(|n| bracket_of(n, &b)).collect();
        assert!(first.len() >= 3, "ten trials already spread over brackets: {first:?}");
    }

    /// The bar: on synthetic learning curves the median pruner saves at least 40% of
    /// the steps (the median over 20 studies) without losing the best trial (in any). Trials
    /// arrive one after another (a sequential study), each with a quality `q` and a speed
    /// `τ`: the metric rises as `q (1 − e^(−t/τ))` plus noise over 30 evaluations. A study
    /// whose first trials are all poor saves less (the rule compares with finished trials).
    #[test]
    #[allow(clippy::print_stderr)]
    fn the_median_pruner_saves_steps_without_losing_the_best_trial() {
        let mut savings = Vec::new();
        for seed in 0..20u64 {
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
            let evals = 30u64;
            let trials: Vec<(f64, f64)> = (0..50).map(|_| (rng.random::<f64>(), 3.0 + 10.0 * rng.random::<f64>())).collect();
            let best = trials.iter().enumerate().max_by(|a, b| {
                let f = |(q, tau): (f64, f64)| q * (1.0 - (-(evals as f64) / tau).exp());
                f(*a.1).total_cmp(&f(*b.1))
            });
            let best = best.map(|(i, _)| i).unwrap_or(0);
            let mut finished: Vec<Vec<(u64, f64)>> = Vec::new();
            let (mut run, mut best_kept) = (0u64, false);
            for (i, (q, tau)) in trials.iter().enumerate() {
                let mut curve = Vec::new();
                let mut pruned = false;
                for t in 1..=evals {
                    let v = q * (1.0 - (-(t as f64) / tau).exp()) + 0.01 * (rng.random::<f64>() - 0.5);
                    curve.push((t * 1000, v));
                    run += 1;
                    let done: Vec<&[(u64, f64)]> = finished.iter().map(Vec::as_slice).collect();
                    // rl-zoo's settings: 5 start-up trials, a third of the evaluations as warm-up.
                    if median_prunes(&curve, t * 1000, &done, true, 5, evals / 3 * 1000) {
                        pruned = true;
                        break;
                    }
                }
                if !pruned {
                    finished.push(curve);
                    best_kept |= i == best;
                }
            }
            let saved = 1.0 - run as f64 / (50 * evals) as f64;
            eprintln!("seed {seed}: {:.0}% of steps saved, {} of 50 trials ran to the end", saved * 100.0, finished.len());
            assert!(best_kept, "seed {seed}: the best trial (#{best}) was pruned");
            savings.push(saved);
        }
        savings.sort_by(f64::total_cmp);
        let median = (savings[9] + savings[10]) / 2.0;
        eprintln!("steps saved over 20 studies: median {:.0}%, least {:.0}%", median * 100.0, savings[0] * 100.0);
        assert!(median >= 0.4, "the median pruner saved a median {:.0}% of the steps, not 40%", median * 100.0);
    }

    #[test]
    fn a_diverging_trial_is_pruned_and_a_study_without_pruner_records_only() {
        let mut p = TrialPruner::None;
        assert!(p.decide(10, Some(1.0), true).expect("decide"));
        assert!(!p.decide(20, Some(f64::NAN), true).expect("decide"), "NaN prunes");
        assert!(!p.decide(20, Some(f64::INFINITY), true).expect("decide"), "∞ prunes");
        // Outside a study ([early_stop] alone) a missing or odd metric changes nothing.
        assert!(p.decide(20, None, false).expect("decide"));
    }

    #[test]
    fn the_median_compares_with_finished_trials_at_or_before_the_step() {
        let a = [(100, 1.0), (200, 2.0), (300, 3.0)];
        let b = [(100, 2.0), (200, 4.0), (300, 6.0)];
        let c = [(150, 0.5), (300, 1.0)];
        let done: Vec<&[(u64, f64)]> = vec![&a, &b, &c];
        // At 200: a=2, b=4, c=0.5 (its value at 150) → median 2.
        assert!(median_prunes(&[(200, 1.9)], 200, &done, true, 3, 0));
        assert!(!median_prunes(&[(100, 2.5), (200, 1.9)], 200, &done, true, 3, 0), "the best so far counts");
        assert!(!median_prunes(&[(200, 1.9)], 200, &done, true, 4, 0), "start-up trials first");
        assert!(!median_prunes(&[(200, 1.9)], 200, &done, true, 3, 250), "warm-up first");
        assert!(median_prunes(&[(200, 2.1)], 200, &done, false, 3, 0), "minimising");
    }
}
