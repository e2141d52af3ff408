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
//! `paddock:rl@0.1.1`. See `docs/plugins/rust.md`.

// Lets generated code name this crate by its public path from inside it too.
extern crate self as paddock_sdk;

#[cfg(feature = "algorithm")]
pub mod actor_critic;
#[cfg(feature = "algorithm")]
pub mod algorithm;
#[cfg(feature = "env")]
pub mod env;
/// Joint axes measured from a world, Jacobians and end-effector steps (physics envs).
#[cfg(feature = "physics")]
pub mod kinematics;
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

/// Bindings generated from `wit/` for the `environment` world (its `physics` import is
/// stable since contract 0.1.1: an env that does not call it does not import it).
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

/// The host's rigid-body physics (`paddock:rl/physics`, feature `physics`): a `Simulation`
/// per env, built from bodies, colliders and joints, stepped natively by the host, and
/// helpers to describe them.
#[cfg(feature = "physics")]
pub mod physics {
    pub use crate::env_bindings::paddock::rl::physics::*;

    /// A host refusal as the plugin's error, naming the physics call: use as
    /// `sim.step(1).map_err(failed("step"))?`.
    pub fn failed(call: &'static str) -> impl Fn(PhysicsError) -> crate::types::PluginError {
        move |e| crate::types::PluginError::Failed(format!("physics {call}: {e}"))
    }

    /// An env snapshot of a physics env: `header` (the env's own state, little-endian `f32`s)
    /// then the world's bytes. Undo with [`load_snapshot`].
    pub fn save_snapshot(sim: &Simulation, header: &[f32], out: &mut Vec<u8>) {
        for v in header {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&sim.snapshot());
    }

