//! Host-owned, named networks and optimizers.
//!
//! Optimizers are written here (Adam: Kingma & Ba 2015; RMSprop and SGD with momentum as
//! in PyTorch) rather than taken from `tch::nn`, so that their state is plain named tensors
//! that checkpoints can save and that can cover any subset of modules.

use super::persist::{MlpSpecJson, OptimizerKindJson};
use super::replay::{Batch, GoalOracle, Replay};
use crate::runtime::bindings::algorithm::paddock::rl::tensor::{Activation, MlpSpec, OptimizerKind, ReplaySpec};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Handle a plugin holds for a module: its name.
#[derive(Debug)]
pub struct ModuleRes(pub(crate) String);

/// Handle a plugin holds for an optimizer: its name.
#[derive(Debug)]
pub struct OptimizerRes(pub(crate) String);

/// A named network.
#[derive(Debug)]
pub enum Module {
    /// A multi-layer perceptron: `(weight [out, in], bias [out])` per layer.
    Mlp {
        /// Its spec (compared when got again).
        spec: MlpSpec,
        /// Layers.
        layers: Vec<(Tensor, Tensor)>,
    },
    /// A free parameter tensor.
    Parameter(Tensor),
}

impl Module {
    /// Every trainable tensor, in a fixed order.
    pub fn parameters(&self) -> Vec<&Tensor> {
        match self {
            Module::Mlp { layers, .. } => layers.iter().flat_map(|(w, b)| [w, b]).collect(),
            Module::Parameter(p) => vec![p],
        }
    }

    /// Applies the network.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Module::Parameter(p) => Ok(p.shallow_clone()),
            Module::Mlp { spec, layers } => {
                let mut h = x.shallow_clone();
                for (i, (w, b)) in layers.iter().enumerate() {
                    h = h.f_linear(w, Some(b))?;
                    if i + 1 < layers.len() {
                        h = match spec.activation {
                            Activation::Tanh => h.f_tanh()?,
                            Activation::Relu => h.f_relu()?,
                            Activation::Elu => h.f_elu()?,
                        };
                    }
                }
                Ok(h)
            }
        }
    }
}

/// Optimizer state.
#[derive(Debug)]
pub struct Optimizer {
    /// Module names it steps, in order.
    pub modules: Vec<String>,
    /// Algorithm and settings.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Steps taken.
    pub steps: i64,
    /// Per-parameter state (Adam: m, v; RMSprop: square average; SGD: momentum buffer).
    pub state: Vec<(Tensor, Tensor)>,
}

/// Everything the learner owns for one run.
#[derive(Debug)]
pub struct Learner {
    /// Where tensors live.
    pub device: Device,
    /// Named modules.
    pub modules: BTreeMap<String, Module>,
    /// Named optimizers.
    pub optimizers: BTreeMap<String, Optimizer>,
    /// Named replay buffers.
    pub replays: BTreeMap<String, Replay>,
    /// The env's goal rewards, for hindsight relabeling (goal-conditioned envs only).
    pub goal_oracle: OracleSlot,
}

/// Holds the run's [`GoalOracle`], if its env is goal-conditioned.
#[derive(Default)]
pub struct OracleSlot(pub Option<Box<dyn GoalOracle>>);

impl std::fmt::Debug for OracleSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "OracleSlot(Some)" } else { "OracleSlot(None)" })
    }
}

/// What `learner.json` in a checkpoint says about each module and optimizer; the tensors
/// themselves are in `learner.pt`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    modules: BTreeMap<String, Option<MlpSpecJson>>,
    optimizers: BTreeMap<String, (Vec<String>, OptimizerKindJson, f64, i64)>,
}

fn same_spec(a: &MlpSpec, b: &MlpSpec) -> bool {
    a.input == b.input
        && a.hidden == b.hidden
        && a.output == b.output
        && a.activation == b.activation
        && a.hidden_gain == b.hidden_gain
        && a.output_gain == b.output_gain
}

impl Learner {
    /// An empty learner on `device`.
    pub fn new(device: Device) -> Self {
        Learner {
            device,
            modules: BTreeMap::new(),
            optimizers: BTreeMap::new(),
            replays: BTreeMap::new(),
            goal_oracle: OracleSlot::default(),
        }
    }

