//! Asynchronous successive halving (ASHA, Li et al. 2018) over a store: at each rung
//! (`min_steps × eta^k` env steps) a trial records its metric under
//! `rungs/<rung>/<trial>.json` and goes on only if that value is in the best `1/eta` of the
//! values recorded at the rung so far (the first `eta - 1` to arrive always go on, as in
//! ASHA). The decision is written with the value, once (a conditional create), so a
//! restarted worker or a re-run trial reads it back instead of deciding again.

use super::spec::rungs;
use crate::format::experiment::EarlyStop;
use crate::store::Objects;
use std::sync::Arc;

/// A trial's view of the early-stop rule.
pub struct Asha {
    objects: Arc<dyn Objects>,
    rule: EarlyStop,
    trial: String,
    rungs: Vec<u64>,
    /// Rungs this trial has passed.
    passed: usize,
    /// Where the rungs' folders are (a Hyperband bracket has its own).
    prefix: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    value: f64,
    go_on: bool,
}

impl Asha {
    /// The rule for `trial`, whose runs train `total_steps`.
    pub fn new(objects: Arc<dyn Objects>, rule: EarlyStop, trial: &str, total_steps: u64) -> Self {
        let rungs = rungs(&rule, total_steps);
        Asha { objects, rule, trial: trial.to_string(), rungs, passed: 0, prefix: String::new() }
    }

    /// The rule for `trial` in Hyperband bracket `bracket` (its rungs kept apart).
    pub fn in_bracket(objects: Arc<dyn Objects>, rule: EarlyStop, trial: &str, total_steps: u64, bracket: u32) -> Self {
        Asha { prefix: format!("b{bracket}/"), ..Self::new(objects, rule, trial, total_steps) }
    }

    /// The rule.
    pub fn rule(&self) -> &EarlyStop {
        &self.rule
    }

    /// After an evaluation at env step `step` with the metric's `value`: whether the trial
    /// goes on. Rungs reached without a value (the metric is missing) are passed.
    pub fn decide(&mut self, step: u64, value: Option<f64>) -> anyhow::Result<bool> {
        while self.passed < self.rungs.len() && step >= self.rungs[self.passed] {
            let rung = self.rungs[self.passed];
            let Some(v) = value else {
                self.passed += 1;
                continue;
            };
            let dir = format!("{}{}", self.prefix, crate::format::experiment::rung_dir(rung));
            if !decide_at(self.objects.as_ref(), &self.rule, &dir, &self.trial, v)? {
                return Ok(false);
            }
            self.passed += 1;
        }
        Ok(true)
    }
}

/// The decision for `trial` at the rung whose folder is `dir` (recorded, or made now and
/// recorded).
pub fn decide_at(objects: &dyn Objects, rule: &EarlyStop, dir: &str, trial: &str, value: f64) -> anyhow::Result<bool> {
    let key = format!("{dir}/{trial}.json");
    if let Some(data) = objects.get(&key)? {
        let r: Record = serde_json::from_slice(&data)?;
        return Ok(r.go_on);
    }
    let mut others = Vec::new();
    for e in objects.list(dir)? {
        if e.key != key
            && let Some(d) = objects.get(&e.key)?
            && let Ok(r) = serde_json::from_slice::<Record>(&d)
        {
            others.push(r.value);
        }
    }
    let better = |a: f64, b: f64| if rule.mode == "min" { a < b } else { a > b };
    let ahead = others.iter().filter(|&&o| better(o, value)).count();
    let n = others.len() + 1;
    let keep = (n as u64 / rule.eta).max(1) as usize;
    let go_on = ahead < keep;
    let record = serde_json::to_vec(&Record { value, go_on })?;
    if !objects.put_new(&key, &record)? {
        // Recorded meanwhile (another epoch of this trial): that decision stands.
        let r: Record = serde_json::from_slice(&objects.get(&key)?.unwrap_or_default())?;
        return Ok(r.go_on);
    }
    Ok(go_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_two_thirds_stop_at_the_first_rung_and_decisions_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = crate::store::open(&crate::store::Location::Local(dir.path().to_path_buf()), &Default::default()).expect("store");
        let rule = EarlyStop { metric: "eval/return_mean".into(), mode: "max".into(), min_steps: 100, eta: 3 };
        // 81 trials with a synthetic objective, arriving in a shuffled order.
        let values: Vec<f64> = (0..81).map(|i| ((i * 37) % 81) as f64).collect();
        let mut stopped = 0;
        for (i, v) in values.iter().enumerate() {
            if !decide_at(objects.as_ref(), &rule, "rungs/000000000100", &format!("t{i}"), *v).expect("decide") {
                stopped += 1;
            }
        }
        let frac = stopped as f64 / 81.0;
        assert!((0.5..=0.75).contains(&frac), "about two thirds stop at the first rung: {stopped} of 81");
        // A restart decides nothing again: the recorded decision comes back, whatever the value.
        let first = decide_at(objects.as_ref(), &rule, "rungs/000000000100", "t0", values[0]).expect("decide");
        assert_eq!(decide_at(objects.as_ref(), &rule, "rungs/000000000100", "t0", 1e9).expect("decide"), first);
    }
}
