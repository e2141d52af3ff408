//! The vectorized env set: determinism (same seed, same trajectories, whatever the number
//! of workers), autoreset with final observations, snapshots, and the reward plugin.

use crate::common;

use paddock::envset::{EnvSet, EnvSetError, EnvSetOptions, VecStep};
use paddock::runtime::{RewardInstance, World};
use paddock::seed::Stream;
use paddock::spaces::sample;
use rand::SeedableRng;

fn options(num_envs: usize, workers: usize, seed: u64) -> EnvSetOptions {
    EnvSetOptions { num_envs, workers, seed, stream: Stream::Env, params: Vec::new(), robots: Default::default() }
}

fn envset(name: &str, opts: &EnvSetOptions) -> EnvSet {
    let plugin = common::runtime().load(common::plugin(name), World::Environment).expect("load");
    EnvSet::new(&plugin, opts).expect("env set")
}

/// Steps with seeded random actions; returns every step.
fn rollout(set: &mut EnvSet, steps: usize, action_seed: u64) -> (Vec<f32>, Vec<VecStep>) {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(action_seed);
    let first = set.reset().expect("reset");
    let space = set.spec().action_space.clone();
    let mut actions = vec![0.0; set.num_envs() * set.act_len()];
    let out = (0..steps)
        .map(|_| {
            for a in actions.chunks_exact_mut(set.act_len()) {
                sample(&space, &mut rng, a);
            }
            set.step(&actions).expect("step")
        })
        .collect();
    (first, out)
}

#[test]
fn same_seed_same_trajectories_whatever_the_workers() {
    for name in ["cartpole", "pendulum", "acrobot", "mountain-car-continuous"] {
        let (a0, a) = rollout(&mut envset(name, &options(6, 1, 11)), 300, 5);
        let mut three = envset(name, &options(6, 3, 11));
        assert_eq!(three.num_shards(), 3);
        let (b0, b) = rollout(&mut three, 300, 5);
        assert_eq!(a0, b0, "{name}: first observations");
        assert!(a == b, "{name}: 1 worker and 3 workers disagree");
        let (c0, _) = rollout(&mut envset(name, &options(6, 1, 12)), 1, 5);
        assert_ne!(a0, c0, "{name}: another seed should give other initial states");
    }
}

#[test]
fn autoreset_hands_back_the_final_observation() {
    let mut set = envset("cartpole", &options(4, 1, 3));
    let (_, steps) = rollout(&mut set, 400, 9);
    let mut ended = 0;
    for s in &steps {
        let mut finals = s.ended.iter().zip(s.final_observations.chunks_exact(4));
        assert_eq!(s.final_observations.len(), s.ended.len() * 4);
        for i in 0..4 {
            if s.terminated[i] || s.truncated[i] {
                ended += 1;
                let (env, fin) = finals.next().expect("a final observation for each ended env");
                assert_eq!(*env as usize, i);
                // CartPole terminates outside ±2.4 m or ±12°: the final observation is
                // outside, the reset one within ±0.05.
                assert!(fin[0].abs() > 2.4 || fin[2].abs() > 0.2094, "final {fin:?}");
                assert!(s.observations[i * 4..i * 4 + 4].iter().all(|x| x.abs() <= 0.05), "reset {:?}", &s.observations[i * 4..i * 4 + 4]);
            }
        }
        assert!(finals.next().is_none());
    }
    assert!(ended > 20, "random CartPole ends often; saw {ended}");
}

#[test]
fn snapshot_then_restore_replays_exactly() {
    let mut set = envset("acrobot", &options(5, 2, 4));
    rollout(&mut set, 50, 1);
    let obs = set.reset().expect("reset");
    let states = set.snapshot().expect("snapshot");
    let actions: Vec<f32> = (0..5).map(|i| (i % 3) as f32).collect();
    let first: Vec<VecStep> = (0..200).map(|_| set.step(&actions).expect("step")).collect();
    set.restore(&states, &obs).expect("restore");
    let second: Vec<VecStep> = (0..200).map(|_| set.step(&actions).expect("step")).collect();
    assert!(first == second, "restored run diverged");
}

#[test]
fn a_reward_plugin_replaces_the_env_reward() {
    let rt = common::runtime();
    let plugin = rt.load(common::plugin("cartpole"), World::Environment).expect("load");
    let mut set = EnvSet::new(&plugin, &options(8, 1, 2)).expect("env set");
    let reward_plugin = rt.load(common::plugin("cartpole-shaped"), World::Reward).expect("load reward");
    let reward = RewardInstance::new(&reward_plugin, 0, set.spec(), &Vec::new()).expect("reward init");
    set.set_reward(reward);
    let (_, steps) = rollout(&mut set, 200, 3);
    let mut saw_fail = false;
    for s in &steps {
        assert!(s.env_rewards.as_ref().expect("env rewards kept beside shaped ones").iter().all(|&r| r == 1.0));
        for i in 0..8 {
            if s.terminated[i] {
                assert_eq!(s.rewards[i], -1.0);
                saw_fail = true;
            } else {
                assert!(s.rewards[i] < 1.0 && s.rewards[i] > 0.0, "shaped reward {}", s.rewards[i]);
            }
        }
    }
    assert!(saw_fail);
}

