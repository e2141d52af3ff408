//! Errors of plugin loading and plugin calls. Every message names the plugin, and for
//! calls the call, so a failure in a run of many plugins is easy to place.

use std::path::PathBuf;

/// A plugin world, as the host knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `environment`: exports `paddock:rl/env`.
    Environment,
    /// `reward`: exports `paddock:rl/reward-fn`.
    Reward,
    /// `algorithm`: exports `paddock:rl/algo`.
    Algorithm,
}

impl World {
    /// The WIT world name.
    pub fn name(self) -> &'static str {
        match self {
            World::Environment => "environment",
            World::Reward => "reward",
            World::Algorithm => "algorithm",
        }
    }

    /// The interface this world exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Environment => "env",
            World::Reward => "reward-fn",
            World::Algorithm => "algo",
        }
    }

    /// The host interfaces this world may import.
    pub fn allowed_imports(self) -> &'static [&'static str] {
        match self {
            World::Environment => &["types", "physics", "log"],
            World::Reward => &["types", "log"],
            World::Algorithm => &["types", "tensor", "log"],
        }
    }

    pub(crate) fn from_export(interface: &str) -> Option<World> {
        [World::Environment, World::Reward, World::Algorithm].into_iter().find(|w| w.export_interface() == interface)
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read plugin file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error("plugin `{plugin}` ({}) is not a WebAssembly file (it does not start with `\\0asm`)", path.display())]
    NotWasm {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
    },
    /// A core module, not a component.
    #[error("plugin `{plugin}` ({}) is a core Wasm module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`", path.display())]
    CoreModule {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
    },
    /// Compilation failed (truncated or invalid component).
    #[error("plugin `{plugin}` ({}) failed to compile: {reason}", path.display())]
    Compile {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What the compiler said.
        reason: String,
    },
    /// The component targets another world or package version.
    #[error("plugin `{plugin}` ({}) does not fit: expected {expected}, found {found}", path.display())]
    Mismatch {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What the host expected.
        expected: String,
        /// What the component has.
        found: String,
    },
    /// The component imports something this host does not provide.
    #[error("plugin `{plugin}` ({}) imports `{import}`, which {reason}", path.display())]
    Import {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The import.
        import: String,
        /// Why it cannot be provided.
        reason: String,
    },
}

/// A failed call into a plugin.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` failed in `{call}`: {kind}")]
pub struct CallError {
    /// Plugin name.
    pub plugin: String,
    /// The WIT function called, e.g. `step-all`.
    pub call: &'static str,
    /// What went wrong.
    pub kind: CallErrorKind,
}

/// What went wrong in a plugin call.
#[derive(Debug, thiserror::Error)]
pub enum CallErrorKind {
    /// The call ran past its deadline and was interrupted.
    #[error("did not return within {0:?} (the call deadline; see `[runtime] call_timeout_ms`)")]
    Timeout(std::time::Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error("tried to grow its memory past the cap of {} MiB (see `[runtime] memory_limit_mb`)", .0 >> 20)]
    MemoryCap(usize),
    /// The plugin panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin returned an error value.
    #[error("returned an error: {0}")]
    Returned(String),
    /// The plugin returned `unsupported`: it does not implement this call (an env without
    /// snapshots, say). Callers that can do without the call check for it.
    #[error("returned an error: unsupported: {0}")]
    Unsupported(String),
    /// The plugin returned something malformed (wrong length, NaN, …).
    #[error("returned invalid output: {0}")]
    InvalidOutput(String),
    /// The host refused the call before making it (a parameter the plugin does not let
    /// change, say).
    #[error("refused: {0}")]
    Refused(String),
    /// An earlier trap killed this instance.
    #[error("the instance is dead after an earlier trap; it must be re-created")]
    Dead,
}

impl CallError {
    /// Whether the instance trapped (and so is dead) rather than returning an error.
    pub fn is_trap(&self) -> bool {
        matches!(
            self.kind,
            CallErrorKind::Timeout(_)
                | CallErrorKind::MemoryCap(_)
                | CallErrorKind::Panic(_)
                | CallErrorKind::Trap(_)
                | CallErrorKind::Dead
        )
    }
}
