//! Population-based training (Jaderberg, Dalibard, Osindero et al., "Population Based
//! Training of Neural Networks", 2017), synchronous: each generation's trials are made once
//! the generation before has ended. A member in the bottom `quantile` copies a member of
//! the top `quantile` (exploit: it continues from that member's checkpoint) and perturbs
//! its parameters (explore: each multiplied by one of `perturb`, or with probability
//! `resample` drawn afresh); the others continue from their own checkpoint unchanged.
//!
//! [`decide`] is the whole rule, a pure function of the generation before: the study's
//! workers call it when they make a trial, and the unit tests run it on a synthetic task.

use super::tpe;
use crate::format::experiment::{Dist, Param, Pbt, StartFrom};
use rand::{Rng, RngExt};
use std::collections::BTreeMap;

/// A member of the generation before, as a decision sees it.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its trial.
    pub trial: String,
    /// Its parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Its metric at the end of the generation (`None`: it failed or diverged).
    pub score: Option<f64>,
    /// Its last checkpoint (`None`: it has none to continue from).
    pub checkpoint: Option<StartFrom>,
}

/// What member `m` does in the next generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Its parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The checkpoint it continues from.
    pub from: StartFrom,
    /// The member it copied (exploit), if it did.
    pub copied: Option<u64>,
}

