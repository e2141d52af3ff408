//! `paddock plugin build`: a plugin project's source into its component, once or on every
//! save (`--watch`).
//!
//! - **Python** (`app.py`, world named by its `# world: NAME` line): by default the project's
//!   `.py` files are appended to Paddock's Python runtime for that world as its `paddock:app`
//!   section ([`crate::runtime::app_section`]). The runtime (CPython, the guest SDK and the
//!   loader `plugins/python/sdk/paddock_runtime.py`) is built once per world with
//!   componentize-py and kept in the cache folder; after that a build takes milliseconds, and
//!   the host compiles the runtime once for every version of every plugin on it, so a saved
//!   `app.py` is live in a running `paddock train` within about a second. `--bundle` runs
//!   componentize-py over the project instead (slow; for packages the runtime lacks, such as
//!   ones with native code).
//! - **JavaScript** (`app.js`, world named by its `// world: NAME` line): the same, on
//!   Paddock's JavaScript runtime (StarlingMonkey and the loader
//!   `plugins/js/sdk/paddock_runtime.js`, built once per world with componentize-js);
//!   `--bundle` runs the project's `build.mjs`.
//! - **Rust** (`Cargo.toml`): `cargo build --release --target wasm32-wasip2`.
//! - **C** (`build.sh`): the starter's build script.
//!
//! A build writes its output whole (a temporary file renamed into place, which a watching
//! run loads at once) and leaves a file whose bytes would not change untouched.

use crate::runtime::app_section;
use anyhow::Context;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The plugin contract, for builds and starters whose binding generators read WIT.
pub(crate) const WIT: &[(&str, &str)] = &[
    ("_types.wit", include_str!("../../wit/_types.wit")),
    ("env.wit", include_str!("../../wit/env.wit")),
    ("goal-env.wit", include_str!("../../wit/goal-env.wit")),
    ("reward.wit", include_str!("../../wit/reward.wit")),
    ("algorithm.wit", include_str!("../../wit/algorithm.wit")),
    ("tensor.wit", include_str!("../../wit/tensor.wit")),
    ("physics.wit", include_str!("../../wit/physics.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
    ("worlds.wit", include_str!("../../wit/worlds.wit")),
];
/// The contract of Paddock's language runtimes (`paddock:runtime`).
const RUNTIME_WIT: &str = include_str!("../../wit/runtime/runtime.wit");
/// The Python guest SDK.
pub(crate) const SDK_PY: &str = include_str!("../../plugins/python/sdk/paddock_sdk.py");
/// The loader of Paddock's Python runtime.
const RUNTIME_PY: &str = include_str!("../../plugins/python/sdk/paddock_runtime.py");
/// The JavaScript guest SDK.
pub(crate) const SDK_JS: &str = include_str!("../../plugins/js/sdk/paddock_sdk.js");
/// The loader of Paddock's JavaScript runtime.
const RUNTIME_JS: &str = include_str!("../../plugins/js/sdk/paddock_runtime.js");
/// The script that builds JavaScript components with componentize-js (the repository's,
/// which JavaScript starters carry as `build.mjs`).
pub(crate) const BUILD_JS: &str = include_str!("../../scripts/js/componentize.mjs");
/// The componentize-py version the runtime and bundles are built with.
pub(crate) const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// A plugin project's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// `Cargo.toml`.
    Rust,
    /// `app.py`.
    Python,
    /// `app.js`.
    JavaScript,
    /// `build.sh`.
    C,
}

impl Lang {
    /// The language's name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::JavaScript => "JavaScript",
            Lang::C => "C",
        }
    }

    /// Whether a change to `path` is a change to the project's source.
    fn is_source(self, path: &Path) -> bool {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match self {
            Lang::Python => ext == "py",
            Lang::Rust => ext == "rs" || name == "Cargo.toml" || ext == "wit",
            Lang::JavaScript => ext == "js" || name == "build.mjs" || name == "package.json",
            Lang::C => matches!(ext, "c" | "h" | "wit") || name == "build.sh",
        }
    }
}

