//! The terminal monitor, drawn into ratatui's `TestBackend` and compared with snapshot
//! files (`tests/snapshots/`, reviewed with `cargo insta review`): a full screen, a 40×12
//! terminal, the help overlay, a run that has not logged yet, a `metrics.jsonl` whose last
//! line is cut off, a run directory deleted while watched, and every terminal size from
//! 1×1 up drawing without a panic, a physics run's robot (and a `scene.json` that cannot be
//! read). Keys steer a live run through its `control/` folder.

use paddock::format::status::{self as runstatus, State, Status};
use paddock::monitor::App;
use paddock::monitor::ui::render_to_string;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

const NOW: f64 = 1_800_000_000.0;

fn status(state: State, step: u64) -> Status {
    Status {
        state,
        pid: std::process::id(),
        step,
        total_steps: 100_000,
        sps: 7100.0,
        best_eval: Some(500.0),
        last_eval: Some(487.5),
        device: "cpu".into(),
        started_unix: NOW - 125.0,
        updated_unix: NOW - 1.0,
        message: None,
        host: paddock::format::status::this_host(),
    }
}

/// A run directory as `paddock train` leaves it: metrics with episodes, updates, evals and
/// a reward reload (one refused, one swapped), plugins.lock with the swapped version, a log.
fn write_run(dir: &Path, state: State) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "seed = 1\n").expect("config");
    let mut m = String::new();
    for k in 1..=60u64 {
        let step = k * 256;
        let ret = 20.0 + 480.0 * (1.0 - (-(k as f64) / 15.0).exp()) + if k % 3 == 0 { -30.0 } else { 10.0 };
        let loss = 1.0 / k as f64;
        m += &format!(
            "{{\"step\":{step},\"rollout/episodes\":4,\"rollout/return_mean\":{ret},\"rollout/length_mean\":{ret},\"train/loss/policy\":{loss},\"train/entropy\":{}}}\n",
            0.69 - k as f64 * 0.005
        );
        if k % 10 == 0 {
            m += &format!("{{\"step\":{step},\"eval/return_mean\":{},\"eval/return_std\":3.0}}\n", ret + 5.0);
        }
        if k == 30 {
            m += &format!("{{\"step\":{step},\"reload/reward_refused\":1}}\n{{\"step\":{step},\"reload/reward\":1}}\n");
        }
    }
    std::fs::write(dir.join("metrics.jsonl"), m).expect("metrics");
    let lock = serde_json::json!([
        {"role": "env", "name": "cartpole", "source": "target/plugins/cartpole.wasm", "sha256": "f351ce6c0a1b2c3d4e5f", "world": "environment", "package_version": "0.1.0", "since_step": 0},
        {"role": "algorithm", "name": "ppo", "source": "target/plugins/ppo.wasm", "sha256": "889ae4ae99887766", "world": "algorithm", "package_version": "0.1.0", "since_step": 0},
        {"role": "reward", "name": "cartpole-shaped", "source": "r.wasm", "sha256": "0123456789abcdef", "world": "reward", "package_version": "0.1.0", "since_step": 0},
        {"role": "reward", "name": "constant-reward", "source": "r.wasm", "sha256": "fedcba9876543210", "world": "reward", "package_version": "0.1.0", "since_step": 7680}
    ]);
    std::fs::write(dir.join("plugins.lock"), serde_json::to_string_pretty(&lock).expect("json")).expect("lock");
    std::fs::write(
        dir.join("log.txt"),
        "INFO [paddock] starting run from configs/cartpole-ppo.toml\n\
         WARN [host] hot reload: refused the new reward plugin r.wasm, the run goes on with the old one: not a component\n\
         INFO [host] hot reload: reward plugin r.wasm (sha256 fedcba987654) is live from step 7680 (61 ms after the change)\n",
    )
    .expect("log");
    runstatus::write(dir, &status(state, 15360)).expect("status");
}

fn app(store: &Path) -> App {
    let mut app = App::new(vec![store.to_path_buf()]);
    app.now = NOW;
    app
}

fn key(app: &mut App, code: KeyCode) -> bool {
    app.key(KeyEvent::new(code, KeyModifiers::NONE))
}

