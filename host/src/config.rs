//! Run configs (TOML): one file describes one run. Unknown keys and wrong types are
//! errors that name the file, the key and the line; plugin and robot paths are relative to
//! the config file (and recorded absolute in a run).
//!
//! ```toml
//! seed = 1
//! [env]
//! plugin = "../target/plugins/cartpole.wasm"
//! num_envs = 64
//! [env.params]
//! sutton-barto-reward = false
//! [reward]                      # optional: replaces the env's reward
//! plugin = "../target/plugins/cartpole_shaped.wasm"
//! [runtime]
//! memory_limit_mb = 256
//! call_timeout_ms = 10000
//! ```

use crate::runtime::Limits;
use crate::runtime::bindings::types::{Params, Value};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod curriculum;
mod sections;
pub use curriculum::{CurriculumStage, Trigger, merged, stage_key};
pub use sections::*;

/// Errors reading a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `--set KEY=VALUE` override is malformed, or makes the config invalid.
    #[error("invalid --set `{assignment}`: {message}")]
    Override {
        /// The override, as given.
        assignment: String,
        /// What is wrong.
        message: String,
    },
    /// A key of config text is unknown, has the wrong type or a value serde cannot check
    /// (a range, a name, a plugin parameter that is a table); the message names the key.
    #[error("{message}")]
    Value {
        /// What is wrong, naming the key (and, for TOML errors, the line).
        message: String,
    },
    /// The TOML is malformed, or a key is unknown or has the wrong type.
    #[error("invalid config file {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What toml/serde said, with the key and line.
        message: String,
    },
}

/// A whole run config.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The run seed: env seeds, plugin random sources and random actions derive from it.
    #[serde(deserialize_with = "whole", default)]
    pub seed: u64,
    /// The run's name in its store (default `<env>-<algo>-s<seed>-<unix time>`); `-1`, `-2`,
    /// … are added when it is taken. Letters, digits, `.`, `_` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form labels (`runs ls` and the monitor show them), e.g. `["shaped", "ablation"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Total env steps of a training run.
    #[serde(deserialize_with = "whole_opt", default, skip_serializing_if = "Option::is_none")]
    pub total_steps: Option<u64>,
    /// Where run directories go.
    #[serde(default = "default_store")]
    pub store: String,
    /// The environment.
    pub env: EnvSection,
    /// An optional reward plugin replacing the env's reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<PluginSection>,
    /// The learning algorithm (required by `paddock train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<AlgorithmSection>,
    /// Training-loop settings.
    #[serde(default)]
    pub train: TrainSection,
    /// Sandbox limits and the compile cache.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Stages that change the env's parameters while the run goes on (`[[curriculum]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curriculum: Vec<CurriculumStage>,
    /// S3 settings beyond the SDK's environment (for `store = "s3://…"` and S3 registries).
    #[serde(default, skip_serializing_if = "is_default")]
    pub s3: crate::store::S3Settings,
    /// The plugin registry that `registry:team/x@REQ` plugin references resolve against.
    #[serde(default, skip_serializing_if = "is_default")]
    pub registry: RegistrySection,
    /// Where the run is also tracked (MLflow).
    #[serde(default, skip_serializing_if = "is_default")]
    pub tracking: TrackingSection,
    /// Where each plugin came from when not a plain path: resolved file → the exact
    /// registry reference (filled by [`crate::registry::resolve_config`]; not written).
    #[serde(skip)]
    pub sources: std::collections::BTreeMap<PathBuf, String>,
}

/// The most envs a set may hold (`env.num_envs`, `train.eval_episodes`): far above what a
/// CPU or GPU learner uses (Isaac-style GPU sims run 4,096–16,384), and low enough that a
/// typo fails here rather than after minutes of allocation.
pub const MAX_ENVS: usize = 65_536;

