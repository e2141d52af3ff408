//! Turns a `.wasm` file into a checked [`Plugin`]: reads it, tells a non-Wasm file and a
//! core module from a component, compiles it once (caching the result on disk under its
//! sha256), and checks the world and package version it targets and what it imports.

use super::error::{LoadError, World};
use super::sandbox::PluginState;
use super::{PACKAGE, PACKAGE_VERSION, Runtime};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{Component, InstancePre};

/// What the host knows about a loaded plugin.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginInfo {
    /// Plugin name (the file stem).
    pub name: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size_bytes: usize,
    /// The world it targets.
    pub world: World,
    /// The `paddock:rl` package version it was built against.
    pub package_version: String,
    /// Every import, by name.
    pub imports: Vec<String>,
    /// Every export, by name.
    pub exports: Vec<String>,
    /// Whether it is a goal-conditioned env (exports `goal-env` beside `env`, world
    /// `goal-environment`), usable for hindsight relabeling.
    pub goals: bool,
    /// Whether it is an algorithm that lets parameters change while it runs (exports
    /// `algo-tune` beside `algo`, world `tunable-algorithm`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tunable: bool,
    /// Whether the compiled code came from the disk cache.
    pub cache_hit: bool,
    /// For a plugin on one of Paddock's language runtimes: the files of its `paddock:app`
    /// section (see [`super::app_section`]), by path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_files: Vec<String>,
    /// sha256 of what was compiled, hex, where it differs from the file's (a plugin on a
    /// language runtime: the runtime without the plugin's files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// The `paddock:app` section's content, which each instance reads through `paddock:runtime/app`.
    #[serde(skip)]
    pub(crate) app: Option<Arc<[u8]>>,
}

/// A compiled, checked plugin, ready to instantiate (cheap to clone).
#[derive(Clone)]
pub struct Plugin {
    pub(crate) info: Arc<PluginInfo>,
    pub(crate) runtime: Runtime,
    pub(crate) pre: Option<InstancePre<PluginState>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("info", &self.info).finish()
    }
}

impl Plugin {
    /// What the host knows about it.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.info.name
    }
}

/// The interface a goal-conditioned env exports beside `env`.
const GOAL_ENV: &str = "goal-env";
/// The interface a tunable algorithm exports beside `algo`.
const ALGO_TUNE: &str = "algo-tune";

/// Splits `paddock:rl/env@0.1.0` into (`paddock:rl`, `env`, `0.1.0`).
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (pkg, rest) = name.split_once('/')?;
    let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
    Some((pkg, iface, version))
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Semver compatibility with the host's package version: the same major version (for 0.x,
/// the same minor), and not newer than the host — a newer component may use what this host
/// lacks.
fn compatible(v: (u64, u64, u64)) -> bool {
    let h = PACKAGE_VERSION;
    v.0 == h.0 && (h.0 != 0 || v.1 == h.1) && v <= h
}

fn host_version_req() -> String {
    let (a, b, c) = PACKAGE_VERSION;
    if a == 0 { format!("{a}.{b}.x up to {a}.{b}.{c}") } else { format!("{a}.x up to {a}.{b}.{c}") }
}

fn expected_text(world: World) -> String {
    format!("world `{}` (exports {PACKAGE}/{}@{})", world.name(), world.export_interface(), host_version_req())
}