/// A plugin project.
#[derive(Clone, Debug)]
pub struct Project {
    /// Its folder.
    pub dir: PathBuf,
    /// Its language.
    pub lang: Lang,
    /// Its name (the folder's).
    pub name: String,
    /// The world a Python or JavaScript project targets (its `# world:` or `// world:` line).
    pub world: Option<String>,
}

/// Python worlds and the contract features they need.
const PY_WORLDS: &[(&str, Option<&str>)] =
    &[("reward", None), ("environment", None), ("goal-environment", Some("goals")), ("algorithm", Some("tensor"))];
/// JavaScript worlds: (world, the export's name in JavaScript and its methods, the imports
/// a module of that world may name).
const JS_WORLDS: &[(&str, &str, &[&str], &[&str])] = &[
    ("reward", "rewardFn", &["init", "compute"], &["log"]),
    ("environment", "env", &["spec", "init", "reset", "step", "resetAll", "stepAll", "snapshot", "restore"], &["log", "physics"]),
];

/// Finds what `dir` holds: a Rust, Python, JavaScript or C plugin project.
pub fn detect(dir: &Path) -> anyhow::Result<Project> {
    let meta = fs_err::metadata(dir).context("the plugin project folder")?;
    anyhow::ensure!(meta.is_dir(), "{} is not a folder (give the plugin project's folder)", dir.display());
    let dir = std::path::absolute(dir)?;
    let name = dir.file_name().map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned());
    let has = |f: &str| dir.join(f).is_file();
    let lang = if has("app.py") {
        Lang::Python
    } else if has("Cargo.toml") {
        Lang::Rust
    } else if has("app.js") {
        Lang::JavaScript
    } else if has("build.sh") {
        Lang::C
    } else {
        anyhow::bail!(
            "{} holds no plugin project: expected app.py (Python), Cargo.toml (Rust), app.js (JavaScript) or build.sh (C); `paddock plugin new` makes one",
            dir.display()
        );
    };
    let world = match lang {
        Lang::Python => Some(app_world(&dir.join("app.py"), "#", &PY_WORLDS.iter().map(|w| w.0).collect::<Vec<_>>())?),
        Lang::JavaScript => Some(app_world(&dir.join("app.js"), "//", &JS_WORLDS.iter().map(|w| w.0).collect::<Vec<_>>())?),
        _ => None,
    };
    Ok(Project { dir, lang, name, world })
}

/// The world named by the `# world: NAME` (`// world: NAME`) line of an app.
fn app_world(app: &Path, comment: &str, worlds: &[&str]) -> anyhow::Result<String> {
    let text = fs_err::read_to_string(app)?;
    let marker = format!("{comment} world:");
    let Some(world) = text.lines().take(20).find_map(|l| l.trim().strip_prefix(marker.as_str()).map(|w| w.trim().to_string())) else {
        anyhow::bail!("{} has no `{marker} NAME` line in its first 20 lines (NAME: one of {})", app.display(), worlds.join(", "));
    };
    anyhow::ensure!(worlds.contains(&world.as_str()), "{}: unknown world `{world}` (one of {})", app.display(), worlds.join(", "));
    Ok(world)
}

/// How to build.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Where the component goes (default: `DIR/NAME.wasm` for Python; where the build puts
    /// it for the others).
    pub output: Option<PathBuf>,
    /// Python and JavaScript: a self-contained component (componentize-py over the
    /// project; the project's `build.mjs`) instead of the runtime and the project's files.
    pub bundle: bool,
    /// Where the runtimes are kept (default: the component cache folder).
    pub cache_dir: Option<PathBuf>,
}

/// A build's result.
#[derive(Clone, Debug)]
pub struct Built {
    /// The component.
    pub output: PathBuf,
    /// How long the build took.
    pub took: Duration,
    /// Source files in the plugin's `paddock:app` section (a plugin on a runtime).
    pub files: usize,
    /// The output's bytes are the same as before (the file was left as it was).
    pub unchanged: bool,
}

