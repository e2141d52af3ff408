//! `hopper`: the planar one-legged hopper of Erez, Tassa & Todorov (2011, "Infinite-Horizon
//! Model Predictive Control for Periodic Tasks with Contacts"), as Gymnasium's `Hopper-v5`
//! poses it, built from rigid bodies in the host's physics (rapier3d multibody).
//!
//! - Bodies (capsules, density 1000 kg/m³, the sizes of MuJoCo's `hopper.xml`): torso,
//!   thigh, leg and a horizontal foot. The torso is held in the x–z plane by a chain of
//!   root joints — slide x, slide z, hinge y — so the body has 6 degrees of freedom.
//! - Action: three reals in [-1, 1] (clipped), torques of `gear` N·m (default 200) at the
//!   hip, knee and ankle, less a joint damping of `damping` N·m·s/rad (1), as MuJoCo's model.
//!   A non-finite action, or one beyond ±100, ends the episode *truncated* with the reason in
//!   the run log; so does a simulation that blows up.
//! - Observation (11): torso height and pitch, the three joint angles, then the velocities
//!   of x, z, pitch and the three joints (Hopper-v5's order; x itself is left out).
//! - Reward: forward velocity of the torso (m/s) + 1 while healthy − 0.001 × ‖action‖².
//!   Healthy: torso height > 0.7 m, |pitch| < 0.2 rad, every other state within ±100;
//!   otherwise the episode terminates. 1000 steps of 8 ms at most.
//! - Info features: `x-position` (m, the torso's) and `distance` (m travelled forward since
//!   the reset), so `paddock eval` reports how far episodes go.
//!
//! Parameters: `gear`, `damping`, `substeps` (solver substeps per 8 ms step, default 4),
//! `reset-noise` (0.005, uniform on every joint position and velocity; hip and knee, which
//! rest at their limit, only bend), `healthy-reward`
//! (1.0), `ctrl-cost` (0.001), `forward-weight` (1.0).

use paddock_sdk::physics::{self as ph, JointKind, Motor, Shape, Simulation, WorldDesc};
use paddock_sdk::space::box1d;
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition};

const PARAMS: &[&str] = &["gear", "damping", "substeps", "reset-noise", "healthy-reward", "ctrl-cost", "forward-weight"];
const DT: f32 = 0.008;
const ACTION_SANE: f32 = 100.0;
/// Torso centre height at rest (joint positions zero).
const TORSO_Z: f32 = 1.25;

#[derive(Clone, Copy)]
struct Settings {
    gear: f32,
    damping: f32,
    substeps: u32,
    noise: f64,
    healthy_reward: f64,
    ctrl_cost: f64,
    forward_weight: f64,
}

impl Settings {
    fn from(p: &Params) -> Result<Self, PluginError> {
        p.check_known(PARAMS)?;
        let non_negative = |name: &str, default: f64| p.real_if(name, default, "≥ 0", |v| v >= 0.0);
        let substeps = p.int_in("substeps", 4, 1..=100)?;
        Ok(Settings {
            gear: non_negative("gear", 200.0)? as f32,
            damping: non_negative("damping", 1.0)? as f32,
            substeps: substeps as u32,
            noise: non_negative("reset-noise", 0.005)?,
            healthy_reward: p.real("healthy-reward", 1.0)?,
            ctrl_cost: non_negative("ctrl-cost", 0.001)?,
            forward_weight: p.real("forward-weight", 1.0)?,
        })
    }
}

/// A capsule collider between two points on a line parallel to z (or x, `horizontal`),
/// given in the body's frame as its centre, half-length and radius.
fn capsule(half: f32, radius: f32, horizontal: bool, memberships: u32) -> ph::ColliderDesc {
    // Rapier's capsules run along local Y: turn them to stand along Z, or lie along X.
    let rotation = if horizontal {
        ph::axis_angle(ph::v3(0.0, 0.0, 1.0), core::f32::consts::FRAC_PI_2)
    } else {
        ph::axis_angle(ph::v3(1.0, 0.0, 0.0), core::f32::consts::FRAC_PI_2)
    };
    ph::ColliderDesc {
        local_pose: ph::Pose { translation: ph::v3(0.0, 0.0, 0.0), rotation },
        friction: 0.9,
        memberships,
        filter: 1,
        ..ph::collider(Shape::Capsule((half, radius)), 1000.0)
    }
}

struct Scene {
    sim: Simulation,
    /// rootx, rootz, rooty, thigh, leg, foot.
    joints: [u64; 6],
}

