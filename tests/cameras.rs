//! Cameras through the real runtime: arm-reach's cameras rendered by the host into the
//! observation (layout, bounds, bit-identical bytes whatever the shards, the last view of an
//! episode), PNG frames from `env run`, bad cameras and algorithms that cannot take images
//! refused by name, and PPO training on images through an encoder, killed and resumed exactly.

use crate::common;
use crate::physics::{bits, envset, grant, options, random_steps};
use paddock::envset::EnvSetOptions;
use paddock::log::RunLog;
use paddock::runtime::bindings::types::{Space, Value};

/// arm-reach with arm7 and `params`.
fn arm(num_envs: usize, workers: usize, params: &[(&str, Value)]) -> EnvSetOptions {
    let urdf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../robots/arm7.urdf");
    let params = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    EnvSetOptions { robots: grant(&[("arm", urdf)]), workers, params, ..options(num_envs, 11) }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn cameras() -> Vec<(&'static str, Value)> {
    vec![
        ("cameras", text("front,top")),
        ("camera-size", Value::Int(24)),
        ("camera-depth", Value::Bool(true)),
        ("observe", text("proprioception")),
        ("target-radius", Value::Real(0.06)),
    ]
}

#[test]
fn camera_images_follow_the_state_and_are_the_same_bits_whatever_the_shards() {
    let mut one = envset("arm-reach", &arm(4, 1, &cameras()), RunLog::discard());
    let mut two = envset("arm-reach", &arm(4, 2, &cameras()), RunLog::discard());
    assert_eq!(two.num_shards(), 2);
    // 7 joint positions, 7 velocities, the gripper; then two 24×24 images of 4 channels.
    let plane = 24 * 24;
    assert_eq!(one.obs_len(), 15 + 2 * 4 * plane);
    let layout = one.image_layout().expect("cameras").clone();
    assert_eq!(layout.state_len, 15);
    assert_eq!(layout.cameras.iter().map(|c| c.describe()).collect::<Vec<_>>(), ["front 24×24 rgb+depth", "top 24×24 rgb+depth"]);
    let Space::Box(b) = &one.spec().observation_space else { panic!("a box") };
    assert_eq!((b.low[15], b.high[15], b.high[15 + 3 * plane]), (0.0, 255.0, 10.0), "colour 0–255, depth up to `far`");

    let (a0, b0) = (one.reset().expect("reset"), two.reset().expect("reset"));
    assert!(a0.iter().zip(&b0).all(|(x, y)| x.to_bits() == y.to_bits()), "first observations differ across shard counts");
    let (sa, sb) = (random_steps(&mut one, 120, 5), random_steps(&mut two, 120, 5));
    assert_eq!(bits(&sa), bits(&sb), "camera images differ across shard counts");
    let ended: usize = sa.iter().map(|s| s.ended.len()).sum();
    assert!(ended >= 4, "100-step episodes end: {ended}");

    // The target (red, 6 cm) is in the front camera's view in most observations; the
    // images are whole colours and finite depths.
    let ol = one.obs_len();
    let mut seen = 0;
    let mut total = 0;
    for s in &sa {
        for o in s.observations.chunks(ol).chain(s.final_observations.chunks(ol)) {
            let front = &o[15..15 + 4 * plane];
            assert!(front[..3 * plane].iter().all(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v)));
            assert!(front[3 * plane..].iter().all(|d| d.is_finite() && *d > 0.0 && *d <= 10.0));
            let red = (0..plane).any(|p| front[p] > 150.0 && front[plane + p] < 60.0 && front[2 * plane + p] < 60.0);
            seen += usize::from(red);
            total += 1;
        }
    }
    assert!(seen * 10 >= total * 8, "the target is seen in {seen} of {total} front images");

    // The last view of an episode is not the first of the next: the arm moved and the
    // target was drawn again.
    let s = sa.iter().find(|s| !s.ended.is_empty()).expect("an end");
    let e = s.ended[0] as usize;
    let (last, next) = (&s.final_observations[..ol], &s.observations[e * ol..(e + 1) * ol]);
    assert_ne!(&last[15..], &next[15..], "the final observation shows the world before its reset");
}

#[test]
fn env_run_writes_each_cameras_frames_as_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = dir.path().join("frames");
    let out = common::paddock(&[
        "env",
        "run",
        "configs/arm-reach-vision-ppo.toml",
        "--steps",
        "3",
        "--num-envs",
        "2",
        "--frames",
        frames.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for camera in ["front", "side", "top"] {
        for step in 0..=3 {
            let png = std::fs::read(frames.join(camera).join(format!("{step:06}.png"))).expect("frame");
            assert_eq!(&png[1..4], b"PNG");
            assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), 64, "64 pixels wide");
        }
    }
}

