//! Hot reload in a running loop: new versions of the run's plugins (compiled and checked
//! on the [`PluginWatcher`]'s thread) wait here for their safe point.

use super::metrics::MetricsSink;
use super::setup::{attach_goal_oracle, lock_entry};
use crate::envset::EnvSet;
use crate::format::run_dir;
use crate::runtime::bindings::types::Params;
use crate::runtime::watcher::PluginWatcher;
use crate::runtime::{AlgorithmInstance, Plugin, RewardInstance};
use crate::seed::{Stream, derive};
use std::path::Path;
use std::time::Instant;
use tch::Tensor;

/// Where hot-reloaded versions of a run's plugins wait for their safe point, and what they
/// need to take over: a reward at the next step, the env at each env's next episode
/// boundary, the algorithm right after its next update (re-attached to its named
/// parameters and given its saved state). Every swap and refusal goes to the log, to
/// `metrics.jsonl` (`reload/<role>`, `reload/<role>_refused`) and, for swaps, to
/// `plugins.lock` with the step it went live.
pub(super) struct Reloads {
    pub watcher: Option<PluginWatcher>,
    /// An algorithm version waiting for the next update, and when its file changed.
    pub algorithm: Option<(Plugin, Instant, std::time::Duration)>,
    /// The env swap under way: when it began (step) and when its file changed.
    pub env_began: Option<(u64, Instant, String)>,
    pub reward_seed: u64,
    pub reward_params: Params,
    pub algo_params: Params,
    pub log: crate::log::RunLog,
    /// The last swap or refusal: what to say of it, and when it happened.
    pub last: Option<(String, Instant)>,
}

/// How long the progress line and `status.json` tell of the last swap or refusal.
const NEWS_FOR: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) struct ReloadCtx<'a> {
    pub run_dir: &'a Path,
    pub seed: u64,
    pub reward: Option<&'a Path>,
    pub step: u64,
}

/// A plugin file's change as [`Reloads::record`] reports it.
#[derive(Clone, Copy)]
struct Change<'a> {
    role: &'a str,
    path: &'a Path,
    /// When the change was first seen.
    seen: Instant,
    /// How long loading the new version took.
    load_time: std::time::Duration,
}

impl Reloads {
    /// What the progress line and the run's status say of hot reload now: a version being
    /// compiled, an algorithm waiting for the next update, or the last swap or refusal.
    pub(super) fn news(&self) -> Option<String> {
        if let Some((role, since)) = self.watcher.as_ref().and_then(PluginWatcher::compiling) {
            return Some(format!("new {role} plugin seen {:.1} s ago, compiling", since.as_secs_f64()));
        }
        if self.algorithm.is_some() {
            return Some("new algorithm plugin compiled; it takes over after the next update".into());
        }
        self.last.as_ref().filter(|(_, at)| at.elapsed() < NEWS_FOR).map(|(m, _)| m.clone())
    }

    fn record(
        &mut self,
        ctx: &ReloadCtx<'_>,
        change: Change<'_>,
        outcome: &anyhow::Result<Plugin>,
        what: &str,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let Change { role, path, seen, load_time } = change;
        let mut line = serde_json::Map::new();
        line.insert("step".into(), ctx.step.into());
        match outcome {
            Ok(p) => {
                let ms = seen.elapsed().as_secs_f64() * 1e3;
                self.last = Some((format!("new {role} plugin live {ms:.0} ms after its file changed"), Instant::now()));
                self.log.line(
                    crate::log::Level::Info,
                    "host",
                    &format!(
                        "hot reload: {role} plugin {} (sha256 {}) {what} from step {} ({ms:.0} ms after the change; loaded in {:.0} ms)",
                        path.display(),
                        &p.info().sha256[..12],
                        ctx.step,
                        load_time.as_secs_f64() * 1e3
                    ),
                );
                if let Err(e) = super::carry::carry_plugin(ctx.run_dir, &p.info().path, &p.info().name, &p.info().sha256) {
                    // The file changed again since it was loaded: the next change brings a version that travels.
                    self.log.line(
                        crate::log::Level::Warn,
                        "host",
                        &format!("hot reload: the run carries no copy of this {role} version: {e}"),
                    );
                }
                run_dir::append_lock(ctx.run_dir, lock_entry(role, p, ctx.step))?;
                line.insert(format!("reload/{role}"), 1.into());
                line.insert(format!("reload/{role}_ms"), ms.round().into());
            }
            Err(e) => {
                self.last = Some((format!("new {role} plugin refused (the log says why); the old one goes on"), Instant::now()));
                self.log.line(
                    crate::log::Level::Warn,
                    "host",
                    &format!("hot reload: refused the new {role} plugin {}, the run goes on with the old one: {e:#}", path.display()),
                );
                line.insert(format!("reload/{role}_refused"), 1.into());
            }
        }
        metrics.write(line)
    }

