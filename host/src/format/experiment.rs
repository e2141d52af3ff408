//! An experiment in its store: the plan (`experiment.json`, an experiment file expanded, with
//! the schema of its sections), and the keys of everything else an experiment keeps there.
//!
//! ```text
//! <store>/<experiment id>/
//!   experiment.json            the plan: base config, trials, early stop, fleet, trial policy, files
//!   files/<sha256>/<name>      the plugin and robot files the trials use (meshes beside a robot)
//!   trials/<id>/state.json     a trial's state (`super::trial`)
//!   trials/<id>/e<epoch>/      the run of one claim of it (a run directory, `super::run_dir`)
//!   index/<id>/e<epoch>_<status>_<hash>  markers that let readers skip final trials' states
//!   results/<id>.json          a finished trial's result, for readers of results alone
//!   rungs/<rung>/<id>.json     early stop: a trial's metric at a rung
//!   fleet.json                 the fleet's record (`exp run --fleet`)
//!   dispatch.json              where its queues are (`exp submit --queue`, a fleet)
//! ```

use super::trial::TrialState;
use crate::store::Objects;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The plan's key.
pub const PLAN: &str = "experiment.json";

/// The key of a finished trial's result copy.
pub fn result_key(trial: &str) -> String {
    format!("results/{trial}.json")
}

/// The folder of an early-stop rung (env steps), holding a file per trial that reached it.
pub fn rung_dir(rung: u64) -> String {
    format!("rungs/{rung:012}")
}

/// ASHA: trials are compared at rungs of `min_steps × eta^k` env steps; at each rung a trial
/// goes on only if its metric is in the best `1/eta` of the trials that reached that rung.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    /// An evaluation metric of `metrics.jsonl`, e.g. `eval/return_mean`, `eval/success_rate`.
    pub metric: String,
    /// `max` or `min`.
    #[serde(default = "max")]
    pub mode: String,
    /// The first rung, in env steps.
    pub min_steps: u64,
    /// The reduction factor (≥ 2).
    #[serde(default = "three")]
    pub eta: u64,
}

fn max() -> String {
    "max".into()
}

fn three() -> u64 {
    3
}

/// A study (`[search]`): trials suggested one at a time by a sampler from the results of
/// the trials before them, up to a budget, each run stopped early by a pruner. The study's
/// trials are not in the plan: each is made by a worker when it needs work, as
/// `study/trials/<n>.json` (a conditional create, so each number is made once), and read
/// back with the plan ([`read_plan`]).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// The metric the study optimises: an evaluation metric of `metrics.jsonl`.
    pub metric: String,
    /// `max` or `min`.
    pub mode: String,
    /// `tpe`, `random` or `grid`.
    pub sampler: String,
    /// The trial budget: how many trials the study makes.
    pub trials: u64,
    /// The most trials running at once (and `exp run`'s default worker count).
    pub parallelism: u64,
    /// The sampler's seed: the same seed and the same results give the same suggestions.
    pub seed: u64,
    /// TPE: trials drawn at random before the model is used.
    pub startup_trials: u64,
    /// TPE: candidates drawn from the good trials' density and scored per suggestion.
    pub candidates: u64,
    /// The parameters, by dotted config key, in the order they are sampled (parents first).
    pub params: Vec<Param>,
    /// The overrides every trial gets (`[set]` and its seed), before the parameters.
    pub fixed: Vec<String>,
    /// How trials are stopped early.
    pub pruner: Pruner,
    /// Population-based training (`sampler = "pbt"`): the population and its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbt: Option<Pbt>,
}