/// The members ranked best first (`max`: highest metric; members without one last, in
/// member order).
pub fn ranked(members: &[Member], mode: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    let key = |i: usize| members[i].score.filter(|v| v.is_finite()).map(|v| if mode == "min" { -v } else { v });
    order.sort_by(|&a, &b| match (key(a), key(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.cmp(&b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(&b),
    });
    order
}

/// Member `m`'s next generation, from `prev` (the generation before, by member). `None`
/// when no member has a checkpoint to continue from (every one failed).
pub fn decide(pbt: &Pbt, params: &[Param], mode: &str, m: usize, prev: &[Member], rng: &mut impl Rng) -> Option<Decision> {
    let order = ranked(prev, mode);
    let q = ((prev.len() as f64 * pbt.quantile).floor() as usize).max(1).min(prev.len() / 2).max(1);
    let (top, bottom) = (&order[..q], &order[order.len() - q..]);
    let own = &prev[m];
    let in_bottom = prev.len() > 1 && bottom.contains(&m);
    if !in_bottom && own.score.is_some() && own.checkpoint.is_some() {
        return Some(Decision { params: own.params.clone(), from: own.checkpoint.clone()?, copied: None });
    }
    // Exploit: a member of the top quantile that did better and has a checkpoint (else,
    // for a member that has nothing to go on with, the best that has one). A tie copies
    // nothing: a member as good as the top goes on with its own.
    let better = |i: usize| match (prev[i].score, own.score) {
        (Some(x), Some(y)) => {
            if mode == "min" {
                x < y
            } else {
                x > y
            }
        }
        (Some(_), None) => true,
        _ => false,
    };
    let donors: Vec<usize> = top.iter().copied().filter(|&i| i != m && prev[i].checkpoint.is_some() && better(i)).collect();
    let donor = match donors.as_slice() {
        [] if own.score.is_some() && own.checkpoint.is_some() => m,
        [] => order.iter().copied().find(|&i| prev[i].checkpoint.is_some() && prev[i].score.is_some())?,
        d => d[rng.random_range(0..d.len())],
    };
    if donor == m {
        return Some(Decision { params: own.params.clone(), from: own.checkpoint.clone()?, copied: None });
    }
    let d = &prev[donor];
    Some(Decision { params: explore(pbt, params, &d.params, rng), from: d.checkpoint.clone()?, copied: Some(donor as u64) })
}

/// `from`'s parameters perturbed (explore).
pub fn explore(
    pbt: &Pbt,
    params: &[Param],
    from: &BTreeMap<String, serde_json::Value>,
    rng: &mut impl Rng,
) -> BTreeMap<String, serde_json::Value> {
    let mut out = from.clone();
    for p in params {
        let Some(v) = from.get(&p.key) else { continue };
        let fresh = rng.random_bool(pbt.resample.clamp(0.0, 1.0));
        if fresh {
            let x = tpe::random(std::slice::from_ref(p), rng);
            if let Some(x) = x.get(&p.key) {
                out.insert(p.key.clone(), tpe::to_value(&p.dist, *x));
            }
            continue;
        }
        let factor = pbt.perturb[rng.random_range(0..pbt.perturb.len())];
        let next = match &p.dist {
            Dist::Float { low, high, .. } => v.as_f64().map(|x| serde_json::json!(tpe::round4(x * factor).clamp(*low, *high))),
            Dist::Int { low, high, .. } => v.as_i64().map(|x| {
                let mut y = (x as f64 * factor).round() as i64;
                if y == x && factor != 1.0 {
                    // Too small to move by the factor: one step its way.
                    y = if factor > 1.0 { x + 1 } else { x - 1 };
                }
                serde_json::json!(y.clamp(*low, *high))
            }),
            Dist::Choice(c) => c.iter().position(|x| x == v).map(|i| {
                let j = if factor > 1.0 {
                    (i + 1).min(c.len() - 1)
                } else if factor < 1.0 {
                    i.saturating_sub(1)
                } else {
                    i
                };
                c[j].clone()
            }),
        };
        if let Some(n) = next {
            out.insert(p.key.clone(), n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::trial::CheckpointRef;
    use rand::SeedableRng;

    fn lr_param() -> Param {
        Param { key: "lr".into(), dist: Dist::Float { low: 1e-4, high: 0.5, log: true }, when: None }
    }

    fn pbt(population: u64) -> Pbt {
        Pbt { population, interval: 10, total_steps: 200, quantile: 0.25, perturb: vec![0.8, 1.25], resample: 0.25 }
    }

    /// Noisy gradient descent on θ²/2 with gradient noise σ, in expectation: the mean m and
    /// variance v of θ after k steps at rate lr. A large rate closes in fast but its noise
    /// floor (≈ lr σ² / 2) is high; a small one is slow: the best rate falls as training
    /// goes on, the task PBT's schedules are for.
    fn train(state: (f64, f64), lr: f64, k: usize) -> (f64, f64) {
        let (mut m, mut v) = state;
        for _ in 0..k {
            m *= 1.0 - lr;
            v = (1.0 - lr).powi(2) * v + lr * lr;
        }
        (m, v)
    }

    fn loss(s: (f64, f64)) -> f64 {
        s.0 * s.0 + s.1
    }

    /// The population through every generation with [`decide`]: the best final loss.
    fn run_pbt(seed: u64) -> f64 {
        let (pop, gens, k) = (8usize, 20usize, 10usize);
        let p = pbt(pop as u64);
        let params = [lr_param()];
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let mut members: Vec<(BTreeMap<String, serde_json::Value>, (f64, f64))> = (0..pop)
            .map(|_| {
                let x = tpe::random(&params, &mut rng);
                (BTreeMap::from([("lr".to_string(), tpe::to_value(&params[0].dist, x["lr"]))]), (10.0, 0.0))
            })
            .collect();
        for g in 0..gens {
            let trained: Vec<(BTreeMap<String, serde_json::Value>, (f64, f64))> =
                members.iter().map(|(p, s)| (p.clone(), train(*s, p["lr"].as_f64().unwrap_or(0.0), k))).collect();
            if g + 1 == gens {
                return trained.iter().map(|(_, s)| loss(*s)).fold(f64::MAX, f64::min);
            }
            let prev: Vec<Member> = trained
                .iter()
                .enumerate()
                .map(|(i, (params, s))| Member {
                    trial: format!("m{i}"),
                    params: params.clone(),
                    score: Some(loss(*s)),
                    checkpoint: Some(StartFrom { trial: format!("m{i}"), checkpoint: CheckpointRef { epoch: 1, step: i as u64 } }),
                })
                .collect();
            members = (0..pop)
                .map(|m| {
                    let d = decide(&p, &params, "min", m, &prev, &mut rng).expect("every member has a checkpoint");
                    (d.params, trained[d.from.checkpoint.step as usize].1)
                })
                .collect();
        }
        unreachable!()
    }

    #[test]
    #[allow(clippy::print_stderr)]
    fn pbt_beats_the_best_fixed_rate_on_a_task_whose_best_rate_falls() {
        // The best fixed rate over a fine log grid, with the same 200 steps.
        let best_fixed =
            (0..=80).map(|i| 1e-3 * 10f64.powf(i as f64 / 40.0)).map(|lr| loss(train((10.0, 0.0), lr, 200))).fold(f64::MAX, f64::min);
        let mut results: Vec<f64> = (0..20).map(run_pbt).collect();
        results.sort_by(f64::total_cmp);
        let median = results[10];
        eprintln!(
            "PBT over 20 seeds: median {median:.5} (best {:.5}, worst {:.5}); the best fixed rate: {best_fixed:.5}",
            results[0], results[19]
        );
        assert!(median < 0.8 * best_fixed, "PBT median {median:.5} against the best fixed rate's {best_fixed:.5}");
    }

    #[test]
    fn the_bottom_copies_the_top_and_the_rest_go_on() {
        let p = pbt(4);
        let params = [lr_param()];
        let prev: Vec<Member> = [0.1, 0.4, 0.3, 0.2]
            .iter()
            .enumerate()
            .map(|(i, s)| Member {
                trial: format!("t{i}"),
                params: BTreeMap::from([("lr".to_string(), serde_json::json!(0.01 * (i + 1) as f64))]),
                score: Some(*s),
                checkpoint: Some(StartFrom { trial: format!("t{i}"), checkpoint: CheckpointRef { epoch: 1, step: 100 } }),
            })
            .collect();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        // max: member 1 (0.4) is the top quarter, member 0 (0.1) the bottom one.
        let d0 = decide(&p, &params, "max", 0, &prev, &mut rng).expect("a decision");
        assert_eq!((d0.copied, d0.from.trial.as_str()), (Some(1), "t1"));
        let lr = d0.params["lr"].as_f64().expect("a float");
        assert!(lr != 0.02 && (1e-4..=0.5).contains(&lr), "{lr}");
        for m in 1..4 {
            let d = decide(&p, &params, "max", m, &prev, &mut rng).expect("a decision");
            assert_eq!((d.copied, d.from.trial.clone(), d.params.clone()), (None, format!("t{m}"), prev[m].params.clone()));
        }
        // A failed member (no score) copies a good one wherever it ranks.
        let mut failed = prev.clone();
        failed[2].score = None;
        failed[2].checkpoint = None;
        let d2 = decide(&p, &params, "max", 2, &failed, &mut rng).expect("a decision");
        assert_eq!(d2.copied, Some(1));
        // Ties copy nothing: a bottom member as good as the top goes on with its own.
        let tied: Vec<Member> = prev.iter().cloned().map(|m| Member { score: Some(0.5), ..m }).collect();
        let d = decide(&p, &params, "max", 3, &tied, &mut rng).expect("a decision");
        assert_eq!((d.copied, d.from.trial.as_str()), (None, "t3"));
        // min: the lowest metric is the best.
        let d = decide(&p, &params, "min", 1, &prev, &mut rng).expect("a decision");
        assert_eq!(d.copied, Some(0));
        // Nobody to copy: no decision.
        let none: Vec<Member> = prev.iter().cloned().map(|m| Member { score: None, checkpoint: None, ..m }).collect();
        assert!(decide(&p, &params, "max", 0, &none, &mut rng).is_none());
    }

    #[test]
    fn explore_keeps_values_in_range_and_moves_choices_to_neighbours() {
        let p = Pbt { resample: 0.0, ..pbt(4) };
        let params = [
            Param { key: "i".into(), dist: Dist::Int { low: 1, high: 4, log: false }, when: None },
            Param {
                key: "c".into(),
                dist: Dist::Choice(vec![serde_json::json!(16), serde_json::json!(32), serde_json::json!(64)]),
                when: None,
            },
            Param { key: "f".into(), dist: Dist::Float { low: 0.0, high: 1.0, log: false }, when: None },
        ];
        let from = BTreeMap::from([
            ("i".to_string(), serde_json::json!(4)),
            ("c".to_string(), serde_json::json!(32)),
            ("f".to_string(), serde_json::json!(0.9)),
        ]);
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        for _ in 0..50 {
            let out = explore(&p, &params, &from, &mut rng);
            assert!((3..=4).contains(&out["i"].as_i64().expect("int")), "{out:?}");
            assert!([16, 64].contains(&out["c"].as_i64().expect("int")), "{out:?}");
            let f = out["f"].as_f64().expect("float");
            assert!(f == 0.72 || f == 1.0, "{out:?}");
        }
    }
}
