use super::*;
use crate::learner::spec::{HindsightSpec, HindsightStrategy, PrioritizedSpec};

fn spec(num_envs: u32, capacity: u32) -> ReplaySpec {
    ReplaySpec {
        capacity,
        num_envs,
        observation_len: 2,
        action_len: 1,
        action_dtype: Dtype::Int64,
        n_step: 1,
        gamma: 0.5,
        prioritized: None,
        hindsight: None,
    }
}

fn f(v: &[f32], rows: i64) -> Tensor {
    Tensor::from_slice(v).reshape([rows, -1])
}

fn b(v: &[bool]) -> Tensor {
    Tensor::from_slice(v)
}

/// Adds step `t` of one env: obs [t, 0], action t, reward t, next [t + 1, 0].
fn add_step(r: &mut Replay, t: f32, term: bool, trunc: bool) {
    r.add(
        &f(&[t, 0.0], 1),
        &Tensor::from_slice(&[t as i64]).reshape([1, 1]),
        &Tensor::from_slice(&[t]),
        &f(&[t + 1.0, 0.0], 1),
        &b(&[term]),
        &b(&[trunc]),
    )
    .expect("add");
}

fn col(t: &Tensor) -> Vec<f32> {
    cpu_f32(t).expect("read")
}

#[test]
fn sum_tree_finds_prefix_sums() {
    let _rng = crate::learner::torch_rng_lock();
    let mut t = SumTree::new(5);
    for (i, v) in [1.0, 0.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
        t.set(i, v);
    }
    assert_eq!(t.total(), 10.0);
    let found: Vec<usize> = [0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99].iter().map(|&u| t.find(u)).collect();
    assert_eq!(found, [0, 0, 2, 2, 3, 3, 4, 4]);
}

#[test]
fn uniform_buffer_wraps_and_samples_what_was_added() {
    let _rng = crate::learner::torch_rng_lock();
    tch::manual_seed(0);
    let mut r = Replay::new("r", &spec(2, 5), Device::Cpu, Ok(())).expect("new");
    for t in 0..4 {
        let t = t as f32;
        r.add(
            &f(&[t, 0.0, t, 1.0], 2),
            &Tensor::from_slice(&[t as i64, t as i64]).reshape([2, 1]),
            &Tensor::from_slice(&[t, t + 0.5]),
            &f(&[t + 1.0, 0.0, t + 1.0, 1.0], 2),
            &b(&[false, t == 3.0]),
            &b(&[false, false]),
        )
        .expect("add");
    }
    assert_eq!(r.len(), 5, "capacity 5 holds the newest five of eight");
    let s = r.sample(256, None).expect("sample");
    let (obs, rew, next, done) = (col(&s.observations), col(&s.rewards), col(&s.next_observations), col(&s.dones));
    for i in 0..256 {
        // Rows stay intact: next obs is obs + 1 in the first column, same env column.
        assert_eq!(next[2 * i], obs[2 * i] + 1.0);
        assert_eq!(next[2 * i + 1], obs[2 * i + 1]);
        assert_eq!(rew[i], obs[2 * i] + 0.5 * obs[2 * i + 1]);
        assert_eq!(done[i], f32::from(u8::from(obs[2 * i] == 3.0 && obs[2 * i + 1] == 1.0)));
        assert!(obs[2 * i] >= 1.0, "the oldest three were overwritten: {}", obs[2 * i]);
    }
    assert!(col(&s.discounts).iter().all(|&d| d == 0.5));
    assert!(col(&s.weights).iter().all(|&w| w == 1.0));
    assert!(Replay::new("tiny", &spec(8, 4), Device::Cpu, Ok(())).expect_err("too small").contains("capacity 4 is smaller"));
    let err = r.add(
        &f(&[0.0; 6], 3),
        &Tensor::zeros([3, 1], (Kind::Int64, Device::Cpu)),
        &Tensor::zeros([3], (Kind::Float, Device::Cpu)),
        &f(&[0.0; 6], 3),
        &b(&[false; 3]),
        &b(&[false; 3]),
    );
    assert!(err.expect_err("3 envs into a 2-env buffer").contains("`observations` has shape [3, 2], expected [2, …]"));
}

