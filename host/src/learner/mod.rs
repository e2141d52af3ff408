//! The learner side of the host: libtorch (through `tch`) behind the `paddock:rl/tensor`
//! interface. Tensors, modules, optimizers and replay buffers live in the host, on the learner's device;
//! plugins hold handles. Parameters and optimizer state are owned here and named, so a
//! checkpoint needs nothing from the plugin and a reloaded plugin finds its weights.

pub mod device;
pub mod modules;
mod persist;
pub mod reload;
pub mod replay;
pub mod train;

pub use device::{DeviceRequest, resolve as resolve_device};
pub use modules::{Learner, Module, ModuleKind, ModuleRes, Optimizer, OptimizerRes, OracleSlot};
pub use replay::{GoalOracle, Replay, ReplayRes};

/// Serialises unit tests that seed or draw from libtorch's process-wide generator (the test
/// harness runs tests on parallel threads).
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