#[test]
fn full_screen_compact_screen_and_help() {
    let store = tempfile::tempdir().expect("tempdir");
    write_run(&store.path().join("cartpole-ppo-s1-a"), State::Finished);
    // A run that has not logged yet: config only.
    std::fs::create_dir_all(store.path().join("cartpole-ppo-s2-b")).expect("mkdir");
    std::fs::write(store.path().join("cartpole-ppo-s2-b/config.toml"), "seed = 2\n").expect("config");
    let mut app = app(store.path());
    assert_eq!(app.runs.len(), 2);
    insta::assert_snapshot!("full_120x40", render_to_string(&app, 120, 40));
    insta::assert_snapshot!("compact_40x12", render_to_string(&app, 40, 12));
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help_80x24", render_to_string(&app, 80, 24));
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help, "any key closes the help");
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!("not_logged_yet_100x30", render_to_string(&app, 100, 30));
}

/// `scene.json` as a cart-pole run on the host's physics writes it: a 100 m floor and a rail
/// (fixed, grey; the floor reaches far outside the view), the cart and the pole.
fn write_scene(dir: &Path) {
    let scene = serde_json::json!({
        "step": 15360,
        "view": [-1.5, 1.5, -0.4, 1.4],
        "polygons": [
            {"body": null, "points": [[-50.0, -0.1], [50.0, -0.1], [50.0, 0.0], [-50.0, 0.0]]},
            {"body": null, "points": [[-1.2, 0.0], [1.2, 0.0], [1.2, 0.05], [-1.2, 0.05]]},
            {"body": 0, "points": [[-0.2, 0.0], [0.2, 0.0], [0.2, 0.15], [-0.2, 0.15]]},
            {"body": 1, "points": [[-0.02, 0.15], [0.02, 0.15], [0.25, 1.1], [0.21, 1.11]]}
        ]
    });
    std::fs::write(dir.join("scene.json"), scene.to_string()).expect("scene");
}

#[test]
fn a_physics_run_shows_its_robot_and_a_bad_scene_file_says_why() {
    let store = tempfile::tempdir().expect("tempdir");
    let run = store.path().join("cartpole-3d-ppo-s1-a");
    write_run(&run, State::Running);
    write_scene(&run);
    let mut app = app(store.path());
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains("scene · step 15360") && screen.contains("plugins"), "{screen}");
    insta::assert_snapshot!("scene_120x40", screen);
    // Too little room for both: the plugin panel alone, no panic.
    assert!(!render_to_string(&app, 80, 24).contains("scene ·"));

    // An env with cameras: what its first colour camera sees, beside the scene, in half
    // blocks (an 8×6 picture: 8 cells by 3).
    let mut scene: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("scene.json")).expect("scene")).expect("json");
    scene["camera"] = serde_json::json!({"name": "front", "width": 8, "height": 6, "rgb": vec![200u8; 8 * 6 * 3]});
    std::fs::write(run.join("scene.json"), scene.to_string()).expect("camera scene");
    app.refresh();
    app.now = NOW;
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains(" front ") && screen.contains("▀▀▀▀▀▀▀▀"), "{screen}");
    for (w, h) in [(20, 10), (60, 12), (130, 45)] {
        assert_eq!(render_to_string(&app, w, h).lines().count(), h as usize);
    }

    std::fs::write(run.join("scene.json"), "{\"step\": 1, \"view\": [0, 1]}").expect("garble");
    app.refresh();
    app.now = NOW;
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains("scene.json:"), "{screen}");
    std::fs::remove_file(run.join("scene.json")).expect("remove");
    app.refresh();
    assert!(app.runs[0].scene.is_none());
}

#[test]
fn every_terminal_size_draws_without_a_panic() {
    let store = tempfile::tempdir().expect("tempdir");
    write_run(&store.path().join("run-a"), State::Running);
    write_scene(&store.path().join("run-a"));
    let mut app = app(store.path());
    for zoom in [false, true] {
        if zoom {
            key(&mut app, KeyCode::Char('+'));
            key(&mut app, KeyCode::Char('o'));
            key(&mut app, KeyCode::Char('?'));
        }
        for w in (1..=130).step_by(3) {
            for h in (1..=45).step_by(2) {
                let screen = render_to_string(&app, w, h);
                assert_eq!(screen.lines().count(), h as usize);
            }
        }
    }
    assert!(render_to_string(&app, 10, 3).contains("too small"));
}

#[test]
fn a_truncated_last_line_waits_and_a_deleted_run_says_so() {
    let store = tempfile::tempdir().expect("tempdir");
    let run = store.path().join("cartpole-ppo-s1-a");
    write_run(&run, State::Running);
    let metrics = run.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).expect("read");
    text += "{\"step\":99999,\"rollout/return_mean\":12";
    std::fs::write(&metrics, &text).expect("write");
    let mut app = app(store.path());
    let r = &app.runs[0];
    assert_eq!(r.bad_lines, 0, "a line still being written is not an error");
    assert!(r.series["rollout/return_mean"].iter().all(|p| p.0 < 99999.0), "the half line is not read");
    insta::assert_snapshot!("truncated_line_120x40", render_to_string(&app, 120, 40));

    std::fs::remove_dir_all(&run).expect("delete");
    app.refresh();
    app.now = NOW;
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains("deleted"), "{screen}");
    insta::assert_snapshot!("deleted_120x40", screen);
}

