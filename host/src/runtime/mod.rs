//! The plugin runtime: one wasmtime [`Engine`] per process, components compiled once and
//! cached on disk by content hash, one [`Store`](wasmtime::Store) per instance.
//!
//! Split as in the loader/bridge/watcher habit: [`loader`] turns bytes into a checked
//! [`Plugin`]; [`sandbox`] builds stores; [`instance`] is the call bridge (deadline, trap
//! classification, output forwarding); [`env`] and [`reward`] are the typed instances.

pub mod algorithm;
pub mod app_section;
pub mod bindings;
pub mod cameras;
pub mod env;
pub mod error;
pub mod function_cache;
pub mod goal;
pub mod instance;
pub mod loader;
mod log_host;
mod physics_host;
pub mod reward;
pub mod sandbox;
mod tensor_host;
mod tensor_specs;
pub mod watcher;

pub use algorithm::{AlgorithmInstance, lets_change};
pub use env::EnvInstance;
pub use error::{CallError, CallErrorKind, LoadError, World};
pub use goal::GoalInstance;
pub use loader::{Plugin, PluginInfo, plugin_name};
pub use reward::RewardInstance;
pub use sandbox::Limits;

use crate::log::RunLog;
use sandbox::PluginState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

/// The package this host implements; components must target a compatible version.
pub const PACKAGE: &str = "paddock:rl";
/// The package version this host implements (semver: components of 0.1.0 up to it load).
pub const PACKAGE_VERSION: (u64, u64, u64) = (0, 1, 2);

/// How often the epoch ticks; call deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Robot description files an env may load, by the name the config gives them, and how
/// they are imported (`[env] robots`, `packages`, `mesh_collision`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RobotGrants {
    /// URDF files by name.
    pub files: std::collections::BTreeMap<String, std::path::PathBuf>,
    /// Package search path and mesh collision mode.
    pub import: crate::physics::mesh::ImportOptions,
}

/// The robots an env may load (shared by every instance of a run).
pub type Robots = std::sync::Arc<RobotGrants>;

/// Settings of a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Limits of every plugin store.
    pub limits: Limits,
    /// Where compiled components are cached (`None`: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Where plugin output and host messages go.
    pub log: RunLog,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { limits: Limits::default(), cache_dir: default_cache_dir(), log: RunLog::stderr() }
    }
}

/// The most bytes the per-function compile cache keeps (`$PADDOCK_FUNCTION_CACHE_MB`, default
/// 2048 MiB; a Python plugin's interpreter is about 70 MiB of entries; 0: no function cache).
fn function_cache_bound() -> u64 {
    std::env::var("PADDOCK_FUNCTION_CACHE_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(2048) << 20
}

/// Trims the function cache to its bound once per process, on a background thread.
fn trim_once(cache: &Arc<function_cache::FunctionCache>) {
    static TRIMMED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let cache = cache.clone();
    TRIMMED.get_or_init(|| {
        let _ = std::thread::Builder::new().name("paddock-cache-trim".into()).spawn(move || {
            let _ = cache.trim(function_cache_bound());
        });
    });
}

/// `$PADDOCK_CACHE_DIR`, else the user's cache directory, else none.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PADDOCK_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "paddock").map(|d| d.cache_dir().join("components"))
}

struct Shared {
    engine: Engine,
    function_cache: Option<Arc<function_cache::FunctionCache>>,
    env_linker: Linker<PluginState>,
    reward_linker: Linker<PluginState>,
    algorithm_linker: Linker<PluginState>,
    options: RuntimeOptions,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The engine, linkers and settings every plugin of a process shares. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("options", &self.shared.options).finish()
    }
}

