//! Where the learner's tensors live: `auto`, `cpu` or `cuda[:N]`.
//!
//! The linker's `--as-needed` drops `libtorch_cuda` (nothing references it by symbol), so
//! libtorch would never see a GPU: the CUDA path loads it on purpose, first by name (so
//! `LD_LIBRARY_PATH` can point at another machine's libtorch), then from the libtorch this
//! binary was built against.

pub use crate::device::DeviceRequest;
use std::sync::OnceLock;

/// Why a device could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// CUDA was asked for but libtorch_cuda could not be loaded.
    #[error("CUDA was requested but libtorch's CUDA library could not be loaded: {0}")]
    NoCudaLibrary(String),
    /// CUDA was asked for but libtorch sees no (or too few) GPUs.
    #[error("CUDA device {wanted} was requested but libtorch sees {found} GPU(s)")]
    NoSuchGpu {
        /// The index asked for.
        wanted: usize,
        /// GPUs libtorch sees.
        found: usize,
    },
}

/// Loads libtorch_cuda once per process; the error text when it cannot be.
fn load_cuda() -> Result<(), String> {
    static LOADED: OnceLock<Result<libloading::os::unix::Library, String>> = OnceLock::new();
    let result = LOADED.get_or_init(|| {
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        let built_against = format!("{}/libtorch_cuda.so", env!("PADDOCK_LIBTORCH_LIB"));
        let mut errors = Vec::new();
        for candidate in ["libtorch_cuda.so", built_against.as_str()] {
            // SAFETY: loading libtorch's own CUDA library, whose initialisers only register
            // CUDA kernels and hooks with the libtorch already loaded in this process.
            match unsafe { libloading::os::unix::Library::open(Some(candidate), flags) } {
                Ok(lib) => return Ok(lib),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(errors.join("; "))
    });
    result.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Resolves a request to a libtorch device.
pub fn resolve(request: DeviceRequest) -> Result<tch::Device, DeviceError> {
    match request {
        DeviceRequest::Cpu => Ok(tch::Device::Cpu),
        DeviceRequest::Auto => {
            if load_cuda().is_ok() && tch::Cuda::is_available() {
                Ok(tch::Device::Cuda(0))
            } else {
                Ok(tch::Device::Cpu)
            }
        }
        DeviceRequest::Cuda(n) => {
            load_cuda().map_err(DeviceError::NoCudaLibrary)?;
            let found = tch::Cuda::device_count().max(0) as usize;
            if n < found { Ok(tch::Device::Cuda(n)) } else { Err(DeviceError::NoSuchGpu { wanted: n, found }) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_cpu_resolves() {
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert_eq!("cuda:1".parse(), Ok(DeviceRequest::Cuda(1)));
        assert!("gpu".parse::<DeviceRequest>().unwrap_err().contains("device `gpu`"));
        assert_eq!(resolve(DeviceRequest::Cpu).expect("cpu"), tch::Device::Cpu);
        // Auto never fails: without a usable GPU it is the CPU.
        assert!(resolve(DeviceRequest::Auto).is_ok());
    }
}