#[test]
fn keys_pause_checkpoint_and_stop_a_live_run_through_its_control_folder() {
    let store = tempfile::tempdir().expect("tempdir");
    let live = store.path().join("a-live");
    write_run(&live, State::Running);
    let mut s = runstatus::read(&live).expect("status").expect("ok");
    s.updated_unix = runstatus::unix_now();
    runstatus::write(&live, &s).expect("status");
    write_run(&store.path().join("b-done"), State::Finished);
    let mut app = App::new(vec![store.path().to_path_buf()]);
    assert!(key(&mut app, KeyCode::Char('p')));
    assert!(runstatus::pause_requested(&live), "{:?}", app.message);
    key(&mut app, KeyCode::Char('p'));
    assert!(!runstatus::pause_requested(&live), "p again resumes");
    key(&mut app, KeyCode::Char('c'));
    assert!(runstatus::take(&live, runstatus::Request::Checkpoint));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.metric, 1);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.message.as_deref(), Some("b-done is not running"));
    assert!(!store.path().join("b-done/control").exists());
    // Stopping a live run asks once more; another key cancels.
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Char('s'));
    assert!(app.message.as_deref().is_some_and(|m| m.contains("press s again")), "{:?}", app.message);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('s'));
    assert!(!runstatus::take(&live, runstatus::Request::Stop), "cancelled by the other key");
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char('s'));
    assert!(runstatus::take(&live, runstatus::Request::Stop), "s twice stops: {:?}", app.message);
    assert!(!key(&mut app, KeyCode::Char('q')), "q leaves `paddock watch`");
}

#[test]
fn the_runs_table_scrolls_to_keep_the_selected_run_in_view() {
    let store = tempfile::tempdir().expect("tempdir");
    for i in 0..14 {
        write_run(&store.path().join(format!("run-{i:02}")), State::Finished);
    }
    let mut app = App::new(vec![store.path().to_path_buf()]);
    app.now = NOW;
    for _ in 0..13 {
        key(&mut app, KeyCode::Down);
    }
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains("runs (14 of 14)"), "{screen}");
    assert!(screen.contains("run-13"), "the selected run is drawn:\n{screen}");
    assert!(!screen.contains("run-00"), "the first ones scrolled away:\n{screen}");
}

/// The monitor opens on what a user is watching: live runs first, the newest selected;
/// finished, pruned and failed ones after it. A pruned trial says so; the log pane keeps a
/// warning in view past a stream of checkpoint lines; the help names every key it takes.
#[test]
fn live_runs_come_first_pruned_runs_say_so_and_checkpoints_do_not_flood_the_log() {
    let store = tempfile::tempdir().expect("tempdir");
    write_run(&store.path().join("a-failed"), State::Failed);
    write_run(&store.path().join("b-pruned"), State::Pruned);
    let live = store.path().join("c-live");
    write_run(&live, State::Running);
    runstatus::write(&live, &Status { started_unix: NOW - 10.0, ..status(State::Running, 20480) }).expect("status");
    let mut log = "WARN [host] the one warning\n".to_string();
    for i in 1..=40 {
        log += &format!("INFO [host] checkpoint at step {} written in 1 ms (envs 0 ms), 0.12 MB\n", i * 512);
    }
    std::fs::write(live.join("log.txt"), log).expect("log");
    let mut app = app(store.path());
    let names: Vec<&str> = app.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!((names[0], app.selected), ("c-live", 0), "the live run first, selected: {names:?}");
    let screen = render_to_string(&app, 120, 40);
    assert!(screen.contains("the one warning"), "the warning stays in view:\n{screen}");
    assert!(screen.contains("checkpoint at step 20480") && !screen.contains("checkpoint at step 19968"), "{screen}");
    assert!(screen.contains("pruned"), "a pruned run says so:\n{screen}");
    key(&mut app, KeyCode::Char('?'));
    let help = render_to_string(&app, 80, 24);
    for (keys, _, _) in paddock::monitor::BINDINGS {
        for k in *keys {
            assert!(help.contains(&k.label()), "the help names {}:\n{help}", k.label());
        }
    }
}
