//! Bit flipping: the test task of Andrychowicz, Wolski, Ray, Schneider, Fong, Welinder,
//! McGrew, Tobin, Abbeel & Zaremba, "Hindsight Experience Replay" (NeurIPS 2017), §3.1.
//!
//! The state is `n` bits, the goal another `n` bits, both drawn uniformly at reset (the goal
//! drawn again if it equals the state). Action `i` flips bit `i`. The reward is −1 per step
//! until the state equals the goal, then 0 and the episode terminates; it is truncated
//! after `n` steps. With n = 15 a random or ε-greedy policy essentially never sees a reward
//! of 0, which defeats plain DQN; hindsight relabeling makes the task easy.
//!
//! A goal-conditioned env (world `goal-environment`): the flat observation is
//! `[state (n), achieved goal = state (n), desired goal (n)]`, and `goal-env` recomputes
//! the outcome of a transition for any goal. Info feature `is-success` (1 when the state
//! equals the goal).
//!
//! Parameters: `bits` (default 15, 1 … 64).

use paddock_sdk::space::{box1d, discrete, discrete_action};
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, GoalEnvironment, Params, Rng, Transition};

/// One bit-flipping env.
pub struct BitFlip {
    bits: u32,
    state: u64,
    goal: u64,
}

fn bits(params: &Params) -> Result<u32, PluginError> {
    params.check_known(&["bits"])?;
    let n = params.int("bits", 15)?;
    if !(1..=64).contains(&n) {
        return Err(PluginError::InvalidParams(format!("parameter `bits` must be in 1..=64, got {n}")));
    }
    Ok(n as u32)
}

fn random_bits(rng: &mut Rng, n: u32) -> u64 {
    let v = rng.next_u64();
    if n == 64 { v } else { v & ((1u64 << n) - 1) }
}

impl Environment for BitFlip {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        let n = bits(params)?;
        let len = 3 * n as usize;
        Ok(EnvSpec {
            id: format!("BitFlip-{n}-v0"),
            observation_space: box1d(&vec![0.0; len], &vec![1.0; len]),
            action_space: discrete(n),
            max_episode_steps: Some(n),
            info_features: vec!["is-success".into()],
            reward_threshold: None,
            max_envs_per_instance: 4096,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(BitFlip { bits: bits(params)?, state: 0, goal: 0 })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&[])?;
        self.state = random_bits(rng, self.bits);
        self.goal = random_bits(rng, self.bits);
        while self.goal == self.state {
            self.goal = random_bits(rng, self.bits);
        }
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        let i = discrete_action(action, self.bits)?;
        self.state ^= 1u64 << i;
        let success = self.state == self.goal;
        Ok(Transition { reward: if success { 0.0 } else { -1.0 }, terminated: success })
    }

    fn observe(&self, out: &mut [f32]) {
        let n = self.bits as usize;
        for i in 0..n {
            let s = ((self.state >> i) & 1) as f32;
            out[i] = s;
            out[n + i] = s;
            out[2 * n + i] = ((self.goal >> i) & 1) as f32;
        }
    }

    fn infos(&self, out: &mut [f64]) {
        out[0] = if self.state == self.goal { 1.0 } else { 0.0 };
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        out.extend_from_slice(&self.state.to_le_bytes());
        out.extend_from_slice(&self.goal.to_le_bytes());
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let (Ok(s), Ok(g)) = (<[u8; 8]>::try_from(state.get(..8).unwrap_or(&[])), <[u8; 8]>::try_from(state.get(8..).unwrap_or(&[])))
        else {
            return Err(PluginError::InvalidState(format!("bitflip state is 16 bytes, got {}", state.len())));
        };
        (self.state, self.goal) = (u64::from_le_bytes(s), u64::from_le_bytes(g));
        Ok(())
    }
}

impl GoalEnvironment for BitFlip {
    fn goal_layout(params: &Params) -> Result<(u32, u32), PluginError> {
        let n = bits(params)?;
        Ok((n, n))
    }

    fn outcome(_params: &Params, achieved: &[f32], desired: &[f32]) -> (f64, bool) {
        let success = achieved.iter().zip(desired).all(|(a, d)| (a > &0.5) == (d > &0.5));
        (if success { 0.0 } else { -1.0 }, success)
    }
}

#[cfg(target_arch = "wasm32")]
paddock_sdk::export_goal_env!(BitFlip);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_the_differing_bits_reaches_the_goal() {
        let p = [("bits".to_string(), paddock_sdk::types::Value::Int(8))];
        let params = Params::new(&p);
        let mut env = BitFlip::new(&params).expect("new");
        let mut rng = Rng::seed_from_u64(3);
        env.reset(&mut rng, &Params::empty()).expect("reset");
        let differing: Vec<u32> = (0..8).filter(|i| (env.state ^ env.goal) >> i & 1 == 1).collect();
        assert!(!differing.is_empty());
        let mut last = None;
        for (k, &i) in differing.iter().enumerate() {
            let t = env.step(&[i as f32], &mut rng).expect("step");
            assert_eq!(t.terminated, k + 1 == differing.len());
            last = Some(t.reward);
        }
        assert_eq!(last, Some(0.0));
        let mut obs = vec![0.0; 24];
        env.observe(&mut obs);
        assert_eq!(obs[8..16], obs[16..24], "achieved = desired at the goal");
        assert_eq!(BitFlip::outcome(&params, &obs[8..16], &obs[16..24]), (0.0, true));
        assert_eq!(BitFlip::outcome(&params, &obs[0..8], &[0.0; 8]).1, obs[0..8].iter().all(|&b| b == 0.0));
        assert!(env.step(&[8.0], &mut rng).is_err(), "action 8 of Discrete(8)");
    }
}
