//! `cartpole-3d`: the cart-pole of Barto, Sutton & Anderson (1983) built from rigid bodies
//! in the host's physics (rapier3d) instead of closed-form equations: a cart on a prismatic
//! rail and a pole on a revolute joint, both links of one multibody, with force control.
//!
//! - Observation: cart position (m), cart velocity (m/s), pole angle (rad, 0 = upright),
//!   pole angular velocity (rad/s) — read from the joints.
//! - Action: one real in [-1, 1], scaled to a force of `force` N (default 10) on the rail's
//!   joint. The action is not clipped: a non-finite action, or one whose force blows the
//!   simulation up, ends the episode *truncated* with the reason in the run log.
//! - Reward 1 per step; terminates when |x| > 2.4 m or |θ| > 12°; 500 steps at most.
//! - Masses and lengths as Gymnasium's CartPole (cart 1 kg, pole 0.1 kg and 1 m), 50 Hz
//!   control, 4 physics substeps.
//!
//! Parameters: `force` (N per unit action), `substeps`. Reset options: `initial-state`
//! (x, ẋ, θ, θ̇), `low`/`high` (uniform initial state, default ±0.05).

use paddock_sdk::physics::{self as ph, JointKind, Motor, Shape, Simulation, WorldDesc};
use paddock_sdk::space::box1d;
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};

const THETA_THRESHOLD: f32 = 12.0 * 2.0 * core::f32::consts::PI / 360.0;
const X_THRESHOLD: f32 = 2.4;
const PARAMS: &[&str] = &["force", "substeps"];
const POLE_HALF: f32 = 0.5;
const POLE_RADIUS: f32 = 0.025;

/// The world and the handles the env reads and drives.
struct Scene {
    sim: Simulation,
    rail: u64,
    hinge: u64,
}

fn build(substeps: u32) -> Result<Scene, PluginError> {
    let sim = Simulation::new(WorldDesc { gravity: ph::v3(0.0, 0.0, -9.8), timestep: 0.02, substeps });
    let base = sim.add_body(ph::fixed(ph::at(0.0, 0.0, 0.0))).map_err(ph::failed("add-body"))?;
    sim.add_collider(base, &ph::ColliderDesc { memberships: 0, filter: 0, ..ph::collider(Shape::Cuboid(ph::v3(2.6, 0.02, 0.02)), 1.0) })
        .map_err(ph::failed("add-collider"))?;
    let cart = sim.add_body(ph::dynamic(ph::at(0.0, 0.0, 0.1))).map_err(ph::failed("add-body"))?;
    // 0.5 × 0.3 × 0.2 m: 1 kg.
    sim.add_collider(
        cart,
        &ph::ColliderDesc { memberships: 1, filter: 0, ..ph::collider(Shape::Cuboid(ph::v3(0.25, 0.15, 0.1)), 1.0 / 0.03) },
    )
    .map_err(ph::failed("add-collider"))?;
    let pole = sim.add_body(ph::dynamic(ph::at(0.0, 0.0, 0.2 + POLE_HALF))).map_err(ph::failed("add-body"))?;
    // A capsule along local Y, turned to stand along Z; 0.1 kg.
    let volume = core::f32::consts::PI * POLE_RADIUS * POLE_RADIUS * (2.0 * POLE_HALF + 4.0 / 3.0 * POLE_RADIUS);
    let upright = ph::axis_angle(ph::v3(1.0, 0.0, 0.0), core::f32::consts::FRAC_PI_2);
    let pole_collider = ph::ColliderDesc {
        local_pose: ph::Pose { translation: ph::v3(0.0, 0.0, 0.0), rotation: upright },
        memberships: 2,
        filter: 0,
        ..ph::collider(Shape::Capsule((POLE_HALF, POLE_RADIUS)), 0.1 / volume)
    };
    sim.add_collider(pole, &pole_collider).map_err(ph::failed("add-collider"))?;
    let rail = sim
        .add_joint(ph::JointDesc {
            kind: JointKind::Prismatic,
            parent: base,
            child: cart,
            parent_anchor: ph::at(0.0, 0.0, 0.1),
            child_anchor: ph::at(0.0, 0.0, 0.0),
            axis: ph::v3(1.0, 0.0, 0.0),
            limits: None,
            multibody: true,
        })
        .map_err(ph::failed("add-joint"))?;
    let hinge = sim
        .add_joint(ph::JointDesc {
            kind: JointKind::Revolute,
            parent: cart,
            child: pole,
            parent_anchor: ph::at(0.0, 0.0, 0.1),
            child_anchor: ph::at(0.0, 0.0, -POLE_HALF),
            axis: ph::v3(0.0, 1.0, 0.0),
            limits: None,
            multibody: true,
        })
        .map_err(ph::failed("add-joint"))?;
    Ok(Scene { sim, rail, hinge })
}

