//! End to end: `paddock train --tui` in a real terminal (tmux), read with `capture-pane`
//! and driven with `send-keys`: the monitor shows the run, pauses and resumes it, shows a
//! reward plugin rebuilt mid-run being swapped in (on screen and in the run dir), takes a
//! checkpoint on request, and `q` stops the run cleanly with a final checkpoint.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server, killed when the test ends (pass or fail).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux is needed for this test (apt install tmux; scripts/setup.sh installs it where it can)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "paddock"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(self.cmd(&["send-keys", "-t", "paddock", keys]).status.success());
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn train_tui_in_tmux_pause_reload_checkpoint_and_quit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reward = dir.path().join("reward.wasm");
    std::fs::copy(common::plugin("cartpole-shaped"), &reward).expect("copy");
    let store = dir.path().join("runs");
    let command = format!(
        "cd {root} && env PADDOCK_CACHE_DIR={cache} {bin} train configs/cartpole-ppo.toml --set store={store} --set reward.plugin={reward} \
         --set total_steps=100000000 --set train.stop_at_return=1e9 --set train.checkpoint_every=0 --set algorithm.device=cpu --tui; \
         echo paddock-exited-$?; sleep 120",
        root = common::root().display(),
        cache = common::root().join("target/test-cache").display(),
        bin = env!("CARGO_BIN_EXE_paddock"),
        store = store.display(),
        reward = reward.display(),
    );
    let tmux = Tmux { socket: format!("paddock-test-{}", std::process::id()) };
    let out = tmux.cmd(&["new-session", "-d", "-x", "120", "-y", "40", "-s", "paddock", &command]);
    assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));

    tmux.wait_for("the run on screen", |s| s.contains("running") && s.contains("cartpole-ppo-s1") && s.contains("train/"));
    let run = std::fs::read_dir(&store).expect("store").filter_map(Result::ok).map(|e| e.path()).next().expect("run dir");
    let status = || paddock::format::status::read(&run).and_then(Result::ok).map(|s| s.state.as_str());

    tmux.keys("p");
    tmux.wait_for("paused on screen", |s| s.contains("paused") && s.contains("paused at step"));
    assert_eq!(status(), Some("paused"));
    let paused_step = paddock::format::status::read(&run).and_then(Result::ok).expect("status").step;
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(paddock::format::status::read(&run).and_then(Result::ok).expect("status").step, paused_step, "no steps while paused");
    tmux.keys("p");
    tmux.wait_for("resumed", |s| s.contains("resumed at step"));

    common::replace(&reward, &std::fs::read(common::plugin("constant-reward")).expect("constant"));
    let screen = tmux.wait_for("the swap on screen", |s| s.contains("reward    swapped"));
    assert!(screen.contains("is live from step"), "the log pane shows the swap:\n{screen}");
    let lock: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("plugins.lock")).expect("lock")).expect("json");
    let new = lock.last().expect("entries");
    assert_eq!(new["role"], "reward");
    let sha = new["sha256"].as_str().expect("sha");
    assert!(screen.contains(&sha[..12]) && screen.contains("from"), "the plugin panel shows the new version {sha}:\n{screen}");

    tmux.keys("c");
    tmux.wait_for("the checkpoint", |s| s.contains("written as asked"));
    assert!(std::fs::read_dir(run.join("checkpoints")).expect("checkpoints").count() >= 1);

    tmux.keys("q");
    let screen = tmux.wait_for("the summary after the monitor closed", |s| s.contains("paddock-exited-"));
    assert!(screen.contains("paddock-exited-0") && screen.contains("stopped   by a stop request"), "{screen}");
    assert_eq!(status(), Some("stopped"));
}