/// Builds `project`; `say` is told of long steps (a runtime's first build).
pub fn build(project: &Project, opts: &BuildOptions, say: &mut dyn FnMut(&str)) -> anyhow::Result<Built> {
    let started = Instant::now();
    let (output, files, unchanged) = match project.lang {
        Lang::Python | Lang::JavaScript if !opts.bundle => on_runtime(project, opts, say)?,
        Lang::Python => {
            let out = opts.output.clone().unwrap_or_else(|| project.dir.join(format!("{}.wasm", project.name)));
            python_bundle(project, &out)?;
            (out, 0, false)
        }
        Lang::JavaScript => {
            anyhow::ensure!(
                project.dir.join("build.mjs").is_file(),
                "--bundle builds a JavaScript project with its build.mjs, and {} has none (`paddock plugin new --lang js` writes one)",
                project.dir.display()
            );
            (script(project, opts, &["node", "build.mjs"], started)?, 0, false)
        }
        Lang::Rust => (rust(project, opts)?, 0, false),
        Lang::C => (script(project, opts, &["bash", "build.sh"], started)?, 0, false),
    };
    Ok(Built { output, took: started.elapsed(), files, unchanged })
}

/// Writes `bytes` to `path` whole (a temporary file renamed into place), unless it already
/// holds them; returns whether it did.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    crate::store::write_atomically(path, bytes).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(true)
}

/// Folders a project's files are never taken from (virtual environments are found by
/// their `pyvenv.cfg`, whatever their name).
fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "__pycache__" | "target" | "node_modules")
}

/// A digest of a project's source files (path and bytes of each file its language counts as
/// source), so that a watch does not build again when a build itself rewrote files with the
/// same bytes (a C starter's `gen/`).
fn source_digest(project: &Project) -> String {
    let mut files = Vec::new();
    let mut stack = vec![project.dir.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            match e.file_type() {
                Ok(t) if t.is_dir() && !skipped_dir(&name) && !path.join("pyvenv.cfg").is_file() => stack.push(path),
                Ok(t) if t.is_file() && project.lang.is_source(&path) => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

/// The source files (`.py` or `.js`: `ext`) of a project, by path relative to it, sorted
/// (so the same source gives the same component).
fn source_files(dir: &Path, ext: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("pyvenv.cfg").is_file() {
            continue;
        }
        for e in fs_err::read_dir(&d)? {
            let e = e?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type()?.is_dir() {
                if !skipped_dir(&name) {
                    stack.push(path);
                }
            } else if name.ends_with(ext) && !name.starts_with('.') {
                let rel = path.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
                out.push((rel, fs_err::read(&path)?));
            }
        }
    }
    out.sort();
    let total: usize = out.iter().map(|f| f.1.len()).sum();
    anyhow::ensure!(
        total <= 16 << 20,
        "{} holds {:.1} MB of {ext} files (at most 16 MB go into a plugin); move data and other projects out of it",
        dir.display(),
        total as f64 / 1e6
    );
    Ok(out)
}

fn on_runtime(project: &Project, opts: &BuildOptions, say: &mut dyn FnMut(&str)) -> anyhow::Result<(PathBuf, usize, bool)> {
    let world = project.world.as_deref().expect("Python and JavaScript projects have a world");
    let (runtime, files) = if project.lang == Lang::Python {
        (python_runtime(world, opts.cache_dir.as_deref(), say)?, source_files(&project.dir, ".py")?)
    } else {
        (js_runtime(world, &project.dir, opts.cache_dir.as_deref(), say)?, source_files(&project.dir, ".js")?)
    };
    let bytes = app_section::append(&fs_err::read(&runtime)?, &app_section::encode(&files));
    let out = opts.output.clone().unwrap_or_else(|| project.dir.join(format!("{}.wasm", project.name)));
    let changed = write_if_changed(&out, &bytes)?;
    Ok((out, files.len(), !changed))
}

/// Where componentize-py is: `$COMPONENTIZE_PY`, `PATH`, or a checkout's `.venv`.
fn componentize_py() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("COMPONENTIZE_PY") {
        return Ok(PathBuf::from(p));
    }
    find_tool("componentize-py", &["../../.venv/bin/componentize-py", "../../../.venv/bin/componentize-py"])
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "componentize-py is not on PATH nor beside this paddock; install it (pip install componentize-py=={COMPONENTIZE_PY_VERSION}) or set COMPONENTIZE_PY=PATH"
            )
        })
}