/// One cart-pole in its own simulated world.
pub struct CartPole3d {
    scene: Scene,
    force: f32,
    substeps: u32,
    obs: [f32; 4],
    /// Why the last step could not be simulated (the episode is cut; the world is rebuilt at
    /// the next reset).
    broken: Option<String>,
}

impl CartPole3d {
    fn read(&mut self) -> Result<(), PluginError> {
        let s = self.scene.sim.joint_states(&[self.scene.rail, self.scene.hinge]).map_err(ph::failed("joint-states"))?;
        let obs = [s[0].position, s[0].velocity, s[1].position, s[1].velocity];
        if obs.iter().all(|x| x.is_finite()) {
            self.obs = obs;
        } else {
            self.broken = Some(format!("the simulation produced a non-finite state {obs:?}"));
        }
        Ok(())
    }
}

impl Environment for CartPole3d {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        params.check_known(PARAMS)?;
        let high = [X_THRESHOLD * 2.0, f32::INFINITY, THETA_THRESHOLD * 2.0, f32::INFINITY];
        Ok(EnvSpec {
            id: "CartPole3d-v0".into(),
            observation_space: box1d(&high.map(|h| -h), &high),
            action_space: box1d(&[-1.0], &[1.0]),
            max_episode_steps: Some(500),
            info_features: vec![],
            reward_threshold: Some(475.0),
            max_envs_per_instance: 1024,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        params.check_known(PARAMS)?;
        let force = params.real("force", 10.0)? as f32;
        let substeps = params.int_in("substeps", 4, 1..=100)? as u32;
        Ok(CartPole3d { scene: build(substeps)?, force, substeps, obs: [0.0; 4], broken: None })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["initial-state", "low", "high"])?;
        if self.broken.take().is_some() {
            self.scene = build(self.substeps)?;
        }
        let state: [f32; 4] = match options.reals("initial-state", 4)? {
            Some(v) => [v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32],
            None => {
                let (low, high) = (options.real("low", -0.05)?, options.real("high", 0.05)?);
                if low > high {
                    return Err(PluginError::InvalidParams(format!("reset option low ({low}) > high ({high})")));
                }
                core::array::from_fn(|_| rng.uniform(low, high) as f32)
            }
        };
        let sim = &self.scene.sim;
        sim.set_joint_state(self.scene.rail, state[0], state[1]).map_err(ph::failed("set-joint-state"))?;
        sim.set_joint_state(self.scene.hinge, state[2], state[3]).map_err(ph::failed("set-joint-state"))?;
        self.read()
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        let force = action[0] * self.force;
        let sim = &self.scene.sim;
        let applied = sim.set_motor(self.scene.rail, Motor::Effort(force)).and_then(|()| sim.step(1));
        if let Err(e) = applied {
            self.broken = Some(format!("action {} (force {force} N) could not be simulated: {e}", action[0]));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        self.read()?;
        if self.broken.is_some() {
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let [x, _, theta, _] = self.obs;
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        Ok(Transition { reward: 1.0, terminated })
    }

    fn observe(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.obs);
    }

    fn truncation(&mut self) -> Option<String> {
        self.broken.clone()
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        ph::save_snapshot(&self.scene.sim, &self.obs, out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        ph::load_snapshot(&self.scene.sim, state, &mut self.obs, "cartpole-3d")?;
        self.broken = None;
        Ok(())
    }
}

paddock_sdk::export_env!(CartPole3d);
