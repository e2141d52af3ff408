//! Guest SDK for Paddock plugins written in Rust.
//!
//! A plugin is a struct and an `impl` of one trait, exported with one macro:
//!
//! - environments: implement [`Environment`] for a single env, then
//!   `paddock_sdk::export_env!(MyEnv);` (feature `env`). The SDK hosts many envs per
//!   instance, steps them in one call (`step-all`), applies the time limit, auto-resets,
//!   seeds each env's generator and snapshots generator + step counter with the env.
//! - reward functions: implement [`RewardFunction`], then
//!   `paddock_sdk::export_reward!(MyReward);` (feature `reward`).
//! - algorithms: implement [`Algorithm`] over host tensors ([`tensor::Tensor`], with
//!   arithmetic helpers), then `paddock_sdk::export_algorithm!(MyAlgo);` (feature
//!   `algorithm`; the `tensor` interface is still `@unstable` in the contract).
//!
//! Build with `cargo build --target wasm32-wasip2`; the result is a component targeting
//! `paddock:rl@0.1.0`. See `docs/plugins/rust.md`.

// Lets generated code name this crate by its public path from inside it too.
extern crate self as paddock_sdk;

#[cfg(feature = "algorithm")]
pub mod actor_critic;
#[cfg(feature = "algorithm")]
pub mod algorithm;
#[cfg(feature = "env")]
pub mod env;
#[cfg(feature = "algorithm")]
pub mod off_policy;
#[cfg(any(feature = "env", feature = "reward", feature = "algorithm"))]
pub mod params;
#[cfg(feature = "reward")]
pub mod reward;
pub mod rng;
#[cfg(any(feature = "env", feature = "reward", feature = "algorithm"))]
pub mod space;

#[cfg(any(feature = "env", feature = "reward", feature = "algorithm"))]
pub use params::Params;
pub use rng::Rng;

#[cfg(feature = "algorithm")]
pub use algorithm::{Algorithm, Transitions};
#[cfg(feature = "goals")]
pub use env::GoalEnvironment;
#[cfg(feature = "env")]
pub use env::{Environment, Transition, VecEnv};
#[cfg(feature = "reward")]
pub use reward::{RewardFunction, TransitionView};

/// Bindings generated from `wit/` for the `environment` world.
#[cfg(all(feature = "env", not(feature = "goals")))]
#[doc(hidden)]
pub mod env_bindings {
    wit_bindgen::generate!({
        world: "environment",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_environment",
        default_bindings_module: "paddock_sdk::env_bindings",
        runtime_path: "paddock_sdk::__wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings generated from `wit/` for the `goal-environment` world (feature `goals`: an
/// environment that also exports `goal-env`, still `@unstable` in the contract).
#[cfg(feature = "goals")]
#[doc(hidden)]
pub mod env_bindings {
    wit_bindgen::generate!({
        world: "goal-environment",
        path: "../../wit",
        features: ["goals"],
        pub_export_macro: true,
        export_macro_name: "__export_environment",
        default_bindings_module: "paddock_sdk::env_bindings",
        runtime_path: "paddock_sdk::__wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings generated from `wit/` for the `reward` world.
#[cfg(feature = "reward")]
#[doc(hidden)]
pub mod reward_bindings {
    wit_bindgen::generate!({
        world: "reward",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_reward",
        default_bindings_module: "paddock_sdk::reward_bindings",
        runtime_path: "paddock_sdk::__wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings generated from `wit/` for the `algorithm` world (with the unstable `tensor`
/// feature).
#[cfg(feature = "algorithm")]
#[doc(hidden)]
pub mod algorithm_bindings {
    wit_bindgen::generate!({
        world: "algorithm",
        path: "../../wit",
        features: ["tensor"],
        pub_export_macro: true,
        export_macro_name: "__export_algorithm",
        default_bindings_module: "paddock_sdk::algorithm_bindings",
        runtime_path: "paddock_sdk::__wit_bindgen::rt",
        generate_all,
    });
}

/// Host tensors, modules and optimizers (`paddock:rl/tensor`).
#[cfg(feature = "algorithm")]
pub use algorithm_bindings::paddock::rl::tensor;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Portable math (the `libm` crate, a port of musl's libm, the same code wasi-libc uses).
/// Envs that use it compute bit-identical results in their Wasm and native builds, so a
/// native test or benchmark of an env runs exactly what the plugin runs. `math::sincos`
/// computes both of an angle at the cost of about one.
pub use libm as math;

#[cfg(all(feature = "algorithm", not(feature = "env"), not(feature = "reward")))]
pub use algorithm_bindings::paddock::rl::types;
#[cfg(feature = "env")]
pub use env_bindings::paddock::rl::types;
#[cfg(all(feature = "reward", not(feature = "env")))]
pub use reward_bindings::paddock::rl::types;

#[cfg(all(feature = "algorithm", not(feature = "env"), not(feature = "reward")))]
pub use algorithm_bindings::paddock::rl::log;
#[cfg(feature = "env")]
pub use env_bindings::paddock::rl::log;
#[cfg(all(feature = "reward", not(feature = "env")))]
pub use reward_bindings::paddock::rl::log;