/// What `TOOL --version` says, asked once per process (a Python tool takes ~0.1 s to start,
/// which every build of a watch would pay).
fn tool_version(tool: &Path) -> anyhow::Result<String> {
    static SEEN: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = seen.iter().find(|(t, _)| t == tool) {
        return Ok(v.clone());
    }
    let out = std::process::Command::new(tool).arg("--version").output().with_context(|| format!("failed to run {}", tool.display()))?;
    anyhow::ensure!(out.status.success(), "{} --version failed ({})", tool.display(), out.status);
    let v = String::from_utf8_lossy(&out.stdout).into_owned();
    seen.push((tool.to_path_buf(), v.clone()));
    Ok(v)
}

/// Runs `cmd`, its output shown only when it fails.
fn run_quiet(cmd: &mut std::process::Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("failed to start {what}"))?;
    if !out.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        anyhow::bail!("{what} failed ({}):\n{}", out.status, tail.join("\n"));
    }
    Ok(())
}

/// Writes into a new temporary folder the contract (`wit/`), the runtime package for
/// `world` with the contract as its dependency (`runtime-wit/`), and the Python SDK and
/// loader (`sdk/`).
fn build_inputs(world: &str) -> anyhow::Result<tempfile::TempDir> {
    let tmp = tempfile::tempdir()?;
    for d in ["wit", "runtime-wit/deps/rl", "sdk"] {
        fs_err::create_dir_all(tmp.path().join(d))?;
    }
    for (f, text) in WIT {
        fs_err::write(tmp.path().join("wit").join(f), text)?;
        fs_err::write(tmp.path().join("runtime-wit/deps/rl").join(f), text)?;
    }
    fs_err::write(tmp.path().join("runtime-wit/runtime.wit"), runtime_wit(world))?;
    fs_err::write(tmp.path().join("sdk/paddock_sdk.py"), SDK_PY)?;
    fs_err::write(tmp.path().join("sdk/paddock_runtime.py"), RUNTIME_PY)?;
    Ok(tmp)
}

/// `wit/runtime/runtime.wit` with only `world` among its worlds, ungated (componentize-js
/// cannot enable the contract's unstable features, and an unused world that includes an
/// unstable one fails to resolve).
fn runtime_wit(world: &str) -> String {
    let head = RUNTIME_WIT.split("/// A reward runtime").next().expect("runtime.wit has worlds");
    format!("{head}world {world} {{\n    include paddock:rl/{world}@{};\n    import app;\n}}\n", package_version())
}

fn package_version() -> String {
    let (a, b, c) = crate::runtime::PACKAGE_VERSION;
    format!("{a}.{b}.{c}")
}

fn componentize_args(cmd: &mut std::process::Command, wit: &Path, world: &str) {
    cmd.arg("-d").arg(wit).args(["-w", world]);
    if let Some(f) = PY_WORLDS.iter().find(|w| w.0 == world).and_then(|w| w.1) {
        cmd.args(["--features", f]);
    }
}