#[test]
fn n_step_sums_discounted_rewards_and_stops_at_episode_ends() {
    let _rng = crate::learner::torch_rng_lock();
    let mut s = spec(1, 100);
    s.n_step = 3;
    let mut r = Replay::new("r", &s, Device::Cpu, Ok(())).expect("new");
    // Episode 1: steps 0..5, terminated at step 4. Episode 2: steps 10, 11, truncated.
    for t in 0..5 {
        add_step(&mut r, t as f32, t == 4, false);
    }
    add_step(&mut r, 10.0, false, false);
    add_step(&mut r, 11.0, false, true);
    assert_eq!(r.len(), 7);
    let n = r.len() as i64;
    let obs = col(&r.observations.narrow(0, 0, n));
    let (rew, next, done, disc) = (
        col(&r.rewards.narrow(0, 0, n)),
        col(&r.next_observations.narrow(0, 0, n)),
        col(&r.dones.narrow(0, 0, n)),
        col(&r.discounts.narrow(0, 0, n)),
    );
    let starts: Vec<f32> = obs.chunks(2).map(|c| c[0]).collect();
    assert_eq!(starts, [0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 11.0]);
    // From 0: 0 + .5·1 + .25·2 = 1, bootstrap from obs 3 with γ³.
    assert_eq!((rew[0], next[0], done[0], disc[0]), (1.0, 3.0, 0.0, 0.125));
    // From 2: 2 + .5·3 + .25·4 = 4.5, ends in the terminal step: done.
    assert_eq!((rew[2], next[4], done[2], disc[2]), (4.5, 5.0, 1.0, 0.125));
    // From 3: two steps left in the episode: 3 + .5·4, γ².
    assert_eq!((rew[3], done[3], disc[3]), (5.0, 1.0, 0.25));
    // Truncated episode: 10 + .5·11, bootstrap (not done) from 12 with γ².
    assert_eq!((rew[5], next[10], done[5], disc[5]), (15.5, 12.0, 0.0, 0.25));
    assert_eq!((rew[6], done[6], disc[6]), (11.0, 0.0, 0.5));
}

#[test]
fn prioritized_sampling_follows_priorities_chi_squared() {
    let _rng = crate::learner::torch_rng_lock();
    tch::manual_seed(7);
    let mut s = spec(1, 8);
    s.prioritized = Some(PrioritizedSpec { alpha: 0.6, beta: 0.4, beta_final: 1.0, beta_samples: 1000, epsilon: 1e-6 });
    let mut r = Replay::new("r", &s, Device::Cpu, Ok(())).expect("new");
    for t in 0..8 {
        add_step(&mut r, t as f32, false, false);
    }
    let td = [0.1f32, 0.5, 1.0, 2.0, 0.2, 3.0, 0.05, 1.5];
    r.update_priorities(&Tensor::from_slice(&(0..8i64).collect::<Vec<_>>()), &Tensor::from_slice(&td)).expect("priorities");
    let p: Vec<f64> = td.iter().map(|&d| (f64::from(d) + 1e-6).powf(0.6)).collect();
    let total: f64 = p.iter().sum();
    let mut counts = [0u64; 8];
    let batches = 2000;
    for k in 0..batches {
        let b = r.sample(32, None).expect("sample");
        let idx = Vec::<i64>::try_from(&b.indices).expect("indices");
        let w = col(&b.weights);
        // Importance weights against the formula, β annealed linearly over 1000 samples.
        let beta = 0.4 + 0.6 * (f64::from(k) / 1000.0).min(1.0);
        let raw: Vec<f64> = idx.iter().map(|&i| (8.0 * p[i as usize] / total).powf(-beta)).collect();
        let max = raw.iter().copied().fold(f64::MIN, f64::max);
        for (wi, ri) in w.iter().zip(&raw) {
            assert!((f64::from(*wi) - ri / max).abs() < 1e-5, "weight {wi} vs {}", ri / max);
        }
        for i in idx {
            counts[i as usize] += 1;
        }
    }
    let n = f64::from(batches * 32);
    let chi2: f64 = counts.iter().zip(&p).map(|(&c, &pi)| (c as f64 - n * pi / total).powi(2) / (n * pi / total)).sum();
    // 7 degrees of freedom: P(χ² > 24.32) = 0.001.
    assert!(chi2 < 24.32, "χ² = {chi2}, counts {counts:?}");
    assert!(
        r.update_priorities(&Tensor::from_slice(&[9i64]), &Tensor::from_slice(&[1.0f32])).expect_err("out of range").contains("index 9")
    );
    let mut u = Replay::new("u", &spec(1, 8), Device::Cpu, Ok(())).expect("new");
    add_step(&mut u, 0.0, false, false);
    assert!(u.update_priorities(&Tensor::from_slice(&[0i64]), &Tensor::from_slice(&[1.0f32])).expect_err("uniform").contains("uniformly"));
}

/// Goals of one dim: the observation is [x, achieved, desired]; success when equal.
struct Equal;
impl GoalOracle for Equal {
    fn layout(&self) -> (usize, usize) {
        (1, 1)
    }
    fn outcomes(&mut self, a: &[f32], d: &[f32]) -> Result<Vec<(f64, bool)>, String> {
        Ok(a.iter().zip(d).map(|(x, y)| if x == y { (0.0, true) } else { (-1.0, false) }).collect())
    }
}