/// Population-based training (Jaderberg et al. 2017), synchronous: a population of
/// `population` members trains in generations of `interval` env steps. Trial `n` is member
/// `n % population` in generation `n / population`, made once every trial of the generation
/// before has ended: a member in the bottom `quantile` of that generation (by the study's
/// metric) continues from the checkpoint of one in the top `quantile` with that member's
/// parameters perturbed (exploit and explore); the others continue from their own.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pbt {
    /// Members trained side by side.
    pub population: u64,
    /// Env steps per generation.
    pub interval: u64,
    /// The base config's `total_steps`: the last generation ends there.
    pub total_steps: u64,
    /// The fraction of the population that copies (bottom) and is copied (top).
    pub quantile: f64,
    /// Factors a copied float or integer parameter is multiplied by (one drawn at random);
    /// a choice moves to a neighbouring value.
    pub perturb: Vec<f64>,
    /// The probability that a copied parameter is drawn afresh from its distribution instead.
    pub resample: f64,
}

impl Pbt {
    /// Generations: `total_steps / interval`, rounded up.
    pub fn generations(&self) -> u64 {
        self.total_steps.div_ceil(self.interval.max(1))
    }
}

/// Where a PBT trial's lineage comes from: recorded in `study/trials/<n>.json`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Lineage {
    /// The member (`n % population`).
    pub member: u64,
    /// The generation (`n / population`), from 0.
    pub generation: u64,
    /// The trial of the generation before whose checkpoint it continues (its own member's,
    /// or the member it copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The member it copied (exploit), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied: Option<u64>,
    /// Its own member's metric and the copied member's, at the end of the generation before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<(Option<f64>, Option<f64>)>,
}

/// A parameter of a study.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The dotted config key, e.g. `algorithm.params.learning-rate`.
    pub key: String,
    /// Its distribution.
    pub dist: Dist,
    /// Sampled only when another parameter has one of some values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

/// A parameter's distribution.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// A float in `[low, high]`, uniform (`log`: uniform in its logarithm).
    Float {
        /// Lowest.
        low: f64,
        /// Highest.
        high: f64,
        /// Log scale.
        log: bool,
    },
    /// A whole number in `[low, high]`.
    Int {
        /// Lowest.
        low: i64,
        /// Highest.
        high: i64,
        /// Log scale.
        log: bool,
    },
    /// One of these values.
    Choice(Vec<serde_json::Value>),
}

/// A condition on another parameter.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The parent parameter's key.
    pub key: String,
    /// The parent's values for which this parameter is sampled.
    pub is: Vec<serde_json::Value>,
}

/// How a study's trials are stopped early.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pruner {
    /// `none`, `median`, `asha` or `hyperband`.
    pub kind: String,
    /// Median: trials that must finish before any is pruned.
    pub startup_trials: u64,
    /// Median: env steps before which a trial is not pruned.
    pub warmup_steps: u64,
    /// ASHA / Hyperband: the smallest budget (env steps) a trial is judged at.
    pub min_steps: u64,
    /// ASHA / Hyperband: the reduction factor.
    pub eta: u64,
}

/// A trial a study made: `study/trials/<n>.json`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct StudyTrial {
    /// Its number in the study, from 0.
    pub n: u64,
    /// The trial (`s<n>-<hash of its overrides>`).
    pub trial: Trial,
    /// The parameters drawn, by key (inactive conditional ones absent).
    pub params: BTreeMap<String, serde_json::Value>,
    /// Population-based training: the member, generation and what it continues from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// The folder of a study's trials.
pub const STUDY_TRIALS: &str = "study/trials";

/// The key of study trial `n`.
pub fn study_trial_key(n: u64) -> String {
    format!("{STUDY_TRIALS}/{n:06}.json")
}

/// The key of a trial's learning curve (the study's metric at each evaluation), which the
/// median pruner compares trials by.
pub fn curve_key(trial: &str) -> String {
    format!("curves/{trial}.json")
}