fn build(s: &Settings) -> Result<Scene, PluginError> {
    let sim = Simulation::new(WorldDesc { gravity: ph::v3(0.0, 0.0, -9.81), timestep: DT, substeps: s.substeps });
    // The floor is group 1; the hopper's parts (group 2) collide with it only.
    let floor = sim.add_body(ph::fixed(ph::at(0.0, 0.0, -0.05))).map_err(ph::failed("add-body"))?;
    sim.add_collider(
        floor,
        &ph::ColliderDesc { friction: 0.9, memberships: 1, filter: 2, ..ph::collider(Shape::Cuboid(ph::v3(50.0, 2.0, 0.05)), 1.0) },
    )
    .map_err(ph::failed("add-collider"))?;
    // Two light carriers for the planar root (slide x, then slide z), touching nothing.
    let ghost = ph::ColliderDesc { memberships: 0, filter: 0, ..ph::collider(Shape::Ball(0.02), 1000.0) };
    let carrier_x = sim.add_body(ph::dynamic(ph::at(0.0, 0.0, TORSO_Z))).map_err(ph::failed("add-body"))?;
    sim.add_collider(carrier_x, &ghost).map_err(ph::failed("add-collider"))?;
    let carrier_z = sim.add_body(ph::dynamic(ph::at(0.0, 0.0, TORSO_Z))).map_err(ph::failed("add-body"))?;
    sim.add_collider(carrier_z, &ghost).map_err(ph::failed("add-collider"))?;
    let part = |z: f32, x: f32, half: f32, radius: f32, horizontal: bool| -> Result<u64, PluginError> {
        let b = sim.add_body(ph::dynamic(ph::at(x, 0.0, z))).map_err(ph::failed("add-body"))?;
        sim.add_collider(b, &capsule(half, radius, horizontal, 2)).map_err(ph::failed("add-collider"))?;
        Ok(b)
    };
    let torso = part(1.25, 0.0, 0.2, 0.05, false)?;
    let thigh = part(0.825, 0.0, 0.225, 0.05, false)?;
    let leg = part(0.35, 0.0, 0.25, 0.04, false)?;
    let foot = part(0.1, 0.065, 0.195, 0.06, true)?;
    let joint = |kind, parent, child, parent_anchor: ph::Pose, child_anchor: ph::Pose, axis, limits| {
        sim.add_joint(ph::JointDesc { kind, parent, child, parent_anchor, child_anchor, axis, limits, multibody: true })
            .map_err(ph::failed("add-joint"))
    };
    let origin = ph::at(0.0, 0.0, 0.0);
    let x = ph::v3(1.0, 0.0, 0.0);
    let z = ph::v3(0.0, 0.0, 1.0);
    // MuJoCo's hinges turn about −y.
    let y = ph::v3(0.0, -1.0, 0.0);
    let deg = core::f32::consts::PI / 180.0;
    let rootx = joint(JointKind::Prismatic, floor, carrier_x, ph::at(0.0, 0.0, TORSO_Z + 0.05), origin, x, None)?;
    let rootz = joint(JointKind::Prismatic, carrier_x, carrier_z, origin, origin, z, None)?;
    let rooty = joint(JointKind::Revolute, carrier_z, torso, origin, origin, y, None)?;
    let hip = joint(JointKind::Revolute, torso, thigh, ph::at(0.0, 0.0, -0.2), ph::at(0.0, 0.0, 0.225), y, Some((-150.0 * deg, 0.0)))?;
    let knee = joint(JointKind::Revolute, thigh, leg, ph::at(0.0, 0.0, -0.225), ph::at(0.0, 0.0, 0.25), y, Some((-150.0 * deg, 0.0)))?;
    let ankle =
        joint(JointKind::Revolute, leg, foot, ph::at(0.0, 0.0, -0.25), ph::at(-0.065, 0.0, 0.0), y, Some((-45.0 * deg, 45.0 * deg)))?;
    Ok(Scene { sim, joints: [rootx, rootz, rooty, hip, knee, ankle] })
}

/// One hopper in its own world.
pub struct Hopper {
    settings: Settings,
    scene: Scene,
    /// Joint positions and velocities in `Scene::joints` order.
    q: [f32; 6],
    qd: [f32; 6],
    start_x: f32,
    broken: Option<String>,
}

