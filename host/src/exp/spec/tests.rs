use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn base(dir: &Path) -> PathBuf {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    write(
        dir,
        "base.toml",
        &format!(
            "total_steps = 1000\n[env]\nplugin = {:?}\n[algorithm]\nplugin = {:?}\n",
            plugins.join("cartpole.wasm").display().to_string(),
            plugins.join("ppo.wasm").display().to_string()
        ),
    )
}

#[test]
fn a_grid_times_seeds_expands_in_order_and_plans_the_same_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    base(dir.path());
    let f = write(
        dir.path(),
        "lr.toml",
        "base = \"base.toml\"\nseeds = 2\n[set]\ntotal_steps = 2000\n[grid]\n\"algorithm.params.learning-rate\" = [1e-3, 3e-3]\n\"algorithm.params.gamma\" = [0.9, 0.99]\n",
    );
    let p = plan(&f, &[]).expect("plan");
    assert_eq!(p.trials.len(), 8);
    assert_eq!(
        p.trials[0].overrides,
        vec!["total_steps=2000", "algorithm.params.gamma=0.9", "algorithm.params.learning-rate=0.001", "seed=1"]
    );
    assert_eq!(p.trials[1].overrides.last().map(String::as_str), Some("seed=2"));
    let again = plan(&f, &[]).expect("plan");
    assert_eq!(again.id, p.id, "the same file plans the same experiment");
    assert_eq!(again.trials, p.trials);
    let more = plan(&f, &["seeds=3".into()]).expect("plan");
    assert_ne!(more.id, p.id);
    assert_eq!(more.trials.len(), 12);
    assert_eq!(more.trials[0].id, p.trials[0].id.clone(), "a trial's id depends on its place and overrides only");
}

#[test]
fn random_draws_are_in_range_and_reproducible() {
    let dir = tempfile::tempdir().expect("tempdir");
    base(dir.path());
    let f = write(
        dir.path(),
        "r.toml",
        "base = \"base.toml\"\n[random]\ncount = 20\n\"algorithm.params.gamma\" = { uniform = [0.95, 0.999] }\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n\"algorithm.params.n-steps\" = { choice = [16, 32] }\n",
    );
    let p = plan(&f, &[]).expect("plan");
    assert_eq!(p.trials.len(), 20);
    for t in &p.trials {
        let get = |k: &str| t.overrides.iter().find_map(|o| o.strip_prefix(&format!("{k}="))).expect("key").to_string();
        let g: f64 = get("algorithm.params.gamma").parse().expect("f64");
        let lr: f64 = get("algorithm.params.learning-rate").parse().expect("f64");
        assert!((0.95..=0.999).contains(&g) && (1e-4..=1e-2).contains(&lr), "{t:?}");
        assert!(["16", "32"].contains(&get("algorithm.params.n-steps").as_str()));
    }
    assert_eq!(plan(&f, &[]).expect("plan").trials, p.trials);
}

