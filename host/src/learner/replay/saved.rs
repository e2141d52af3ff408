//! A replay buffer in a checkpoint: its tensors and its bookkeeping manifest.

use super::*;

impl Replay {
    /// Writes `replay-<k>.json` and `replay-<k>.pt` into `dir`.
    pub fn save(&self, dir: &std::path::Path, file_stem: &str) -> Result<(), String> {
        let manifest = Manifest {
            spec: self.spec,
            pos: self.pos,
            len: self.len,
            samples: self.samples,
            max_priority: self.max_priority,
            next_episode: self.next_episode,
            pending: self.pending.clone(),
            env_episode: self.env_episode.clone(),
        };
        let c = |t: &Tensor| t.narrow(0, 0, self.len as i64).to_device(Device::Cpu);
        let mut named: Vec<(&str, Tensor)> = vec![
            ("observations", c(&self.observations)),
            ("actions", c(&self.actions)),
            ("rewards", c(&self.rewards)),
            ("next_observations", c(&self.next_observations)),
            ("dones", c(&self.dones)),
            ("discounts", c(&self.discounts)),
        ];
        if let Some(tree) = &self.tree {
            named.push(("priorities", Tensor::from_slice(&tree.nodes[tree.size..tree.size + self.len])));
        }
        if self.spec.hindsight.is_some() {
            named.push(("ep_id", Tensor::from_slice(&self.ep_id)));
            named.push(("ep_index", Tensor::from_slice(&self.ep_index)));
            named.push(("ep_len", Tensor::from_slice(&self.ep_len)));
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (*n, t)).collect();
        let pt = dir.join(format!("{file_stem}.pt"));
        crate::learner::modules::save_tensors(&refs, &pt)?;
        let json = serde_json::to_string(&manifest).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{file_stem}.json"));
        std::fs::write(&path, json).map_err(|e| format!("failed to write {}: {e}", path.display()))
    }

    /// Reads a buffer written by [`Replay::save`].
    pub fn load(dir: &std::path::Path, file_stem: &str, name: &str, device: Device, oracle: Result<(), String>) -> Result<Self, String> {
        let path = dir.join(format!("{file_stem}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut r = Replay::new(name, &m.spec, device, oracle)?;
        let pt = dir.join(format!("{file_stem}.pt"));
        let tensors: std::collections::BTreeMap<String, Tensor> =
            Tensor::load_multi(&pt).map_err(|e| format!("failed to read {}: {e}", pt.display()))?.into_iter().collect();
        let take = |k: &str| tensors.get(k).ok_or_else(|| format!("{} lacks `{k}`", pt.display()));
        let _guard = tch::no_grad_guard();
        let len = m.len as i64;
        for (k, dst) in [
            ("observations", &mut r.observations),
            ("actions", &mut r.actions),
            ("rewards", &mut r.rewards),
            ("next_observations", &mut r.next_observations),
            ("dones", &mut r.dones),
            ("discounts", &mut r.discounts),
        ] {
            let src = take(k)?;
            if src.size().first().copied() != Some(len) {
                return Err(format!("{}: `{k}` has {:?} rows, expected {len}", pt.display(), src.size().first()));
            }
            dst.narrow(0, 0, len).copy_(&src.to_device(device));
        }
        if let Some(tree) = &mut r.tree {
            let p = Vec::<f64>::try_from(take("priorities")?).map_err(|e| e.to_string())?;
            for (i, v) in p.into_iter().enumerate() {
                tree.set(i, v);
            }
        }
        if m.spec.hindsight.is_some() {
            let v = |k: &str| -> Result<Vec<i64>, String> { Vec::<i64>::try_from(take(k)?).map_err(|e| e.to_string()) };
            (r.ep_id, r.ep_index, r.ep_len) = (v("ep_id")?, v("ep_index")?, v("ep_len")?);
        }
        (r.pos, r.len, r.samples, r.max_priority, r.next_episode) = (m.pos, m.len, m.samples, m.max_priority, m.next_episode);
        (r.pending, r.env_episode) = (m.pending, m.env_episode);
        Ok(r)
    }
}
