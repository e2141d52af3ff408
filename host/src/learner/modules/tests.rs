use super::*;

fn spec(hidden: Vec<u32>) -> MlpSpec {
    MlpSpec { input: 3, hidden, output: 2, activation: Activation::Tanh, hidden_gain: 2f64.sqrt(), output_gain: 1.0 }
}

#[test]
fn modules_are_got_or_created_by_name() {
    let _rng = crate::learner::torch_rng_lock();
    tch::set_num_threads(1);
    let mut l = Learner::new(Device::Cpu);
    l.mlp("pi", &spec(vec![8])).expect("create");
    l.mlp("pi", &spec(vec![8])).expect("get again");
    let err = l.mlp("pi", &spec(vec![16])).expect_err("another spec");
    assert!(err.contains("module `pi` exists with another spec"), "{err}");
    assert!(l.mlp("bad", &spec(vec![0])).expect_err("zero width").contains("positive"));
    let x = Tensor::ones([5, 3], (Kind::Float, Device::Cpu));
    assert_eq!(l.modules["pi"].forward(&x).expect("forward").size(), [5, 2]);
    // Orthogonal init: W Wᵀ = gain² I for the square-or-wide output layer.
    let w = l.modules["pi"].parameters()[2]; // output weight [2, 8]
    let wwt = w.matmul(&w.tr());
    assert!(wwt.allclose(&Tensor::eye(2, (Kind::Float, Device::Cpu)), 1e-4, 1e-5, false));
}

#[test]
fn each_optimizer_minimises_a_quadratic() {
    let _rng = crate::learner::torch_rng_lock();
    tch::set_num_threads(1);
    tch::manual_seed(0);
    for kind in [OptimizerKind::Adam(1e-8), OptimizerKind::Rmsprop((0.99, 1e-8)), OptimizerKind::Sgd(0.9)] {
        let mut l = Learner::new(Device::Cpu);
        l.parameter("x", &Tensor::from_slice(&[3.0f32, -2.0])).expect("parameter");
        l.optimizer("opt", vec!["x".into()], kind, 0.05).expect("optimizer");
        let target = Tensor::from_slice(&[1.0f32, 1.0]);
        let loss = |l: &Learner| (l.modules["x"].parameters()[0] - &target).square().sum(Kind::Float);
        let before = loss(&l).double_value(&[]);
        for _ in 0..300 {
            let lo = loss(&l);
            l.minimize("opt", &lo, Some(10.0)).expect("step");
        }
        let after = loss(&l).double_value(&[]);
        assert!(after < before * 1e-2, "{kind:?}: loss {before} -> {after}");
    }
    let mut l = Learner::new(Device::Cpu);
    assert!(l.optimizer("o", vec!["nope".into()], OptimizerKind::Sgd(0.0), 0.1).expect_err("no module").contains("no module `nope`"));
}

#[test]
fn an_optimizer_over_some_modules_steps_those_only() {
    let _rng = crate::learner::torch_rng_lock();
    tch::set_num_threads(1);
    let mut l = Learner::new(Device::Cpu);
    l.parameter("x", &Tensor::from_slice(&[1.0f32, 2.0])).expect("x");
    l.parameter("y", &Tensor::from_slice(&[3.0f32, -4.0])).expect("y");
    l.optimizer("over-x", vec!["x".into()], OptimizerKind::Sgd(0.0), 0.5).expect("optimizer");
    l.optimizer("over-both", vec!["x".into(), "y".into()], OptimizerKind::Sgd(0.0), 0.5).expect("optimizer");
    let value = |l: &Learner, n: &str| Vec::<f32>::try_from(l.modules[n].parameters()[0].detach()).expect("read");
    let loss = |l: &Learner| (l.modules["x"].parameters()[0] * l.modules["y"].parameters()[0]).sum(Kind::Float);
    // d/dx Σ x·y = y: x ← x − 0.5·y; y is not stepped and gets no gradient.
    let norm = l.minimize("over-x", &loss(&l), None).expect("step");
    assert_eq!(value(&l, "x"), [-0.5, 4.0]);
    assert_eq!(value(&l, "y"), [3.0, -4.0]);
    assert!(!l.modules["y"].parameters()[0].grad().defined(), "y got a gradient");
    assert!((norm - 5.0).abs() < 1e-6, "norm of y = (3, -4): {norm}");
    // Both: x ← x − 0.5·y, y ← y − 0.5·x (old x), one norm over both gradients.
    let norm = l.minimize("over-both", &loss(&l), None).expect("step");
    assert_eq!(value(&l, "x"), [-2.0, 6.0]);
    assert_eq!(value(&l, "y"), [3.25, -6.0]);
    assert!((norm - (25.0f64 + 0.25 + 16.0).sqrt()).abs() < 1e-5, "{norm}");
    // A loss without a graph is an error, not a crash.
    let flat = Tensor::from_slice(&[1.0f32]).sum(Kind::Float);
    assert!(l.minimize("over-x", &flat, None).expect_err("no graph").contains("backward"));
    assert!(l.minimize("over-both", &flat, None).expect_err("no graph").contains("backward"));
    let wide = l.modules["x"].parameters()[0] * 2.0;
    assert!(l.minimize("over-x", &wide, None).expect_err("not a scalar").contains("single value, got shape [2]"));
}

#[test]
fn a_saved_learner_loads_identically() {
    let _rng = crate::learner::torch_rng_lock();
    tch::set_num_threads(1);
    let mut l = Learner::new(Device::Cpu);
    l.mlp("pi", &spec(vec![4])).expect("mlp");
    l.parameter("log-std", &Tensor::from_slice(&[0.5f32])).expect("param");
    l.optimizer("adam", vec!["pi".into(), "log-std".into()], OptimizerKind::Adam(1e-5), 0.01).expect("opt");
    let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
    let loss = l.modules["pi"].forward(&x).expect("fwd").square().sum(Kind::Float);
    l.minimize("adam", &loss, None).expect("step");
    let dir = tempfile::tempdir().expect("tempdir");
    l.save(dir.path()).expect("save");
    let back = Learner::load(dir.path(), Device::Cpu).expect("load");
    for (n, m) in &l.modules {
        for (a, b) in m.parameters().into_iter().zip(back.modules[n].parameters()) {
            assert!(a.equal(b), "module {n} differs");
        }
    }
    let (o, p) = (&l.optimizers["adam"], &back.optimizers["adam"]);
    assert_eq!((o.steps, &o.modules), (p.steps, &p.modules));
    assert!(o.state.iter().zip(&p.state).all(|(a, b)| a.0.equal(&b.0) && a.1.equal(&b.1)));
}