/// Where and on what `exp run --fleet` runs (EC2 Spot).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The store for trial state, runs and results (`s3://bucket/prefix`).
    pub store: String,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Instance types to request Spot capacity across.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<String>,
    /// Instances to keep running.
    #[serde(default = "one")]
    pub target_capacity: u32,
    /// The most instances ever.
    #[serde(default = "one")]
    pub max_capacity: u32,
    /// The most dollars per instance-hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// The worker image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The most dollars the experiment may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_dollars: Option<f64>,
    /// Seconds a worker waits with no trial to claim before its instance shuts down.
    #[serde(default = "idle")]
    pub idle_timeout_s: u64,
    /// `fleet` (EC2 CreateFleet, type maintain) or `spot-fleet` (RequestSpotFleet).
    #[serde(default = "fleet_api")]
    pub api: String,
    /// The launch template the experiment's own is made from (its AMI, instance profile,
    /// security groups, key): the one the CloudFormation template in `docker/` creates.
    #[serde(default = "base_template")]
    pub launch_template: String,
    /// An AMI to use instead of the base template's (an image with Docker, e.g. the
    /// ECS-optimized Amazon Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami: Option<String>,
    /// Subnets to launch in (default: the account's default VPC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    /// The IAM role Spot Fleet uses to launch and tag (`api = "spot-fleet"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_fleet_role: Option<String>,
}

fn base_template() -> String {
    "paddock-worker".into()
}

fn one() -> u32 {
    1
}

fn idle() -> u64 {
    300
}

fn fleet_api() -> String {
    "fleet".into()
}

/// How trials are run.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrialPolicy {
    /// Errors (not preemptions) after which a trial is failed.
    #[serde(default = "three")]
    pub max_errors: u64,
    /// Seconds a claim lasts without a heartbeat.
    #[serde(default = "lease")]
    pub lease_s: u64,
    /// Times a trial's worker may be lost (its lease ran out: crashed, killed, its machine
    /// gone) before the trial is failed rather than claimed again.
    #[serde(default = "five")]
    pub max_lost: u64,
}

fn five() -> u64 {
    5
}

fn lease() -> u64 {
    60
}

impl Default for TrialPolicy {
    fn default() -> Self {
        TrialPolicy { max_errors: 3, lease_s: lease(), max_lost: five() }
    }
}

/// One trial: a run of the base config with these overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// `t<index>-<hash>`: its place in the plan and a hash of its overrides.
    pub id: String,
    /// `key=value` overrides (dotted keys, TOML values), as `--set` takes them.
    pub overrides: Vec<String>,
    /// The checkpoint it starts from instead of from scratch (a PBT trial continues one of
    /// the generation before), with its config's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<StartFrom>,
}

/// A checkpoint of another trial's run that a trial starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartFrom {
    /// The trial.
    pub trial: String,
    /// Its run's epoch and the checkpoint's step.
    pub checkpoint: super::trial::CheckpointRef,
}

/// An experiment file expanded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// `<file stem>-<hash>`: the same file (and base config) gives the same id.
    pub id: String,
    /// The base config's text, with paths made absolute (trials are run from it).
    pub base: String,
    /// Every trial, in plan order.
    pub trials: Vec<Trial>,
    /// The early-stop rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
    /// The study, when trials are suggested by a sampler (`[search]`): its trials are made
    /// in the store as workers need them and added to `trials` by [`read_plan`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    /// The fleet section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
    /// How trials are run.
    pub trial: TrialPolicy,
    /// Every plugin and robot file the trials use: its path on the machine that planned the
    /// experiment → its key in the experiment's store (`files/<sha256>/<file name>`, meshes
    /// beside a robot file). Submitting uploads them; a worker on any machine fetches them
    /// and runs the trials with its copies.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

impl Plan {
    /// How many trials can run at once: every trial, or a study's `parallelism` (at most
    /// its budget).
    pub fn most_at_once(&self) -> usize {
        match &self.search {
            Some(s) => s.parallelism.min(s.trials) as usize,
            None => self.trials.len(),
        }
    }
}

/// Reads an experiment's plan from its store, with the trials its study made so far.
pub fn read_plan(objects: &dyn Objects) -> anyhow::Result<Plan> {
    let mut plan = parse_plan(objects, objects.get(PLAN)?)?;
    if plan.search.is_some() {
        plan.trials.extend(study_trials(objects)?.into_iter().map(|t| t.trial));
    }
    Ok(plan)
}

