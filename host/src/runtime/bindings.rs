//! Host-side bindings, one module per world, generated from `wit/`. Interfaces shared
//! between worlds (`types`, `log`) are generated once, in `environment`, and reused.

/// The `environment` world.
pub mod environment {
    wasmtime::component::bindgen!({
        world: "environment",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize],
    });
}

/// The `reward` world.
pub mod reward {
    wasmtime::component::bindgen!({
        world: "reward",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize],
        with: {
            "paddock:rl/types": crate::runtime::bindings::environment::paddock::rl::types,
            "paddock:rl/log": crate::runtime::bindings::environment::paddock::rl::log,
        },
    });
}

pub use environment::paddock::rl::types;