#[test]
fn bad_cameras_are_refused_naming_the_plugin_and_camera() {
    let rt = common::runtime_with(paddock::runtime::Limits::default(), RunLog::discard());
    let plugin = rt.load(common::plugin("arm-reach"), paddock::runtime::World::Environment).expect("load");
    let refuse = |extra: &[(&str, Value)]| -> String {
        let mut params = cameras();
        params.extend(extra.iter().cloned());
        let err = paddock::envset::EnvSet::new(&plugin, &arm(2, 1, &params)).expect_err("refused");
        format!("{err:#}")
    };
    let big = refuse(&[("camera-size", Value::Int(4096))]);
    assert!(big.contains("arm-reach") && big.contains("camera `front`: 4096×4096 pixels; each side must be 1 to 512"), "{big}");
    let flat = refuse(&[("camera-fov", Value::Real(0.0))]);
    assert!(flat.contains("camera `front`: field of view 0°"), "{flat}");
    let wide = refuse(&[("camera-fov", Value::Real(180.0))]);
    assert!(wide.contains("below 180°"), "{wide}");
    let unknown = refuse(&[("cameras", text("front,back"))]);
    assert!(unknown.contains("`cameras` names `back`; the cameras are [\"front\", \"side\", \"top\", \"wrist\"]"), "{unknown}");
    let hand = refuse(&[("cameras", text("wrist")), ("hand", text("palm"))]);
    assert!(hand.contains("no link `palm`"), "{hand}");
}

#[test]
fn algorithms_that_take_only_vectors_refuse_camera_images_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("store={}", dir.path().display());
    let train = |sets: &[&str]| -> String {
        let mut args = vec![
            "train",
            "configs/arm-reach-vision-ppo.toml",
            "--set",
            &store,
            "--set",
            "env.params.camera-size=36",
            "--set",
            "env.num_envs=2",
        ];
        for s in sets {
            args.extend_from_slice(&["--set", s]);
        }
        let out = common::paddock(&args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let sac = train(&["algorithm.plugin=\"sac.wasm\""]);
    assert!(
        sac.contains("sac takes only vector observations, and this env's hold camera images (front 3×36×36, side 3×36×36, top 3×36×36)"),
        "{sac}"
    );
    let py = train(&["algorithm.plugin=\"ppo-py.wasm\"", "algorithm.params={}"]);
    assert!(py.contains("ppo (Python) takes only vector observations"), "{py}");
    let plain = train(&["algorithm.params.encoder=\"none\""]);
    assert!(plain.contains("ppo: the observations hold camera images (front 3×36×36"), "{plain}");
    assert!(plain.contains("set `encoder = \"nature-cnn\"`"), "{plain}");
    let no_cameras = train(&["env.params.cameras=\"\"", "env.params.observe=\"full\""]);
    assert!(no_cameras.contains("`encoder` is set, but the env's observations hold no camera images"), "{no_cameras}");
}

/// PPO on images through a DrQ encoder (small images, a short run): learns nothing in so few
/// steps, but checkpoints its encoder and resumes after SIGKILL to the same bytes.
#[test]
fn ppo_on_camera_images_is_killed_and_resumed_exactly() {
    let sets = [
        "env.num_envs=4",
        "env.params.camera-size=32",
        "env.params.cameras=\"front,wrist\"",
        "algorithm.params.encoder=\"drq\"",
        "algorithm.params.encoder-features=16",
        "algorithm.params.random-shift=2",
        "algorithm.params.n-steps=16",
        "algorithm.params.n-epochs=2",
        "algorithm.params.minibatch-size=32",
        "algorithm.params.hidden=[32]",
        "train.eval_every=0",
        "train.checkpoint_every=256",
        "total_steps=1024",
    ];
    let frames = tempfile::tempdir().expect("tempdir");
    common::kill_and_resume_matches("configs/arm-reach-vision-ppo.toml", &sets, 1024, |run_dir| {
        let cp = paddock::format::run_dir::latest_checkpoint(run_dir).expect("checkpoint");
        let learner = std::fs::read_to_string(cp.join("learner.json")).expect("learner.json");
        assert!(learner.contains("\"ppo/encoder\"") && learner.contains("\"drq\""), "{learner}");
        // The monitor's picture carries what the first camera sees (32×32: whole).
        let scene: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("scene.json")).expect("scene.json")).expect("json");
        assert_eq!((scene["camera"]["name"].as_str(), scene["camera"]["width"].as_u64()), (Some("front"), Some(32)), "{}", scene["camera"]);
        assert_eq!(scene["camera"]["rgb"].as_array().map(Vec::len), Some(32 * 32 * 3));
        // `eval --frames` of the killed run's checkpoint: the scene and each camera's view.
        let dir = frames.path().to_str().expect("utf-8");
        let out = common::paddock(&["eval", run_dir.to_str().expect("utf-8"), "--episodes", "1", "--frames", dir]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
    for f in ["frame-00000.png", "front/frame-00000.png", "wrist/frame-00000.png", "wrist/frame-00010.png"] {
        assert!(frames.path().join(f).is_file(), "{f} missing");
    }
}