impl Runtime {
    /// Creates the engine and starts the epoch ticker that enforces call deadlines.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // No copy-on-write memory images. For a component read from bytes (we never map
        // cache files: see `loader::compile`) wasmtime builds each image in a sealed memfd,
        // and on a busy Linux machine sealing a large one (a Python plugin's tens of MB) can
        // fail with EBUSY while the kernel still holds its pages — CI saw
        // "cannot add seals to the memfd" fail a Python plugin's instantiation. Copying the
        // data segments instead costs 5 ms per instantiation of that plugin (0.5 ms with
        // images) and nothing measurable for a Rust one (10 µs either way).
        config.memory_init_cow(false);
        // Per-function compile cache beside the components' (see `function_cache`): a new
        // version of a plugin compiles only the functions that changed.
        // `PADDOCK_FUNCTION_CACHE_MB=0` turns it off.
        let function_cache = options.cache_dir.as_ref().filter(|_| function_cache_bound() > 0).map(|dir| {
            let cache = Arc::new(function_cache::FunctionCache::new(dir.join("functions"), options.log.clone()));
            trim_once(&cache);
            cache
        });
        if let Some(cache) = &function_cache {
            config.enable_incremental_compilation(cache.clone())?;
        }
        let engine = Engine::new(&config)?;

        // Every world gets the (sandboxed) WASI interfaces and `log`.
        let base_linker = || -> anyhow::Result<Linker<PluginState>> {
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
            sandbox::frozen_sleeps(&mut linker)?;
            bindings::environment::paddock::rl::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
            // `paddock:runtime/app` (wit/runtime/runtime.wit): a plugin on a language
            // runtime reads its own files, the component's `paddock:app` section.
            linker.instance(app_section::INTERFACE)?.func_wrap(
                "source",
                |store: wasmtime::StoreContextMut<'_, PluginState>, (): ()| -> wasmtime::Result<(Vec<u8>,)> {
                    Ok((store.data().app.as_deref().map(<[u8]>::to_vec).unwrap_or_default(),))
                },
            )?;
            Ok(linker)
        };
        let mut env_linker = base_linker()?;
        // `physics` (stable since contract 0.1.1), implemented by `runtime::physics_host`.
        bindings::environment::paddock::rl::physics::add_to_linker::<_, HasSelf<_>>(&mut env_linker, |s| s)?;
        let reward_linker = base_linker()?;
        let mut algorithm_linker = base_linker()?;
        // `tensor` is @unstable in the contract; this host implements it.
        let mut tensor_options = bindings::algorithm::paddock::rl::tensor::LinkOptions::default();
        tensor_options.tensor(true);
        bindings::algorithm::paddock::rl::tensor::add_to_linker::<_, HasSelf<_>>(&mut algorithm_linker, &tensor_options, |s| s)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (weak_engine, stop) = (engine.weak(), stop_ticker.clone());
        std::thread::Builder::new().name("paddock-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak_engine.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(Runtime {
            shared: Arc::new(Shared { engine, function_cache, env_linker, reward_linker, algorithm_linker, options, stop_ticker }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Functions found in and missing from the per-function compile cache so far (`None`
    /// without a cache folder).
    pub fn function_cache_counts(&self) -> Option<function_cache::Counts> {
        self.shared.function_cache.as_ref().map(|c| c.counts())
    }

    /// The runtime's settings.
    pub fn options(&self) -> &RuntimeOptions {
        &self.shared.options
    }

    pub(crate) fn linker(&self, world: World) -> Option<&Linker<PluginState>> {
        match world {
            World::Environment => Some(&self.shared.env_linker),
            World::Reward => Some(&self.shared.reward_linker),
            World::Algorithm => Some(&self.shared.algorithm_linker),
        }
    }

    /// Epoch ticks a call may run before it is interrupted.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.shared.options.limits.call_timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }

    /// Reads, compiles (or fetches from the cache) and checks a plugin that must target
    /// `world`.
    pub fn load(&self, path: impl Into<PathBuf>, world: World) -> Result<Plugin, LoadError> {
        loader::load(self, path.into(), Some(world))
    }

    /// Reads, compiles and identifies a plugin of any world (for `plugin inspect`).
    pub fn load_any(&self, path: impl Into<PathBuf>) -> Result<Plugin, LoadError> {
        loader::load(self, path.into(), None)
    }
}
