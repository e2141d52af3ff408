//! The host side of `paddock:rl/tensor`: tch tensors in the store's resource table, named
//! modules and optimizers in the store's [`Learner`]. Every fallible libtorch call uses
//! tch's `f_` form, and its error becomes a trap whose message names the tensor function.

use super::bindings::algorithm::paddock::rl::tensor::{
    BinaryOp, Dtype, EncoderSpec, Host, HostModule, HostOptimizer, HostReplay, HostTensor, MlpSpec, ObservationImage, ObservationLayout,
    OptimizerKind, ReduceOp, ReplayBatch, ReplaySpec, UnaryOp,
};
use super::sandbox::PluginState;
use crate::learner::{Learner, ModuleRes, OptimizerRes, ReplayRes};
use tch::{Kind, Tensor};
use wasmtime::component::Resource;

type R<T> = wasmtime::Result<T>;

/// A trap message.
macro_rules! trap {
    ($($t:tt)*) => { wasmtime::Error::msg(format!($($t)*)) };
}

fn kind(d: Dtype) -> Kind {
    match d {
        Dtype::Float32 => Kind::Float,
        Dtype::Float64 => Kind::Double,
        Dtype::Int64 => Kind::Int64,
        Dtype::Boolean => Kind::Bool,
    }
}

fn dtype(k: Kind) -> R<Dtype> {
    match k {
        Kind::Float => Ok(Dtype::Float32),
        Kind::Double => Ok(Dtype::Float64),
        Kind::Int64 => Ok(Dtype::Int64),
        Kind::Bool => Ok(Dtype::Boolean),
        other => Err(trap!("tensor.dtype: {other:?} has no WIT dtype")),
    }
}

/// Wraps a tch error with the tensor function's name.
fn op<T>(name: &str, r: Result<T, tch::TchError>) -> R<T> {
    r.map_err(|e| trap!("tensor.{name}: {e}"))
}

fn check_len(name: &str, len: usize, shape: &[i64]) -> R<()> {
    let n: i64 = shape.iter().product();
    if shape.iter().any(|&d| d < 0) || n as usize != len {
        return Err(trap!("tensor.{name}: {len} values do not fill shape {shape:?}"));
    }
    Ok(())
}

impl PluginState {
    fn learner(&mut self) -> R<&mut Learner> {
        self.learner.as_mut().ok_or_else(|| trap!("this plugin's world has no learner"))
    }

    fn tensor(&self, t: &Resource<Tensor>) -> R<&Tensor> {
        self.table.get(t).map_err(|e| trap!("tensor handle: {e}"))
    }

    fn put(&mut self, t: Tensor) -> R<Resource<Tensor>> {
        Ok(self.table.push(t)?)
    }

    fn device(&self) -> tch::Device {
        self.learner.as_ref().map_or(tch::Device::Cpu, |l| l.device)
    }
}

