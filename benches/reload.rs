//! Hot-reload latency (issue 6's figure): from a plugin file's replacement (written beside
//! it, then renamed over it, as build tools do) to the new version being live in a running
//! `paddock train`, for the CartPole reward plugin (live at the next step) and the PPO
//! plugin (live right after the next update, which at 8 envs × 32 steps comes every
//! ~35 ms here). Each new version is the plugin with a different custom section, so each
//! has a new hash and goes through the whole path: file event, 50 ms quiet period,
//! compile (the compile cache misses: the bytes are new), world/version check, instantiate,
//! trial call, swap. Latencies are the run's own log figures (`… ms after the change`).
//!
//! Then Python and JavaScript plugins built on Paddock's runtimes (`paddock plugin build`:
//! the runtime with the project's files as its `paddock:app` section), at most 5 rounds
//! each: the CartPole rewards, the CartPole envs (live at each env's next episode boundary)
//! and the Python PPO; a new version is the app with a new line, the runtime the same. Then
//! the whole edit loop: `paddock plugin build --watch` on a copy of a reward project and a
//! run using what it builds, timed from saving the app to the run's log showing it live.
//!
//! Last, the self-contained Python and JavaScript rewards (componentize-py and
//! componentize-js over the whole app; 18 MB and 12 MB): their new versions differ from
//! the old in a custom section only, as an edit leaves the interpreter's code as it was, so
//! the per-function compile cache (`runtime::function_cache`) supplies most functions.
//!
//!     cargo bench --bench reload [-- ROUNDS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The "(N ms after the change; loaded in M ms)" figures of `role`'s swaps in the log.
fn figures(log: &str, role: &str) -> Vec<(f64, f64)> {
    let prefix = format!("hot reload: {role} plugin ");
    log.lines()
        .filter(|l| l.contains(&prefix))
        .filter_map(|l| {
            let (total, rest) = l.rsplit_once('(')?.1.split_once(" ms after the change; loaded in ")?;
            Some((total.parse().ok()?, rest.split_once(" ms")?.0.parse().ok()?))
        })
        .collect()
}

fn latencies(log: &str, role: &str) -> Vec<f64> {
    figures(log, role).into_iter().map(|f| f.0).collect()
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<40} n={:<3} median {:>4.0} ms   p90 {:>4.0} ms   min {:>4.0} ms   max {:>4.0} ms",
        v.len(),
        q(0.5),
        q(0.9),
        v[0],
        v[v.len() - 1]
    );
}

/// A plugin a reload run swaps: its role, first bytes, and the bytes of its `i`th new version.
struct Swapped {
    role: &'static str,
    first: Vec<u8>,
    next: Box<dyn Fn(usize) -> Vec<u8>>,
}

/// New versions that differ from `bytes` in a custom section only (new bytes, the same code).
fn retagged(role: &'static str, bytes: Vec<u8>) -> Swapped {
    let b = bytes.clone();
    Swapped { role, first: bytes, next: Box::new(move |i| common::rebuilt(&b, &format!("{role}-{i}-{}", std::process::id()))) }
}

/// A Python or JavaScript project (`plugins/LANG/NAME`) built on Paddock's runtime
/// (`paddock plugin build`): new versions are its app with a new comment, as an edit
/// leaves it.
fn on_runtime(role: &'static str, project: &str) -> Swapped {
    let dir = common::root().join("plugins").join(project);
    let out = std::env::temp_dir().join(format!("paddock-bench-{}-{}.wasm", project.replace('/', "-"), std::process::id()));
    let (app_file, comment) = if project.starts_with("python/") { ("app.py", "#") } else { ("app.js", "//") };
    let status = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["plugin", "build"])
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .env("PADDOCK_CACHE_DIR", cache_dir())
        .status()
        .expect("paddock plugin build");
    assert!(status.success(), "plugin build {project}");
    let first = std::fs::read(&out).expect("built");
    let _ = std::fs::remove_file(&out);
    let split = paddock::runtime::app_section::split(&first);
    let files = paddock::runtime::app_section::decode(&split.app.expect("an app section")).expect("files");
    let runtime = split.code;
    Swapped {
        role,
        first,
        next: Box::new(move |i| {
            let mut f = files.clone();
            let app = f.iter_mut().find(|(p, _)| p == app_file).expect("the app");
            app.1.extend_from_slice(format!("\n{comment} edit {i} {}\n", std::process::id()).as_bytes());
            paddock::runtime::app_section::append(&runtime, &paddock::runtime::app_section::encode(&f))
        }),
    }
}

/// One cache for every run of this bench: the first version of each plugin compiles cold,
/// each new one (new bytes, the same code) finds its functions or its runtime there.
fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("paddock-bench-reload-cache")
}

