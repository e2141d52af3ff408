//! Algorithms: implement [`Algorithm`] over host tensors and export it with
//! [`export_algorithm!`](crate::export_algorithm). The tensor handle type gets arithmetic
//! helpers here so algorithm code reads like tensor code.

use crate::Params;
use crate::tensor::{BinaryOp, Module, ReduceOp, Tensor, UnaryOp};
use crate::types::{EnvSpec, PluginError};

pub use crate::algorithm_bindings::exports::paddock::rl::algo::Metric;

/// One transition of every env, as host tensors borrowed for the call. Keep what you need
/// with [`Tensor::copy`] (a host-side copy; nothing enters Wasm memory).
#[derive(Debug)]
pub struct Transitions<'a> {
    /// `[num_envs, obs_len]` float32.
    pub observations: &'a Tensor,
    /// `[num_envs, act_len]` (int64 for discrete spaces).
    pub actions: &'a Tensor,
    /// `[num_envs]` float32.
    pub rewards: &'a Tensor,
    /// `[num_envs, obs_len]`: final observations for envs whose episode ended.
    pub next_observations: &'a Tensor,
    /// `[num_envs]` boolean.
    pub terminated: &'a Tensor,
    /// `[num_envs]` boolean.
    pub truncated: &'a Tensor,
}

/// A learning algorithm.
pub trait Algorithm: Sized + Send + 'static {
    /// Set up for `num_envs` parallel envs described by `spec`. Get modules and optimizers
    /// by name (they survive a reload of the plugin).
    fn new(spec: &EnvSpec, num_envs: u32, params: &Params) -> Result<Self, PluginError>;
    /// Actions for a batch of observations.
    fn act(&mut self, observations: &Tensor, deterministic: bool) -> Result<Tensor, PluginError>;
    /// One transition of every env.
    fn observe(&mut self, t: Transitions<'_>) -> Result<(), PluginError>;
    /// Whether to call [`Algorithm::update`] now.
    fn wants_update(&self) -> bool;
    /// Learn; return metrics to log.
    fn update(&mut self) -> Result<Vec<Metric>, PluginError>;
    /// State beyond named modules/optimizers (counters, schedules).
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Restores [`Algorithm::save_state`].
    fn load_state(&mut self, _state: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }
    /// The parameters [`Algorithm::retune`] accepts while the algorithm runs (population-
    /// based training, a resume with new values): `algo-tune.mutable-params`. None by
    /// default; the host refuses a change of any other parameter by name.
    const MUTABLE_PARAMS: &'static [&'static str] = &[];
    /// Sets some of [`Algorithm::MUTABLE_PARAMS`] between updates (after `new` and
    /// [`Algorithm::load_state`] when a run resumes with changed values): values a
    /// checkpoint restored, such as an optimizer's learning rate, take the new setting.
    fn retune(&mut self, params: &Params) -> Result<(), PluginError> {
        let _ = params;
        Err(PluginError::Unsupported("this algorithm lets no parameter change while it runs".into()))
    }
}

/// A metric.
pub fn metric(name: &str, value: f64) -> Metric {
    Metric { name: name.to_string(), value }
}

/// Plugin state that is one counter (e.g. updates done), for [`Algorithm::save_state`].
pub fn counter_to_state(count: u64) -> Vec<u8> {
    count.to_le_bytes().to_vec()
}

/// Reads [`counter_to_state`]'s bytes; `plugin` names the plugin in the error.
pub fn counter_from_state(plugin: &str, state: &[u8]) -> Result<u64, PluginError> {
    let bytes: [u8; 8] =
        state.try_into().map_err(|_| PluginError::InvalidParams(format!("{plugin} state is 8 bytes, got {}", state.len())))?;
    Ok(u64::from_le_bytes(bytes))
}

