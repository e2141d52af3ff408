//! The learner side of the host: libtorch (through `tch`) behind the `paddock:rl/tensor`
//! interface. Tensors, modules and optimizers live in the host, on the learner's device;
//! plugins hold handles. Parameters and optimizer state are owned here and named, so a
//! checkpoint needs nothing from the plugin and a reloaded plugin finds its weights.

pub mod device;
pub mod modules;
pub mod train;

pub use device::{DeviceRequest, resolve as resolve_device};
pub use modules::{Learner, Module, ModuleRes, Optimizer, OptimizerRes};
