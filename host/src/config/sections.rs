//! The sections of a run config: `[env]`, `[reward]`/`[algorithm]` plugins, `[train]` and
//! `[runtime]`, with their defaults.

use super::*;

/// `[env]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// Path of the env component.
    pub plugin: PathBuf,
    /// Number of parallel envs.
    #[serde(deserialize_with = "whole", default = "one")]
    pub num_envs: usize,
    /// Worker shards (0 = automatic).
    #[serde(deserialize_with = "whole", default)]
    pub workers: usize,
    /// Parameters handed to the plugin.
    #[serde(default)]
    pub params: toml::Table,
    /// Robot description files (URDF) the plugin may load by name (`load-robot`), e.g.
    /// `robots = { arm = "../robots/arm7.urdf" }`: the only files an env plugin can reach.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub robots: std::collections::BTreeMap<String, PathBuf>,
    /// Folders searched for the `package://NAME/…` meshes of robot files, before
    /// `ROS_PACKAGE_PATH` and the URDF's own folder: each holds package folders or is one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PathBuf>,
    /// What robot meshes collide as: `"hull"` (default) or `"decompose"`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mesh_collision: crate::physics::mesh::MeshCollision,
}

fn one() -> usize {
    1
}

impl EnvSection {
    /// The env set of this section: `num_envs` envs (the training set's own count, the
    /// evaluation episodes, …) on `stream` of `seed`. The one place a config becomes
    /// [`crate::envset::EnvSetOptions`]; `workers = None` keeps the section's.
    pub fn set_options(
        &self,
        num_envs: usize,
        workers: Option<usize>,
        seed: u64,
        stream: crate::seed::Stream,
    ) -> Result<crate::envset::EnvSetOptions, ConfigError> {
        Ok(crate::envset::EnvSetOptions {
            num_envs,
            workers: workers.unwrap_or(self.workers),
            seed,
            stream,
            params: to_params("env.params", &self.params)?,
            robots: std::sync::Arc::new(self.robot_grants()),
        })
    }

    /// The robots this section grants, with `packages` then `ROS_PACKAGE_PATH` to search.
    pub fn robot_grants(&self) -> crate::runtime::RobotGrants {
        let import = crate::physics::mesh::ImportOptions::with_ros_package_path(self.packages.clone(), self.mesh_collision);
        crate::runtime::RobotGrants { files: self.robots.clone(), import }
    }
}

/// A plugin section with parameters (`[reward]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// Path of the component.
    pub plugin: PathBuf,
    /// Parameters handed to the plugin.
    #[serde(default)]
    pub params: toml::Table,
}

/// `[algorithm]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlgorithmSection {
    /// Path of the algorithm component.
    pub plugin: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Parameters handed to the plugin.
    #[serde(default)]
    pub params: toml::Table,
}

fn default_device() -> String {
    "auto".into()
}

/// `[train]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Evaluate every this many env steps (0: only at the end).
    #[serde(deserialize_with = "whole", default = "default_eval_every")]
    pub eval_every: u64,
    /// Episodes per evaluation (deterministic policy, the env's own reward).
    #[serde(deserialize_with = "whole", default = "default_eval_episodes")]
    pub eval_episodes: usize,
    /// Stop early once an evaluation's mean return reaches this (e.g. 475 for CartPole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at_return: Option<f64>,
    /// Stop early once an evaluation's success rate (envs reporting `is-success`) reaches
    /// this fraction (e.g. 0.9 for arm-reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at_success: Option<f64>,
    /// libtorch intra-op threads (1 is fastest and deterministic for small networks).
    #[serde(deserialize_with = "whole", default = "one")]
    pub threads: usize,
    /// Checkpoint every this many env steps, at the next update (0: never).
    #[serde(deserialize_with = "whole", default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are deleted).
    #[serde(deserialize_with = "whole", default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Whether a new version of the reward plugin's file is picked up while the run goes on
    /// (hot reload; the run's `log.txt`, metrics and `plugins.lock` record every swap).
    #[serde(default = "yes")]
    pub hot_reload: bool,
    /// Whether checkpoints include the algorithm's replay buffers (they can be large).
    /// Without them a resumed off-policy run starts with empty buffers.
    #[serde(default)]
    pub checkpoint_replay: bool,
}

fn yes() -> bool {
    true
}

fn default_checkpoint_every() -> u64 {
    10_000
}

fn default_keep() -> usize {
    2
}

fn default_eval_every() -> u64 {
    10_000
}

fn default_eval_episodes() -> usize {
    10
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            eval_every: default_eval_every(),
            eval_episodes: default_eval_episodes(),
            stop_at_return: None,
            stop_at_success: None,
            threads: 1,
            checkpoint_every: default_checkpoint_every(),
            keep_checkpoints: default_keep(),
            checkpoint_replay: false,
            hot_reload: true,
        }
    }
}

/// `[runtime]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Memory cap of each plugin store, MiB.
    #[serde(deserialize_with = "whole", default = "default_memory_mb")]
    pub memory_limit_mb: u64,
    /// Deadline of each plugin call, ms.
    #[serde(deserialize_with = "whole", default = "default_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Compiled-component cache directory (default: the user cache dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

fn default_memory_mb() -> u64 {
    256
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection { memory_limit_mb: default_memory_mb(), call_timeout_ms: default_timeout_ms(), cache_dir: None }
    }
}

impl RuntimeSection {
    /// The sandbox limits this section sets.
    pub fn limits(&self) -> Limits {
        Limits { memory_bytes: (self.memory_limit_mb as usize) << 20, call_timeout: Duration::from_millis(self.call_timeout_ms) }
    }
}

/// Where a run also logs its parameters, metrics and final files (`[tracking]`).
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TrackingSection {
    /// An MLflow tracking server, `http://host:5000` (see docs/tracking.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<String>,
    /// The MLflow experiment runs are logged under (default `paddock`; an experiment's
    /// trials go under the experiment's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// The registry's settings in a run config (`[registry]`).
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RegistrySection {
    /// Where the registry is (`s3://bucket/prefix` or a directory); else `$PADDOCK_REGISTRY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Public keys (`ed25519:<base64>`); when any are given, pulled plugins must carry a
    /// signature by one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<String>,
}
