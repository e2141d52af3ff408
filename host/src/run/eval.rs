//! Evaluation: deterministic episodes on envs of their own, their statistics, and the
//! evaluation of a checkpoint (`paddock eval`).

use super::hooks::{EvalEpisodes, Evaluation};
use super::setup::Plugins;
use crate::config::RunConfig;
use crate::envset::EnvSet;
use crate::runtime::bindings::types::Space;
use crate::runtime::{AlgorithmInstance, Runtime};
use crate::seed::{Stream, derive};
use anyhow::{Context, bail};
use std::path::Path;
use tch::{Device, Tensor};

/// Checks and converts the algorithm's actions into flat env actions.
pub(super) fn actions_for_envs(plugin: &str, t: &Tensor, n: usize, al: usize, space: &Space) -> anyhow::Result<Vec<f32>> {
    let shape = t.size();
    let ok_shape = shape == [n as i64, al as i64] || (al == 1 && shape == [n as i64]);
    if !ok_shape {
        bail!("plugin `{plugin}` failed in `act`: returned actions of shape {shape:?}, expected [{n}, {al}]");
    }
    let flat = crate::learner::cpu_f32(t).map_err(|e| anyhow::anyhow!("plugin `{plugin}` failed in `act`: reading its actions: {e}"))?;
    if let Some(i) = flat.iter().position(|a| !a.is_finite()) {
        bail!("plugin `{plugin}` failed in `act`: action {} of env {} is {}", i % al, i / al, flat[i]);
    }
    if let Space::Discrete(d) = space
        && let Some(i) = flat.iter().position(|&a| a.fract() != 0.0 || (a as i64) < d.start || (a as i64) >= d.start + i64::from(d.n))
    {
        bail!("plugin `{plugin}` failed in `act`: action {} for env {i} is not in Discrete({})", flat[i], d.n);
    }
    Ok(flat)
}

/// `n` observations of `ol` values as an `[n, ol]` tensor on `device`.
pub(super) fn obs_tensor(obs: &[f32], n: usize, ol: usize, device: Device) -> Tensor {
    on_device(Tensor::from_slice(obs).reshape([n as i64, ol as i64]), device)
}

/// `t` on `device` (no libtorch call when that is the CPU, where every step's tensors are
/// made: a call costs microseconds at these sizes).
pub(super) fn on_device(t: Tensor, device: Device) -> Tensor {
    if device == Device::Cpu { t } else { t.to_device(device) }
}

/// Runs one deterministic episode in every eval env; returns their env returns (and
/// successes, where the env reports `is-success`).
pub fn evaluate(algo: &mut AlgorithmInstance, envs: &mut EnvSet, device: Device) -> anyhow::Result<EvalEpisodes> {
    evaluate_observed(algo, envs, device, &mut |_, _, _| Ok(()))
}

/// What [`evaluate_observed`] calls after each step: the envs, the step, every env's
/// observations.
pub type Observer<'a> = dyn FnMut(&EnvSet, usize, &[f32]) -> anyhow::Result<()> + 'a;

/// [`evaluate`], calling `observe(envs, t, observations)` after the reset (`t` = 0) and after each step
/// while env 0's episode goes on (for pictures of it; the state after its last step is not
/// seen: the env has auto-reset by then).
pub fn evaluate_observed(
    algo: &mut AlgorithmInstance,
    envs: &mut EnvSet,
    device: Device,
    observe: &mut Observer<'_>,
) -> anyhow::Result<EvalEpisodes> {
    let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
    let space = envs.spec().action_space.clone();
    let info_len = envs.spec().info_features.len();
    let success_at = envs.spec().info_features.iter().position(|f| f == "is-success");
    let mut successes = vec![false; n];
    let mut final_infos = vec![vec![0.0; info_len]; n];
    let mut returns = vec![0.0; n];
    let mut done = vec![false; n];
    let mut obs = envs.reset()?;
    observe(envs, 0, &obs)?;
    let mut t = 0;
    while done.iter().any(|d| !d) {
        let a = algo.act(&obs_tensor(&obs, n, ol, device), true)?;
        let actions = actions_for_envs(algo.name(), &a, n, al, &space)?;
        let step = envs.step(&actions)?;
        for i in 0..n {
            if !done[i] {
                returns[i] += step.rewards[i];
                done[i] = step.terminated[i] || step.truncated[i];
                if done[i] {
                    final_infos[i].copy_from_slice(&step.infos[i * info_len..(i + 1) * info_len]);
                }
                if let (true, Some(k)) = (done[i], success_at) {
                    successes[i] = step.infos[i * info_len + k] != 0.0;
                }
            }
        }
        obs = step.observations;
        t += 1;
        if !done[0] {
            observe(envs, t, &obs)?;
        }
    }
    let info_features = envs.spec().info_features.clone();
    Ok(EvalEpisodes { returns, successes: success_at.map(|_| successes), info_features, final_infos })
}

