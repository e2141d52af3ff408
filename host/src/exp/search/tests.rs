use super::*;
use crate::format::experiment::{Param, Pruner, TrialPolicy};
use crate::format::trial::TrialResult;
use std::sync::Arc;

fn study(sampler: &str, trials: u64, parallelism: u64, params: Vec<Param>) -> Plan {
    Plan {
        id: "s".into(),
        base: String::new(),
        trials: Vec::new(),
        early_stop: None,
        search: Some(Search {
            metric: "eval/return_mean".into(),
            mode: "max".into(),
            sampler: sampler.into(),
            trials,
            parallelism,
            seed: 3,
            startup_trials: 4,
            candidates: 24,
            params,
            fixed: vec!["seed=1".into()],
            pruner: Pruner { kind: "none".into(), startup_trials: 5, warmup_steps: 0, min_steps: 0, eta: 3 },
            pbt: None,
        }),
        fleet: None,
        trial: TrialPolicy::default(),
        files: Default::default(),
    }
}

fn lr() -> Param {
    Param { key: "algorithm.params.learning-rate".into(), dist: Dist::Float { low: 1e-5, high: 1e-1, log: true }, when: None }
}

fn store() -> (tempfile::TempDir, Arc<dyn Objects>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = crate::store::open(&crate::store::Location::Local(dir.path().to_path_buf()), &Default::default()).expect("store");
    (dir, objects)
}

/// Finishes study trial `t` with a metric that peaks at a learning rate of 1e-3.
fn finish(objects: &dyn Objects, t: &StudyTrial) {
    let held = crate::format::trial::read(objects, &t.trial.id).expect("state");
    let lr = t.params["algorithm.params.learning-rate"].as_f64().expect("lr");
    let mut s = held.state.clone();
    s.status = Status::Done;
    s.result =
        Some(TrialResult { steps: 100, best_eval: None, last_eval: None, metric: Some(-(lr.log10() + 3.0).abs()), run: String::new() });
    crate::exp::trial::write(objects, &held, s).expect("write").expect("not fenced");
}

/// Three workers make and finish trials at once: the study ends with exactly its budget,
/// each number made once, and never more than `parallelism` open at a time.
#[test]
fn concurrent_workers_make_exactly_the_budget() {
    let (_dir, objects) = store();
    let plan = study("tpe", 23, 3, vec![lr()]);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (objects, plan) = (objects.clone(), plan.clone());
            std::thread::spawn(move || {
                let mut made = 0;
                loop {
                    match make_next(objects.as_ref(), &plan).expect("make") {
                        Ok(t) => {
                            made += 1;
                            finish(objects.as_ref(), &t);
                        }
                        Err(NotNow::Busy) => std::thread::yield_now(),
                        Err(NotNow::Spent) => return made,
                    }
                }
            })
        })
        .collect();
    let made: usize = handles.into_iter().map(|h| h.join().expect("worker")).sum();
    assert_eq!(made, 23, "the workers made the budget between them");
    let trials = study_trials(objects.as_ref()).expect("study");
    assert_eq!(trials.iter().map(|t| t.n).collect::<Vec<_>>(), (0..23).collect::<Vec<_>>());
    let ids: std::collections::HashSet<&str> = trials.iter().map(|t| t.trial.id.as_str()).collect();
    assert_eq!(ids.len(), 23, "no trial made twice");
    // The plan as readers see it holds them, and nothing is left to make.
    let mut stored = plan.clone();
    stored.trials = trials.iter().map(|t| t.trial.clone()).collect();
    let states = crate::format::experiment::states(objects.as_ref(), &stored).expect("states");
    assert_eq!(states.len(), 23);
    assert!(crate::format::experiment::all_final(&states));
}

/// Suggestions depend on the seed and the results only; the study learns (TPE's later
/// trials sit nearer the best learning rate than its random start-up ones); a study not
/// through its budget is not final; a busy study waits.
#[test]
fn a_study_is_reproducible_learns_and_waits_when_busy() {
    let run = |seed_plan: &Plan| -> Vec<StudyTrial> {
        let (_dir, objects) = store();
        let mut out = Vec::new();
        while let Ok(t) = make_next(objects.as_ref(), seed_plan).expect("make") {
            finish(objects.as_ref(), &t);
            out.push(t);
        }
        out
    };
    let plan = study("tpe", 30, 1, vec![lr()]);
    let a = run(&plan);
    assert_eq!(a, run(&plan), "the same seed and results give the same suggestions");
    let dist = |t: &StudyTrial| (t.params["algorithm.params.learning-rate"].as_f64().unwrap_or(1.0).log10() + 3.0).abs();
    let early: f64 = a[..4].iter().map(dist).sum::<f64>() / 4.0;
    let late: f64 = a[20..].iter().map(dist).sum::<f64>() / 10.0;
    assert!(late < 0.75 * early, "TPE's late trials are nearer the optimum: {late:.2} decades vs {early:.2} at random");

    let (_dir, objects) = store();
    let t = make_next(objects.as_ref(), &plan).expect("make").expect("made");
    assert_eq!(make_next(objects.as_ref(), &plan).expect("make"), Err(NotNow::Busy), "parallelism 1: one open trial at a time");
    let mut stored = plan.clone();
    stored.trials = vec![t.trial.clone()];
    let states = crate::format::experiment::states(objects.as_ref(), &stored).expect("states");
    assert_eq!(states.len(), 30, "the trials not made yet are counted, queued");
    assert!(!crate::format::experiment::all_final(&states));
}

#[test]
fn a_grid_study_walks_its_combinations_in_order() {
    let choice = |k: &str, v: Vec<serde_json::Value>| Param { key: k.into(), dist: Dist::Choice(v), when: None };
    let plan = study(
        "grid",
        6,
        6,
        vec![
            choice("a", vec![serde_json::json!(1), serde_json::json!(2)]),
            choice("b", vec![serde_json::json!("x"), serde_json::json!("y"), serde_json::json!("z")]),
        ],
    );
    let (_dir, objects) = store();
    let mut seen = Vec::new();
    while let Ok(t) = make_next(objects.as_ref(), &plan).expect("make") {
        seen.push(t.trial.overrides[1..].join(" "));
    }
    assert_eq!(seen, ["a=1 b=\"x\"", "a=1 b=\"y\"", "a=1 b=\"z\"", "a=2 b=\"x\"", "a=2 b=\"y\"", "a=2 b=\"z\""]);
}