/// A whole number of at least 0, also written as a float (`total_steps = 1e6`), with an
/// error in words ("a whole number of 0 or more") rather than Rust's type names.
fn whole<'de, D: serde::Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    use serde::de::Error;
    let v = toml::Value::deserialize(d)?;
    let n = match v {
        toml::Value::Integer(i) if i >= 0 => Some(i as u64),
        toml::Value::Float(x) if x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Some(x as u64),
        _ => None,
    };
    let shown = match &v {
        toml::Value::String(s) => format!("the string \"{s}\""),
        other => other.to_string(),
    };
    n.and_then(|n| T::try_from(n).ok()).ok_or_else(|| D::Error::custom(format!("expected a whole number of 0 or more, found {shown}")))
}

fn whole_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    whole(d).map(Some)
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The prefix of plugin references in run configs: `registry:team/x@^1.2`.
pub const REF_PREFIX: &str = "registry:";

/// Whether a plugin path is a registry reference (`registry:team/x@REQ`).
pub fn is_registry_ref(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with(REF_PREFIX))
}

fn default_store() -> String {
    "runs/".into()
}

impl RunConfig {
    /// A config for one env plugin with defaults everywhere else.
    pub fn for_env(plugin: PathBuf) -> Self {
        RunConfig {
            seed: 0,
            name: None,
            tags: Vec::new(),
            total_steps: None,
            store: default_store(),
            env: EnvSection {
                plugin,
                num_envs: 1,
                workers: 0,
                params: toml::Table::new(),
                robots: Default::default(),
                packages: Vec::new(),
                mesh_collision: Default::default(),
            },
            reward: None,
            algorithm: None,
            train: TrainSection::default(),
            runtime: RuntimeSection::default(),
            curriculum: Vec::new(),
            s3: Default::default(),
            registry: Default::default(),
            tracking: Default::default(),
            sources: Default::default(),
        }
    }

