//! The plugin registry against a real S3-compatible server (`moto_server` on loopback):
//! concurrent publishers of one version, tampered components and bad signatures refused at
//! pull, yanking, and a training config that names `registry:team/x@^1.0`.

use crate::common;

use common::moto::Moto;
use std::path::Path;

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn eight_concurrent_publishers_of_one_version_exactly_one_wins() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read(common::plugin("cartpole-shaped")).expect("plugin");
    // Eight different components (same code, different custom section), published at once.
    let files: Vec<_> = (0..8)
        .map(|i| {
            let p = dir.path().join(format!("v{i}.wasm"));
            std::fs::write(&p, common::rebuilt(&base, &format!("publisher-{i}"))).expect("write");
            p
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            moto.command(&[
                "plugin",
                "publish",
                f.to_str().expect("utf-8"),
                "--name",
                "team/shaped",
                "--version",
                "1.0.0",
                "--registry",
                "s3://bkt/reg",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
        })
        .collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().expect("wait")).collect();
    let winners: Vec<usize> = (0..8).filter(|&i| outs[i].status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one publisher wins: {:?}", outs.iter().map(text).collect::<Vec<_>>());
    for (i, o) in outs.iter().enumerate() {
        if i != winners[0] {
            let t = text(o);
            assert_eq!(o.status.code(), Some(1));
            assert!(t.contains("team/shaped@1.0.0 is already published") && t.contains("immutable"), "{t}");
        }
    }
    // The registry holds the winner's bytes, whole.
    let out_file = dir.path().join("pulled.wasm");
    let out = moto.paddock(
        &["plugin", "pull", "team/shaped@=1.0.0", "--registry", "s3://bkt/reg", "--out", out_file.to_str().expect("utf-8")],
        &[("PADDOCK_REGISTRY_CACHE", dir.path())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&out_file).expect("pulled"), std::fs::read(&files[winners[0]]).expect("winner"));

    // A component above the multipart threshold (the Python plugin, ~18 MB) goes up in
    // parts and comes back whole.
    let py = common::plugin("cartpole-shaped-py");
    assert!(std::fs::metadata(&py).expect("python plugin").len() >= paddock::store::s3::MULTIPART_THRESHOLD);
    let out = moto.paddock(
        &["plugin", "publish", py.to_str().expect("utf-8"), "--name", "team/shaped-py", "--version", "0.1.0", "--registry", "s3://bkt/reg"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = moto.paddock(
        &["plugin", "pull", "team/shaped-py", "--registry", "s3://bkt/reg", "--out", out_file.to_str().expect("utf-8")],
        &[("PADDOCK_REGISTRY_CACHE", dir.path())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&out_file).expect("pulled"), std::fs::read(&py).expect("python plugin"));
}

/// Publishes `file` as `name@version` (signed with `key` if given).
fn publish(moto: &Moto, file: &Path, name: &str, version: &str, key: Option<&Path>) -> std::process::Output {
    let mut args = vec![
        "plugin",
        "publish",
        file.to_str().expect("utf-8"),
        "--name",
        name,
        "--version",
        version,
        "--registry",
        "s3://bkt/reg",
        "--description",
        "test",
    ];
    if let Some(k) = key {
        args.extend_from_slice(&["--sign", k.to_str().expect("utf-8")]);
    }
    moto.paddock(&args, &[])
}

#[test]
fn tampered_components_and_bad_signatures_are_refused_at_pull_by_name() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let pull = |reference: &str, trust: Option<&str>| {
        let mut args = vec!["plugin", "pull", reference, "--registry", "s3://bkt/reg"];
        if let Some(t) = trust {
            args.extend_from_slice(&["--trust", t]);
        }
        moto.paddock(&args, &[("PADDOCK_REGISTRY_CACHE", &cache)])
    };
    let key = dir.path().join("team.key");
    let out = moto.paddock(&["plugin", "keygen", "--out", key.to_str().expect("utf-8")], &[]);
    let public = text(&out).lines().find_map(|l| l.strip_prefix("public key: ")).expect("public key").trim().to_string();
    let out = moto.paddock(&["plugin", "keygen", "--out", key.to_str().expect("utf-8")], &[]);
    assert!(!out.status.success() && text(&out).contains("never overwritten"), "{}", text(&out));
    let stranger = dir.path().join("stranger.key");
    let out = moto.paddock(&["plugin", "keygen", "--out", stranger.to_str().expect("utf-8")], &[]);
    let stranger_public = text(&out).lines().find_map(|l| l.strip_prefix("public key: ")).expect("public key").trim().to_string();

    let wasm = common::plugin("cartpole-shaped");
    let out = publish(&moto, &wasm, "team/shaped", "1.0.0", Some(&key));
    assert!(out.status.success() && text(&out).contains("signed by"), "{}", text(&out));
    let out = pull("team/shaped@^1", Some(&public));
    assert!(out.status.success() && text(&out).contains("signature verified"), "{}", text(&out));
    // Signed, but by a key not trusted; unsigned where keys are trusted.
    let out = pull("team/shaped@^1", Some(&stranger_public));
    assert!(
        !out.status.success() && text(&out).contains("team/shaped@1.0.0") && text(&out).contains("not among the trusted keys"),
        "{}",
        text(&out)
    );
    let unsigned = dir.path().join("unsigned.wasm");
    std::fs::write(&unsigned, common::rebuilt(&std::fs::read(&wasm).expect("wasm"), "unsigned")).expect("write");
    assert!(publish(&moto, &unsigned, "team/plain", "0.1.0", None).status.success());
    let out = pull("team/plain", Some(&public));
    assert!(!out.status.success() && text(&out).contains("team/plain@0.1.0") && text(&out).contains("not signed"), "{}", text(&out));
    assert!(pull("team/plain", None).status.success(), "unsigned plugins pull when no keys are trusted");

    // A bad signature: the manifest's signature changed on the server.
    let manifest_key = "/bkt/reg/plugins/team/shaped/1.0.0/manifest.json";
    let (_, manifest) = moto.http("GET", manifest_key, b"");
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest");
    let sig = m["signature"]["signature"].as_str().expect("sig").to_string();
    let flipped = match sig.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &sig[1..]),
    };
    m["signature"]["signature"] = flipped.into();
    assert_eq!(moto.http("PUT", manifest_key, &serde_json::to_vec(&m).expect("json")).0, 200);
    let out = pull("team/shaped@^1", None);
    assert!(!out.status.success() && text(&out).contains("team/shaped@1.0.0") && text(&out).contains("bad signature"), "{}", text(&out));
    assert_eq!(moto.http("PUT", manifest_key, &manifest).0, 200);

    // A tampered component: the stored bytes changed after publishing (and the cache cleared).
    let sha = m["sha256"].as_str().expect("sha");
    let mut bytes = std::fs::read(&wasm).expect("wasm");
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    assert_eq!(moto.http("PUT", &format!("/bkt/reg/blobs/sha256/{sha}.wasm"), &bytes).0, 200);
    std::fs::remove_dir_all(&cache).expect("clear cache");
    let out = pull("team/shaped@^1", None);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("team/shaped@1.0.0") && t.contains("sha256") && t.contains("changed after publishing"),
        "{t}"
    );
    assert!(!cache.join(format!("shaped-{sha}.wasm")).exists(), "nothing tampered reaches the cache");

    // Bad input: not a plugin, a bad name, a bad version requirement, nothing published.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").expect("write");
    let out = publish(&moto, &junk, "team/junk", "1.0.0", None);
    assert!(!out.status.success() && text(&out).contains("is not a Paddock plugin; nothing was published"), "{}", text(&out));
    let out = publish(&moto, &wasm, "Team X", "1.0.0", None);
    assert!(!out.status.success() && text(&out).contains("invalid plugin name `Team X`"), "{}", text(&out));
    let out = pull("team/shaped@latest", None);
    assert!(!out.status.success() && text(&out).contains("is not a version requirement"), "{}", text(&out));
    let out = pull("team/none@^1", None);
    assert!(!out.status.success() && text(&out).contains("plugin team/none is not published in s3://bkt/reg"), "{}", text(&out));
}