#[test]
fn mistakes_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    base(dir.path());
    let cases = [
        ("base = \"base.toml\"\nsedes = 3\n", "unknown field `sedes`"),
        ("base = \"base.toml\"\n[grid]\n\"algorithm.params.gamma\" = []\n", "the axis is empty"),
        ("base = \"base.toml\"\nseeds = 0\n", "key `seeds`"),
        ("base = \"base.toml\"\nseeds = []\n", "key `seeds`: the list is empty"),
        ("base = \"missing.toml\"\n", "the base config"),
        ("base = \"base.toml\"\n[fleet]\nstore = \"s3://b/x\"\nbudget_dollars = -5\n", "fleet.budget_dollars"),
        ("base = \"base.toml\"\n[grid]\n\"train.eval_evry\" = [1, 2]\n", "eval_evry"),
        ("base = \"base.toml\"\n[random]\ncount = 2\n\"seed\" = 1\n", "no axis to draw"),
        ("base = \"base.toml\"\n[early_stop]\nmetric = \"eval/return_mean\"\nmin_steps = 100\neta = 1\n", "early_stop.eta"),
        // Studies: each mistake named with its key, before anything runs.
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"tp\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n",
            "key `search.sampler` = \"tp\": an unknown sampler",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n[search.pruner]\nkind = \"medain\"\n",
            "key `search.pruner.kind` = \"medain\": an unknown pruner",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.99, 0.9] }\n",
            "search.params.\"algorithm.params.gamma\".uniform`: the range [0.99, 0.9] is empty or inverted",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.9] }\n",
            "is empty or inverted",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [0, 0.1] }\n",
            "a log range must be above 0",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99], when = { \"algorithm.params.kind\" = \"a\" } }\n",
            "its `when` names `algorithm.params.kind`: not a parameter of the search",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n[grid]\n\"algorithm.params.learning-rate\" = [1e-3]\n",
            "[search] and [grid]",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n",
            "key `search.trials` is required",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n[search.pruner]\nkind = \"hyperband\"\n",
            "key `search.pruner.min_steps` is required",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"train.eval_evry\" = { int_uniform = [100, 200] }\n",
            "eval_evry",
        ),
        (
            "base = \"base.toml\"\nseeds = 2\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n",
            "a study's trials each run one seed",
        ),
        // Population-based training.
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 250\n[search.params]\n\"algorithm.params.n-steps\" = { choice = [16, 32] }\n",
            "key `search.params.\"algorithm.params.n-steps\"`: algorithm plugin `ppo` cannot change `n-steps` while it runs (it lets learning-rate, ent-coef, clip-range, vf-coef, max-grad-norm change)",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 250\n[search.params]\n\"env.params.length\" = { uniform = [0.4, 0.6] }\n",
            "it takes only algorithm parameters",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\ninterval = 250\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
            "key `search.population` is required",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 250\ntrials = 8\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
            "key `search.trials`: population-based training's trials are",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 5000\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
            "key `search.interval` = 5000: longer than the base config's total_steps (1000)",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 250\nquantile = 0.7\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
            "key `search.quantile` = 0.7",
        ),
        (
            "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\ntrials = 5\npopulation = 4\n[search.params]\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.99] }\n",
            "key `search.population` is for population-based training",
        ),
    ];
    for (text, says) in cases {
        let f = write(dir.path(), "bad.toml", text);
        let e = plan(&f, &[]).expect_err(text).to_string();
        assert!(e.contains("bad.toml") && e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn rungs_grow_by_eta_below_the_total() {
    let es = EarlyStop { metric: "eval/return_mean".into(), mode: "max".into(), min_steps: 1000, eta: 3 };
    assert_eq!(rungs(&es, 20_000), vec![1000, 3000, 9000]);
}

#[test]
fn a_study_plans_no_trials_up_front_and_keeps_parents_before_their_conditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    base(dir.path());
    let f = write(
        dir.path(),
        "study.toml",
        "base = \"base.toml\"\n[set]\ntotal_steps = 2000\n[search]\nmetric = \"eval/return_mean\"\ntrials = 12\nparallelism = 3\n[search.params]\n\"algorithm.params.ent-coef\" = { log_uniform = [1e-4, 1e-1], when = { \"algorithm.params.n-epochs\" = [4, 8] } }\n\"algorithm.params.n-epochs\" = { choice = [2, 4, 8] }\n\"algorithm.params.n-steps\" = { int_log_uniform = [16, 256] }\n[search.pruner]\nkind = \"median\"\nwarmup_steps = 500\n",
    );
    let p = plan(&f, &[]).expect("plan");
    assert!(p.trials.is_empty(), "a study's trials are made as it runs");
    let s = p.search.as_ref().expect("search");
    assert_eq!((s.trials, s.parallelism, s.sampler.as_str(), s.pruner.kind.as_str()), (12, 3, "tpe", "median"));
    let keys: Vec<&str> = s.params.iter().map(|q| q.key.as_str()).collect();
    assert_eq!(keys, ["algorithm.params.n-epochs", "algorithm.params.n-steps", "algorithm.params.ent-coef"], "parents first");
    assert_eq!(s.fixed, ["total_steps=2000", "seed=1"]);
    assert_eq!(plan(&f, &[]).expect("plan").id, p.id, "the same file plans the same study");
    assert_ne!(plan(&f, &["search.seed=4".into()]).expect("plan").id, p.id, "another seed is another study");
}

#[test]
fn a_pbt_study_is_population_times_generations_of_trials() {
    let dir = tempfile::tempdir().expect("tempdir");
    base(dir.path());
    let f = write(
        dir.path(),
        "pbt.toml",
        "base = \"base.toml\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 4\ninterval = 300\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n\"algorithm.params.ent-coef\" = { uniform = [0.0, 0.01] }\n",
    );
    let p = plan(&f, &[]).expect("plan");
    let s = p.search.as_ref().expect("search");
    let pbt = s.pbt.as_ref().expect("pbt");
    // 1000 steps in generations of 300: 4 generations (the last one 100 steps).
    assert_eq!((pbt.generations(), s.trials, s.parallelism), (4, 16, 4));
    assert_eq!((pbt.quantile, pbt.perturb.as_slice(), pbt.resample, pbt.total_steps), (0.25, &[0.8, 1.2][..], 0.25, 1000));
}
