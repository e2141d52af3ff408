//! Host-owned, named networks and optimizers.
//!
//! Optimizers are written here (Adam: Kingma & Ba 2015; RMSprop and SGD with momentum as
//! in PyTorch) rather than taken from `tch::nn`, so that their state is plain named tensors
//! that checkpoints can save and that can cover any subset of modules.

use super::replay::{Batch, GoalOracle, Replay};
use super::spec::{Activation, EncoderSpec, MlpSpec, OptimizerKind, ReplaySpec};
use crate::format::checkpoint::{LEARNER_MANIFEST, LEARNER_TENSORS, REPLAYS};
use crate::spaces::ImageLayout;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Handle a plugin holds for a module: its name.
#[derive(Debug)]
pub struct ModuleRes(pub(crate) String);

/// Handle a plugin holds for an optimizer: its name.
#[derive(Debug)]
pub struct OptimizerRes(pub(crate) String);

/// What kind of module.
#[derive(Debug)]
pub enum ModuleKind {
    /// A multi-layer perceptron; its parameters are `weight [out, in], bias [out]` per layer.
    Mlp(MlpSpec),
    /// A free parameter tensor.
    Parameter,
    /// A convolutional encoder of camera images ([`super::encoder`]), for observations of
    /// this layout; `scale` brings each image channel to about [0, 1].
    Encoder {
        /// Architecture and width.
        spec: EncoderSpec,
        /// The observations it takes.
        layout: ImageLayout,
        /// `[1, C, 1, 1]` channel factors, on the learner's device.
        scale: Tensor,
    },
}

/// A named network. Its parameters are views into one flat float32 tensor, so that an
/// optimizer step or a Polyak update is a handful of libtorch calls per module rather than
/// per parameter (each call costs microseconds of dispatch for these small networks).
#[derive(Debug)]
pub struct Module {
    /// MLP (with its spec) or free parameter.
    pub kind: ModuleKind,
    /// Every parameter's values, concatenated (no autograd).
    pub flat: Tensor,
    /// The parameters: leaves that require grad and share `flat`'s storage.
    params: Vec<Tensor>,
}

impl Module {
    /// A module whose parameters start as `init` (copied into one flat buffer on `device`).
    fn from_tensors(kind: ModuleKind, init: &[Tensor], device: Device) -> Self {
        let _guard = tch::no_grad_guard();
        let total: i64 = init.iter().map(|t| t.numel() as i64).sum();
        let flat = Tensor::zeros([total], (Kind::Float, device));
        let mut params = Vec::with_capacity(init.len());
        let mut at = 0;
        for t in init {
            let n = t.numel() as i64;
            let mut view = flat.narrow(0, at, n).view(t.size().as_slice());
            view.copy_(&t.to_kind(Kind::Float).to_device(device));
            params.push(view.detach().set_requires_grad(true));
            at += n;
        }
        Module { kind, flat, params }
    }

    /// Every trainable tensor, in a fixed order.
    pub fn parameters(&self) -> Vec<&Tensor> {
        self.params.iter().collect()
    }