#[test]
fn a_config_names_a_registry_plugin_the_lock_pins_it_and_yanked_versions_are_skipped() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let ppo = std::fs::read(common::plugin("ppo")).expect("ppo");
    let (v1, v2) = (dir.path().join("ppo1.wasm"), dir.path().join("ppo2.wasm"));
    std::fs::write(&v1, common::rebuilt(&ppo, "1.0.0")).expect("write");
    std::fs::write(&v2, common::rebuilt(&ppo, "1.1.0")).expect("write");
    assert!(publish(&moto, &v1, "team/ppo", "1.0.0", None).status.success());
    assert!(publish(&moto, &v2, "team/ppo", "1.1.0", None).status.success());
    let out = moto.paddock(&["plugin", "ls", "--registry", "s3://bkt/reg"], &[]);
    assert!(text(&out).contains("team/ppo") && text(&out).contains("1.1.0") && text(&out).contains("algorithm@"), "{}", text(&out));

    let store = dir.path().join("runs");
    let train = |req: &str| {
        let plugin = format!("algorithm.plugin=registry:team/ppo@{req}");
        let store_set = format!("store={}", store.display());
        moto.paddock(
            &[
                "train",
                "configs/cartpole-ppo.toml",
                "--json",
                "--set",
                &plugin,
                "--set",
                "registry.location=s3://bkt/reg",
                "--set",
                &store_set,
                "--set",
                "total_steps=512",
                "--set",
                "algorithm.device=cpu",
            ],
            &[("PADDOCK_REGISTRY_CACHE", &dir.path().join("cache"))],
        )
    };
    let lock_of = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", text(out));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
        let run = Path::new(s["run_dir"].as_str().expect("dir")).to_path_buf();
        (
            std::fs::read_to_string(run.join("plugins.lock")).expect("lock"),
            std::fs::read_to_string(run.join("config.toml")).expect("config"),
        )
    };
    let sha = |p: &Path| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(p).expect("read")))
    };
    let (lock, config) = lock_of(&train("^1.0"));
    assert!(
        lock.contains("registry:team/ppo@=1.1.0") && lock.contains(&sha(&v2)),
        "the newest matching version, pinned with its hash:\n{lock}"
    );
    assert!(lock.contains("\"name\": \"ppo\""), "a registry plugin is named by its name, not its hash:\n{lock}");
    assert!(config.contains("registry:team/ppo@=1.1.0"), "the run's config pins the exact version:\n{config}");

    assert!(moto.paddock(&["plugin", "yank", "team/ppo@1.1.0", "--registry", "s3://bkt/reg"], &[]).status.success());
    let (lock, _) = lock_of(&train("^1.0"));
    assert!(lock.contains("registry:team/ppo@=1.0.0") && lock.contains(&sha(&v1)), "a yanked version is skipped:\n{lock}");
    let out = train("=1.1.0");
    assert!(text(&out).contains("is yanked"), "an exact pin still resolves, with a warning: {}", text(&out));
    let out = train("^2");
    let t = text(&out);
    assert!(
        !out.status.success()
            && t.contains("algorithm.plugin")
            && t.contains("no version of team/ppo matches `^2`")
            && t.contains("1.1.0 (yanked)"),
        "{t}"
    );
}
