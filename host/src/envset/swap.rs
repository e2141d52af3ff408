//! Changing an [`EnvSet`]'s envs over while it steps: a hot-reloaded version of the env
//! plugin ([`EnvSet::begin_swap`]) or new parameters ([`EnvSet::begin_params`]) take each
//! env over at its next episode boundary; the new instances step beside the old ones with
//! the same actions until every env has moved.

use super::{EnvSet, EnvSetError, EnvSetOptions, Shard, env_seeds};
use crate::runtime::bindings::types::{BatchStep, EnvSpec, Params};
use crate::runtime::{CallError, EnvInstance, Plugin};
use crate::seed::{Stream, derive};
use rand::SeedableRng;

/// The new version of a shard during an env swap: it is stepped beside the old one with the
/// same actions; env `i` is served by it from the first episode boundary of `i` after the
/// swap began (`moved[i]`), and the old instance goes once every env has moved.
pub(super) struct Incoming {
    pub(super) inst: EnvInstance,
    moved: Vec<bool>,
}

impl Shard {
    /// Steps the shard (and its incoming version, if any), moving envs whose episode ended
    /// to the incoming version, which resets them.
    pub(super) fn step(&mut self, actions: &[f32], ol: usize, il: usize) -> Result<BatchStep, CallError> {
        let old = self.inst.step_all(actions)?;
        let Some(inc) = &mut self.incoming else { return Ok(old) };
        let new = inc.inst.step_all(actions)?;
        let mut out = BatchStep {
            observations: Vec::with_capacity(old.observations.len()),
            rewards: Vec::with_capacity(self.len),
            infos: Vec::with_capacity(old.infos.len()),
            ended: Vec::new(),
            final_observations: Vec::new(),
        };
        let (mut oi, mut ni) = (0, 0);
        for i in 0..self.len {
            let src = if inc.moved[i] { &new } else { &old };
            out.rewards.push(src.rewards[i]);
            out.infos.extend_from_slice(&src.infos[i * il..(i + 1) * il]);
            let ended_old = old.ended.get(oi).filter(|e| e.env as usize == i).copied();
            let ended_new = new.ended.get(ni).filter(|e| e.env as usize == i).copied();
            oi += usize::from(ended_old.is_some());
            ni += usize::from(ended_new.is_some());
            let (ended, finals, k) =
                if inc.moved[i] { (ended_new, &new.final_observations, ni) } else { (ended_old, &old.final_observations, oi) };
            match ended {
                Some(e) => {
                    out.ended.push(e);
                    out.final_observations.extend_from_slice(&finals[(k - 1) * ol..k * ol]);
                    if !inc.moved[i] {
                        // The episode boundary: the new version takes this env over.
                        inc.moved[i] = true;
                        let first = inc.inst.reset(i as u32, None, &Vec::new())?;
                        out.observations.extend_from_slice(&first.observation);
                        continue;
                    }
                    out.observations.extend_from_slice(&new.observations[i * ol..(i + 1) * ol]);
                }
                None => out.observations.extend_from_slice(&src.observations[i * ol..(i + 1) * ol]),
            }
        }
        if inc.moved.iter().all(|&m| m) {
            let inc = self.incoming.take().expect("checked above");
            self.inst = inc.inst;
        }
        Ok(out)
    }

    /// Which instance serves env `i` of this shard now.
    pub(super) fn owner(&mut self, i: usize) -> &mut EnvInstance {
        match &mut self.incoming {
            Some(inc) if inc.moved[i] => &mut inc.inst,
            _ => &mut self.inst,
        }
    }
}

impl EnvSet {
    /// Starts handing the envs over to a new version of the env plugin (hot reload): each
    /// env moves at its next episode boundary (its ended episode is the old version's; the
    /// next one is the new version's), or all at once at the next [`EnvSet::reset`]. The
    /// new version must describe the same spaces and info features, and survive a trial
    /// `reset-all` and `step-all`; otherwise it is refused with the reason and nothing
    /// changes. Refused while a swap is under way.
    pub fn begin_swap(&mut self, plugin: &Plugin) -> Result<(), EnvSetError> {
        let params = self.opts.params.clone();
        let replaced = self.begin(plugin, &params, "the new version", false)?;
        self.undo = Some((std::mem::replace(&mut self.plugin, plugin.clone()), replaced));
        Ok(())
    }

    /// [`EnvSet::begin_swap`] for a set that moves all at once at its next reset (the
    /// evaluation envs, at the next evaluation): a version still waiting there, taken by no
    /// env yet, gives way to this one — and stays if this one is refused.
    pub fn begin_swap_replacing(&mut self, plugin: &Plugin) -> Result<(), EnvSetError> {
        let params = self.opts.params.clone();
        let replaced = self.begin(plugin, &params, "the new version", true)?;
        self.undo = Some((std::mem::replace(&mut self.plugin, plugin.clone()), replaced));
        Ok(())
    }