    /// Takes new versions from the watcher: swaps a reward in now, starts an env swap, and
    /// keeps an algorithm for the next update. Called before each env step.
    pub(super) fn poll(
        &mut self,
        ctx: &ReloadCtx<'_>,
        envs: &mut EnvSet,
        eval_envs: &mut EnvSet,
        algo: &mut AlgorithmInstance,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let Some(watcher) = &self.watcher else { return Ok(()) };
        for c in watcher.poll() {
            let loaded = c.plugin.map_err(anyhow::Error::from);
            let change = Change { role: c.role, path: &c.path, seen: c.seen, load_time: c.load_time };
            match c.role {
                "reward" => {
                    let outcome = loaded.and_then(|p| {
                        let new = RewardInstance::new(&p, self.reward_seed, envs.spec(), &self.reward_params)?;
                        envs.swap_reward(new).map_err(|(_, e)| anyhow::Error::from(e))?;
                        Ok(p)
                    });
                    self.record(ctx, change, &outcome, "is live", metrics)?;
                }
                "env" => {
                    let outcome = loaded.and_then(|p| {
                        envs.begin_swap(&p)?;
                        // The evaluation envs move at the next evaluation: a version still
                        // waiting there (a run that evaluates seldom or never) gives way.
                        if let Err(e) = eval_envs.begin_swap_replacing(&p) {
                            envs.cancel_swap();
                            return Err(e.into());
                        }
                        if p.info().goals
                            && let Err(e) = attach_goal_oracle(algo.learner_mut(), &p, ctx.seed, &envs.options().params, ctx.reward)
                        {
                            envs.cancel_swap();
                            eval_envs.cancel_swap();
                            return Err(e);
                        }
                        Ok(p)
                    });
                    if let Ok(p) = &outcome {
                        self.env_began = Some((ctx.step, c.seen, p.info().sha256[..12].to_string()));
                    }
                    self.record(ctx, change, &outcome, "takes each env over at its next episode boundary", metrics)?;
                }
                _ => match loaded {
                    // Checked again at the next update, where it takes over.
                    Ok(p) => self.algorithm = Some((p, c.seen, c.load_time)),
                    Err(e) => self.record(ctx, change, &Err(e), "", metrics)?,
                },
            }
        }
        Ok(())
    }

    /// After an env step: logs the end of an env swap once every env has moved.
    pub(super) fn env_progress(&mut self, envs: &EnvSet, step: u64, metrics: &mut MetricsSink) -> anyhow::Result<()> {
        if envs.swapping().is_none()
            && let Some((began, seen, sha)) = self.env_began.take()
        {
            let ms = seen.elapsed().as_secs_f64() * 1e3;
            self.log.line(
                crate::log::Level::Info,
                "host",
                &format!("hot reload: env plugin (sha256 {sha}) serves all {} envs from step {step} (the swap began at step {began}; {ms:.0} ms after the change)", envs.num_envs()),
            );
            let mut line = serde_json::Map::new();
            line.insert("step".into(), step.into());
            line.insert("reload/env_complete".into(), 1.into());
            metrics.write(line)?;
        }
        Ok(())
    }

    /// Right after an update: hands the learner to a waiting algorithm version.
    pub(super) fn swap_algorithm(
        &mut self,
        ctx: &ReloadCtx<'_>,
        algo: &mut AlgorithmInstance,
        spec: &crate::runtime::bindings::types::EnvSpec,
        n: usize,
        probe: &Tensor,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let Some((p, seen, load_time)) = self.algorithm.take() else { return Ok(()) };
        let seed = derive(ctx.seed, Stream::PluginRandom, (1 << 33) + ctx.step);
        let path = p.info().path.clone();
        let outcome = algo.reload(&p, seed, spec, n as u32, &self.algo_params, probe).map(|()| p).map_err(anyhow::Error::from);
        let change = Change { role: "algorithm", path: &path, seen, load_time };
        self.record(ctx, change, &outcome, "is live, on the same named parameters,", metrics)
    }
}