/// A reader's copy of a study's trials (each read once: a study trial never changes).
#[derive(Debug, Default)]
pub struct StudyCache {
    seen: BTreeMap<String, Trial>,
}

impl StudyCache {
    /// `plan` with the trials its study made so far (`plan` itself without a study; trials
    /// it holds already are not added again).
    pub fn with_trials<'a>(&mut self, objects: &dyn Objects, plan: &'a Plan) -> anyhow::Result<std::borrow::Cow<'a, Plan>> {
        if plan.search.is_none() {
            return Ok(std::borrow::Cow::Borrowed(plan));
        }
        for e in objects.list(STUDY_TRIALS)? {
            if self.seen.contains_key(&e.key) {
                continue;
            }
            if let Some(t) = read_study_trial(objects, &e.key)? {
                self.seen.insert(e.key, t.trial);
            }
        }
        let mut out = plan.clone();
        for t in self.seen.values() {
            if !out.trials.iter().any(|x| x.id == t.id) {
                out.trials.push(t.clone());
            }
        }
        Ok(std::borrow::Cow::Owned(out))
    }
}

/// The trials a study made, in order.
pub fn study_trials(objects: &dyn Objects) -> anyhow::Result<Vec<StudyTrial>> {
    let mut out = Vec::new();
    for e in objects.list(STUDY_TRIALS)? {
        out.extend(read_study_trial(objects, &e.key)?);
    }
    out.sort_by_key(|t| t.n);
    Ok(out)
}

fn read_study_trial(objects: &dyn Objects, key: &str) -> anyhow::Result<Option<StudyTrial>> {
    let Some(data) = objects.get(key)? else { return Ok(None) };
    serde_json::from_slice(&data).map(Some).with_context(|| format!("{}/{key} is not a study trial", objects.location()))
}

/// Trial `id`'s state; in a study (`in_study`) a trial without one yet is queued (its
/// maker writes the state just after the trial).
pub fn state_of(objects: &dyn Objects, id: &str, in_study: bool) -> anyhow::Result<TrialState> {
    match super::trial::read(objects, id) {
        Ok(h) => Ok(h.state),
        Err(e) if in_study && super::trial::is_missing(&e) => Ok(TrialState::queued()),
        Err(e) => Err(e),
    }
}

/// Placeholders for the trials a study has yet to make (`s<n>`, queued), so that an
/// experiment whose study is not through its budget is never all final.
pub fn unmade(plan: &Plan) -> Vec<(String, TrialState)> {
    let Some(s) = &plan.search else { return Vec::new() };
    let made = plan.trials.iter().filter(|t| t.id.starts_with('s')).count() as u64;
    (made..s.trials).map(|n| (format!("s{n:04}"), TrialState::queued())).collect()
}

/// The plan in `data` (what `objects` holds at [`PLAN`]).
pub fn parse_plan(objects: &dyn Objects, data: Option<Vec<u8>>) -> anyhow::Result<Plan> {
    let data =
        data.with_context(|| format!("{} is not an experiment (no {PLAN}; submit one with `paddock exp run FILE`)", objects.location()))?;
    serde_json::from_slice(&data).with_context(|| format!("{}/{PLAN} is not an experiment plan", objects.location()))
}

/// Whether every trial in `states` is final.
pub fn all_final(states: &[(String, TrialState)]) -> bool {
    states.iter().all(|(_, s)| s.status.is_final())
}

