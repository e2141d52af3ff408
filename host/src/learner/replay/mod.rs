//! Host-owned, named replay buffers (`paddock:rl/tensor.replay`).
//!
//! Storage is one preallocated tensor per field on the learner's device; the bookkeeping
//! (n-step queues, priorities, episode positions) is plain Rust on the CPU.
//!
//! - **Uniform** sampling with replacement from libtorch's seeded CPU generator (the
//!   training loop reseeds it at every update, so sampling is reproducible and resumes
//!   exactly).
//! - **Prioritized** replay, proportional variant (Schaul, Quan, Antonoglou & Silver,
//!   "Prioritized Experience Replay", ICLR 2016): priorities `p^α` in a sum-tree, stratified
//!   sampling (one draw per equal segment of the total), importance weights
//!   `(N · P(i))^-β / max_batch`, β annealed linearly; new transitions get the largest
//!   priority seen so far.
//! - **n-step** returns: each env's last n steps wait in a queue; a stored transition holds
//!   `Σ γ^k r_k`, the observation after the last step it covers, `done` if that step
//!   terminated, and the discount `γ^m` for its bootstrap (m ≤ n steps covered).
//! - **Hindsight** relabeling (Andrychowicz et al., "Hindsight Experience Replay", NeurIPS
//!   2017) at sampling time: a fraction `k/(k+1)` of a batch gets its desired goal replaced
//!   by a goal achieved in the same episode (future/final/episode strategy), and its reward
//!   and termination recomputed by the env's `goal-env.compute-outcomes` ([`GoalOracle`]).
//!   With hindsight every `add` writes exactly one row per env, so env `e`'s transition `k`
//!   steps later sits `k · num_envs` positions further on.

use super::spec::{Dtype, ReplaySpec};
use super::{cpu_f32, cpu_f64};
use std::collections::VecDeque;
use tch::{Device, Kind, Tensor};

mod her;
mod saved;
mod sumtree;
use sumtree::SumTree;

/// Handle a plugin holds for a replay buffer: its name.
#[derive(Debug)]
pub struct ReplayRes(pub(crate) String);

/// Recomputes rewards for relabelled goals: the env's `goal-env` on an instance of its own.
pub trait GoalOracle: Send {
    /// `(observation-len, goal-len)` of the flat observation `[obs, achieved, desired]`.
    fn layout(&self) -> (usize, usize);
    /// `(reward, terminated)` for each `achieved[i]` (after the step) against `desired[i]`.
    fn outcomes(&mut self, achieved: &[f32], desired: &[f32]) -> Result<Vec<(f64, bool)>, String>;
}

/// A sampled batch (see `replay-batch` in `wit/tensor.wit`).
#[derive(Debug)]
pub struct Batch {
    /// `[b, ol]`.
    pub observations: Tensor,
    /// `[b, al]`.
    pub actions: Tensor,
    /// `[b]`.
    pub rewards: Tensor,
    /// `[b, ol]`.
    pub next_observations: Tensor,
    /// `[b]` 0/1.
    pub dones: Tensor,
    /// `[b]` γ^m.
    pub discounts: Tensor,
    /// `[b]` importance weights.
    pub weights: Tensor,
    /// `[b]` int64 positions.
    pub indices: Tensor,
}

/// One env step waiting in an n-step queue.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    obs: Vec<f32>,
    action: Vec<f64>,
    reward: f64,
    next_obs: Vec<f32>,
    terminated: bool,
}

/// What `replay.json` in a checkpoint holds beside the tensors in `replay.pt`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    spec: ReplaySpec,
    pos: usize,
    len: usize,
    samples: u64,
    max_priority: f64,
    next_episode: i64,
    pending: Vec<VecDeque<Pending>>,
    env_episode: Vec<(i64, i64)>,
}

