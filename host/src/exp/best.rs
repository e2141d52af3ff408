//! `paddock exp best`: which setting of an experiment won, across its seeds, and by how much.
//!
//! Trials that differ only in `seed` are one *setting*. A setting counts when every one of its
//! trials is done; its score over seeds is the interquartile mean (IQM: the mean of the middle
//! half, as rliable recommends for few runs — with fewer than four seeds it is the mean) with
//! a 95% bootstrap interval (resampling seeds, 2,000 times, seeded so the figures repeat),
//! beside the mean with its 95% t-interval. The winner has the highest IQM (lowest with
//! `--mode min`); its config is the experiment's base with the setting's overrides, a file
//! `paddock train` runs as is.

use crate::format::experiment::Plan;
use crate::format::trial::{Status, TrialState};
use rand::{RngExt, SeedableRng};

/// Which of a trial's results scores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// The last evaluation's mean return (the trained policy's: the default).
    Last,
    /// The best evaluation's mean return (optimistic: the maximum over evaluations).
    Best,
    /// The experiment's early-stop metric, as last reported.
    Metric,
}

impl By {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Last => "last evaluation return",
            By::Best => "best evaluation return",
            By::Metric => "early-stop metric",
        }
    }
}

/// Summary statistics of one setting's scores over seeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Seeds scored.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub std: f64,
    /// Half-width of the 95% t-interval of the mean (infinite for one seed).
    pub ci95: f64,
    /// Interquartile mean.
    pub iqm: f64,
    /// 95% bootstrap interval of the IQM (resampling seeds).
    pub iqm_ci95: (f64, f64),
    /// Lowest and highest score.
    pub min: f64,
    /// Highest score.
    pub max: f64,
}

/// One setting: its overrides (without the seed) and how its trials stand.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setting {
    /// `key=value` overrides but `seed` (those every trial has, from `[set]`, too).
    pub overrides: Vec<String>,
    /// The overrides that tell it from the other settings.
    pub differs: Vec<String>,
    /// (trial id, seed, score) of its done trials.
    pub scores: Vec<(String, Option<i64>, f64)>,
    /// Its trials in all.
    pub trials: usize,
    /// Trials not done: by state name.
    pub not_done: Vec<(String, &'static str)>,
    /// Statistics, when every trial is done with a score.
    pub stats: Option<Stats>,
}

/// An experiment's settings, best first (those with statistics), then the incomplete.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Ranking {
    /// What scored the trials.
    pub by: &'static str,
    /// Whether higher is better.
    pub maximize: bool,
    /// The settings.
    pub settings: Vec<Setting>,
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
        2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96,
    }
}