fn compile(runtime: &Runtime, bytes: &[u8], sha256: &str) -> (Result<Component, String>, bool) {
    let engine = runtime.engine();
    let cache_file = runtime.options().cache_dir.as_ref().map(|dir| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
    });
    // Read into memory rather than map the file: a cache file truncated or rewritten by
    // another process while mapped would crash this one (SIGBUS).
    if let Some(file) = &cache_file
        && let Ok(serialized) = std::fs::read(file)
    {
        // SAFETY: files in the cache directory are written only by `compile` below, from
        // `Component::serialize` of this engine configuration (the key includes the
        // engine's compatibility hash); wasmtime re-checks the header and version and
        // refuses other bytes, in which case the component is compiled afresh.
        if let Ok(c) = unsafe { Component::deserialize(engine, &serialized) } {
            return (Ok(c), true);
        }
    }
    let (before, started) = (runtime.function_cache_counts(), std::time::Instant::now());
    let component = match Component::new(engine, bytes) {
        Ok(c) => c,
        Err(e) => return (Err(format!("{e:#}")), false),
    };
    if let (Some(a), Some(b)) = (before, runtime.function_cache_counts()) {
        // Other compilations may run at once in this process: the counts are approximate then.
        let (hits, misses) = (b.hits - a.hits, b.misses - a.misses);
        let msg = format!(
            "compiled sha256 {} in {:.0} ms: {hits} of {} functions from the compile cache",
            &sha256[..12],
            started.elapsed().as_secs_f64() * 1e3,
            hits + misses
        );
        runtime.options().log.line(crate::log::Level::Info, "host", &msg);
    }
    if let Some(file) = &cache_file {
        // The cache is an optimisation: failing to write it is not an error.
        let _ = component.serialize().map_err(anyhow::Error::from).and_then(|bytes| crate::store::write_atomically(file, &bytes));
    }
    (Ok(component), false)
}