    /// Starts handing the envs over to new parameters of the same env plugin (a
    /// curriculum), as [`EnvSet::begin_swap`] does for a new version: each env takes them
    /// at its next episode boundary. Parameters the plugin refuses, or that change its
    /// spaces, are refused with the reason and nothing changes.
    pub fn begin_params(&mut self, params: &Params) -> Result<(), EnvSetError> {
        let plugin = self.plugin.clone();
        self.begin(&plugin, params, "the new parameters", false)?;
        self.undo = None;
        self.opts.params = params.clone();
        Ok(())
    }

    /// Starts a change; returns the pending swap it replaced (shard by shard), if any.
    fn begin(
        &mut self,
        plugin: &Plugin,
        params: &Params,
        what: &str,
        replace_unstarted: bool,
    ) -> Result<Vec<Option<Incoming>>, EnvSetError> {
        if let Some((moved, _)) = self.swapping()
            && (moved > 0 || !replace_unstarted)
        {
            return Err(EnvSetError::Options(format!(
                "a previous change is still taking the envs over ({} of {} envs moved); try again once it has",
                self.swapping().map_or(0, |p| p.0),
                self.num_envs
            )));
        }
        let mut incoming = Vec::with_capacity(self.shards.len());
        let mut rng = rand::rngs::SmallRng::seed_from_u64(derive(self.opts.seed, Stream::PluginRandom, 1 << 36));
        for (s, sh) in self.shards.iter().enumerate() {
            let mut inst = EnvInstance::new(plugin, derive(self.opts.seed, Stream::PluginRandom, (1 << 35) + s as u64))?;
            inst.grant_robots(self.opts.robots.clone());
            let spec = inst.init(params, &env_seeds(&self.opts, sh.first, sh.len))?;
            self.same_spaces(&spec, what)?;
            inst.reset_all()?;
            let mut actions = vec![0.0; sh.len * self.act_len];
            for a in actions.chunks_exact_mut(self.act_len.max(1)) {
                crate::spaces::sample(&self.spec.action_space, &mut rng, a);
            }
            inst.step_all(&actions)?;
            incoming.push(Incoming { inst, moved: vec![false; sh.len] });
        }
        Ok(self.shards.iter_mut().zip(incoming).map(|(sh, inc)| sh.incoming.replace(inc)).collect())
    }

    /// Refuses a `spec` (of `what`: a new version or new parameters) whose spaces or info
    /// features differ from the set's.
    pub fn same_spaces(&self, spec: &EnvSpec, what: &str) -> Result<(), EnvSetError> {
        if (&spec.observation_space, &spec.action_space, &spec.info_features)
            == (&self.spec.observation_space, &self.spec.action_space, &self.spec.info_features)
        {
            return Ok(());
        }
        Err(EnvSetError::Options(format!(
            "with {what}, `{}` describes other spaces or info features (observation {}, action {}, infos {:?}; the run has observation {}, action {}, infos {:?}); a run keeps its spaces, start a new run for this",
            spec.id,
            crate::spaces::describe(&spec.observation_space),
            crate::spaces::describe(&spec.action_space),
            spec.info_features,
            crate::spaces::describe(&self.spec.observation_space),
            crate::spaces::describe(&self.spec.action_space),
            self.spec.info_features
        )))
    }

    /// The newest version of the env plugin (the one taking over during a swap).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// How the set was made, with the newest parameters.
    pub fn options(&self) -> &EnvSetOptions {
        &self.opts
    }

    /// Abandons an env swap that has just begun, before any step (when a sibling set refused
    /// the same version): every env stays with the version it had, the set's newest version
    /// is the one before, and a pending swap the new one replaced is pending again. Returns
    /// whether there was one to cancel.
    pub fn cancel_swap(&mut self) -> bool {
        let mut any = false;
        let (plugin, replaced) = match self.undo.take() {
            Some((p, r)) => (Some(p), r),
            None => (None, Vec::new()),
        };
        let mut replaced = replaced.into_iter();
        for sh in &mut self.shards {
            any |= sh.incoming.take().is_some();
            sh.incoming = replaced.next().flatten();
        }
        if let Some(p) = plugin {
            self.plugin = p;
        }
        any
    }

    /// During an env swap: how many envs have moved to the new version, of how many.
    pub fn swapping(&self) -> Option<(usize, usize)> {
        let busy = self.shards.iter().any(|s| s.incoming.is_some());
        busy.then(|| {
            let moved = self.shards.iter().map(|s| s.incoming.as_ref().map_or(s.len, |i| i.moved.iter().filter(|&&m| m).count())).sum();
            (moved, self.num_envs)
        })
    }
}