    /// Restores a [`save_snapshot`]: the world from its bytes, then `header` from the first
    /// `header.len()` values — left as it was when the snapshot is refused. `env` names the
    /// env in the error.
    pub fn load_snapshot(sim: &Simulation, state: &[u8], header: &mut [f32], env: &str) -> Result<(), crate::types::PluginError> {
        let len = 4 * header.len();
        if state.len() < len {
            return Err(crate::types::PluginError::InvalidState(format!(
                "{env} snapshot is {} bytes, shorter than its {len}-byte header",
                state.len()
            )));
        }
        sim.restore(&state[len..]).map_err(failed("restore"))?;
        for (v, c) in header.iter_mut().zip(state[..len].chunks_exact(4)) {
            *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }

    /// A vector.
    pub fn v3(x: f32, y: f32, z: f32) -> Vec3 {
        Vec3 { x, y, z }
    }

    /// No rotation.
    pub const IDENTITY: Quat = Quat { x: 0.0, y: 0.0, z: 0.0, w: 1.0 };

    /// A rotation of `angle` radians about a unit `axis`.
    pub fn axis_angle(axis: Vec3, angle: f32) -> Quat {
        let (s, c) = (libm::sinf(angle / 2.0), libm::cosf(angle / 2.0));
        Quat { x: axis.x * s, y: axis.y * s, z: axis.z * s, w: c }
    }

    /// A pose at `translation` with no rotation.
    pub fn at(x: f32, y: f32, z: f32) -> Pose {
        Pose { translation: v3(x, y, z), rotation: IDENTITY }
    }

    /// A dynamic body that never sleeps, at `pose`.
    pub fn dynamic(pose: Pose) -> BodyDesc {
        BodyDesc { kind: BodyKind::Dynamic, pose, linear_damping: 0.0, angular_damping: 0.0, gravity_scale: 1.0, can_sleep: false }
    }

    /// A fixed body at `pose`.
    pub fn fixed(pose: Pose) -> BodyDesc {
        BodyDesc { kind: BodyKind::Fixed, ..dynamic(pose) }
    }

    /// A collider of `shape` with `density`, centred on its body, colliding with everything.
    pub fn collider(shape: Shape, density: f32) -> ColliderDesc {
        ColliderDesc {
            shape,
            local_pose: at(0.0, 0.0, 0.0),
            friction: 0.5,
            restitution: 0.0,
            density,
            memberships: u32::MAX,
            filter: u32::MAX,
        }
    }

    /// `v` turned by the unit quaternion `q` (a body frame → the world).
    pub fn rotate(q: Quat, v: [f32; 3]) -> [f32; 3] {
        let u = [q.x, q.y, q.z];
        let cross = |a: [f32; 3], b: [f32; 3]| [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
        let t = cross(u, v).map(|c| 2.0 * c);
        let ut = cross(u, t);
        core::array::from_fn(|i| v[i] + q.w * t[i] + ut[i])
    }

    /// The rotation whose columns are the unit vectors `x`, `y`, `z` (an orthonormal,
    /// right-handed frame), as a unit quaternion.
    pub fn from_axes(x: [f32; 3], y: [f32; 3], z: [f32; 3]) -> Quat {
        let (m00, m11, m22) = (x[0], y[1], z[2]);
        let trace = m00 + m11 + m22;
        let q = if trace > 0.0 {
            let s = libm::sqrtf(trace + 1.0) * 2.0;
            Quat { w: 0.25 * s, x: (y[2] - z[1]) / s, y: (z[0] - x[2]) / s, z: (x[1] - y[0]) / s }
        } else if m00 > m11 && m00 > m22 {
            let s = libm::sqrtf(1.0 + m00 - m11 - m22) * 2.0;
            Quat { w: (y[2] - z[1]) / s, x: 0.25 * s, y: (y[0] + x[1]) / s, z: (z[0] + x[2]) / s }
        } else if m11 > m22 {
            let s = libm::sqrtf(1.0 + m11 - m00 - m22) * 2.0;
            Quat { w: (z[0] - x[2]) / s, x: (y[0] + x[1]) / s, y: 0.25 * s, z: (z[1] + y[2]) / s }
        } else {
            let s = libm::sqrtf(1.0 + m22 - m00 - m11) * 2.0;
            Quat { w: (x[1] - y[0]) / s, x: (z[0] + x[2]) / s, y: (z[1] + y[2]) / s, z: 0.25 * s }
        };
        let n = libm::sqrtf(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
        Quat { x: q.x / n, y: q.y / n, z: q.z / n, w: q.w / n }
    }

    /// The pose of a camera at `eye` looking at `target`, with `up` pointing up in its image
    /// (cameras look along their local −Z with +Y up); `None` when `eye` is `target` or `up`
    /// is along the view.
    pub fn look_at(eye: [f32; 3], target: [f32; 3], up: [f32; 3]) -> Option<Pose> {
        let norm = |v: [f32; 3]| {
            let l = libm::sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
            (l > 1e-9 && l.is_finite()).then(|| v.map(|c| c / l))
        };
        let cross = |a: [f32; 3], b: [f32; 3]| [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
        let back = norm([eye[0] - target[0], eye[1] - target[1], eye[2] - target[2]])?;
        let right = norm(cross(up, back))?;
        let up = cross(back, right);
        Some(Pose { translation: v3(eye[0], eye[1], eye[2]), rotation: from_axes(right, up, back) })
    }

    /// A camera of env `env` at `pose` (in the world, or on `body`'s frame if given later),
    /// `size`×`size` pixels of colour, with a vertical field of view of `fov_y` degrees,
    /// seeing from 1 cm to 10 m.
    pub fn camera(name: &str, env: u32, pose: Pose, fov_y: f32, size: u32) -> CameraDesc {
        CameraDesc {
            name: name.into(),
            env,
            body: None,
            pose,
            fov_y,
            width: size,
            height: size,
            channels: CameraChannels { rgb: true, depth: false, segmentation: false },
            near: 0.01,
            far: 10.0,
        }
    }

    /// `v` turned by the inverse of `q` (the world → a body frame).
    pub fn rotate_inverse(q: Quat, v: [f32; 3]) -> [f32; 3] {
        rotate(Quat { x: -q.x, y: -q.y, z: -q.z, w: q.w }, v)
    }

    impl Robot {
        /// The handle of movable joint `name` of the robot granted as `robot`, or an
        /// invalid-parameters error that lists the joints it has.
        pub fn joint(&self, robot: &str, name: &str) -> Result<JointHandle, crate::types::PluginError> {
            self.joints.iter().find(|(n, _)| n == name).map(|(_, h)| *h).ok_or_else(|| {
                let have: Vec<&str> = self.joints.iter().map(|(n, _)| n.as_str()).collect();
                crate::types::PluginError::InvalidParams(format!("robot `{robot}` has no movable joint `{name}` (it has {have:?})"))
            })
        }

        /// The body of link `name` (asked for as `role`, e.g. "`hand`"), or an
        /// invalid-parameters error that lists the links it has.
        pub fn link(&self, robot: &str, name: &str, role: &str) -> Result<BodyHandle, crate::types::PluginError> {
            self.links.iter().find(|(n, _)| n == name).map(|(_, h)| *h).ok_or_else(|| {
                let have: Vec<&str> = self.links.iter().map(|(n, _)| n.as_str()).collect();
                crate::types::PluginError::InvalidParams(format!("robot `{robot}` has no link `{name}` ({role}; it has {have:?})"))
            })
        }
    }
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
        world: "tunable-algorithm",
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