/// One named replay buffer.
#[derive(Debug)]
pub struct Replay {
    spec: ReplaySpec,
    device: Device,
    observations: Tensor,
    actions: Tensor,
    rewards: Tensor,
    next_observations: Tensor,
    dones: Tensor,
    discounts: Tensor,
    pos: usize,
    len: usize,
    /// `sample` calls so far (β annealing).
    samples: u64,
    tree: Option<SumTree>,
    max_priority: f64,
    pending: Vec<VecDeque<Pending>>,
    /// Hindsight bookkeeping per position: episode id (-1: none), index in the episode,
    /// episode length (0 while the episode goes on).
    ep_id: Vec<i64>,
    ep_index: Vec<i64>,
    ep_len: Vec<i64>,
    /// Per env: (current episode id, steps so far).
    env_episode: Vec<(i64, i64)>,
    next_episode: i64,
}

fn action_kind(d: Dtype) -> Kind {
    match d {
        Dtype::Int64 => Kind::Int64,
        Dtype::Float64 => Kind::Double,
        Dtype::Boolean => Kind::Bool,
        Dtype::Float32 => Kind::Float,
    }
}

impl Replay {
    /// An empty buffer per `spec` on `device`; `name` is for messages.
    /// `oracle` says whether hindsight relabeling can get rewards in this run (and why not).
    pub fn new(name: &str, spec: &ReplaySpec, device: Device, oracle: Result<(), String>) -> Result<Self, String> {
        let (cap, n) = (spec.capacity as usize, spec.num_envs as usize);
        if cap == 0 || n == 0 || spec.observation_len == 0 || spec.action_len == 0 {
            return Err(format!("replay `{name}`: capacity, num-envs, observation-len and action-len must be positive ({spec:?})"));
        }
        if spec.n_step == 0 {
            return Err(format!("replay `{name}`: n-step must be at least 1"));
        }
        if cap < n {
            return Err(format!("replay `{name}`: capacity {cap} is smaller than one step of the {n} envs"));
        }
        if !(0.0..=1.0).contains(&spec.gamma) {
            return Err(format!("replay `{name}`: gamma must be in [0, 1], got {}", spec.gamma));
        }
        if let Some(p) = &spec.prioritized
            && (p.alpha < 0.0 || p.beta < 0.0 || p.beta_final < 0.0 || p.epsilon <= 0.0)
        {
            return Err(format!("replay `{name}`: prioritized alpha/beta must be ≥ 0 and epsilon > 0 ({p:?})"));
        }
        if spec.hindsight.is_some() {
            if spec.n_step > 1 {
                return Err(format!("replay `{name}`: hindsight relabeling cannot be combined with n-step > 1"));
            }
            if let Err(why) = oracle {
                return Err(format!("replay `{name}`: hindsight relabeling {why}"));
            }
        }
        let (ol, al) = (i64::from(spec.observation_len), i64::from(spec.action_len));
        let c = cap as i64;
        let f = (Kind::Float, device);
        let her = spec.hindsight.is_some();
        Ok(Replay {
            observations: Tensor::zeros([c, ol], f),
            actions: Tensor::zeros([c, al], (action_kind(spec.action_dtype), device)),
            rewards: Tensor::zeros([c], f),
            next_observations: Tensor::zeros([c, ol], f),
            dones: Tensor::zeros([c], f),
            discounts: Tensor::zeros([c], f),
            pos: 0,
            len: 0,
            samples: 0,
            tree: spec.prioritized.as_ref().map(|_| SumTree::new(cap)),
            max_priority: 1.0,
            pending: vec![VecDeque::new(); n],
            ep_id: if her { vec![-1; cap] } else { Vec::new() },
            ep_index: if her { vec![0; cap] } else { Vec::new() },
            ep_len: if her { vec![0; cap] } else { Vec::new() },
            env_episode: (0..n as i64).map(|e| (e, 0)).collect(),
            next_episode: n as i64,
            spec: *spec,
            device,
        })
    }

    /// Whether `spec` is this buffer's spec.
    pub fn has_spec(&self, spec: &ReplaySpec) -> bool {
        self.spec == *spec
    }

    /// Its spec.
    pub fn spec(&self) -> &ReplaySpec {
        &self.spec
    }