/// The ids of the trials that are not final, in plan order.
pub fn open_trials(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<String>> {
    // The trials made so far: a study's trials not made yet have nothing to send.
    let plan = StudyCache::default().with_trials(objects, plan)?;
    Ok(made_states(objects, &plan)?.into_iter().filter(|(_, s)| !s.status.is_final()).map(|(id, _)| id).collect())
}

/// Reads every trial's state (for `exp status`), in plan order, a study's trials made so
/// far after them and those it has yet to make last.
pub fn states(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<(String, TrialState)>> {
    let plan = StudyCache::default().with_trials(objects, plan)?;
    let mut out = made_states(objects, &plan)?;
    out.extend(unmade(&plan));
    Ok(out)
}

/// The state of each trial `plan` holds (a study's made so far: see [`StudyCache`]), in
/// plan order.
pub fn made_states(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<(String, TrialState)>> {
    plan.trials.iter().map(|t| Ok((t.id.clone(), state_of(objects, &t.id, plan.search.is_some())?))).collect()
}

/// The record of an experiment's fleet in its store.
pub const FLEET: &str = "fleet.json";

/// Where a fleet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetState {
    /// A controller is creating it.
    Launching,
    /// Requested; EC2 keeps its capacity.
    Active,
    /// Deleted with its instances.
    Deleted,
}

/// One instance's life, as seen by the controller and workers (EC2 forgets terminated
/// instances after about an hour; cost needs them for the whole experiment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceLife {
    /// e.g. `c7i.xlarge`.
    pub instance_type: String,
    /// e.g. `us-east-1a`.
    pub zone: String,
    /// Unix seconds.
    pub launched: f64,
    /// Unix seconds; `None` while it runs.
    pub ended: Option<f64>,
    /// When it was last seen running, Unix seconds.
    pub seen: f64,
}

/// `fleet.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetRecord {
    /// Raised by each launch.
    pub generation: u64,
    /// Where it is.
    pub state: FleetState,
    /// The API that requested it.
    pub api: FleetApi,
    /// The region.
    pub region: String,
    /// The EC2 Fleet or Spot Fleet request id.
    pub fleet_id: Option<String>,
    /// The experiment's launch template id.
    pub launch_template: Option<String>,
    /// Unix seconds.
    pub created: f64,
    /// Unix seconds.
    pub deleted: Option<f64>,
    /// Why it was deleted: `complete`, `cancelled`, `budget`, or a launch error.
    pub reason: Option<String>,
    /// Who launched it.
    pub by: String,
    /// Every instance the fleet ran, by id.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceLife>,
}

/// Reads `fleet.json` with its tag.
pub fn read_fleet(objects: &dyn Objects) -> anyhow::Result<Option<(FleetRecord, String)>> {
    let Some((data, tag)) = objects.get_tagged(FLEET)? else { return Ok(None) };
    let record = serde_json::from_slice(&data).with_context(|| format!("{}/{FLEET} is not a fleet record", objects.location()))?;
    Ok(Some((record, tag)))
}

/// Which API requested a fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FleetApi {
    /// EC2 Fleet (CreateFleet, type `maintain`).
    Fleet,
    /// A Spot Fleet request (RequestSpotFleet).
    SpotFleet,
}

impl FleetApi {
    /// From the experiment file's `fleet.api` (checked when the plan is made).
    pub fn of(api: &str) -> FleetApi {
        if api == "spot-fleet" { FleetApi::SpotFleet } else { FleetApi::Fleet }
    }

    /// Its name in files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetApi::Fleet => "fleet",
            FleetApi::SpotFleet => "spot-fleet",
        }
    }
}

impl std::fmt::Display for FleetApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `dispatch.json`: where an experiment's queues are.
pub const DISPATCH: &str = "dispatch.json";

/// The queues of an experiment, as created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queues {
    /// The queue of trial ids.
    pub queue: String,
    /// Its dead-letter queue.
    pub dead_letter: String,
    /// The region they are in.
    pub region: String,
}

/// Reads an experiment's `dispatch.json`.
pub fn read_dispatch(objects: &dyn Objects) -> anyhow::Result<Option<Queues>> {
    let Some(data) = objects.get(DISPATCH)? else { return Ok(None) };
    Ok(Some(serde_json::from_slice(&data).with_context(|| format!("{}/{DISPATCH} is not a queue record", objects.location()))?))
}