    /// Reads and checks a config file; plugin and robot paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &[])
    }

    /// Reads a run directory's resolved `config.toml` (plugin paths stay as written there).
    pub fn load_resolved(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let config = Self::parse(&text).map_err(|e| ConfigError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        config.check().map_err(|e| ConfigError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(config)
    }

    /// Like [`RunConfig::load`], first applying `key=value` overrides (dotted paths, TOML
    /// values; a bare word is a string), as `--set` does.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.to_string().trim_end().to_string()))?;
        // The file's own mistakes first, from its text, so the error shows the line (a key
        // missing from the file may still come from `--set`).
        if let Err(e) = toml::from_str::<RunConfig>(&text)
            && !e.message().starts_with("missing field")
        {
            return Err(invalid(e.to_string().trim_end().replace('\n', "\n  ")));
        }
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        // The file alone was fine: a mistake now is an override's (the one whose key the
        // message names, if one does).
        let blame = |e: ConfigError| {
            let message = e.to_string();
            let named = overrides.iter().find(|o| {
                o.split_once('=').is_some_and(|(k, _)| {
                    let k = k.trim();
                    message.contains(&format!("`{k}`")) || message.contains(&format!("`{}`", k.rsplit('.').next().unwrap_or(k)))
                })
            });
            match named {
                Some(o) => ConfigError::Override { assignment: o.clone(), message },
                None => invalid(message),
            }
        };
        let mut config = RunConfig::deserialize(table).map_err(|e| blame(value(e.to_string().trim_end().replace('\n', "\n  "))))?;
        // Absolute, so the run's recorded config means the same from any directory: a path
        // given by `--set` against the current directory when the file is there, any other
        // beside the config, else on the search path ([`search_path`]).
        let base = std::path::absolute(path.parent().unwrap_or(Path::new(""))).unwrap_or_default();
        let cwd = std::env::current_dir().unwrap_or_default();
        let set_paths: Vec<(String, PathBuf)> = overrides
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), PathBuf::from(v.trim().trim_matches('"'))))
            .collect();
        let place = |key: &str, p: &mut PathBuf, kind: Search| {
            if is_registry_ref(p) || p.is_absolute() {
                return;
            }
            if set_paths.iter().any(|(k, v)| k == key && v == p) && cwd.join(&*p).exists() {
                *p = normalize(&cwd.join(&*p));
                return;
            }
            let beside = normalize(&base.join(&*p));
            *p = if beside.exists() {
                beside
            } else {
                search_path(kind).into_iter().map(|d| normalize(&d.join(&*p))).find(|c| c.exists()).unwrap_or(beside)
            };
        };
        place("env.plugin", &mut config.env.plugin, Search::Plugins);
        for (name, p) in &mut config.env.robots {
            place(&format!("env.robots.{name}"), p, Search::Robots);
        }
        for p in &mut config.env.packages {
            place("env.packages", p, Search::Robots);
        }
        if let Some(r) = &mut config.reward {
            place("reward.plugin", &mut r.plugin, Search::Plugins);
        }
        if let Some(a) = &mut config.algorithm {
            place("algorithm.plugin", &mut a.plugin, Search::Plugins);
        }
        config.check().map_err(blame)?;
        Ok(config)
    }

    /// The plugin paths of this config, mutable, by role.
    pub(crate) fn plugin_paths(&mut self) -> Vec<(&'static str, &mut PathBuf)> {
        let mut out = vec![("env", &mut self.env.plugin)];
        if let Some(r) = &mut self.reward {
            out.push(("reward", &mut r.plugin));
        }
        if let Some(a) = &mut self.algorithm {
            out.push(("algorithm", &mut a.plugin));
        }
        out
    }

    /// Parses config text (paths stay as written).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str::<RunConfig>(text).map_err(|e| value(e.to_string().trim_end().replace('\n', "\n  ")))
    }

    /// Checks values serde cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.check_values().map_err(value)?;
        to_params("env.params", &self.env.params)?;
        if let Some(r) = &self.reward {
            to_params("reward.params", &r.params)?;
        }
        if let Some(a) = &self.algorithm {
            to_params("algorithm.params", &a.params)?;
        }
        curriculum::check_curriculum(self)
    }

    fn check_values(&self) -> Result<(), String> {
        if self.env.num_envs == 0 {
            return Err("key `env.num_envs` must be at least 1".into());
        }
        if self.env.num_envs > MAX_ENVS || self.train.eval_episodes > MAX_ENVS {
            return Err(format!(
                "keys `env.num_envs` ({}) and `train.eval_episodes` ({}) may be at most {MAX_ENVS}: each env holds its state in a plugin instance and its observations in host memory",
                self.env.num_envs, self.train.eval_episodes
            ));
        }
        let plain = |t: &str| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if let Some(n) = &self.name
            && (!plain(n) || n.starts_with('.'))
        {
            return Err(format!("key `name` = \"{n}\": a run name is 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`"));
        }
        if let Some(t) = self.tags.iter().find(|t| !plain(t)) {
            return Err(format!("key `tags`: \"{t}\" is not a tag (1 to 64 letters, digits, `.`, `_` or `-`)"));
        }
        if self.total_steps == Some(0) {
            return Err("key `total_steps` must be at least 1".into());
        }
        if let Some(u) = &self.tracking.mlflow
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!("key `tracking.mlflow` = \"{u}\": an MLflow tracking server's URL, http://host:port"));
        }
        if self.tracking.experiment.as_ref().is_some_and(|e| e.trim().is_empty()) {
            return Err("key `tracking.experiment`: an MLflow experiment's name, not empty".into());
        }
        if self.runtime.memory_limit_mb == 0 || self.runtime.call_timeout_ms == 0 {
            return Err("keys `runtime.memory_limit_mb` and `runtime.call_timeout_ms` must be positive".into());
        }
        if let Some(a) = &self.algorithm {
            a.device.parse::<crate::device::DeviceRequest>().map_err(|e| format!("key `algorithm.device`: {e}"))?;
        }
        if self.train.eval_episodes == 0 || self.train.threads == 0 {
            return Err("keys `train.eval_episodes` and `train.threads` must be at least 1".into());
        }
        if let Some(s) = self.train.stop_at_success
            && !(0.0..=1.0).contains(&s)
        {
            return Err(format!("key `train.stop_at_success` must be a fraction between 0 and 1, not {s}"));
        }
        Ok(())
    }
}

