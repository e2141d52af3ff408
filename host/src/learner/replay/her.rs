//! Hindsight relabeling at sampling time (Andrychowicz et al., 2017): a fraction `k/(k+1)` of
//! a batch gets its desired goal replaced by one achieved later in the same episode (or at its
//! end, or anywhere in it), with reward and termination recomputed by the env's goal oracle.

use super::{Batch, GoalOracle, Replay};
use crate::learner::cpu_f32;
use crate::learner::spec::HindsightStrategy;
use tch::{Device, Kind, Tensor};

impl Replay {
    /// Relabels the rows of `batch` (drawn at `indices`) in place.
    pub(super) fn relabel(
        &self,
        batch: &mut Batch,
        indices: &[i64],
        strategy: HindsightStrategy,
        k: u32,
        oracle: &mut (dyn GoalOracle + '_),
    ) -> Result<(), String> {
        let (cap, n) = (self.spec.capacity as usize, self.spec.num_envs as usize);
        let (obs_len, goal_len) = oracle.layout();
        if obs_len + 2 * goal_len != self.spec.observation_len as usize {
            return Err(format!(
                "replay.sample: the env's goal layout ({obs_len} + 2 × {goal_len}) does not match observation-len {}",
                self.spec.observation_len
            ));
        }
        let p_relabel = f64::from(k) / (f64::from(k) + 1.0);
        let draws =
            Vec::<f64>::try_from(Tensor::rand([indices.len() as i64 * 2], (Kind::Double, Device::Cpu))).map_err(|e| e.to_string())?;
        // (row in batch, position of the transition whose achieved goal becomes the goal)
        let mut chosen: Vec<(i64, i64)> = Vec::new();
        for (row, &i) in indices.iter().enumerate() {
            let i = i as usize;
            let (len, t) = (self.ep_len[i], self.ep_index[i]);
            if self.ep_id[i] < 0 || len == 0 || draws[2 * row] >= p_relabel {
                continue;
            }
            let u = draws[2 * row + 1];
            let target_t = match strategy {
                HindsightStrategy::FutureGoal => t + ((u * (len - t) as f64) as i64).min(len - t - 1),
                HindsightStrategy::FinalGoal => len - 1,
                HindsightStrategy::EpisodeGoal => ((u * len as f64) as i64).min(len - 1),
            };
            let q = (i as i64 + (target_t - t) * n as i64).rem_euclid(cap as i64) as usize;
            if self.ep_id[q] != self.ep_id[i] {
                continue; // that part of the episode was overwritten
            }
            chosen.push((row as i64, q as i64));
        }
        if chosen.is_empty() {
            return Ok(());
        }
        let d = self.device;
        let rows = Tensor::from_slice(&chosen.iter().map(|c| c.0).collect::<Vec<_>>()).to_device(d);
        let sources = Tensor::from_slice(&chosen.iter().map(|c| c.1).collect::<Vec<_>>()).to_device(d);
        let (og, gl) = (obs_len as i64, goal_len as i64);
        let goals = self.next_observations.index_select(0, &sources).narrow(1, og, gl);
        let achieved = batch.next_observations.index_select(0, &rows).narrow(1, og, gl);
        let outcomes = oracle.outcomes(&cpu_f32(&achieved)?, &cpu_f32(&goals)?)?;
        if outcomes.len() != chosen.len() {
            return Err(format!("goal-env.compute-outcomes returned {} outcomes for {} transitions", outcomes.len(), chosen.len()));
        }
        let rewards = Tensor::from_slice(&outcomes.iter().map(|o| o.0 as f32).collect::<Vec<_>>()).to_device(d);
        let dones = Tensor::from_slice(&outcomes.iter().map(|o| f32::from(u8::from(o.1))).collect::<Vec<_>>()).to_device(d);
        let _ = batch.rewards.index_copy_(0, &rows, &rewards);
        let _ = batch.dones.index_copy_(0, &rows, &dones);
        for t in [&mut batch.observations, &mut batch.next_observations] {
            let mut part = t.narrow(1, og + gl, gl);
            let _ = part.index_copy_(0, &rows, &goals);
        }
        Ok(())
    }
}