impl HostTensor for PluginState {
    fn from_f32(&mut self, data: Vec<f32>, shape: Vec<i64>) -> R<Resource<Tensor>> {
        check_len("from-f32", data.len(), &shape)?;
        let t = op("from-f32", Tensor::f_from_slice(&data).and_then(|t| t.f_reshape(&shape)))?.to_device(self.device());
        self.put(t)
    }
    fn from_i64(&mut self, data: Vec<i64>, shape: Vec<i64>) -> R<Resource<Tensor>> {
        check_len("from-i64", data.len(), &shape)?;
        let t = op("from-i64", Tensor::f_from_slice(&data).and_then(|t| t.f_reshape(&shape)))?.to_device(self.device());
        self.put(t)
    }
    fn full(&mut self, shape: Vec<i64>, value: f64, dt: Dtype) -> R<Resource<Tensor>> {
        let t = op("full", Tensor::f_full(&shape, value, (kind(dt), self.device())))?;
        self.put(t)
    }
    fn uniform(&mut self, shape: Vec<i64>, low: f64, high: f64) -> R<Resource<Tensor>> {
        let t = op("uniform", Tensor::f_rand(&shape, (Kind::Float, self.device())))?;
        self.put(t * (high - low) + low)
    }
    fn normal(&mut self, shape: Vec<i64>) -> R<Resource<Tensor>> {
        let t = op("normal", Tensor::f_randn(&shape, (Kind::Float, self.device())))?;
        self.put(t)
    }
    fn randperm(&mut self, n: i64) -> R<Resource<Tensor>> {
        let t = op("randperm", Tensor::f_randperm(n, (Kind::Int64, self.device())))?;
        self.put(t)
    }
    fn cat(&mut self, parts: Vec<Resource<Tensor>>, dim: i64) -> R<Resource<Tensor>> {
        let ts = parts.iter().map(|p| self.tensor(p)).collect::<R<Vec<_>>>()?;
        let t = op("cat", Tensor::f_cat(&ts, dim))?;
        self.put(t)
    }
    fn stack(&mut self, parts: Vec<Resource<Tensor>>, dim: i64) -> R<Resource<Tensor>> {
        let ts = parts.iter().map(|p| self.tensor(p)).collect::<R<Vec<_>>>()?;
        let t = op("stack", Tensor::f_stack(&ts, dim))?;
        self.put(t)
    }
    fn shape(&mut self, s: Resource<Tensor>) -> R<Vec<i64>> {
        Ok(self.tensor(&s)?.size())
    }
    fn dtype(&mut self, s: Resource<Tensor>) -> R<Dtype> {
        dtype(self.tensor(&s)?.kind())
    }
    fn to_f32(&mut self, s: Resource<Tensor>) -> R<Vec<f32>> {
        let t = self.tensor(&s)?.detach().to_kind(Kind::Float).to_device(tch::Device::Cpu).flatten(0, -1);
        op("to-f32", Vec::<f32>::try_from(&t))
    }
    fn to_i64(&mut self, s: Resource<Tensor>) -> R<Vec<i64>> {
        let t = self.tensor(&s)?.detach().to_kind(Kind::Int64).to_device(tch::Device::Cpu).flatten(0, -1);
        op("to-i64", Vec::<i64>::try_from(&t))
    }
    fn item(&mut self, s: Resource<Tensor>) -> R<f64> {
        let t = self.tensor(&s)?;
        if t.numel() != 1 {
            return Err(trap!("tensor.item: tensor of shape {:?} has {} elements, not 1", t.size(), t.numel()));
        }
        op("item", t.f_double_value(&[]))
    }
    fn unary(&mut self, s: Resource<Tensor>, u: UnaryOp) -> R<Resource<Tensor>> {
        let t = self.tensor(&s)?;
        let r = match u {
            UnaryOp::Neg => t.f_neg(),
            UnaryOp::Exp => t.f_exp(),
            UnaryOp::Log => t.f_log(),
            UnaryOp::Tanh => t.f_tanh(),
            UnaryOp::Relu => t.f_relu(),
            UnaryOp::Sigmoid => t.f_sigmoid(),
            UnaryOp::Sqrt => t.f_sqrt(),
            UnaryOp::Abs => t.f_abs(),
            UnaryOp::Square => t.f_square(),
            UnaryOp::Softplus => t.f_softplus(),
            UnaryOp::ToFloat => t.f_ne(0).and_then(|b| b.f_to_kind(Kind::Float)),
            UnaryOp::LogicalNot => t.f_logical_not(),
        };
        let t = op("unary", r)?;
        self.put(t)
    }
    fn binary(&mut self, s: Resource<Tensor>, b: BinaryOp, other: Resource<Tensor>) -> R<Resource<Tensor>> {
        let (x, y) = (self.tensor(&s)?, self.tensor(&other)?);
        let r = match b {
            BinaryOp::Add => x.f_add(y),
            BinaryOp::Sub => x.f_sub(y),
            BinaryOp::Mul => x.f_mul(y),
            BinaryOp::Div => x.f_div(y),
            BinaryOp::Pow => x.f_pow(y),
            BinaryOp::Minimum => x.f_minimum(y),
            BinaryOp::Maximum => x.f_maximum(y),
            BinaryOp::Gt => x.f_gt_tensor(y),
            BinaryOp::Lt => x.f_lt_tensor(y),
            BinaryOp::Eq => x.f_eq_tensor(y),
        };
        let t = op("binary", r)?;
        self.put(t)
    }
    fn scalar(&mut self, s: Resource<Tensor>, b: BinaryOp, v: f64) -> R<Resource<Tensor>> {
        let x = self.tensor(&s)?;
        let r = match b {
            BinaryOp::Add => x.f_add_scalar(v),
            BinaryOp::Sub => x.f_sub_scalar(v),
            BinaryOp::Mul => x.f_mul_scalar(v),
            BinaryOp::Div => x.f_div_scalar(v),
            BinaryOp::Pow => x.f_pow_tensor_scalar(v),
            BinaryOp::Minimum => x.f_clamp_max(v),
            BinaryOp::Maximum => x.f_clamp_min(v),
            BinaryOp::Gt => x.f_gt(v),
            BinaryOp::Lt => x.f_lt(v),
            BinaryOp::Eq => x.f_eq(v),
        };
        let t = op("scalar", r)?;
        self.put(t)
    }
    fn matmul(&mut self, s: Resource<Tensor>, other: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = op("matmul", self.tensor(&s)?.f_matmul(self.tensor(&other)?))?;
        self.put(t)
    }
    fn reduce(&mut self, s: Resource<Tensor>, r: ReduceOp, dims: Vec<i64>, keepdim: bool) -> R<Resource<Tensor>> {
        let x = self.tensor(&s)?;
        let all: Vec<i64> = (0..x.dim() as i64).collect();
        let d: &[i64] = if dims.is_empty() { &all } else { &dims };
        let res = match r {
            ReduceOp::Sum => x.f_sum_dim_intlist(d, keepdim, x.kind()),
            ReduceOp::Mean => x.f_mean_dim(d, keepdim, x.kind()),
            ReduceOp::Max => x.f_amax(d, keepdim),
            ReduceOp::Min => x.f_amin(d, keepdim),
            ReduceOp::Std => x.f_std_dim(d, true, keepdim),
            ReduceOp::Argmax => match d {
                [one] => x.f_argmax(*one, keepdim),
                _ => return Err(trap!("tensor.reduce: argmax takes exactly one dim, got {dims:?}")),
            },
        };
        let t = op("reduce", res)?;
        self.put(t)
    }
    fn clamp(&mut self, s: Resource<Tensor>, low: f64, high: f64) -> R<Resource<Tensor>> {
        let t = op("clamp", self.tensor(&s)?.f_clamp(low, high))?;
        self.put(t)
    }
    fn select(&mut self, s: Resource<Tensor>, a: Resource<Tensor>, b: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = op("select", self.tensor(&a)?.f_where_self(self.tensor(&s)?, self.tensor(&b)?))?;
        self.put(t)
    }
    fn softmax(&mut self, s: Resource<Tensor>, dim: i64) -> R<Resource<Tensor>> {
        let t = op("softmax", self.tensor(&s)?.f_softmax(dim, Kind::Float))?;
        self.put(t)
    }
    fn log_softmax(&mut self, s: Resource<Tensor>, dim: i64) -> R<Resource<Tensor>> {
        let t = op("log-softmax", self.tensor(&s)?.f_log_softmax(dim, Kind::Float))?;
        self.put(t)
    }
    fn gather(&mut self, s: Resource<Tensor>, dim: i64, index: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = op("gather", self.tensor(&s)?.f_gather(dim, self.tensor(&index)?, false))?;
        self.put(t)
    }
    fn index_select(&mut self, s: Resource<Tensor>, dim: i64, index: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = op("index-select", self.tensor(&s)?.f_index_select(dim, self.tensor(&index)?))?;
        self.put(t)
    }
    fn narrow(&mut self, s: Resource<Tensor>, dim: i64, start: i64, len: i64) -> R<Resource<Tensor>> {
        let t = op("narrow", self.tensor(&s)?.f_narrow(dim, start, len))?;
        self.put(t)
    }
    fn reshape(&mut self, s: Resource<Tensor>, shape: Vec<i64>) -> R<Resource<Tensor>> {
        let t = op("reshape", self.tensor(&s)?.f_reshape(&shape))?;
        self.put(t)
    }
    fn transpose(&mut self, s: Resource<Tensor>, a: i64, b: i64) -> R<Resource<Tensor>> {
        let t = op("transpose", self.tensor(&s)?.f_transpose(a, b))?;
        self.put(t)
    }
    fn to_dtype(&mut self, s: Resource<Tensor>, dt: Dtype) -> R<Resource<Tensor>> {
        let t = op("to-dtype", self.tensor(&s)?.f_to_kind(kind(dt)))?;
        self.put(t)
    }
    fn detach(&mut self, s: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = self.tensor(&s)?.detach();
        self.put(t)
    }
    fn copy(&mut self, s: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = self.tensor(&s)?.copy();
        self.put(t)
    }
    fn drop(&mut self, s: Resource<Tensor>) -> R<()> {
        drop(self.table.delete(s)?);
        Ok(())
    }
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn normal_log_prob(mean: &Tensor, log_std: &Tensor, x: &Tensor) -> Result<Tensor, tch::TchError> {
    let z = x.f_sub(mean)?.f_div(&log_std.f_exp()?)?;
    z.f_square()?.f_mul_scalar(-0.5)?.f_sub(log_std)?.f_sub_scalar(0.5 * LN_2PI)?.f_sum_dim_intlist(-1, false, Kind::Float)
}

impl Host for PluginState {
    fn set_grad_enabled(&mut self, enabled: bool) -> R<bool> {
        // tch exposes this switch only as scoped guards; the plugin needs it across calls.
        // SAFETY: a plain setter of libtorch's thread-local grad mode, returning the previous.
        Ok(unsafe { torch_sys::at_grad_set_enabled(i32::from(enabled)) } != 0)
    }
    fn observation_images(&mut self) -> R<Option<ObservationLayout>> {
        let Some(layout) = self.learner()?.images.clone() else { return Ok(None) };
        let images = layout
            .cameras
            .iter()
            .zip(layout.offsets())
            .map(|(c, off)| ObservationImage {
                name: c.name.clone(),
                offset: off as u32,
                channels: c.channel_count() as u32,
                height: c.height,
                width: c.width,
            })
            .collect();
        Ok(Some(ObservationLayout { state_len: layout.state_len as u32, images }))
    }
    fn random_shift(&mut self, observations: Resource<Tensor>, pad: u32) -> R<Resource<Tensor>> {
        let layout =
            self.learner()?.images.clone().ok_or_else(|| trap!("tensor.random-shift: this run's observations hold no camera images"))?;
        let x = self.tensor(&observations)?.shallow_clone();
        let shifted = op("random-shift", crate::learner::encoder::random_shift(&layout, &x, i64::from(pad)))?;
        self.put(shifted)
    }
    fn categorical_sample(&mut self, logits: Resource<Tensor>) -> R<Resource<Tensor>> {
        let l = self.tensor(&logits)?;
        let t = op(
            "categorical-sample",
            l.f_softmax(-1, Kind::Float).and_then(|p| p.f_multinomial(1, true)).and_then(|s| s.f_squeeze_dim(-1)),
        )?;
        self.put(t)
    }
    fn categorical_log_prob(&mut self, logits: Resource<Tensor>, actions: Resource<Tensor>) -> R<Resource<Tensor>> {
        let (l, a) = (self.tensor(&logits)?, self.tensor(&actions)?);
        let t = op(
            "categorical-log-prob",
            l.f_log_softmax(-1, Kind::Float)
                .and_then(|lp| a.f_to_kind(Kind::Int64).and_then(|a| a.f_unsqueeze(-1)).and_then(|i| lp.f_gather(-1, &i, false)))
                .and_then(|g| g.f_squeeze_dim(-1)),
        )?;
        self.put(t)
    }
    fn categorical_entropy(&mut self, logits: Resource<Tensor>) -> R<Resource<Tensor>> {
        let l = self.tensor(&logits)?;
        let t = op(
            "categorical-entropy",
            l.f_log_softmax(-1, Kind::Float).and_then(|lp| lp.f_exp()?.f_mul(&lp)?.f_sum_dim_intlist(-1, false, Kind::Float)?.f_neg()),
        )?;
        self.put(t)
    }
    fn normal_sample(&mut self, mean: Resource<Tensor>, log_std: Resource<Tensor>) -> R<Resource<Tensor>> {
        let (m, s) = (self.tensor(&mean)?, self.tensor(&log_std)?);
        let t = op("normal-sample", m.f_randn_like().and_then(|e| e.f_mul(&s.f_exp()?)?.f_add(m)))?;
        self.put(t)
    }
    fn normal_log_prob(&mut self, mean: Resource<Tensor>, log_std: Resource<Tensor>, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        let t = op("normal-log-prob", normal_log_prob(self.tensor(&mean)?, self.tensor(&log_std)?, self.tensor(&x)?))?;
        self.put(t)
    }
    fn normal_entropy(&mut self, log_std: Resource<Tensor>) -> R<Resource<Tensor>> {
        let s = self.tensor(&log_std)?;
        let t = op("normal-entropy", s.f_add_scalar(0.5 + 0.5 * LN_2PI).and_then(|e| e.f_sum_dim_intlist(-1, false, Kind::Float)))?;
        self.put(t)
    }
    fn squashed_normal_sample(&mut self, mean: Resource<Tensor>, log_std: Resource<Tensor>) -> R<(Resource<Tensor>, Resource<Tensor>)> {
        let (m, s) = (self.tensor(&mean)?, self.tensor(&log_std)?);
        let (a, lp) = op(
            "squashed-normal-sample",
            (|| {
                let u = m.f_randn_like()?.f_mul(&s.f_exp()?)?.f_add(m)?;
                let a = u.f_tanh()?;
                // log π(a) = log N(u) − Σ log(1 − tanh(u)² + ε)  (Haarnoja et al. 2018, appendix C)
                let correction = a.f_square()?.f_neg()?.f_add_scalar(1.0 + 1e-6)?.f_log()?.f_sum_dim_intlist(-1, false, Kind::Float)?;
                Ok((a, normal_log_prob(m, s, &u)?.f_sub(&correction)?))
            })(),
        )?;
        Ok((self.put(a)?, self.put(lp)?))
    }
}

impl HostModule for PluginState {
    fn mlp(&mut self, name: String, spec: MlpSpec) -> R<Result<Resource<ModuleRes>, String>> {
        match self.learner()?.mlp(&name, &spec.into()) {
            Ok(()) => Ok(Ok(self.table.push(ModuleRes(name))?)),
            Err(e) => Ok(Err(e)),
        }
    }
    fn encoder(&mut self, name: String, spec: EncoderSpec) -> R<Result<Resource<ModuleRes>, String>> {
        match self.learner()?.encoder(&name, &spec.into(), None) {
            Ok(()) => Ok(Ok(self.table.push(ModuleRes(name))?)),
            Err(e) => Ok(Err(e)),
        }
    }
    fn parameter(&mut self, name: String, init: Resource<Tensor>) -> R<Result<Resource<ModuleRes>, String>> {
        let init = self.tensor(&init)?.shallow_clone();
        match self.learner()?.parameter(&name, &init) {
            Ok(()) => Ok(Ok(self.table.push(ModuleRes(name))?)),
            Err(e) => Ok(Err(e)),
        }
    }
    fn forward(&mut self, s: Resource<ModuleRes>, input: Resource<Tensor>) -> R<Resource<Tensor>> {
        let name = self.table.get(&s)?.0.clone();
        let x = self.tensor(&input)?.shallow_clone();
        let module = self.learner()?.modules.get(&name).ok_or_else(|| trap!("tensor.forward: no module `{name}`"))?;
        let t = module.forward(&x).map_err(|e| trap!("tensor.forward of module `{name}`: {e}"))?;
        self.put(t)
    }
    fn name(&mut self, s: Resource<ModuleRes>) -> R<String> {
        Ok(self.table.get(&s)?.0.clone())
    }
    fn soft_update(&mut self, s: Resource<ModuleRes>, source: Resource<ModuleRes>, tau: f64) -> R<Result<(), String>> {
        let (dst, src) = (self.table.get(&s)?.0.clone(), self.table.get(&source)?.0.clone());
        Ok(self.learner()?.soft_update(&dst, &src, tau))
    }
    fn drop(&mut self, s: Resource<ModuleRes>) -> R<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl HostOptimizer for PluginState {
    fn get(
        &mut self,
        name: String,
        modules: Vec<Resource<ModuleRes>>,
        kind: OptimizerKind,
        learning_rate: f64,
    ) -> R<Result<Resource<OptimizerRes>, String>> {
        let names = modules.iter().map(|m| Ok(self.table.get(m)?.0.clone())).collect::<R<Vec<_>>>()?;
        match self.learner()?.optimizer(&name, names, kind.into(), learning_rate) {
            Ok(()) => Ok(Ok(self.table.push(OptimizerRes(name))?)),
            Err(e) => Ok(Err(e)),
        }
    }
    fn minimize(&mut self, s: Resource<OptimizerRes>, loss: Resource<Tensor>, max_grad_norm: Option<f64>) -> R<Result<f64, String>> {
        let name = self.table.get(&s)?.0.clone();
        let loss = self.tensor(&loss)?.shallow_clone();
        Ok(self.learner()?.minimize(&name, &loss, max_grad_norm))
    }
    fn set_learning_rate(&mut self, s: Resource<OptimizerRes>, learning_rate: f64) -> R<()> {
        let name = self.table.get(&s)?.0.clone();
        if let Some(o) = self.learner()?.optimizers.get_mut(&name) {
            o.learning_rate = learning_rate;
        }
        Ok(())
    }
    fn drop(&mut self, s: Resource<OptimizerRes>) -> R<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl HostReplay for PluginState {
    fn get(&mut self, name: String, spec: ReplaySpec) -> R<Result<Resource<ReplayRes>, String>> {
        match self.learner()?.replay(&name, &spec.into()) {
            Ok(()) => Ok(Ok(self.table.push(ReplayRes(name))?)),
            Err(e) => Ok(Err(e)),
        }
    }
    fn add(
        &mut self,
        s: Resource<ReplayRes>,
        observations: Resource<Tensor>,
        actions: Resource<Tensor>,
        rewards: Resource<Tensor>,
        next_observations: Resource<Tensor>,
        terminated: Resource<Tensor>,
        truncated: Resource<Tensor>,
    ) -> R<Result<(), String>> {
        let name = self.table.get(&s)?.0.clone();
        let ts = [&observations, &actions, &rewards, &next_observations, &terminated, &truncated]
            .into_iter()
            .map(|t| Ok(self.tensor(t)?.shallow_clone()))
            .collect::<R<Vec<_>>>()?;
        let Some(replay) = self.learner()?.replays.get_mut(&name) else { return Ok(Err(format!("no replay buffer `{name}`"))) };
        Ok(replay.add(&ts[0], &ts[1], &ts[2], &ts[3], &ts[4], &ts[5]).map_err(|e| format!("replay `{name}`: {e}")))
    }
    fn len(&mut self, s: Resource<ReplayRes>) -> R<u64> {
        let name = self.table.get(&s)?.0.clone();
        Ok(self.learner()?.replays.get(&name).map_or(0, |r| r.len() as u64))
    }
    fn sample(&mut self, s: Resource<ReplayRes>, batch_size: u32) -> R<Result<ReplayBatch, String>> {
        let name = self.table.get(&s)?.0.clone();
        let b = match self.learner()?.sample(&name, batch_size as usize) {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("replay `{name}`: {e}"))),
        };
        Ok(Ok(ReplayBatch {
            observations: self.put(b.observations)?,
            actions: self.put(b.actions)?,
            rewards: self.put(b.rewards)?,
            next_observations: self.put(b.next_observations)?,
            dones: self.put(b.dones)?,
            discounts: self.put(b.discounts)?,
            weights: self.put(b.weights)?,
            indices: self.put(b.indices)?,
        }))
    }
    fn update_priorities(
        &mut self,
        s: Resource<ReplayRes>,
        indices: Resource<Tensor>,
        td_errors: Resource<Tensor>,
    ) -> R<Result<(), String>> {
        let name = self.table.get(&s)?.0.clone();
        let (i, e) = (self.tensor(&indices)?.shallow_clone(), self.tensor(&td_errors)?.shallow_clone());
        let Some(replay) = self.learner()?.replays.get_mut(&name) else { return Ok(Err(format!("no replay buffer `{name}`"))) };
        Ok(replay.update_priorities(&i, &e).map_err(|e| format!("replay `{name}`: {e}")))
    }
    fn drop(&mut self, s: Resource<ReplayRes>) -> R<()> {
        self.table.delete(s)?;
        Ok(())
    }
}