/// Evaluates a checkpoint: `episodes` deterministic episodes on fresh eval envs seeded from
/// `seed`, scored with the env's own reward. With `frames`, a PNG picture of every step of
/// the first episode goes into that directory (envs on the host's physics).
pub fn evaluate_checkpoint(
    config: &RunConfig,
    runtime: &Runtime,
    checkpoint: &Path,
    episodes: usize,
    seed: u64,
    frames: Option<&Path>,
) -> anyhow::Result<Evaluation> {
    let plugins = Plugins::load(config, runtime)?;
    // For frames, every env gets its own shard, so the first shard's scene is env 0 alone.
    let workers = frames.map(|_| episodes);
    let opts = config.env.set_options(episodes, workers, seed, Stream::EvalEnv).map_err(anyhow::Error::from)?;
    let mut envs = EnvSet::new(&plugins.env, &opts)?;
    let mut learner = plugins.learner(config, Some(checkpoint), seed, false)?;
    learner.images = envs.image_layout().cloned();
    tch::manual_seed(derive(seed, Stream::PluginRandom, 1 << 41) as i64);
    let mut algo = AlgorithmInstance::new(&plugins.algorithm, derive(seed, Stream::PluginRandom, 1 << 33), learner)?;
    algo.init(envs.spec(), config.env.num_envs as u32, &plugins.algorithm_params)?;
    let restored = super::checkpoint::read_algorithm_state(checkpoint).context("failed to read the checkpoint")?;
    if let Some(state) = restored {
        algo.load_state(&state)?;
    }
    let steps = crate::format::run_dir::checkpoint_step(checkpoint).unwrap_or(0);
    let device = plugins.device;
    let Some(dir) = frames else { return Ok(Evaluation::of(steps, evaluate(&mut algo, &mut envs, device)?)) };
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut view = None;
    let episodes = evaluate_observed(&mut algo, &mut envs, device, &mut |envs, t, obs| {
        let (scene, fixed) = envs.scene();
        if scene.is_empty() {
            anyhow::bail!("--frames: env plugin {} has no physics scene to draw", config.env.plugin.display());
        }
        let picture = crate::format::scene::SceneFile::new(t as u64, &scene, &fixed, view);
        view = Some(picture.view);
        crate::physics::render::write_png(&picture, 640, 360, &dir.join(format!("frame-{t:05}.png")))?;
        // What env 0's cameras saw, beside the scene: `<camera>/frame-<t>.png`.
        if let Some(layout) = envs.image_layout() {
            crate::runtime::cameras::write_pngs(layout, &obs[..layout.obs_len().min(obs.len())], dir, &format!("frame-{t:05}"))?;
        }
        Ok(())
    })?;
    Ok(Evaluation::of(steps, episodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_statistics() {
        let e = Evaluation::of(
            100,
            EvalEpisodes {
                returns: vec![1.0, 3.0],
                successes: Some(vec![true, false]),
                info_features: vec!["distance".into(), "is-success".into()],
                final_infos: vec![vec![2.0, 1.0], vec![4.0, 0.0]],
            },
        );
        assert_eq!((e.step, e.mean, e.std), (100, 2.0, 1.0));
        assert!((e.ci95 - 1.96 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(e.success_rate, Some(0.5));
        assert_eq!(e.final_infos["distance"], 3.0);
        let line = e.metrics_line();
        assert_eq!(line["eval/return_mean"], 2.0);
        assert_eq!(line["eval/success_rate"], 0.5);
        assert_eq!(line["eval/final/is-success"], 0.5);
        // No successes reported: no success rate, no key.
        let plain =
            Evaluation::of(0, EvalEpisodes { returns: vec![5.0], successes: None, info_features: vec![], final_infos: vec![vec![]] });
        assert_eq!((plain.mean, plain.std, plain.success_rate), (5.0, 0.0, None));
        assert!(!plain.metrics_line().contains_key("eval/success_rate"));
    }

    #[test]
    fn actions_are_checked_by_shape_value_and_space() {
        use crate::runtime::bindings::types::DiscreteSpace;
        let space = Space::Discrete(DiscreteSpace { n: 2, start: 0 });
        let ok = Tensor::from_slice(&[0f32, 1.0, 1.0]);
        assert_eq!(actions_for_envs("p", &ok, 3, 1, &space).expect("ok"), vec![0.0, 1.0, 1.0]);
        let err = |t: Tensor| actions_for_envs("ppo", &t, 3, 1, &space).expect_err("bad").to_string();
        assert!(err(Tensor::from_slice(&[0f32, 1.0])).contains("shape [2]"));
        assert!(err(Tensor::from_slice(&[0f32, f32::NAN, 1.0])).contains("is NaN"));
        assert!(err(Tensor::from_slice(&[0f32, 2.0, 1.0])).contains("not in Discrete(2)"));
        assert!(err(Tensor::from_slice(&[0f32, 0.5, 1.0])).starts_with("plugin `ppo` failed in `act`"));
    }
}
