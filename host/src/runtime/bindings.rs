//! Host-side bindings, one module per world, generated from `wit/`. Interfaces shared
//! between worlds (`types`, `log`) are generated once, in `environment`, and reused.

/// The `environment` world.
pub mod environment {
    wasmtime::component::bindgen!({
        world: "environment",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize],
        with: { "paddock:rl/physics.simulation": crate::physics::Simulation },
        imports: { "paddock:rl/physics": trappable },
    });
}

/// The `goal-environment` world: an environment that also exports `goal-env` (used on a
/// separate instance to recompute rewards for hindsight relabeling).
pub mod goal_environment {
    wasmtime::component::bindgen!({
        world: "goal-environment",
        path: "../wit",
        with: {
            "paddock:rl/types": crate::runtime::bindings::environment::paddock::rl::types,
            "paddock:rl/log": crate::runtime::bindings::environment::paddock::rl::log,
            "paddock:rl/physics": crate::runtime::bindings::environment::paddock::rl::physics,
        },
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

/// The `algorithm` world (its `tensor` import is implemented by `runtime::tensor_host`).
/// Tensor errors (shape mismatches, bad dtypes) trap the calling plugin with a message
/// naming the tensor function, rather than crashing the host.
pub mod algorithm {
    wasmtime::component::bindgen!({
        world: "algorithm",
        path: "../wit",
        with: {
            "paddock:rl/types": crate::runtime::bindings::environment::paddock::rl::types,
            "paddock:rl/log": crate::runtime::bindings::environment::paddock::rl::log,
            "paddock:rl/tensor.tensor": tch::Tensor,
            "paddock:rl/tensor.module": crate::learner::ModuleRes,
            "paddock:rl/tensor.optimizer": crate::learner::OptimizerRes,
            "paddock:rl/tensor.replay": crate::learner::ReplayRes,
        },
        imports: { "paddock:rl/tensor": trappable },
    });
}

/// The `tunable-algorithm` world: an algorithm that also exports `algo-tune` (the
/// parameters it lets change while it runs). Only its `algo-tune` export is used, loaded
/// beside the `algorithm` world's bindings on the same instance.
pub mod tunable_algorithm {
    wasmtime::component::bindgen!({
        world: "tunable-algorithm",
        path: "../wit",
        with: {
            "paddock:rl/types": crate::runtime::bindings::environment::paddock::rl::types,
            "paddock:rl/log": crate::runtime::bindings::environment::paddock::rl::log,
            "paddock:rl/tensor": crate::runtime::bindings::algorithm::paddock::rl::tensor,
        },
    });
}

pub use environment::paddock::rl::types;