/// Paddock's Python runtime for `world`, built with componentize-py on first use and kept
/// under `CACHE/python-runtimes/` by the hash of everything it is made from.
pub fn python_runtime(world: &str, cache_dir: Option<&Path>, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let tool = componentize_py()?;
    let version = tool_version(&tool)?;
    let path = runtime_path(cache_dir, "python", world, &[version.as_bytes(), SDK_PY.as_bytes(), RUNTIME_PY.as_bytes()])?;
    if path.is_file() {
        return Ok(path);
    }
    say(&format!(
        "building Paddock's Python runtime for world `{world}` with {} (once, ~10–30 s; kept in {})",
        version.trim(),
        path.parent().expect("in a folder").display()
    ));
    let tmp = build_inputs(world)?;
    let out = tmp.path().join("runtime.wasm");
    let mut cmd = std::process::Command::new(&tool);
    cmd.arg("-d").arg(tmp.path().join("runtime-wit")).args(["-w", world, "--all-features"]);
    cmd.args(["componentize", "paddock_runtime", "-p"]).arg(tmp.path().join("sdk")).arg("-o").arg(&out);
    run_quiet(&mut cmd, "componentize-py (building the Python runtime)")?;
    write_if_changed(&path, &fs_err::read(&out)?)?;
    Ok(path)
}

/// Where the runtime of `lang` for `world` is kept: named by a hash of the world, the
/// contract (`paddock:rl` and `paddock:runtime`) and `inputs` (the tool's version, the loader,
/// the SDK: everything else it is made from).
fn runtime_path(cache_dir: Option<&Path>, lang: &str, world: &str, inputs: &[&[u8]]) -> anyhow::Result<PathBuf> {
    let mut h = sha2::Sha256::new();
    h.update(world.as_bytes());
    for (f, text) in WIT {
        h.update(f.as_bytes());
        h.update(text.as_bytes());
    }
    h.update(RUNTIME_WIT.as_bytes());
    for part in inputs {
        h.update(part);
    }
    let key = hex::encode(h.finalize());
    let cache = cache_dir
        .map(Path::to_path_buf)
        .or_else(crate::runtime::default_cache_dir)
        .context("no cache folder for Paddock's language runtimes (set PADDOCK_CACHE_DIR)")?;
    Ok(cache.join(format!("{lang}-runtimes")).join(format!("{world}-{}.wasm", &key[..16])))
}

/// componentize-js: the project's `node_modules` (a starter's, after `npm install`), else a
/// checkout's `scripts/js/node_modules` beside this paddock.
fn componentize_js(project: &Path) -> anyhow::Result<PathBuf> {
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    let mut places = vec![project.join("node_modules")];
    if let Some(d) = exe_dir {
        places.extend([d.join("../../scripts/js/node_modules"), d.join("../../../scripts/js/node_modules")]);
    }
    places
        .into_iter()
        .find(|m| m.join("@bytecodealliance/componentize-js/package.json").is_file())
        .and_then(|m| std::fs::canonicalize(m).ok())
        .with_context(|| {
            format!(
                "componentize-js is not installed in {} (run `npm install` there: the starter's package.json names it)",
                project.join("node_modules").display()
            )
        })
}

/// The loader of the JavaScript runtime for `world`: its head imports the world's
/// interfaces, its tail exports the world's forwarders, and the guest SDK rides along as a
/// file a plugin may import (`./paddock_sdk.js`) without carrying it.
fn js_loader(world: &str) -> anyhow::Result<String> {
    let (_, export, methods, imports) =
        JS_WORLDS.iter().find(|w| w.0 == world).with_context(|| format!("no JavaScript runtime for world `{world}`"))?;
    let v = package_version();
    let mut head = "import { source } from \"paddock:runtime/app@0.1.0\";\n".to_string();
    let mut table = Vec::new();
    for i in *imports {
        head += &format!("import * as {i} from \"paddock:rl/{i}@{v}\";\n");
        table.push(format!("\"paddock:rl/{i}\": {i}"));
    }
    head += &format!("const IMPORTS = {{ {} }};\n", table.join(", "));
    head += &format!("const BUILTIN = {{ \"paddock_sdk.js\": {} }};\n", serde_json::to_string(SDK_JS)?);
    let list: Vec<String> = methods.iter().map(|m| format!("\"{m}\"")).collect();
    let tail = format!("\nexport const {export} = forward(\"{export}\", [{}]);\n", list.join(", "));
    Ok(format!("{head}{RUNTIME_JS}{tail}"))
}