/// The interquartile mean: scipy's `trim_mean(x, 0.25)` (⌊n/4⌋ dropped from each end).
pub fn iqm(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    let mid = &v[cut..v.len() - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

/// Statistics of `xs` (not empty); the bootstrap is seeded by `seed`.
pub fn stats(xs: &[f64], seed: u64) -> Stats {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let std = if n > 1 { (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut boots: Vec<f64> = (0..2000)
        .map(|_| {
            let sample: Vec<f64> = (0..n).map(|_| xs[rng.random_range(0..n)]).collect();
            iqm(&sample)
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    let q = |p: f64| boots[((boots.len() - 1) as f64 * p).round() as usize];
    Stats {
        n,
        mean,
        std,
        ci95: if n > 1 { t975(n - 1) * std / (n as f64).sqrt() } else { f64::INFINITY },
        iqm: iqm(xs),
        iqm_ci95: (q(0.025), q(0.975)),
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Ranks the settings of `plan` from its trials' states.
pub fn rank(plan: &Plan, states: &[(String, TrialState)], by: By, maximize: bool) -> Ranking {
    let mut settings: Vec<Setting> = Vec::new();
    for trial in &plan.trials {
        let seed = trial.overrides.iter().find_map(|o| o.strip_prefix("seed=")).and_then(|s| s.trim().parse().ok());
        let overrides: Vec<String> = trial.overrides.iter().filter(|o| !o.starts_with("seed=")).cloned().collect();
        let i = match settings.iter().position(|s| s.overrides == overrides) {
            Some(i) => i,
            None => {
                settings.push(Setting { overrides, differs: Vec::new(), scores: Vec::new(), trials: 0, not_done: Vec::new(), stats: None });
                settings.len() - 1
            }
        };
        let s = &mut settings[i];
        s.trials += 1;
        let state = states.iter().find(|(id, _)| *id == trial.id).map(|(_, st)| st);
        let score = state.filter(|st| st.status == Status::Done).and_then(|st| st.result.as_ref()).and_then(|r| match by {
            By::Last => r.last_eval,
            By::Best => r.best_eval,
            By::Metric => r.metric,
        });
        match (state, score) {
            (_, Some(x)) if x.is_finite() => s.scores.push((trial.id.clone(), seed, x)),
            (Some(st), _) if st.status == Status::Done => s.not_done.push((trial.id.clone(), "done without a score")),
            (Some(st), _) => s.not_done.push((trial.id.clone(), st.status.as_str())),
            (None, _) => s.not_done.push((trial.id.clone(), "no state")),
        }
    }
    let common: Vec<String> = settings
        .first()
        .map(|f| f.overrides.iter().filter(|o| settings.iter().all(|s| s.overrides.contains(o))).cloned().collect())
        .unwrap_or_default();
    for (i, s) in settings.iter_mut().enumerate() {
        s.differs = s.overrides.iter().filter(|o| !common.contains(o)).cloned().collect();
        if s.not_done.is_empty() && !s.scores.is_empty() {
            let xs: Vec<f64> = s.scores.iter().map(|x| x.2).collect();
            s.stats = Some(stats(&xs, i as u64));
        }
    }
    let key = |s: &Setting| s.stats.as_ref().map(|st| if maximize { st.iqm } else { -st.iqm });
    settings.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ranking { by: by.as_str(), maximize, settings }
}

/// The winning setting's config: the experiment's base config with its overrides, and a
/// header that says where it came from.
pub fn config_of(plan: &Plan, ranking: &Ranking, setting: &Setting) -> anyhow::Result<String> {
    let mut table: toml::Table = plan.base.parse().map_err(|e| anyhow::anyhow!("the experiment's base config does not parse: {e}"))?;
    for o in &setting.overrides {
        crate::config::apply_override(&mut table, o)?;
    }
    let st = setting.stats.as_ref().expect("a ranked setting has statistics");
    let seeds: Vec<String> = setting.scores.iter().map(|s| s.1.map_or_else(|| "?".into(), |x| x.to_string())).collect();
    let header = format!(
        "# The best setting of experiment {} by the interquartile mean of the {} over seeds {}:\n\
         # IQM {:.4} (95% bootstrap interval {:.4} to {:.4}), mean {:.4} ± {:.4} (95% t-interval).\n\
         # The setting: {}\n\
         # Overrides of the experiment's base: {}\n\
         # Written by `paddock exp best`; train it with `paddock train THIS_FILE`.\n\n",
        plan.id,
        ranking.by,
        seeds.join(", "),
        st.iqm,
        st.iqm_ci95.0,
        st.iqm_ci95.1,
        st.mean,
        st.ci95,
        if setting.differs.is_empty() { "the only one".to_string() } else { setting.differs.join(" ") },
        if setting.overrides.is_empty() { "none".to_string() } else { setting.overrides.join(" ") }
    );
    Ok(header + &toml::to_string(&table)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interquartile_mean_and_intervals_are_those_of_the_references() {
        // scipy.stats.trim_mean(x, 0.25)
        assert_eq!(iqm(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(iqm(&[10.0, 1.0, 2.0, 3.0]), 2.5);
        assert!((iqm(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]) - 4.5).abs() < 1e-12);
        let s = stats(&[1.0, 2.0, 3.0], 0);
        assert!((s.mean - 2.0).abs() < 1e-12 && (s.std - 1.0).abs() < 1e-12);
        // scipy.stats.t.ppf(0.975, 2) * 1 / sqrt(3)
        assert!((s.ci95 - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(s.iqm_ci95.0 >= 1.0 && s.iqm_ci95.1 <= 3.0 && s.iqm_ci95.0 < 2.0 && s.iqm_ci95.1 > 2.0, "{s:?}");
        assert_eq!(stats(&[1.0, 2.0, 3.0], 0), s, "the bootstrap is seeded");
        let one = stats(&[5.0], 0);
        assert_eq!((one.iqm, one.iqm_ci95, one.std), (5.0, (5.0, 5.0), 0.0));
        assert!(one.ci95.is_infinite());
    }
}