    /// Gets or creates the replay buffer `name`.
    pub fn replay(&mut self, name: &str, spec: &ReplaySpec) -> Result<(), String> {
        if let Some(existing) = self.replays.get(name) {
            if existing.has_spec(spec) {
                return Ok(());
            }
            return Err(format!("replay `{name}` exists with another spec ({:?}), asked for {spec:?}", existing.spec()));
        }
        let replay = Replay::new(name, spec, self.device, self.goal_oracle.0.is_some())?;
        self.replays.insert(name.to_string(), replay);
        Ok(())
    }

    /// Samples from the replay buffer `name` (relabeling with the goal oracle if it asks).
    pub fn sample(&mut self, name: &str, batch_size: usize) -> Result<Batch, String> {
        let replay = self.replays.get_mut(name).ok_or_else(|| format!("no replay buffer `{name}`"))?;
        replay.sample(batch_size, self.goal_oracle.0.as_deref_mut())
    }

    /// Writes every replay buffer into `dir` (`replays.json` names them; `replay-<i>.*`).
    pub fn save_replays(&self, dir: &std::path::Path) -> Result<(), String> {
        let names: Vec<&String> = self.replays.keys().collect();
        for (i, (_, r)) in self.replays.iter().enumerate() {
            r.save(dir, &format!("replay-{i}"))?;
        }
        let json = serde_json::to_string(&names).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("replays.json"), json).map_err(|e| format!("failed to write replays.json: {e}"))
    }

    /// Reads replay buffers written by [`Learner::save_replays`], if `dir` has any.
    pub fn load_replays(&mut self, dir: &std::path::Path) -> Result<(), String> {
        let Ok(text) = std::fs::read_to_string(dir.join("replays.json")) else { return Ok(()) };
        let names: Vec<String> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join("replays.json").display()))?;
        for (i, name) in names.into_iter().enumerate() {
            let r = Replay::load(dir, &format!("replay-{i}"), &name, self.device, self.goal_oracle.0.is_some())?;
            self.replays.insert(name, r);
        }
        Ok(())
    }

    /// Gets or creates the MLP `name`.
    pub fn mlp(&mut self, name: &str, spec: &MlpSpec) -> Result<(), String> {
        if let Some(existing) = self.modules.get(name) {
            return match existing {
                Module::Mlp { spec: s, .. } if same_spec(s, spec) => Ok(()),
                Module::Mlp { spec: s, .. } => Err(format!("module `{name}` exists with another spec ({s:?}), asked for {spec:?}")),
                Module::Parameter(_) => Err(format!("module `{name}` exists as a parameter, asked for an MLP")),
            };
        }
        if spec.input == 0 || spec.output == 0 || spec.hidden.contains(&0) {
            return Err(format!("module `{name}`: layer widths must be positive ({spec:?})"));
        }
        let mut widths = vec![spec.input as i64];
        widths.extend(spec.hidden.iter().map(|&h| i64::from(h)));
        widths.push(i64::from(spec.output));
        let n = widths.len() - 1;
        let mut layers = Vec::with_capacity(n);
        for (i, pair) in widths.windows(2).enumerate() {
            let gain = if i + 1 == n { spec.output_gain } else { spec.hidden_gain };
            let w = tch::nn::init::f_init(tch::nn::Init::Orthogonal { gain }, &[pair[1], pair[0]], self.device, Kind::Float)
                .map_err(|e| format!("module `{name}`: {e}"))?
                .set_requires_grad(true);
            let b = Tensor::zeros([pair[1]], (Kind::Float, self.device)).set_requires_grad(true);
            layers.push((w, b));
        }
        self.modules.insert(name.to_string(), Module::Mlp { spec: spec.clone(), layers });
        Ok(())
    }

    /// Gets or creates the parameter `name` from `init`.
    pub fn parameter(&mut self, name: &str, init: &Tensor) -> Result<(), String> {
        match self.modules.get(name) {
            Some(Module::Parameter(_)) => Ok(()),
            Some(Module::Mlp { .. }) => Err(format!("module `{name}` exists as an MLP, asked for a parameter")),
            None => {
                let p = init.detach().to_kind(Kind::Float).to_device(self.device).copy().set_requires_grad(true);
                self.modules.insert(name.to_string(), Module::Parameter(p));
                Ok(())
            }
        }
    }

    /// Gets or creates the optimizer `name` over `modules`.
    pub fn optimizer(&mut self, name: &str, modules: Vec<String>, kind: OptimizerKind, learning_rate: f64) -> Result<(), String> {
        if let Some(existing) = self.optimizers.get(name) {
            if existing.modules != modules {
                return Err(format!("optimizer `{name}` exists over modules {:?}, asked for {modules:?}", existing.modules));
            }
            return Ok(());
        }
        let mut state = Vec::new();
        for m in &modules {
            let module = self.modules.get(m).ok_or_else(|| format!("optimizer `{name}`: no module `{m}`"))?;
            for p in module.parameters() {
                state.push((p.zeros_like(), p.zeros_like()));
            }
        }
        self.optimizers.insert(name.to_string(), Optimizer { modules, kind, learning_rate, steps: 0, state });
        Ok(())
    }

    /// Writes `learner.json` and `learner.pt` (every parameter and optimizer state
    /// tensor, by name) into `dir`.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), String> {
        let manifest = Manifest {
            modules: self
                .modules
                .iter()
                .map(|(n, m)| (n.clone(), if let Module::Mlp { spec, .. } = m { Some(MlpSpecJson(spec.clone())) } else { None }))
                .collect(),
            optimizers: self
                .optimizers
                .iter()
                .map(|(n, o)| (n.clone(), (o.modules.clone(), OptimizerKindJson(o.kind.clone()), o.learning_rate, o.steps)))
                .collect(),
        };
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (n, m) in &self.modules {
            for (i, p) in m.parameters().into_iter().enumerate() {
                named.push((format!("module/{n}/{i}"), p.detach().to_device(Device::Cpu)));
            }
        }
        for (n, o) in &self.optimizers {
            for (i, (a, b)) in o.state.iter().enumerate() {
                named.push((format!("optimizer/{n}/{i}/a"), a.to_device(Device::Cpu)));
                named.push((format!("optimizer/{n}/{i}/b"), b.to_device(Device::Cpu)));
            }
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        Tensor::save_multi(&refs, dir.join("learner.pt")).map_err(|e| format!("failed to write learner.pt: {e}"))?;
        let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("learner.json"), json).map_err(|e| format!("failed to write learner.json: {e}"))
    }

    /// Reads a learner written by [`Learner::save`] onto `device`.
    pub fn load(dir: &std::path::Path, device: Device) -> Result<Learner, String> {
        let text = std::fs::read_to_string(dir.join("learner.json"))
            .map_err(|e| format!("failed to read {}: {e}", dir.join("learner.json").display()))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join("learner.json").display()))?;
        let tensors: BTreeMap<String, Tensor> = Tensor::load_multi(dir.join("learner.pt"))
            .map_err(|e| format!("failed to read {}: {e}", dir.join("learner.pt").display()))?
            .into_iter()
            .collect();
        let take = |name: String| -> Result<Tensor, String> {
            tensors.get(&name).map(|t| t.to_device(device)).ok_or_else(|| format!("learner.pt lacks tensor `{name}`"))
        };
        let mut learner = Learner::new(device);
        for (n, spec) in manifest.modules {
            match spec {
                Some(MlpSpecJson(spec)) => {
                    learner.mlp(&n, &spec)?;
                    if let Some(Module::Mlp { layers, .. }) = learner.modules.get_mut(&n) {
                        for (i, (w, b)) in layers.iter_mut().enumerate() {
                            *w = take(format!("module/{n}/{}", 2 * i))?.set_requires_grad(true);
                            *b = take(format!("module/{n}/{}", 2 * i + 1))?.set_requires_grad(true);
                        }
                    }
                }
                None => {
                    let t = take(format!("module/{n}/0"))?;
                    learner.parameter(&n, &t)?;
                }
            }
        }
        for (n, (modules, kind, lr, steps)) in manifest.optimizers {
            learner.optimizer(&n, modules, kind.0, lr)?;
            let opt = learner.optimizers.get_mut(&n).expect("just created");
            opt.steps = steps;
            for (i, (a, b)) in opt.state.iter_mut().enumerate() {
                *a = take(format!("optimizer/{n}/{i}/a"))?;
                *b = take(format!("optimizer/{n}/{i}/b"))?;
            }
        }
        Ok(learner)
    }

    /// Back-propagates `loss`, clips the global gradient norm, steps the optimizer `name`;
    /// returns the norm before clipping.
    pub fn minimize(&mut self, name: &str, loss: &Tensor, max_grad_norm: Option<f64>) -> Result<f64, String> {
        let opt = self.optimizers.get_mut(name).ok_or_else(|| format!("no optimizer `{name}`"))?;
        let params: Vec<Tensor> = opt
            .modules
            .iter()
            .filter_map(|m| self.modules.get(m))
            .flat_map(|m| m.parameters().into_iter().map(Tensor::shallow_clone).collect::<Vec<_>>())
            .collect();
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_().map_err(|e| e.to_string())?;
            }
        }
        loss.f_backward().map_err(|e| format!("backward: {e}"))?;
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = params.iter().map(|p| if p.grad().defined() { p.grad() } else { p.zeros_like() }).collect();
        // One norm over all gradients, one read-back.
        let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
        let norm = Tensor::f_cat(&flat, 0).and_then(|c| c.f_norm()).and_then(|n| n.f_double_value(&[])).map_err(|e| e.to_string())?;
        if !norm.is_finite() {
            return Err(format!("gradient norm is {norm} (NaN or infinite loss?)"));
        }
        let scale = match max_grad_norm {
            Some(m) if norm > m => m / (norm + 1e-6),
            _ => 1.0,
        };
        opt.steps += 1;
        let (lr, t) = (opt.learning_rate, opt.steps as f64);
        // In-place updates, as torch.optim's single-tensor implementations do them.
        let step = |p: &Tensor, g: &Tensor, s1: &mut Tensor, s2: &mut Tensor| -> Result<(), tch::TchError> {
            let g = if scale == 1.0 { g.shallow_clone() } else { g.f_mul_scalar(scale)? };
            let mut p = p.shallow_clone();
            match opt.kind {
                OptimizerKind::Adam(eps) => {
                    let (b1, b2) = (0.9f64, 0.999f64);
                    let _ = s1.f_lerp_(&g, 1.0 - b1)?;
                    let _ = s2.f_mul_scalar_(b2)?.f_addcmul_(&g, &g.f_mul_scalar(1.0 - b2)?)?;
                    let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
                    let mut denom = s2.f_sqrt()?.f_div_scalar_(bc2.sqrt())?.f_add_scalar_(eps)?;
                    let _ = p.f_addcdiv_(&*s1, &denom.f_mul_scalar_(-bc1 / lr)?)?;
                }
                OptimizerKind::Rmsprop((alpha, eps)) => {
                    let _ = s1.f_mul_scalar_(alpha)?.f_addcmul_(&g, &g.f_mul_scalar(1.0 - alpha)?)?;
                    let mut denom = s1.f_sqrt()?.f_add_scalar_(eps)?;
                    let _ = p.f_addcdiv_(&g, &denom.f_mul_scalar_(-1.0 / lr)?)?;
                }
                OptimizerKind::Sgd(momentum) => {
                    let _ = s1.f_mul_scalar_(momentum)?.f_add_(&g)?;
                    let _ = p.f_sub_(&s1.f_mul_scalar(lr)?)?;
                }
            }
            Ok(())
        };
        for ((p, g), (s1, s2)) in params.iter().zip(&grads).zip(opt.state.iter_mut()) {
            step(p, g, s1, s2).map_err(|e| format!("optimizer step: {e}"))?;
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
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
        let Module::Mlp { layers, .. } = &l.modules["pi"] else { panic!("an MLP") };
        let w = &layers[1].0; // [2, 8]
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
}