impl Tensor {
    /// `self + other` (broadcasting).
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Add, other)
    }
    /// `self - other`.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Sub, other)
    }
    /// `self * other`.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Mul, other)
    }
    /// `self / other`.
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Div, other)
    }
    /// `min(self, other)`.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Minimum, other)
    }
    /// `max(self, other)`.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Maximum, other)
    }
    /// `self + v`.
    pub fn add_s(&self, v: f64) -> Tensor {
        self.scalar(BinaryOp::Add, v)
    }
    /// `self * v`.
    pub fn mul_s(&self, v: f64) -> Tensor {
        self.scalar(BinaryOp::Mul, v)
    }
    /// `e^self`.
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }
    /// `-self`.
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
    /// `self²`.
    pub fn square(&self) -> Tensor {
        self.unary(UnaryOp::Square)
    }
    /// Booleans (or any) as float 0/1.
    pub fn to_float(&self) -> Tensor {
        self.unary(UnaryOp::ToFloat)
    }
    /// `self / v`.
    pub fn div_s(&self, v: f64) -> Tensor {
        self.scalar(BinaryOp::Div, v)
    }
    /// `self - v`.
    pub fn sub_s(&self, v: f64) -> Tensor {
        self.scalar(BinaryOp::Sub, v)
    }
    /// `tanh(self)`.
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }
    /// Mean of all elements.
    pub fn mean_all(&self) -> Tensor {
        self.reduce(ReduceOp::Mean, &[], false)
    }
    /// Sum along `dim`.
    pub fn sum_dim(&self, dim: i64) -> Tensor {
        self.reduce(ReduceOp::Sum, &[dim], false)
    }
    /// Standard deviation of all elements.
    pub fn std_all(&self) -> Tensor {
        self.reduce(ReduceOp::Std, &[], false)
    }
    /// A float32 scalar tensor.
    pub fn scalar_f32(v: f64) -> Tensor {
        Tensor::full(&[], v, crate::tensor::Dtype::Float32)
    }
}

impl Module {
    /// Gets or creates an MLP, turning a refusal into a plugin error.
    pub fn get_mlp(name: &str, spec: &crate::tensor::MlpSpec) -> Result<Module, PluginError> {
        Module::mlp(name, spec).map_err(PluginError::Failed)
    }
}

/// Exports an [`Algorithm`] as the component's `algo` interface.
#[macro_export]
macro_rules! export_algorithm {
    ($ty:ty) => {
        const _: () = {
            use $crate::algorithm_bindings::exports::paddock::rl::algo::{Guest, Metric};
            use $crate::tensor::Tensor;
            use $crate::types as __t;
            static STATE: ::std::sync::Mutex<::std::option::Option<$ty>> = ::std::sync::Mutex::new(::std::option::Option::None);

            fn with<R>(f: impl FnOnce(&mut $ty) -> Result<R, __t::PluginError>) -> Result<R, __t::PluginError> {
                let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
                match guard.as_mut() {
                    Some(a) => f(a),
                    None => Err(__t::PluginError::InvalidState("call `init` first".into())),
                }
            }

            struct PaddockAlgorithmExport;
            impl Guest for PaddockAlgorithmExport {
                fn init(spec: __t::EnvSpec, num_envs: u32, params: __t::Params) -> Result<(), __t::PluginError> {
                    let a = <$ty as $crate::Algorithm>::new(&spec, num_envs, &$crate::Params::new(&params))?;
                    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
                    Ok(())
                }
                fn act(observations: &Tensor, deterministic: bool) -> Result<Tensor, __t::PluginError> {
                    with(|a| $crate::Algorithm::act(a, observations, deterministic))
                }
                fn observe(
                    observations: &Tensor,
                    actions: &Tensor,
                    rewards: &Tensor,
                    next_observations: &Tensor,
                    terminated: &Tensor,
                    truncated: &Tensor,
                ) -> Result<(), __t::PluginError> {
                    with(|a| {
                        $crate::Algorithm::observe(
                            a,
                            $crate::Transitions { observations, actions, rewards, next_observations, terminated, truncated },
                        )
                    })
                }
                fn wants_update() -> bool {
                    STATE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|a| $crate::Algorithm::wants_update(a))
                }
                fn update() -> Result<Vec<Metric>, __t::PluginError> {
                    with(|a| $crate::Algorithm::update(a))
                }
                fn save_state() -> Vec<u8> {
                    STATE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|a| $crate::Algorithm::save_state(a)).unwrap_or_default()
                }
                fn load_state(state: Vec<u8>) -> Result<(), __t::PluginError> {
                    with(|a| $crate::Algorithm::load_state(a, &state))
                }
            }
            impl $crate::algorithm_bindings::exports::paddock::rl::algo_tune::Guest for PaddockAlgorithmExport {
                fn mutable_params() -> Vec<String> {
                    <$ty as $crate::Algorithm>::MUTABLE_PARAMS.iter().map(|s| s.to_string()).collect()
                }
                fn retune(params: __t::Params) -> Result<(), __t::PluginError> {
                    with(|a| $crate::Algorithm::retune(a, &$crate::Params::new(&params)))
                }
            }
    $crate::algorithm_bindings::__export_algorithm!(PaddockAlgorithmExport with_types_in $crate::algorithm_bindings);
        };
    };
}