/// A running `paddock train` of CartPole PPO, its store in a temporary folder.
struct Training {
    child: std::process::Child,
    store: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Training {
    /// Starts training with `files` (role → file) as its plugins; waits until it runs.
    fn start(dir: tempfile::TempDir, files: &[(&str, &std::path::Path)]) -> Training {
        let store = dir.path().join("runs");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
        cmd.args(["train", "configs/cartpole-ppo.toml", "--set", &format!("store={}", store.display())]);
        for (role, file) in files {
            cmd.args(["--set", &format!("{role}.plugin={}", file.display())]);
        }
        let child = cmd
            .args(["--set", "total_steps=1000000000", "--set", "train.stop_at_return=1e9", "--set", "train.eval_every=0"])
            .args(["--set", "train.checkpoint_every=0", "--set", "algorithm.device=cpu"])
            .current_dir(common::root())
            .env("PADDOCK_CACHE_DIR", cache_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn paddock");
        let t = Training { child, store, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(300);
        while !t.status().contains("\"state\":\"running\"") {
            assert!(Instant::now() < deadline, "the run did not start:\n{}", t.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs(1));
        t
    }

    fn run_dir(&self) -> Option<std::path::PathBuf> {
        std::fs::read_dir(&self.store).ok()?.filter_map(Result::ok).next().map(|e| e.path())
    }

    fn log(&self) -> String {
        self.run_dir().and_then(|d| std::fs::read_to_string(d.join("log.txt")).ok()).unwrap_or_default()
    }

    fn status(&self) -> String {
        self.run_dir().and_then(|d| std::fs::read_to_string(d.join("status.json")).ok()).unwrap_or_default()
    }

    fn wait(&self, what: &str, done: &dyn Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(&self.log()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stop(mut self) -> String {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
        let log = self.log();
        assert!(!log.contains("refused"), "a version was refused:\n{log}");
        log
    }
}

impl Drop for Training {
    /// A bench that fails part-way must not leave a run training (it would load the
    /// machine under every later measurement).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Trains CartPole PPO with the `swaps` as its plugins and replaces each `rounds` times;
/// returns the run's log.
fn reload_run(swaps: &[Swapped], rounds: usize) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<std::path::PathBuf> = swaps.iter().map(|s| dir.path().join(format!("{}.wasm", s.role))).collect();
    for (s, p) in swaps.iter().zip(&paths) {
        std::fs::write(p, &s.first).expect("write");
    }
    let files: Vec<(&str, &std::path::Path)> = swaps.iter().zip(&paths).map(|(s, p)| (s.role, p.as_path())).collect();
    let t = Training::start(dir, &files);
    for (s, path) in swaps.iter().zip(&paths) {
        for i in 0..rounds {
            common::replace(path, &(s.next)(i));
            t.wait("the swap", &|l| latencies(l, s.role).len() > i);
            if s.role == "env" {
                // An env swap ends at each env's episode boundary: the next waits for it.
                t.wait("the env swap's end", &|l| l.matches("hot reload: env plugin (sha256").count() > i);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    t.stop()
}

/// The edit loop: `paddock plugin build --watch` on a copy of a reward project
/// (`plugins/LANG/NAME`) and a run using what it builds; each round appends a comment to the
/// app and times it from the save until the run's log shows the new version live.
fn edit_loop(project: &str, rounds: usize) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("project");
    std::fs::create_dir_all(&src).expect("dir");
    let (app_file, comment) = if project.starts_with("python/") { ("app.py", "#") } else { ("app.js", "//") };
    let app = src.join(app_file);
    std::fs::copy(common::root().join("plugins").join(project).join(app_file), &app).expect("copy");
    let out = dir.path().join("reward.wasm");
    let watch = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["plugin", "build", "--watch"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .env("PADDOCK_CACHE_DIR", cache_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _watch = Reap(watch);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !out.is_file() {
        assert!(Instant::now() < deadline, "plugin build --watch wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Training::start(tempfile::tempdir().expect("tempdir"), &[("reward", out.as_path())]);
    let mut took = Vec::new();
    for i in 0..rounds {
        let mut text = std::fs::read_to_string(&app).expect("app.py");
        text.push_str(&format!("{comment} edit {i}\n"));
        let saved = Instant::now();
        std::fs::write(&app, text).expect("save app.py");
        t.wait("the swap", &|l| latencies(l, "reward").len() > i);
        took.push(saved.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(300));
    }
    t.stop();
    took
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    println!("hot-reload latency, file replaced → new version live (cartpole-ppo, 8 envs, CPU)");
    let read = |name: &str| std::fs::read(common::plugin(name)).expect("plugin");
    let log = reload_run(&[retagged("reward", read("cartpole-shaped")), retagged("algorithm", read("ppo"))], rounds);
    summary("reward (cartpole-shaped)", latencies(&log, "reward"));
    summary("  of which loading", figures(&log, "reward").into_iter().map(|f| f.1).collect());
    summary("algorithm (ppo)", latencies(&log, "algorithm"));
    summary("  of which loading", figures(&log, "algorithm").into_iter().map(|f| f.1).collect());
    // Python plugins on Paddock's Python runtime (`paddock plugin build`): a new version is
    // a new app section on the same runtime.
    let few = rounds.min(5);
    for (role, project) in [
        ("reward", "python/cartpole-shaped"),
        ("env", "python/cartpole"),
        ("algorithm", "python/ppo"),
        ("reward", "js/cartpole-shaped"),
        ("env", "js/cartpole"),
    ] {
        let log = reload_run(&[on_runtime(role, project)], few);
        summary(&format!("{role} ({project}, on the runtime)"), latencies(&log, role));
        summary("  of which loading", figures(&log, role).into_iter().map(|f| f.1).collect());
    }
    summary("edit app.py → live (python reward)", edit_loop("python/cartpole-shaped", few));
    summary("edit app.js → live (js reward)", edit_loop("js/cartpole-shaped", few));
    // Self-contained components (componentize-py and componentize-js over the whole app):
    // a new version is new bytes with the interpreter's code unchanged, compiled mostly from
    // the per-function cache.
    for plugin in ["cartpole-shaped-py", "cartpole-shaped-js"] {
        let log = reload_run(&[retagged("reward", read(plugin))], few);
        summary(&format!("reward ({plugin})"), latencies(&log, "reward"));
        summary("  of which loading", figures(&log, "reward").into_iter().map(|f| f.1).collect());
    }
}
