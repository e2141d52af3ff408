use super::*;

#[test]
fn unknown_key_and_wrong_type_are_named() {
    let e = RunConfig::parse("seed = 1\n[env]\nplugin = \"x.wasm\"\nnum_env = 3\n").unwrap_err().to_string();
    assert!(e.contains("num_env"), "{e}");
    let e = RunConfig::parse("seed = \"one\"\n[env]\nplugin = \"x.wasm\"\n").unwrap_err().to_string();
    assert!(e.contains("seed"), "{e}");
    let c = RunConfig::parse("[env]\nplugin = \"x.wasm\"\n[env.params]\ninitial-state = [0, 0.5]\n").unwrap();
    assert_eq!(to_params("env.params", &c.env.params).unwrap(), vec![("initial-state".into(), Value::Reals(vec![0.0, 0.5]))]);
    let c = RunConfig::parse("[env]\nplugin = \"x.wasm\"\n[env.params]\nbad = { a = 1 }\n").unwrap();
    assert!(c.check().unwrap_err().to_string().contains("env.params.bad"));
}

#[test]
fn overrides_set_dotted_keys() {
    let mut t: toml::Table = "seed = 1\n[env]\nplugin = \"x.wasm\"\n".parse().unwrap();
    apply_override(&mut t, "seed=7").unwrap();
    apply_override(&mut t, "algorithm.params.learning-rate = 3e-4").unwrap();
    apply_override(&mut t, "algorithm.device=cpu").unwrap();
    assert_eq!(t["seed"].as_integer(), Some(7));
    assert_eq!(t["algorithm"]["params"]["learning-rate"].as_float(), Some(3e-4));
    assert_eq!(t["algorithm"]["device"].as_str(), Some("cpu"));
    assert!(apply_override(&mut t, "seed.x=1").unwrap_err().to_string().contains("not a table"));
    assert!(apply_override(&mut t, "novalue").is_err());
}
