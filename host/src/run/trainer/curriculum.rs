//! Env parameters that change while a run goes on: the config's `[[curriculum]]` stages
//! and a hook's [`Directive::SetEnvParams`](crate::run::Directive). A change begins at a
//! safe point (right after an update or an evaluation): each training env takes the new
//! parameters at its next episode boundary ([`EnvSet::begin_params`]), the evaluation
//! envs are built afresh on them (they serve from the next evaluation), and the goal
//! oracle follows. The parameters in effect, the stages begun and a change still waiting
//! are in the loop state, so every checkpoint holds them: a resume builds its envs with
//! them, and `paddock eval` evaluates on them. A change asked for while the envs are
//! still taking over another (a hot-reloaded version, or the previous change) waits for
//! it to end; checkpoints wait too, so a checkpoint's envs are all on one version and one
//! set of parameters.

use super::{Cause, Trainer};
use crate::config::{Trigger, merged, shown_params as shown, to_params};
use crate::envset::{EnvSet, EnvSetOptions};
use crate::run::hooks::Evaluation;
use crate::run::setup::attach_goal_oracle;
use anyhow::Context;

impl Trainer<'_> {
    /// At a safe point (right after an update, `eval` = `None`, or after an evaluation):
    /// begins the next `[[curriculum]]` stage when its trigger holds (one stage per call,
    /// so an evaluation counts only for the stage after the one in effect when it ran),
    /// and after an update a change that was waiting, once the envs are free.
    pub(super) fn advance_curriculum(&mut self, eval: Option<&Evaluation>) -> anyhow::Result<()> {
        let i = self.st.curriculum_next;
        if let Some(stage) = self.config.curriculum.get(i) {
            let due = match (stage.trigger(), eval) {
                (Trigger::Step(at), None) => self.st.steps >= at,
                (Trigger::EvalSuccess(x), Some(e)) => e.success_rate.is_some_and(|r| r >= x),
                (Trigger::EvalReturn(x), Some(e)) => e.mean >= x,
                _ => false,
            };
            if due {
                self.st.curriculum_next += 1;
                return self.change_env_params(stage.params.clone(), Cause::Stage(i));
            }
        }
        if eval.is_none()
            && self.envs.swapping().is_none()
            && let Some(waiting) = self.st.env_params_pending.take()
        {
            self.begin_env_params(&waiting, None)?;
        }
        Ok(())
    }

    /// Sets `changes` over the env parameters in effect: now, or once the change the envs
    /// are taking over has ended.
    pub(in crate::run) fn change_env_params(&mut self, changes: toml::Table, cause: Cause) -> anyhow::Result<()> {
        if let Some((moved, n)) = self.envs.swapping() {
            let waiting = merged(&self.st.env_params_pending.take().unwrap_or_default(), &changes);
            self.st.env_params_pending = Some(waiting);
            let msg = format!(
                "env parameters from {cause} ({}) wait at step {}: the envs are still taking over a change ({moved} of {n} moved)",
                shown(&changes),
                self.st.steps
            );
            self.ticker.log.line(crate::log::Level::Info, "host", &msg);
            return Ok(());
        }
        self.begin_env_params(&changes, Some(cause))
    }

    fn begin_env_params(&mut self, changes: &toml::Table, cause: Option<Cause>) -> anyhow::Result<()> {
        let cause_shown = cause.map_or_else(|| "a change that waited".to_string(), |c| c.to_string());
        let table = merged(self.st.env_table(self.config), changes);
        let refused = || format!("env parameters from {cause_shown} ({}) at step {}", shown(changes), self.st.steps);
        let params = to_params("env.params", &table).with_context(refused)?;
        self.envs.begin_params(&params).with_context(refused)?;
        // The evaluation envs are idle between evaluations: a fresh set on the new parameters.
        let opts = EnvSetOptions { params: params.clone(), ..self.eval_envs.options().clone() };
        self.eval_envs = EnvSet::new(self.envs.plugin(), &opts).with_context(refused)?;
        self.eval_snapshot = None;
        let reward = self.config.reward.as_ref().map(|r| r.plugin.as_path());
        attach_goal_oracle(self.algo.learner_mut(), self.envs.plugin(), self.config.seed, &params, reward)?;
        self.st.env_params = Some(table);
        self.params_began = Some(self.st.steps);
        let msg = format!(
            "env parameters {} from {cause_shown} take each env over at its next episode boundary from step {}",
            shown(changes),
            self.st.steps
        );
        self.ticker.log.line(crate::log::Level::Info, "host", &msg);
        let mut line = serde_json::Map::new();
        line.insert("step".into(), self.st.steps.into());
        if let Some(Cause::Stage(i)) = cause {
            line.insert("curriculum/stage".into(), (i + 1).into());
        }
        for (k, v) in changes {
            let x = match v {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(x) => *x,
                toml::Value::Boolean(b) => f64::from(u8::from(*b)),
                _ => continue,
            };
            line.insert(format!("env_params/{k}"), x.into());
        }
        self.metrics.write(line)
    }

    /// After an env step: logs the end of a change of parameters once every env has it.
    pub(super) fn params_progress(&mut self, step: u64) {
        if self.envs.swapping().is_none()
            && let Some(began) = self.params_began.take()
        {
            let msg = format!("env parameters serve all {} envs from step {step} (the change began at step {began})", self.envs.num_envs());
            self.ticker.log.line(crate::log::Level::Info, "host", &msg);
        }
    }

    /// Before the final checkpoint: says so when some envs are still mid-episode on the
    /// old version or parameters (a resume runs their episodes on under the new ones).
    pub(super) fn note_unfinished_change(&self) {
        if let Some((moved, n)) = self.envs.swapping() {
            let msg = format!(
                "the final checkpoint at step {} holds {} of {n} envs mid-episode on the previous version or parameters: a resume from it runs those episodes on under the new ones",
                self.st.steps,
                n - moved
            );
            self.ticker.log.line(crate::log::Level::Warn, "host", &msg);
        }
    }
}