/// Paddock's JavaScript runtime for `world`, built with componentize-js on first use and
/// kept under `CACHE/js-runtimes/`.
pub fn js_runtime(world: &str, project: &Path, cache_dir: Option<&Path>, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let modules = componentize_js(project)?;
    let package = fs_err::read(modules.join("@bytecodealliance/componentize-js/package.json"))?;
    let loader = js_loader(world)?;
    let path = runtime_path(cache_dir, "js", world, &[&package, loader.as_bytes(), BUILD_JS.as_bytes()])?;
    if path.is_file() {
        return Ok(path);
    }
    say(&format!(
        "building Paddock's JavaScript runtime for world `{world}` with componentize-js (once, ~15–30 s; kept in {})",
        path.parent().expect("in a folder").display()
    ));
    let tmp = build_inputs(world)?;
    fs_err::write(tmp.path().join("componentize.mjs"), BUILD_JS)?;
    fs_err::write(tmp.path().join("paddock_runtime.js"), loader)?;
    std::os::unix::fs::symlink(&modules, tmp.path().join("node_modules")).context("failed to link node_modules")?;
    let out = tmp.path().join("runtime.wasm");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(tmp.path().join("componentize.mjs")).arg(tmp.path().join("runtime-wit")).arg(world);
    cmd.arg(tmp.path().join("paddock_runtime.js")).arg(&out);
    run_quiet(&mut cmd, "componentize-js (building the JavaScript runtime)")?;
    write_if_changed(&path, &fs_err::read(&out)?)?;
    Ok(path)
}

fn python_bundle(project: &Project, out: &Path) -> anyhow::Result<()> {
    let world = project.world.as_deref().expect("Python projects have a world");
    let tmp = build_inputs(world)?;
    let built = tmp.path().join("bundle.wasm");
    let mut cmd = std::process::Command::new(componentize_py()?);
    componentize_args(&mut cmd, &tmp.path().join("wit"), world);
    // The project's own paddock_sdk.py, if it has one, comes first on the path.
    cmd.args(["componentize", "app", "-p"]).arg(&project.dir).arg("-p").arg(tmp.path().join("sdk")).arg("-o").arg(&built);
    run_quiet(&mut cmd, "componentize-py")?;
    write_if_changed(out, &fs_err::read(&built)?)?;
    Ok(())
}