    /// Applies the network.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        match &self.kind {
            ModuleKind::Parameter => Ok(self.params[0].shallow_clone()),
            ModuleKind::Encoder { spec, layout, scale } => super::encoder::forward(spec, layout, scale, &self.params, x),
            ModuleKind::Mlp(spec) => {
                let mut h = x.shallow_clone();
                let layers = self.params.len() / 2;
                for i in 0..layers {
                    h = h.f_linear(&self.params[2 * i], Some(&self.params[2 * i + 1]))?;
                    if i + 1 < layers {
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

    /// `grads` (one per parameter, as `run_backward` returns them) concatenated like `flat`,
    /// zeros where a parameter took no part in the loss.
    fn flat_grad(&self, grads: &[Tensor]) -> Result<Tensor, tch::TchError> {
        let parts: Vec<Tensor> = self
            .params
            .iter()
            .zip(grads)
            .map(|(p, g)| if g.defined() { g.f_reshape([-1]) } else { p.f_zeros_like()?.f_reshape([-1]) })
            .collect::<Result<_, _>>()?;
        Tensor::f_cat(&parts, 0)
    }

    /// Copies `values` (one tensor per parameter, same shapes) into the parameters.
    fn load_values(&mut self, values: &[Tensor]) -> Result<(), String> {
        if values.len() != self.params.len() || values.iter().zip(&self.params).any(|(v, p)| v.size() != p.size()) {
            return Err("parameter shapes differ from the module's".into());
        }
        let _guard = tch::no_grad_guard();
        for (p, v) in self.params.iter().zip(values) {
            p.shallow_clone().copy_(&v.to_device(p.device()));
        }
        Ok(())
    }

    /// Views of `flat`-shaped `state` with each parameter's shape (for checkpoints).
    fn views_of(&self, state: &Tensor) -> Vec<Tensor> {
        let mut at = 0;
        self.params
            .iter()
            .map(|p| {
                let n = p.numel() as i64;
                let v = state.narrow(0, at, n).view(p.size().as_slice());
                at += n;
                v
            })
            .collect()
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
    /// State per module, flat like the module's parameters (Adam: m, v; RMSprop: square
    /// average; SGD: momentum buffer).
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
    /// How the run's observations carry camera images, when its env has cameras (what
    /// `observation-layout` tells the algorithm and `module.encoder` builds on).
    pub images: Option<ImageLayout>,
}

/// Holds the run's [`GoalOracle`], if its env is goal-conditioned, or why there is none.
#[derive(Default)]
pub struct OracleSlot(pub Option<Box<dyn GoalOracle>>, pub Option<String>);

impl OracleSlot {
    /// `Ok` with an oracle, else why hindsight relabeling cannot work in this run.
    fn available(&self) -> Result<(), String> {
        match (&self.0, &self.1) {
            (Some(_), _) => Ok(()),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => {
                Err("needs a goal-conditioned env (a component exporting paddock:rl/goal-env); this run's env is not one".into())
            }
        }
    }
}

impl std::fmt::Debug for OracleSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "OracleSlot(Some)" } else { "OracleSlot(None)" })
    }
}

