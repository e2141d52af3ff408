use super::*;

#[test]
fn references_parse_and_name_what_is_wrong() {
    let r = PluginRef::parse("registry:team/x@^1.2").expect("ref");
    assert_eq!(r.name, "team/x");
    assert!(r.req.matches(&semver::Version::new(1, 4, 0)) && !r.req.matches(&semver::Version::new(2, 0, 0)));
    assert_eq!(r.exact(), None);
    assert_eq!(PluginRef::parse("team/x@=1.2.3").expect("ref").exact(), Some(semver::Version::new(1, 2, 3)));
    assert!(PluginRef::parse("team/x").expect("any").req.matches(&semver::Version::new(9, 0, 0)));
    for (bad, says) in [
        ("x@1", "invalid plugin name `x`"),
        ("Team/x@1", "invalid plugin name"),
        ("team/x@next", "not a version requirement"),
        ("a/b/c", "invalid plugin name"),
    ] {
        let e = format!("{:#}", PluginRef::parse(bad).expect_err(bad));
        assert!(e.contains(says), "{bad}: {e}");
    }
}

fn manifest(key: Option<&ed25519_dalek::SigningKey>) -> Manifest {
    let store: Arc<dyn Objects> = Arc::new(crate::store::LocalObjects { root: tempfile::tempdir().expect("tempdir").keep() });
    let reg = Registry::over(store);
    reg.publish(b"component", "team/x", &semver::Version::new(1, 0, 0), "reward", "0.1.0", "d", "a", key).expect("publish")
}

#[test]
fn signatures_bind_name_version_and_hash() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let other = public_key_text(&ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]).verifying_key());
    let mine = public_key_text(&key.verifying_key());
    let m = manifest(Some(&key));
    verify_signature(&m, &[]).expect("verifies");
    verify_signature(&m, std::slice::from_ref(&mine)).expect("trusted");
    assert!(format!("{:#}", verify_signature(&m, &[other]).expect_err("untrusted")).contains("not among the trusted keys"));
    for change in [
        |m: &mut Manifest| m.version = "1.0.1".into(),
        |m: &mut Manifest| m.name = "team/y".into(),
        |m: &mut Manifest| m.sha256 = "00".into(),
    ] {
        let mut bad = m.clone();
        change(&mut bad);
        assert!(format!("{:#}", verify_signature(&bad, &[]).expect_err("moved")).contains("bad signature"));
    }
    let unsigned = manifest(None);
    verify_signature(&unsigned, &[]).expect("unsigned is fine without trusted keys");
    assert!(format!("{:#}", verify_signature(&unsigned, &[mine]).expect_err("unsigned")).contains("not signed"));
}

#[test]
fn a_local_registry_keeps_versions_immutable_even_under_racing_publishers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Objects> = Arc::new(crate::store::LocalObjects { root: dir.path().to_path_buf() });
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let reg = Registry::over(store.clone());
                s.spawn(move || reg.publish(&[i; 64], "team/x", &semver::Version::new(1, 0, 0), "reward", "0.1.0", "", "", None).is_ok())
            })
            .collect();
        handles.into_iter().map(|h| usize::from(h.join().expect("thread"))).sum()
    });
    assert_eq!(wins, 1);
    let reg = Registry::over(store);
    let (m, yanked) = reg.resolve(&PluginRef::parse("team/x@^1").expect("ref")).expect("resolve");
    assert!(!yanked);
    assert_eq!(reg.fetch(&m, &[], None).expect("fetch").len(), 64);
    reg.yank("team/x", &semver::Version::new(1, 0, 0), false).expect("yank");
    assert!(reg.resolve(&PluginRef::parse("team/x@^1").expect("ref")).is_err());
    assert!(reg.resolve(&PluginRef::parse("team/x@=1.0.0").expect("ref")).expect("exact").1);
}