    /// Transitions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds one step of every env (tensors as `algo.observe` gets them).
    pub fn add(
        &mut self,
        obs: &Tensor,
        actions: &Tensor,
        rewards: &Tensor,
        next_obs: &Tensor,
        terminated: &Tensor,
        truncated: &Tensor,
    ) -> Result<(), String> {
        let (n, ol, al) = (self.spec.num_envs as usize, self.spec.observation_len as usize, self.spec.action_len as usize);
        let check = |what: &str, t: &Tensor, want: usize| {
            if t.numel() != want || t.size().first().copied() != Some(n as i64) {
                Err(format!("replay.add: `{what}` has shape {:?}, expected [{n}{}]", t.size(), if want == n { "" } else { ", …" }))
            } else {
                Ok(())
            }
        };
        check("observations", obs, n * ol)?;
        check("actions", actions, n * al)?;
        check("rewards", rewards, n)?;
        check("next-observations", next_obs, n * ol)?;
        check("terminated", terminated, n)?;
        check("truncated", truncated, n)?;
        let flags = |t: &Tensor| -> Result<Vec<bool>, String> { Ok(cpu_f32(t)?.iter().map(|&x| x != 0.0).collect()) };
        if self.spec.n_step == 1 {
            // Rows go straight from the device tensors into storage (`terminated` is the
            // `dones` column); the flags are read back only for hindsight's episode tracking.
            let idx: Vec<i64> = (0..n).map(|i| ((self.pos + i) % self.spec.capacity as usize) as i64).collect();
            let discounts = Tensor::full([n as i64], self.spec.gamma, (Kind::Float, Device::Cpu));
            self.write_rows(&idx, obs, actions, rewards, next_obs, terminated, &discounts)?;
            let (term, trunc) =
                if self.spec.hindsight.is_some() { (flags(terminated)?, flags(truncated)?) } else { (Vec::new(), Vec::new()) };
            self.after_write(&idx, &term, &trunc);
            return Ok(());
        }
        let (term, trunc) = (flags(terminated)?, flags(truncated)?);
        let (o, a, r, no) = (cpu_f32(obs)?, cpu_f64(actions)?, cpu_f64(rewards)?, cpu_f32(next_obs)?);
        let mut out: Vec<(Pending, usize)> = Vec::new();
        let nstep = self.spec.n_step as usize;
        for e in 0..n {
            let q = &mut self.pending[e];
            q.push_back(Pending {
                obs: o[e * ol..(e + 1) * ol].to_vec(),
                action: a[e * al..(e + 1) * al].to_vec(),
                reward: r[e],
                next_obs: no[e * ol..(e + 1) * ol].to_vec(),
                terminated: term[e],
            });
            if q.len() == nstep {
                out.push(fold(q, self.spec.gamma));
                q.pop_front();
            }
            if term[e] || trunc[e] {
                while !q.is_empty() {
                    out.push(fold(q, self.spec.gamma));
                    q.pop_front();
                }
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let k = out.len();
        let idx: Vec<i64> = (0..k).map(|i| ((self.pos + i) % self.spec.capacity as usize) as i64).collect();
        let cat_f32 = |f: &dyn Fn(&Pending) -> &[f32], w: usize| {
            Tensor::from_slice(&out.iter().flat_map(|(p, _)| f(p).iter().copied()).collect::<Vec<f32>>()).reshape([k as i64, w as i64])
        };
        let obs_rows = cat_f32(&|p| &p.obs, ol);
        let next_rows = cat_f32(&|p| &p.next_obs, ol);
        let act_rows = Tensor::from_slice(&out.iter().flat_map(|(p, _)| p.action.iter().copied()).collect::<Vec<f64>>())
            .reshape([k as i64, al as i64]);
        let rew = Tensor::from_slice(&out.iter().map(|(p, _)| p.reward as f32).collect::<Vec<_>>());
        let dones = Tensor::from_slice(&out.iter().map(|(p, _)| f32::from(u8::from(p.terminated))).collect::<Vec<_>>());
        let disc = Tensor::from_slice(&out.iter().map(|(_, m)| self.spec.gamma.powi(*m as i32) as f32).collect::<Vec<_>>());
        self.write_rows(&idx, &obs_rows, &act_rows, &rew, &next_rows, &dones, &disc)?;
        self.after_write(&idx, &[], &[]);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn write_rows(
        &mut self,
        idx: &[i64],
        obs: &Tensor,
        actions: &Tensor,
        rewards: &Tensor,
        next_obs: &Tensor,
        dones: &Tensor,
        discounts: &Tensor,
    ) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        let (k, d) = (idx.len() as i64, self.device);
        let index = Tensor::from_slice(idx).to_device(d);
        let (ol, al) = (i64::from(self.spec.observation_len), i64::from(self.spec.action_len));
        let ak = self.actions.kind();
        let fields: [(&str, &mut Tensor, &Tensor, Option<i64>, Kind); 6] = [
            ("observations", &mut self.observations, obs, Some(ol), Kind::Float),
            ("actions", &mut self.actions, actions, Some(al), ak),
            ("rewards", &mut self.rewards, rewards, None, Kind::Float),
            ("next-observations", &mut self.next_observations, next_obs, Some(ol), Kind::Float),
            ("dones", &mut self.dones, dones, None, Kind::Float),
            ("discounts", &mut self.discounts, discounts, None, Kind::Float),
        ];
        for (what, dst, src, width, kind) in fields {
            let shape: Vec<i64> = width.map_or_else(|| vec![k], |w| vec![k, w]);
            let _ = src
                .f_detach()
                .and_then(|t| t.f_to_device(d))
                .and_then(|t| t.f_to_kind(kind))
                .and_then(|t| t.f_reshape(&shape))
                .and_then(|rows| dst.f_index_copy_(0, &index, &rows))
                .map_err(|err| format!("replay.add: `{what}`: {err}"))?;
        }
        Ok(())
    }

    /// Priorities and hindsight bookkeeping for rows just written at `idx` (the per-env
    /// `terminated`/`truncated` flags are read only with hindsight).
    fn after_write(&mut self, idx: &[i64], terminated: &[bool], truncated: &[bool]) {
        let cap = self.spec.capacity as usize;
        if let (Some(tree), Some(p)) = (&mut self.tree, &self.spec.prioritized) {
            for &i in idx {
                tree.set(i as usize, self.max_priority.powf(p.alpha));
            }
        }
        if self.spec.hindsight.is_some() {
            let n = self.spec.num_envs as usize;
            for (e, &i) in idx.iter().enumerate().take(n) {
                let i = i as usize;
                let (ep, t) = self.env_episode[e];
                self.ep_id[i] = ep;
                self.ep_index[i] = t;
                self.ep_len[i] = 0;
                if terminated[e] || truncated[e] {
                    let len = t + 1;
                    for back in 0..len {
                        let q = (i + cap * (len as usize) - (back as usize) * n) % cap;
                        if self.ep_id[q] == ep {
                            self.ep_len[q] = len;
                        }
                    }
                    self.env_episode[e] = (self.next_episode, 0);
                    self.next_episode += 1;
                } else {
                    self.env_episode[e].1 = t + 1;
                }
            }
        }
        self.pos = (self.pos + idx.len()) % cap;
        self.len = (self.len + idx.len()).min(cap);
    }

    /// Draws `b` transitions; `oracle` recomputes rewards for hindsight relabeling.
    pub fn sample(&mut self, b: usize, oracle: Option<&mut (dyn GoalOracle + '_)>) -> Result<Batch, String> {
        if self.len == 0 {
            return Err("replay.sample: the buffer is empty".into());
        }
        if b == 0 {
            return Err("replay.sample: batch size must be positive".into());
        }
        let _guard = tch::no_grad_guard();
        let (indices, weights): (Vec<i64>, Vec<f32>) = match (&self.tree, &self.spec.prioritized) {
            (Some(tree), Some(p)) => {
                let frac = if p.beta_samples == 0 { 1.0 } else { (self.samples as f64 / p.beta_samples as f64).min(1.0) };
                let beta = p.beta + (p.beta_final - p.beta) * frac;
                let draws = Vec::<f64>::try_from(Tensor::rand([b as i64], (Kind::Double, Device::Cpu))).map_err(|e| e.to_string())?;
                let (total, seg) = (tree.total(), tree.total() / b as f64);
                let mut idx = Vec::with_capacity(b);
                let mut w = Vec::with_capacity(b);
                for (k, u) in draws.into_iter().enumerate() {
                    let i = tree.find(((k as f64 + u) * seg).min(total * (1.0 - 1e-12))).min(self.len - 1);
                    let prob = tree.get(i) / total;
                    idx.push(i as i64);
                    w.push((self.len as f64 * prob).powf(-beta));
                }
                let max = w.iter().copied().fold(f64::MIN, f64::max);
                (idx, w.into_iter().map(|x| (x / max) as f32).collect())
            }
            _ => {
                let idx = Vec::<i64>::try_from(Tensor::randint(self.len as i64, [b as i64], (Kind::Int64, Device::Cpu)))
                    .map_err(|e| e.to_string())?;
                (idx, vec![1.0; b])
            }
        };
        self.samples += 1;
        let d = self.device;
        let index = Tensor::from_slice(&indices).to_device(d);
        let pick = |t: &Tensor| t.index_select(0, &index);
        let mut batch = Batch {
            observations: pick(&self.observations),
            actions: pick(&self.actions),
            rewards: pick(&self.rewards),
            next_observations: pick(&self.next_observations),
            dones: pick(&self.dones),
            discounts: pick(&self.discounts),
            weights: Tensor::from_slice(&weights).to_device(d),
            indices: index,
        };
        if let Some(h) = &self.spec.hindsight {
            let oracle = oracle.ok_or("replay.sample: hindsight relabeling needs the env's goal-env, which this run lacks")?;
            self.relabel(&mut batch, &indices, h.strategy, h.k, oracle)?;
        }
        Ok(batch)
    }

    /// `p = (|δ| + ε)^α` for sampled positions.
    pub fn update_priorities(&mut self, indices: &Tensor, td_errors: &Tensor) -> Result<(), String> {
        let (Some(tree), Some(p)) = (&mut self.tree, &self.spec.prioritized) else {
            return Err("replay.update-priorities: this buffer samples uniformly (its spec has no `prioritized`)".into());
        };
        let idx = Vec::<i64>::try_from(indices.to_device(Device::Cpu).to_kind(Kind::Int64).flatten(0, -1)).map_err(|e| e.to_string())?;
        let err = cpu_f64(td_errors)?;
        if idx.len() != err.len() {
            return Err(format!("replay.update-priorities: {} indices but {} TD errors", idx.len(), err.len()));
        }
        for (&i, &e) in idx.iter().zip(&err) {
            if i < 0 || i as usize >= self.len {
                return Err(format!("replay.update-priorities: index {i} is outside the {} stored transitions", self.len));
            }
            if !e.is_finite() {
                return Err(format!("replay.update-priorities: TD error {e} for index {i}"));
            }
            let prio = e.abs() + p.epsilon;
            self.max_priority = self.max_priority.max(prio);
            tree.set(i as usize, prio.powf(p.alpha));
        }
        Ok(())
    }
}

/// The n-step transition starting at the front of `q` and covering all of `q`: its
/// discounted reward sum, the last step's next observation and termination, and the
/// number of steps it covers.
fn fold(q: &VecDeque<Pending>, gamma: f64) -> (Pending, usize) {
    let mut reward = 0.0;
    let mut g = 1.0;
    for p in q {
        reward += g * p.reward;
        g *= gamma;
    }
    let (first, last) = (&q[0], &q[q.len() - 1]);
    let folded = Pending {
        obs: first.obs.clone(),
        action: first.action.clone(),
        reward,
        next_obs: last.next_obs.clone(),
        terminated: last.terminated,
    };
    (folded, q.len())
}

#[cfg(test)]
mod tests;