impl Hopper {
    fn read(&mut self) -> Result<(), PluginError> {
        let states = self.scene.sim.joint_states(&self.scene.joints).map_err(ph::failed("joint-states"))?;
        let q: [f32; 6] = core::array::from_fn(|i| states[i].position);
        let qd: [f32; 6] = core::array::from_fn(|i| states[i].velocity);
        if q.iter().chain(&qd).all(|v| v.is_finite()) {
            (self.q, self.qd) = (q, qd);
        } else {
            self.broken = Some(format!("the simulation produced a non-finite state: positions {q:?}, velocities {qd:?}"));
        }
        Ok(())
    }

    /// Torso height (the slide z joint is measured from the rest height).
    fn height(&self) -> f32 {
        TORSO_Z + self.q[1]
    }

    fn healthy(&self) -> bool {
        let states_ok = self.q[1..].iter().chain(&self.qd).all(|v| v.abs() < 100.0);
        states_ok && self.height() > 0.7 && self.q[2].abs() < 0.2
    }
}

impl Environment for Hopper {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        Settings::from(params)?;
        let inf = [f32::INFINITY; 11];
        Ok(EnvSpec {
            id: "Hopper3d-v0".into(),
            observation_space: box1d(&inf.map(|v| -v), &inf),
            action_space: box1d(&[-1.0; 3], &[1.0; 3]),
            max_episode_steps: Some(1000),
            info_features: vec!["x-position".into(), "distance".into()],
            reward_threshold: None,
            max_envs_per_instance: 256,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let settings = Settings::from(params)?;
        Ok(Hopper { scene: build(&settings)?, settings, q: [0.0; 6], qd: [0.0; 6], start_x: 0.0, broken: None })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&[])?;
        if self.broken.take().is_some() {
            self.scene = build(&self.settings)?;
        }
        let n = self.settings.noise;
        let sim = &self.scene.sim;
        // x back to 0 too: each episode starts at the origin. The hip and knee rest at their
        // upper limit (0): their noise only bends them, since a start past a limit would be
        // corrected within one substep — a kick of ~2 rad/s.
        for (i, &j) in self.scene.joints.iter().enumerate() {
            let high = if i == 3 || i == 4 { 0.0 } else { n };
            let (q, qd) = (rng.uniform(-n, high) as f32, rng.uniform(-n, n) as f32);
            sim.set_joint_state(j, q, qd).map_err(ph::failed("set-joint-state"))?;
        }
        self.read()?;
        self.start_x = self.q[0];
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        if let Some(bad) = action.iter().find(|a| !a.is_finite() || a.abs() > ACTION_SANE) {
            self.broken = Some(format!("action {action:?} has {bad}, not a torque command (finite, within ±{ACTION_SANE})"));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let s = self.settings;
        let a: [f32; 3] = core::array::from_fn(|i| action[i].clamp(-1.0, 1.0));
        let motors: Vec<(u64, Motor)> =
            (0..3).map(|i| (self.scene.joints[3 + i], Motor::Effort(s.gear * a[i] - s.damping * self.qd[3 + i]))).collect();
        let x_before = self.q[0];
        let sim = &self.scene.sim;
        if let Err(e) = sim.set_motors(&motors).and_then(|()| sim.step(1)) {
            self.broken = Some(format!("action {action:?} could not be simulated: {e}"));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        self.read()?;
        if self.broken.is_some() {
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let velocity = f64::from(self.q[0] - x_before) / f64::from(DT);
        let ctrl: f64 = a.iter().map(|v| f64::from(v * v)).sum();
        let healthy = self.healthy();
        let reward = s.forward_weight * velocity + if healthy { s.healthy_reward } else { 0.0 } - s.ctrl_cost * ctrl;
        Ok(Transition { reward, terminated: !healthy })
    }

    fn observe(&self, out: &mut [f32]) {
        out[0] = self.height();
        out[1..5].copy_from_slice(&self.q[2..6]);
        out[5..11].copy_from_slice(&self.qd);
    }

    fn infos(&self, out: &mut [f64]) {
        out[0] = f64::from(self.q[0]);
        out[1] = f64::from(self.q[0] - self.start_x);
    }

    fn truncation(&mut self) -> Option<String> {
        self.broken.clone()
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        let head: Vec<f32> = self.q.iter().chain(&self.qd).chain([&self.start_x]).copied().collect();
        ph::save_snapshot(&self.scene.sim, &head, out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let mut f = [0.0; 13];
        ph::load_snapshot(&self.scene.sim, state, &mut f, "hopper")?;
        self.q.copy_from_slice(&f[..6]);
        self.qd.copy_from_slice(&f[6..12]);
        self.start_x = f[12];
        self.broken = None;
        Ok(())
    }
}

paddock_sdk::export_env!(Hopper);
