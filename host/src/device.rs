//! The learner's device as a config names it (`auto`, `cpu`, `cuda`, `cuda:N`): a leaf
//! that `config` checks and the learner resolves (`learner::resolve_device`), so the config
//! does not reach into libtorch.

use std::str::FromStr;

/// A device as a config names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// CUDA device 0 when libtorch sees a GPU, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl FromStr for DeviceRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" => Ok(DeviceRequest::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceRequest::Cuda(n)),
                _ => Err(format!("device `{other}`: expected `auto`, `cpu`, `cuda` or `cuda:N`")),
            },
        }
    }
}
