//! The learner side of the host: libtorch (through `tch`) behind the `paddock:rl/tensor`
//! interface. Tensors, modules, optimizers and replay buffers live in the host, on the learner's device;
//! plugins hold handles. Parameters and optimizer state are owned here and named, so a
//! checkpoint needs nothing from the plugin and a reloaded plugin finds its weights.

pub mod device;
pub mod encoder;
pub mod modules;
pub mod replay;
pub mod spec;

pub use device::{DeviceRequest, resolve as resolve_device};
pub use modules::{Learner, Module, ModuleKind, ModuleRes, Optimizer, OptimizerRes, OracleSlot};
pub use replay::{GoalOracle, Replay, ReplayRes};

/// `t` without autograd on the CPU: no libtorch call for what is already so (each costs
/// microseconds at a step's sizes).
fn on_cpu(t: &tch::Tensor) -> tch::Tensor {
    let t = if t.requires_grad() { t.detach() } else { t.shallow_clone() };
    if t.device() == tch::Device::Cpu { t } else { t.to_device(tch::Device::Cpu) }
}

/// Every value of `t`, flattened, as `f32` on the CPU (the training loop's actions, the
/// transitions a replay buffer stores).
pub fn cpu_f32(t: &tch::Tensor) -> Result<Vec<f32>, String> {
    Vec::<f32>::try_from(on_cpu(t).flatten(0, -1)).map_err(|e| e.to_string())
}

/// [`cpu_f32`] in `f64`.
pub(crate) fn cpu_f64(t: &tch::Tensor) -> Result<Vec<f64>, String> {
    Vec::<f64>::try_from(on_cpu(t).flatten(0, -1)).map_err(|e| e.to_string())
}

/// Serialises unit tests that seed or draw from libtorch's process-wide generator (the test
/// harness runs tests on parallel threads).
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