fn rust(project: &Project, opts: &BuildOptions) -> anyhow::Result<PathBuf> {
    let out = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
        .current_dir(&project.dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("failed to start cargo")?;
    anyhow::ensure!(out.status.success(), "cargo build in {} failed ({})", project.dir.display(), out.status);
    let wasm = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .with_context(|| format!("cargo build in {} made no .wasm (is it a cdylib crate?)", project.dir.display()))?;
    copy_to(wasm, opts)
}

/// Runs a starter's build script; its output is the `.wasm` it wrote in the project folder.
fn script(project: &Project, opts: &BuildOptions, argv: &[&str], started: Instant) -> anyhow::Result<PathBuf> {
    run_quiet(std::process::Command::new(argv[0]).args(&argv[1..]).current_dir(&project.dir), &argv.join(" "))?;
    let since = std::time::SystemTime::now() - started.elapsed() - Duration::from_secs(1);
    let written: Vec<PathBuf> = fs_err::read_dir(&project.dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .filter(|p| std::fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t >= since))
        .collect();
    let [wasm] = written.as_slice() else {
        anyhow::bail!("`{}` in {} wrote {} .wasm files in the folder (expected one)", argv.join(" "), project.dir.display(), written.len());
    };
    copy_to(wasm.clone(), opts)
}

fn copy_to(wasm: PathBuf, opts: &BuildOptions) -> anyhow::Result<PathBuf> {
    match &opts.output {
        Some(out) => {
            write_if_changed(out, &fs_err::read(&wasm)?)?;
            Ok(out.clone())
        }
        None => Ok(wasm),
    }
}

/// What a watch reports.
pub enum WatchEvent {
    /// News of a long step (the Python runtime's first build).
    Note(String),
    /// A build began (after these changed files).
    Building(Vec<PathBuf>),
    /// A build ended.
    Built(anyhow::Result<Built>),
}

/// Builds `project` now and again each time its source changes (a burst of changes, as an
/// editor's save makes, is one build), until `stop` says so or the watch fails.
pub fn watch(project: &Project, opts: &BuildOptions, stop: &dyn Fn() -> bool, on: &mut dyn FnMut(WatchEvent)) -> anyhow::Result<()> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res
            && (e.kind.is_modify() || e.kind.is_create() || e.kind.is_remove())
        {
            for p in e.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    watcher.watch(&project.dir, RecursiveMode::Recursive).with_context(|| format!("failed to watch {}", project.dir.display()))?;
    let output = opts.output.as_ref().map(|o| std::path::absolute(o).unwrap_or_else(|_| o.clone()));
    let relevant = |p: &Path| {
        let inside = p.strip_prefix(&project.dir).unwrap_or(p);
        Some(p) != output.as_deref()
            && !inside.components().any(|c| skipped_dir(&c.as_os_str().to_string_lossy()))
            && project.lang.is_source(p)
    };
    let mut built_from = source_digest(project);
    let first = build(project, opts, &mut |m| on(WatchEvent::Note(m.to_string())));
    on(WatchEvent::Built(first));
    let mut changed: Vec<PathBuf> = Vec::new();
    loop {
        if stop() {
            return Ok(());
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(p) => {
                if relevant(&p) && !changed.contains(&p) {
                    changed.push(p);
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => anyhow::bail!("the file watcher stopped"),
        }
        if changed.is_empty() {
            continue;
        }
        // Files rewritten with the bytes they had (by an editor, or by the build itself) are
        // no change.
        let now = source_digest(project);
        if now == built_from {
            changed.clear();
            continue;
        }
        built_from = now;
        on(WatchEvent::Building(std::mem::take(&mut changed)));
        let result = build(project, opts, &mut |_| {});
        on(WatchEvent::Built(result));
    }
}

/// How a script should call the tool `name`: by name when it is on `PATH`, else by its
/// absolute path when it is at one of `beside` (relative to the folder of this `paddock`
/// executable: a checkout's `target/tools/bin`, its `.venv/bin`); `None` when it is nowhere.
pub(crate) fn find_tool(name: &str, beside: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join(name).is_file()) {
        return Some(name.to_string());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    beside
        .iter()
        .map(|rel| dir.join(rel))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .map(|p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_told_apart_and_python_worlds_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        assert!(format!("{:#}", detect(p).unwrap_err()).contains("holds no plugin project"));
        fs_err::write(p.join("app.py"), "print(1)\n").expect("write");
        assert!(format!("{:#}", detect(p).unwrap_err()).contains("no `# world: NAME` line"));
        fs_err::write(p.join("app.py"), "# world: rewards\n").expect("write");
        assert!(format!("{:#}", detect(p).unwrap_err()).contains("unknown world `rewards`"));
        fs_err::write(p.join("app.py"), "# world: reward\n").expect("write");
        let project = detect(p).expect("python");
        assert_eq!((project.lang, project.world.as_deref()), (Lang::Python, Some("reward")));
        fs_err::create_dir_all(p.join("__pycache__")).expect("dir");
        fs_err::write(p.join("__pycache__/app.cpython.py"), "x").expect("write");
        fs_err::create_dir_all(p.join("pkg")).expect("dir");
        fs_err::write(p.join("pkg/__init__.py"), "").expect("write");
        fs_err::write(p.join("notes.txt"), "").expect("write");
        let names: Vec<String> = source_files(p, ".py").expect("files").into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["app.py", "pkg/__init__.py"]);
        assert!(Lang::Python.is_source(Path::new("x/app.py")) && !Lang::Python.is_source(Path::new("x/app.wasm")));
    }
}