/// A plugin's name: its file's stem, without a `-<sha256>` suffix (a run's carried copy
/// or the registry cache names files `<name>-<sha256>.wasm`).
pub fn plugin_name(path: &std::path::Path) -> String {
    let stem = path.file_stem().map_or_else(|| "plugin".to_string(), |s| s.to_string_lossy().into_owned());
    match stem.rsplit_once('-') {
        Some((name, hash)) if !name.is_empty() && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

pub(crate) fn load(runtime: &Runtime, path: PathBuf, expected: Option<World>) -> Result<Plugin, LoadError> {
    let bytes = std::fs::read(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
    let name = plugin_name(&path);
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm { plugin: name, path });
    }
    if wasmparser::Parser::is_core_wasm(&bytes) {
        return Err(LoadError::CoreModule { plugin: name, path });
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    // A plugin on a language runtime: compile the runtime alone (one artifact for every
    // version of every plugin on it); each instance reads its files through `paddock:runtime/app`.
    let super::app_section::Split { code, app } = super::app_section::split(&bytes);
    let (code_sha256, app_files) = match &app {
        Some(content) => {
            let files = super::app_section::decode(content).map_err(|reason| LoadError::Compile {
                plugin: name.clone(),
                path: path.clone(),
                reason: format!("its {} section cannot be read: {reason}", super::app_section::SECTION),
            })?;
            (Some(hex::encode(Sha256::digest(&code))), files.into_iter().map(|(p, _)| p).collect())
        }
        None => (None, Vec::new()),
    };
    let (component, cache_hit) = compile(runtime, &code, code_sha256.as_deref().unwrap_or(&sha256));
    let component = component.map_err(|reason| LoadError::Compile { plugin: name.clone(), path: path.clone(), reason })?;

    let ty = component.component_type();
    let engine = runtime.engine();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();

    // Which world: the paddock:rl interface it exports. `goal-env` rides along with `env`
    // (world `goal-environment`, an environment with hindsight support).
    let all_ours: Vec<(&str, &str)> =
        exports.iter().filter_map(|e| split_name(e)).filter(|(pkg, _, _)| *pkg == PACKAGE).map(|(_, iface, ver)| (iface, ver)).collect();
    let goal_export = all_ours.iter().find(|(iface, _)| *iface == GOAL_ENV).map(|(_, v)| v.to_string());
    let tune_export = all_ours.iter().find(|(iface, _)| *iface == ALGO_TUNE).map(|(_, v)| v.to_string());
    let ours: Vec<(&str, &str)> = all_ours.iter().filter(|(iface, _)| *iface != GOAL_ENV && *iface != ALGO_TUNE).copied().collect();
    let mismatch = |found: String| LoadError::Mismatch {
        plugin: name.clone(),
        path: path.clone(),
        expected: expected.map_or_else(|| format!("one of the worlds of {PACKAGE}@{}", host_version_req()), expected_text),
        found,
    };
    let (world, version) = match ours.as_slice() {
        [] => {
            let list = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
            return Err(mismatch(format!("no {PACKAGE} export (it exports {list})")));
        }
        [(iface, ver)] => match World::from_export(iface) {
            Some(w) => (w, *ver),
            None => return Err(mismatch(format!("an export of unknown interface {PACKAGE}/{iface}@{ver}"))),
        },
        many => {
            let list: Vec<String> = many.iter().map(|(i, v)| format!("{PACKAGE}/{i}@{v}")).collect();
            return Err(mismatch(format!("several {PACKAGE} exports ({})", list.join(", "))));
        }
    };
    if let Some(goal_version) = &goal_export {
        if world != World::Environment {
            return Err(mismatch(format!("{PACKAGE}/{GOAL_ENV} exported by a component of world `{}`", world.name())));
        }
        if goal_version != version {
            return Err(mismatch(format!("{PACKAGE}/{GOAL_ENV}@{goal_version} beside {PACKAGE}/env@{version} (one package version)")));
        }
    }
    if let Some(tune_version) = &tune_export {
        if world != World::Algorithm {
            return Err(mismatch(format!("{PACKAGE}/{ALGO_TUNE} exported by a component of world `{}`", world.name())));
        }
        if tune_version != version {
            return Err(mismatch(format!("{PACKAGE}/{ALGO_TUNE}@{tune_version} beside {PACKAGE}/algo@{version} (one package version)")));
        }
    }
    if let Some(want) = expected
        && want != world
    {
        return Err(mismatch(format!("world `{}` (exports {PACKAGE}/{}@{version})", world.name(), world.export_interface())));
    }
    if !parse_version(version).is_some_and(compatible) {
        return Err(mismatch(format!(
            "package version {PACKAGE}@{version} (world `{}`); rebuild it against wit/ of this Paddock",
            world.name()
        )));
    }
    for import in &imports {
        let Some((pkg, iface, ver)) = split_name(import) else { continue };
        if pkg != PACKAGE {
            continue;
        }
        let reason = if !world.allowed_imports().contains(&iface) {
            Some(format!("is not part of world `{}` (it may import {})", world.name(), world.allowed_imports().join(", ")))
        } else if !parse_version(ver).is_some_and(compatible) {
            Some(format!("has an incompatible version (this host implements {PACKAGE}@{})", host_version_req()))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(LoadError::Import { plugin: name, path, import: import.clone(), reason });
        }
    }
    let pre = match runtime.linker(world) {
        Some(linker) => Some(linker.instantiate_pre(&component).map_err(|e| {
            let import = imports.iter().find(|i| format!("{e:#}").contains(i.as_str())).cloned().unwrap_or_else(|| "?".into());
            LoadError::Import { plugin: name.clone(), path: path.clone(), import, reason: format!("the host cannot provide: {e:#}") }
        })?),
        None => None,
    };
    let info = PluginInfo {
        name,
        path,
        sha256,
        size_bytes: bytes.len(),
        world,
        package_version: version.to_string(),
        imports,
        exports,
        goals: goal_export.is_some(),
        tunable: tune_export.is_some(),
        cache_hit,
        app_files,
        code_sha256,
        app: app.map(Arc::from),
    };
    Ok(Plugin { info: Arc::new(info), runtime: runtime.clone(), pre })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert_eq!(split_name("paddock:rl/env@0.1.0"), Some(("paddock:rl", "env", "0.1.0")));
        assert_eq!(parse_version("0.1.2"), Some((0, 1, 2)));
        let (a, b, c) = PACKAGE_VERSION;
        assert!(compatible((a, b, 0)) && compatible((a, b, c)), "older patch versions load");
        assert!(!compatible((a, b, c + 1)), "a newer patch may use what this host lacks");
        assert!(!compatible((a, b + 1, 0)) && !compatible((a + 1, 0, 0)));
        assert_eq!(parse_version("0.1"), None);
        assert!(compatible((0, 1, 0)));
        assert!(!compatible((0, 2, 0)));
        assert!(!compatible((1, 1, 0)));
    }
}