#[test]
fn a_reward_plugin_refuses_an_env_it_cannot_score() {
    let rt = common::runtime();
    let set = envset("pendulum", &options(1, 1, 0));
    let reward_plugin = rt.load(common::plugin("cartpole-shaped"), World::Reward).expect("load reward");
    let err = RewardInstance::new(&reward_plugin, 0, set.spec(), &Vec::new()).expect_err("pendulum is not cartpole");
    assert!(err.to_string().contains("plugin `cartpole-shaped` failed in `init`") && err.to_string().contains("Pendulum-v1"), "{err}");
}

#[test]
fn shards_respect_the_plugins_batch_limit_and_bad_actions_are_refused() {
    // The hostile fixture hosts at most 64 envs per instance.
    let mut set = envset("hostile", &options(100, 1, 0));
    assert_eq!(set.num_shards(), 2);
    set.reset().expect("reset");
    let err = set.step(&[1.0; 99]).expect_err("wrong action count");
    assert!(matches!(err, EnvSetError::ActionCount { expected: 100, got: 99, .. }), "{err}");
    let mut actions = vec![1.0; 100];
    actions[70] = 7.0;
    let err = set.step(&actions).expect_err("action outside Discrete(2)");
    assert!(err.to_string().contains("invalid action: action 7 is not in Discrete(2)"), "{err}");
    let plugin = common::runtime().load(common::plugin("cartpole"), World::Environment).expect("load");
    let mut bad = options(1, 1, 0);
    bad.params = vec![("no-such-param".into(), paddock::runtime::bindings::types::Value::Int(1))];
    let err = EnvSet::new(&plugin, &bad).expect_err("unknown param");
    assert!(err.to_string().contains("unknown parameter `no-such-param`"), "{err}");
}

#[test]
fn a_new_env_version_takes_each_env_over_at_its_episode_boundary() {
    let plugin = common::runtime().load(common::plugin("cartpole"), World::Environment).expect("load");
    let (mut reference, mut swapped) = (envset("cartpole", &options(6, 2, 4)), envset("cartpole", &options(6, 2, 4)));
    let acrobot = common::runtime().load(common::plugin("acrobot"), World::Environment).expect("load");
    let err = swapped.begin_swap(&acrobot).expect_err("other spaces are refused").to_string();
    assert!(err.contains("other spaces") && err.contains("Box"), "{err}");
    assert!(swapped.swapping().is_none(), "a refused version changes nothing");

    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
    let mut actions = vec![0.0; 6];
    assert_eq!(reference.reset().expect("reset"), swapped.reset().expect("reset"));
    let mut step = |a: &mut EnvSet, b: &mut EnvSet| {
        for x in actions.iter_mut() {
            *x = rand::RngExt::random_range(&mut rng, 0..2) as f32;
        }
        (a.step(&actions).expect("step"), b.step(&actions).expect("step"))
    };
    for _ in 0..5 {
        let (a, b) = step(&mut reference, &mut swapped);
        assert!(a == b);
    }
    swapped.begin_swap(&plugin).expect("same spaces: accepted");
    assert_eq!(swapped.swapping(), Some((0, 6)));
    let mut moved = [false; 6];
    let mut snapshots_during_swap = 0;
    for _ in 0..2000 {
        let (a, b) = step(&mut reference, &mut swapped);
        for (i, moved) in moved.iter_mut().enumerate() {
            if *moved {
                continue;
            }
            // Until its episode ends, env i is the old version's, step for step.
            assert_eq!(a.rewards[i], b.rewards[i]);
            assert_eq!((a.terminated[i], a.truncated[i]), (b.terminated[i], b.truncated[i]));
            if a.ended.contains(&(i as u32)) {
                let k = a.ended.iter().position(|&e| e == i as u32).expect("ended");
                let kb = b.ended.iter().position(|&e| e == i as u32).expect("ended in both");
                assert_eq!(a.final_observations[k * 4..k * 4 + 4], b.final_observations[kb * 4..kb * 4 + 4], "env {i}: final observation");
                *moved = true;
            } else {
                assert_eq!(a.observations[i * 4..i * 4 + 4], b.observations[i * 4..i * 4 + 4], "env {i}: observation");
            }
        }
        let count = moved.iter().filter(|&&m| m).count();
        match swapped.swapping() {
            Some((m, 6)) => {
                assert_eq!(m, count, "envs move exactly at their episode boundaries");
                assert_eq!(swapped.snapshot().expect("snapshot during a swap").len(), 6);
                snapshots_during_swap += 1;
            }
            None => {
                assert_eq!(count, 6, "the swap ends when every env has moved");
                break;
            }
            other => panic!("unexpected progress {other:?}"),
        }
    }
    assert!(swapped.swapping().is_none(), "every env moved within 2000 steps");
    assert!(snapshots_during_swap > 0);
    // The new version goes on stepping every env by itself.
    let (_, b) = step(&mut reference, &mut swapped);
    assert_eq!(b.observations.len(), 24);
}