/// What `learner.json` in a checkpoint says about each module and optimizer; the tensors
/// themselves are in `learner.pt`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    modules: BTreeMap<String, Option<MlpSpec>>,
    optimizers: BTreeMap<String, (Vec<String>, OptimizerKind, f64, i64)>,
    /// Encoders (also listed in `modules`, without a spec there), with their layouts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    encoders: BTreeMap<String, (EncoderSpec, ImageLayout)>,
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
            images: None,
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
        let replay = Replay::new(name, spec, self.device, self.goal_oracle.available())?;
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
        std::fs::write(dir.join(REPLAYS), json).map_err(|e| format!("failed to write replays.json: {e}"))
    }

    /// Reads replay buffers written by [`Learner::save_replays`], if `dir` has any.
    pub fn load_replays(&mut self, dir: &std::path::Path) -> Result<(), String> {
        let Ok(text) = std::fs::read_to_string(dir.join(REPLAYS)) else { return Ok(()) };
        let names: Vec<String> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join(REPLAYS).display()))?;
        for (i, name) in names.into_iter().enumerate() {
            let r = Replay::load(dir, &format!("replay-{i}"), &name, self.device, self.goal_oracle.available())?;
            self.replays.insert(name, r);
        }
        Ok(())
    }

    /// Gets or creates the MLP `name`.
    pub fn mlp(&mut self, name: &str, spec: &MlpSpec) -> Result<(), String> {
        if let Some(existing) = self.modules.get(name) {
            return match &existing.kind {
                ModuleKind::Mlp(s) if same_spec(s, spec) => Ok(()),
                ModuleKind::Mlp(s) => Err(format!("module `{name}` exists with another spec ({s:?}), asked for {spec:?}")),
                ModuleKind::Parameter => Err(format!("module `{name}` exists as a parameter, asked for an MLP")),
                ModuleKind::Encoder { .. } => Err(format!("module `{name}` exists as an encoder, asked for an MLP")),
            };
        }
        if spec.input == 0 || spec.output == 0 || spec.hidden.contains(&0) {
            return Err(format!("module `{name}`: layer widths must be positive ({spec:?})"));
        }
        let mut widths = vec![spec.input as i64];
        widths.extend(spec.hidden.iter().map(|&h| i64::from(h)));
        widths.push(i64::from(spec.output));
        let n = widths.len() - 1;
        let mut init = Vec::with_capacity(2 * n);
        for (i, pair) in widths.windows(2).enumerate() {
            let gain = if i + 1 == n { spec.output_gain } else { spec.hidden_gain };
            let w = tch::nn::init::f_init(tch::nn::Init::Orthogonal { gain }, &[pair[1], pair[0]], self.device, Kind::Float)
                .map_err(|e| format!("module `{name}`: {e}"))?;
            init.push(w);
            init.push(Tensor::zeros([pair[1]], (Kind::Float, self.device)));
        }
        self.modules.insert(name.to_string(), Module::from_tensors(ModuleKind::Mlp(spec.clone()), &init, self.device));
        Ok(())
    }

    /// Gets or creates the parameter `name` from `init`.
    pub fn parameter(&mut self, name: &str, init: &Tensor) -> Result<(), String> {
        match self.modules.get(name).map(|m| &m.kind) {
            Some(ModuleKind::Parameter) => Ok(()),
            Some(ModuleKind::Mlp(_)) => Err(format!("module `{name}` exists as an MLP, asked for a parameter")),
            Some(ModuleKind::Encoder { .. }) => Err(format!("module `{name}` exists as an encoder, asked for a parameter")),
            None => {
                let m = Module::from_tensors(ModuleKind::Parameter, &[init.detach()], self.device);
                self.modules.insert(name.to_string(), m);
                Ok(())
            }
        }
    }

    /// Gets or creates the encoder `name` of the run's camera images ([`Learner::images`],
    /// or `layout` when given: a checkpoint's).
    pub fn encoder(&mut self, name: &str, spec: &EncoderSpec, layout: Option<&ImageLayout>) -> Result<(), String> {
        let Some(layout) = layout.or(self.images.as_ref()).cloned() else {
            return Err(format!("module `{name}`: an encoder needs camera images in the observation, and this run's env has no cameras"));
        };
        if let Some(existing) = self.modules.get(name) {
            return match &existing.kind {
                ModuleKind::Encoder { spec: s, layout: l, .. } if s == spec && *l == layout => Ok(()),
                ModuleKind::Encoder { spec: s, .. } => {
                    Err(format!("module `{name}` exists with another spec ({s:?}) or image layout, asked for {spec:?}"))
                }
                _ => Err(format!("module `{name}` exists as another kind of module, asked for an encoder")),
            };
        }
        let init = super::encoder::init(spec, &layout, self.device).map_err(|e| format!("module `{name}`: {e}"))?;
        let scale = super::encoder::scales(&layout, self.device);
        let kind = ModuleKind::Encoder { spec: *spec, layout, scale };
        self.modules.insert(name.to_string(), Module::from_tensors(kind, &init, self.device));
        Ok(())
    }

    /// `target ← tau · source + (1 − tau) · target` over the flat parameters.
    pub fn soft_update(&mut self, target: &str, source: &str, tau: f64) -> Result<(), String> {
        let (Some(d), Some(s)) = (self.modules.get(target), self.modules.get(source)) else {
            return Err(format!("soft-update: no module `{target}` or `{source}`"));
        };
        let same = d.params.len() == s.params.len() && d.params.iter().zip(&s.params).all(|(a, b)| a.size() == b.size());
        if !same {
            return Err(format!("soft-update: modules `{target}` and `{source}` have different shapes"));
        }
        let _guard = tch::no_grad_guard();
        let _ = d.flat.shallow_clone().f_lerp_(&s.flat, tau).map_err(|e| format!("soft-update: {e}"))?;
        Ok(())
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
            state.push((module.flat.zeros_like(), module.flat.zeros_like()));
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
                .map(|(n, m)| (n.clone(), if let ModuleKind::Mlp(spec) = &m.kind { Some(spec.clone()) } else { None }))
                .collect(),
            optimizers: self.optimizers.iter().map(|(n, o)| (n.clone(), (o.modules.clone(), o.kind, o.learning_rate, o.steps))).collect(),
            encoders: self
                .modules
                .iter()
                .filter_map(|(n, m)| match &m.kind {
                    ModuleKind::Encoder { spec, layout, .. } => Some((n.clone(), (*spec, layout.clone()))),
                    _ => None,
                })
                .collect(),
        };
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (n, m) in &self.modules {
            for (i, p) in m.parameters().into_iter().enumerate() {
                named.push((format!("module/{n}/{i}"), p.detach().to_device(Device::Cpu)));
            }
        }
        // Optimizer state is saved per parameter (views of the flat state), as a plain
        // optimizer would hold it: the file does not depend on the flat layout.
        for (n, o) in &self.optimizers {
            let mut i = 0;
            for (m, (a, b)) in o.modules.iter().zip(&o.state) {
                let module = self.modules.get(m).ok_or_else(|| format!("optimizer `{n}`: no module `{m}`"))?;
                for (va, vb) in module.views_of(a).into_iter().zip(module.views_of(b)) {
                    named.push((format!("optimizer/{n}/{i}/a"), va.to_device(Device::Cpu)));
                    named.push((format!("optimizer/{n}/{i}/b"), vb.to_device(Device::Cpu)));
                    i += 1;
                }
            }
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_tensors(&refs, &dir.join(LEARNER_TENSORS))?;
        let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(LEARNER_MANIFEST), json).map_err(|e| format!("failed to write learner.json: {e}"))
    }

    /// Reads a learner written by [`Learner::save`] onto `device`.
    pub fn load(dir: &std::path::Path, device: Device) -> Result<Learner, String> {
        let text = std::fs::read_to_string(dir.join(LEARNER_MANIFEST))
            .map_err(|e| format!("failed to read {}: {e}", dir.join(LEARNER_MANIFEST).display()))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join(LEARNER_MANIFEST).display()))?;
        let tensors: BTreeMap<String, Tensor> = Tensor::load_multi(dir.join(LEARNER_TENSORS))
            .map_err(|e| format!("failed to read {}: {e}", dir.join(LEARNER_TENSORS).display()))?
            .into_iter()
            .collect();
        let take = |name: String| -> Result<Tensor, String> {
            tensors.get(&name).map(|t| t.to_device(device)).ok_or_else(|| format!("learner.pt lacks tensor `{name}`"))
        };
        let mut learner = Learner::new(device);
        for (n, spec) in manifest.modules {
            if let Some((spec, layout)) = manifest.encoders.get(&n) {
                learner.encoder(&n, spec, Some(layout))?;
                let module = learner.modules.get_mut(&n).expect("just created");
                let values = (0..module.params.len()).map(|i| take(format!("module/{n}/{i}"))).collect::<Result<Vec<_>, _>>()?;
                module.load_values(&values).map_err(|e| format!("learner.pt, module `{n}`: {e}"))?;
                continue;
            }
            match spec {
                Some(spec) => {
                    learner.mlp(&n, &spec)?;
                    let module = learner.modules.get_mut(&n).expect("just created");
                    let values = (0..module.params.len()).map(|i| take(format!("module/{n}/{i}"))).collect::<Result<Vec<_>, _>>()?;
                    module.load_values(&values).map_err(|e| format!("learner.pt, module `{n}`: {e}"))?;
                }
                None => {
                    let t = take(format!("module/{n}/0"))?;
                    learner.parameter(&n, &t)?;
                }
            }
        }
        for (n, (modules, kind, lr, steps)) in manifest.optimizers {
            learner.optimizer(&n, modules, kind, lr)?;
            let opt = learner.optimizers.get_mut(&n).expect("just created");
            opt.steps = steps;
            let _guard = tch::no_grad_guard();
            let mut i = 0;
            for (m, (a, b)) in opt.modules.iter().zip(&opt.state) {
                let module = &learner.modules[m];
                for (mut va, mut vb) in module.views_of(a).into_iter().zip(module.views_of(b)) {
                    va.copy_(&take(format!("optimizer/{n}/{i}/a"))?);
                    vb.copy_(&take(format!("optimizer/{n}/{i}/b"))?);
                    i += 1;
                }
            }
        }
        Ok(learner)
    }

    /// Back-propagates `loss`, clips the global gradient norm, steps the optimizer `name`;
    /// returns the norm before clipping.
    pub fn minimize(&mut self, name: &str, loss: &Tensor, max_grad_norm: Option<f64>) -> Result<f64, String> {
        let opt = self.optimizers.get_mut(name).ok_or_else(|| format!("no optimizer `{name}`"))?;
        let modules: Vec<&Module> = opt
            .modules
            .iter()
            .map(|m| self.modules.get(m).ok_or_else(|| format!("optimizer `{name}`: no module `{m}`")))
            .collect::<Result<_, _>>()?;
        if loss.numel() != 1 {
            return Err(format!("backward: the loss must be a single value, got shape {:?}", loss.size()));
        }
        if !loss.requires_grad() {
            // (libtorch's run_backward dereferences the missing graph: check first.)
            return Err("backward: the loss does not depend on any parameter (computed without gradients?)".into());
        }
        let params: Vec<&Tensor> = modules.iter().flat_map(|m| &m.params).collect();
        let grads: Vec<Tensor> = if opt.modules.len() == self.modules.len() {
            // The optimizer covers every module: zero, back-propagate into `.grad`, read.
            for p in &params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.f_zero_().map_err(|e| e.to_string())?;
                }
            }
            loss.f_backward().map_err(|e| format!("backward: {e}"))?;
            params.iter().map(|p| p.grad()).collect()
        } else {
            // Other modules exist: return this optimizer's gradients only (torch.autograd.grad),
            // so none is computed for other modules the loss went through (SAC's critics in its
            // actor loss: ~10% of its update). Slower than `backward` when there are none.
            Tensor::f_run_backward(&[loss], &params, false, false).map_err(|e| format!("backward: {e}"))?
        };
        let _guard = tch::no_grad_guard();
        let mut grads = grads.into_iter();
        let grads: Vec<Tensor> = modules
            .iter()
            .map(|m| m.flat_grad(&grads.by_ref().take(m.params.len()).collect::<Vec<_>>()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        // One norm over all gradients, one read-back.
        let norm = Tensor::f_cat(&grads, 0).and_then(|c| c.f_norm()).and_then(|n| n.f_double_value(&[])).map_err(|e| e.to_string())?;
        if !norm.is_finite() {
            return Err(format!("gradient norm is {norm} (NaN or infinite loss?)"));
        }
        let scale = match max_grad_norm {
            Some(m) if norm > m => m / (norm + 1e-6),
            _ => 1.0,
        };
        opt.steps += 1;
        let (lr, t) = (opt.learning_rate, opt.steps as f64);
        // In place on each module's flat parameters, as torch.optim's implementations do it.
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
        for ((m, g), (s1, s2)) in modules.iter().zip(&grads).zip(opt.state.iter_mut()) {
            step(&m.flat, g, s1, s2).map_err(|e| format!("optimizer step: {e}"))?;
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests;

/// Writes named tensors to `path` (the format of `torch.save` of a dict, as
/// `Tensor::save_multi` writes it). Serialized in memory first, then written by Rust: libtorch's
/// own file writer aborts the process when the disk fills under it (its destructor throws),
/// where this is an error naming the file and the disk.
pub(crate) fn save_tensors(refs: &[(&str, &Tensor)], path: &std::path::Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    Tensor::save_multi_to_stream(refs, &mut bytes).map_err(|e| format!("failed to serialize {}: {e}", path.display()))?;
    std::fs::write(path, &bytes).map_err(|e| format!("failed to write {} ({} bytes): {e}", path.display(), bytes.len()))
}