/// What a relative path in a config names, for [`search_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// A plugin (`env.plugin`, `reward.plugin`, `algorithm.plugin`).
    Plugins,
    /// A robot file or a package folder (`env.robots`, `env.packages`).
    Robots,
    /// A run config an experiment file names as its `base`.
    Configs,
}

/// Where a relative plugin, robot or base config path that is not beside the file naming it
/// is looked for, in order: the folders of `$PADDOCK_PLUGIN_PATH` (plugins),
/// `$PADDOCK_ROBOT_PATH` (robots) or `$PADDOCK_CONFIG_PATH` (configs), `:`-separated; then
/// the first-party ones beside the binary: `plugins/` next to its folder (`target/plugins`
/// for `target/release/paddock`), or `robots/` / `configs/` of the checkout it was built in,
/// and the same one folder higher (a test binary in `target/debug/deps`). So a shipped
/// config or experiment copied anywhere finds `cartpole.wasm`, `arm7.urdf` or
/// `cartpole-ppo.toml` as the checkout does.
pub fn search_path(kind: Search) -> Vec<PathBuf> {
    let (var, sub, up) = match kind {
        Search::Plugins => ("PADDOCK_PLUGIN_PATH", "plugins", 1),
        Search::Robots => ("PADDOCK_ROBOT_PATH", "robots", 2),
        Search::Configs => ("PADDOCK_CONFIG_PATH", "configs", 2),
    };
    let mut dirs: Vec<PathBuf> = std::env::var_os(var).map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        for extra in 0..2 {
            let mut d = exe_dir.clone();
            for _ in 0..up + extra {
                d.pop();
            }
            dirs.push(d.join(sub));
        }
    }
    dirs
}

/// `a/./b/../c` as `a/c`, without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if matches!(out.components().next_back(), Some(std::path::Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A TOML table flattened into dotted keys (`prefix.key.sub`) with their values (experiment
/// files' `[set]`, a run's parameters for MLflow, the config keys reports compare).
pub fn flatten_table(prefix: &str, t: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => out.extend(flatten_table(&key, inner)),
            _ => out.push((key, v.clone())),
        }
    }
    out
}

/// Sets `a.b.c = value` in a TOML table; `value` is parsed as TOML, else taken as a string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    set_key(table, assignment).map_err(|message| ConfigError::Override { assignment: assignment.to_string(), message })
}

fn set_key(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| "expected key=value".to_string())?;
    let (key, raw) = (key.trim(), raw.trim());
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key segment".to_string());
    }
    let mut here = table;
    for p in &parts[..parts.len() - 1] {
        here = here
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    here.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Converts a TOML table into plugin parameters; `key` names the table in errors.
pub fn to_params(key: &str, table: &toml::Table) -> Result<Params, ConfigError> {
    table
        .iter()
        .map(|(name, v)| {
            let value = match v {
                toml::Value::Boolean(b) => Value::Bool(*b),
                toml::Value::Integer(i) => Value::Int(*i),
                toml::Value::Float(x) => Value::Real(*x),
                toml::Value::String(s) => Value::Text(s.clone()),
                toml::Value::Array(items) => Value::Reals(
                    items
                        .iter()
                        .map(|x| match x {
                            toml::Value::Float(f) => Ok(*f),
                            toml::Value::Integer(i) => Ok(*i as f64),
                            _ => Err(format!("key `{key}.{name}`: lists may hold only numbers")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(format!("key `{key}.{name}`: tables and dates are not plugin parameters")),
            };
            Ok((name.clone(), value))
        })
        .collect::<Result<_, String>>()
        .map_err(value)
}

/// A parameter table as `a = 1, b = true` (for logs and summaries).
pub fn shown_params(t: &toml::Table) -> String {
    t.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
}

fn value(message: String) -> ConfigError {
    ConfigError::Value { message }
}

#[cfg(test)]
mod tests;