#[test]
fn hindsight_relabels_with_goals_achieved_later_in_the_episode() {
    let _rng = crate::learner::torch_rng_lock();
    tch::manual_seed(3);
    let mut s = spec(2, 64);
    s.observation_len = 3;
    s.hindsight = Some(HindsightSpec { strategy: HindsightStrategy::FutureGoal, k: 4 });
    assert!(
        Replay::new("h", &s, Device::Cpu, Err("needs a goal-conditioned env".into()))
            .expect_err("no oracle")
            .contains("goal-conditioned env")
    );
    let mut r = Replay::new("h", &s, Device::Cpu, Ok(())).expect("new");
    // Two envs, episodes of 4 steps; achieved goal after step t is 10·env + t + 1; the
    // desired goal 99 is never reached.
    for t in 0..4 {
        let t = t as f32;
        let obs = [t, 10.0 * 0.0 + t, 99.0, t, 10.0 + t, 99.0];
        let next = [t + 1.0, t + 1.0, 99.0, t + 1.0, 10.0 + t + 1.0, 99.0];
        r.add(
            &f(&obs, 2),
            &Tensor::zeros([2, 1], (Kind::Int64, Device::Cpu)),
            &Tensor::from_slice(&[-1.0f32, -1.0]),
            &f(&next, 2),
            &b(&[false, false]),
            &b(&[false, t == 3.0]),
        )
        .expect("add");
    }
    // Env 1's episode is finished; env 0's goes on (not relabelled).
    let mut oracle = Equal;
    let batch = r.sample(2000, Some(&mut oracle)).expect("sample");
    let (obs, next, rew, done) = (col(&batch.observations), col(&batch.next_observations), col(&batch.rewards), col(&batch.dones));
    let idx = Vec::<i64>::try_from(&batch.indices).expect("indices");
    let mut relabelled = 0;
    for (row, &i) in idx.iter().enumerate() {
        let (t, ach, goal, next_goal) = (obs[3 * row], next[3 * row + 1], obs[3 * row + 2], next[3 * row + 2]);
        assert_eq!(goal, next_goal, "obs and next obs carry the same goal");
        if i % 2 == 0 || goal == 99.0 {
            assert_eq!((rew[row], done[row]), (-1.0, 0.0));
            continue;
        }
        relabelled += 1;
        // future: a goal achieved at this step or later in env 1's episode (11..=14).
        assert!(goal >= 10.0 + t + 1.0 && goal <= 14.0, "t {t}: goal {goal}");
        let hit = goal == ach;
        assert_eq!((rew[row], done[row]), if hit { (0.0, 1.0) } else { (-1.0, 0.0) });
    }
    let env1 = idx.iter().filter(|&&i| i % 2 == 1).count();
    let frac = f64::from(relabelled) / env1 as f64;
    assert!((frac - 0.8).abs() < 0.05, "k = 4 relabels 80% of finished-episode samples, got {frac}");
    assert!(r.sample(4, None).expect_err("no oracle").contains("goal-env"));
}

#[test]
fn a_saved_buffer_loads_identically() {
    let _rng = crate::learner::torch_rng_lock();
    let mut s = spec(1, 16);
    s.n_step = 2;
    s.prioritized = Some(PrioritizedSpec { alpha: 0.6, beta: 0.4, beta_final: 1.0, beta_samples: 10, epsilon: 1e-6 });
    let mut r = Replay::new("r", &s, Device::Cpu, Ok(())).expect("new");
    for t in 0..7 {
        add_step(&mut r, t as f32, false, false);
    }
    r.update_priorities(&Tensor::from_slice(&[1i64, 3]), &Tensor::from_slice(&[2.0f32, 0.3])).expect("priorities");
    let dir = tempfile::tempdir().expect("tempdir");
    r.save(dir.path(), "replay-0").expect("save");
    let mut back = Replay::load(dir.path(), "replay-0", "r", Device::Cpu, Ok(())).expect("load");
    assert!(back.has_spec(&s));
    // One more step completes the pending n-step transition in both; then both sample the same.
    add_step(&mut r, 7.0, false, false);
    add_step(&mut back, 7.0, false, false);
    assert_eq!(r.len(), back.len());
    tch::manual_seed(1);
    let a = r.sample(64, None).expect("sample");
    tch::manual_seed(1);
    let b2 = back.sample(64, None).expect("sample");
    for (x, y) in [(&a.observations, &b2.observations), (&a.rewards, &b2.rewards), (&a.weights, &b2.weights), (&a.indices, &b2.indices)] {
        assert!(x.equal(y), "{x:?} vs {y:?}");
    }
}
