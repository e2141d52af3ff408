//! `arm-reach`: a 7-DOF arm reaching random targets — the seeds' reaching task, in the
//! spirit of Gymnasium-Robotics' FetchReach (Plappert et al., 2018, "Multi-Goal
//! Reinforcement Learning: Challenging Robotics Environments and Request for Research") with
//! joint-velocity instead of Cartesian control. The arm is loaded from a URDF the run config
//! grants (`[env] robots = { arm = "../robots/arm7.urdf" }`) and simulated by the host's
//! physics (rapier3d multibody).
//!
//! - Action: one real in [-1, 1] per arm joint (three with `end-effector-delta` control, see
//!   `control`), by default a joint velocity target of
//!   `max-joint-velocity` rad/s per unit (values beyond ±1 are clipped; a non-finite action
//!   or one beyond ±100, which no policy means, ends the episode *truncated* with the reason
//!   in the run log).
//! - The gripper closes by itself while the fingertip point is within `gripper-distance`
//!   (15 cm) of the target and opens again outside it (info feature `gripper-closed`).
//! - Observation (24): joint positions (7, rad), joint velocities (7, rad/s), fingertip
//!   position (3, m), target (3), target − fingertip (3), gripper closed (1: 0 or 1).
//! - Reward: −distance (m) − `action-cost` × ‖action‖², plus `success-bonus` on the step
//!   that reaches the target; success is the fingertip within `success-distance` (5 cm),
//!   which ends the episode (terminated). 100 steps of 50 ms at most.
//! - A grey ball marks the target in pictures (`paddock eval --frames`); it touches nothing.
//! - Targets are drawn uniformly in a shell around the shoulder (0.35 to 0.85 m away, at
//!   least 10 cm above the floor), all of it within the arm's reach; the arm starts near a
//!   bent "ready" pose with ±0.1 rad of noise per joint.
//!
//! Any serial arm: the parameters name its parts and its workspace (`docs/robots.md`;
//! `configs/kuka-reach-ppo.toml` and `configs/panda-reach-ppo.toml` take published arms).
//!
//! Parameters:
//! - `robot`: the granted name (default `arm`).
//! - `hand`: the end-effector link (default `hand`); `tip-offset` (x, y, z): the reaching
//!   point in its frame (default 0, 0, 0.1).
//! - `arm-joints`, `finger-joints`: comma-separated joint names. Defaults: those of
//!   `robots/arm7.urdf` when the robot has them; else every movable joint but the fingers,
//!   and no fingers (a mimic finger follows by itself; name only its leader).
//! - `ready`: the start pose, one position per arm joint (default arm7's bent pose, zeros past
//!   its seventh joint); each episode starts within ±0.1 rad of it.
//! - `workspace-center` (x, y, z; default the arm7 shoulder 0, 0, 0.3), `workspace-radius`
//!   (min, max; 0.35, 0.85), `workspace-elevation` (min, max rad; −0.35, 1.2),
//!   `workspace-min-height` (0.1): targets are drawn uniformly in radius, azimuth and
//!   elevation around the centre, at least that high.
//! - `control`: `joint-velocity` (default: each action a velocity target of
//!   `max-joint-velocity` rad/s per unit, `motor-gain` 1/s), `joint-position-delta` (each
//!   action moves the joint's position target by `max-joint-step` rad per unit, held by
//!   position motors of `position-gains` (stiffness 1/s², damping 1/s; 400, 40)) or
//!   `end-effector-delta` (three actions: a move of the reaching point of `max-ee-step` m per
//!   unit along world x, y, z, turned into joint position targets by damped least squares on
//!   the arm's Jacobian, damping `ik-damping` (0.05), each joint moving at most
//!   `max-ik-joint-step` rad (0.25) per step; the Jacobian comes from joint axes the env
//!   measures in its world as it builds it, `paddock_sdk::kinematics`).
//! - `substeps` (solver substeps per 50 ms step, 1), `success-distance` (0.05),
//!   `gripper-distance` (0.15), `success-bonus` (1.0), `action-cost` (0.01), `episode-steps`
//!   (100).
//!
//! Reset options: `target` (x, y, z) and `initial-joints` (one position per arm joint).

use paddock_sdk::kinematics::{Chain, damped_least_squares};
use paddock_sdk::physics::{self as ph, Motor, Simulation, WorldDesc};
use paddock_sdk::space::box1d;
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition, math};

const PARAMS: &[&str] = &[
    "robot",
    "arm-joints",
    "finger-joints",
    "hand",
    "max-joint-velocity",
    "motor-gain",
    "substeps",
    "success-distance",
    "gripper-distance",
    "success-bonus",
    "action-cost",
    "episode-steps",
    "ready",
    "tip-offset",
    "workspace-center",
    "workspace-radius",
    "workspace-elevation",
    "workspace-min-height",
    "control",
    "max-joint-step",
    "position-gains",
    "max-ee-step",
    "ik-damping",
    "max-ik-joint-step",
    "cameras",
    "camera-size",
    "camera-fov",
    "camera-depth",
    "observe",
    "target-radius",
];
/// The cameras `cameras` may name.
const CAMERAS: &[&str] = &["front", "side", "top", "wrist"];
/// Most arm joints the env drives.
const MAX_JOINTS: usize = 16;
const DEFAULT_ARM: &str = "joint1,joint2,joint3,joint4,joint5,joint6,joint7";
const DEFAULT_FINGERS: &str = "finger_left_joint,finger_right_joint";
/// A bent pose away from the straight-up singularity (joints 2, 4 and 6 bent): arm7's.
const READY: [f32; 7] = [0.0, 0.4, 0.0, -1.6, 0.0, 1.2, 0.0];
/// The point between the fingertips, in the hand link's frame (arm7's).
const TIP: [f32; 3] = [0.0, 0.0, 0.1];
/// Where targets are drawn around: the shoulder (joint 2) of `arm7.urdf`.
const SHOULDER: [f32; 3] = [0.0, 0.0, 0.3];
/// Finger travel when closed (the URDF's upper limit is 0.045).
const FINGER_CLOSED: f32 = 0.04;
const CONTROL_DT: f32 = 0.05;
/// Largest action magnitude taken as meant (then clipped to ±1).
const ACTION_SANE: f32 = 100.0;
/// Joint-position bound of the observation space (every `arm7` limit is within it).
const Q_BOUND: f32 = 4.0;

fn names(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Settings from the parameters.
#[derive(Clone)]
struct Settings {
    robot: String,
    /// Named by `arm-joints` / `finger-joints`, or `None` for the defaults (resolved against
    /// the robot's joints when it loads).
    arm: Option<Vec<String>>,
    fingers: Option<Vec<String>>,
    hand: String,
    tip: [f32; 3],
    ready: Option<Vec<f32>>,
    center: [f32; 3],
    radius: (f64, f64),
    elevation: (f64, f64),
    min_height: f32,
    control: Control,
    max_step: f32,
    gains: (f32, f32),
    max_ee_step: f32,
    ik_damping: f32,
    max_ik_step: f32,
    max_velocity: f32,
    gain: f32,
    substeps: u32,
    success_distance: f32,
    gripper_distance: f32,
    bonus: f64,
    action_cost: f64,
    /// Cameras the host renders into the observation, by name (`CAMERAS`).
    cameras: Vec<String>,
    camera_size: u32,
    camera_fov: f32,
    camera_depth: bool,
    /// Observe only the arm (joint positions, velocities, gripper): the target is seen
    /// through the cameras alone.
    proprioception: bool,
    target_radius: f32,
}

/// How actions drive the arm joints.
#[derive(Clone, Copy, PartialEq)]
enum Control {
    JointVelocity,
    JointPositionDelta,
    EndEffectorDelta,
}

fn bad(m: String) -> PluginError {
    PluginError::InvalidParams(m)
}

/// `name` as three finite reals.
fn triple(params: &Params, name: &str, default: [f32; 3]) -> Result<[f32; 3], PluginError> {
    match params.reals(name, 3)? {
        Some(v) if v.iter().all(|x| x.is_finite()) => Ok([v[0] as f32, v[1] as f32, v[2] as f32]),
        Some(v) => Err(bad(format!("`{name}` must be finite, got {v:?}"))),
        None => Ok(default),
    }
}

/// `name` as an increasing pair of finite reals within `ok`.
fn range(params: &Params, name: &str, default: (f64, f64), ok: impl Fn(f64) -> bool) -> Result<(f64, f64), PluginError> {
    match params.reals(name, 2)? {
        Some(&[lo, hi]) if lo.is_finite() && hi.is_finite() && lo < hi && ok(lo) && ok(hi) => Ok((lo, hi)),
        Some(v) => Err(bad(format!("`{name}` must be [min, max] with min < max, got {v:?}"))),
        None => Ok(default),
    }
}

impl Settings {
    fn from(params: &Params) -> Result<Self, PluginError> {
        params.check_known(PARAMS)?;
        let arm = params.text("arm-joints")?.map(names);
        if let Some(a) = &arm
            && (a.is_empty() || a.len() > MAX_JOINTS)
        {
            return Err(bad(format!("`arm-joints` must name 1 to {MAX_JOINTS} joints, got {}", a.len())));
        }
        let positive = |name: &str, default: f64| params.real_if(name, default, "a positive number", |v| v > 0.0).map(|v| v as f32);
        let substeps = params.int_in("substeps", 1, 1..=100)?;
        let ready = match params.get_reals("ready")? {
            Some(v) if v.iter().all(|x| x.is_finite()) && !v.is_empty() => Some(v.iter().map(|&x| x as f32).collect()),
            Some(v) => return Err(bad(format!("`ready` must be one finite position per arm joint, got {v:?}"))),
            None => None,
        };
        let control = match params.text("control")?.unwrap_or("joint-velocity") {
            "joint-velocity" => Control::JointVelocity,
            "joint-position-delta" => Control::JointPositionDelta,
            "end-effector-delta" => Control::EndEffectorDelta,
            other => {
                return Err(bad(format!("`control` is `joint-velocity`, `joint-position-delta` or `end-effector-delta`, got `{other}`")));
            }
        };
        let gains = match params.reals("position-gains", 2)? {
            Some(&[kp, kd]) if kp > 0.0 && kd >= 0.0 && kp.is_finite() && kd.is_finite() => (kp as f32, kd as f32),
            Some(v) => return Err(bad(format!("`position-gains` must be [stiffness > 0, damping ≥ 0], got {v:?}"))),
            None => (400.0, 40.0),
        };
        let cameras = params.text("cameras")?.map(names).unwrap_or_default();
        if let Some(c) = cameras.iter().find(|c| !CAMERAS.contains(&c.as_str())) {
            return Err(bad(format!("`cameras` names `{c}`; the cameras are {CAMERAS:?}")));
        }
        if let Some(i) = (1..cameras.len()).find(|&i| cameras[..i].contains(&cameras[i])) {
            return Err(bad(format!("`cameras` names `{}` twice", cameras[i])));
        }
        let proprioception = match params.text("observe")?.unwrap_or("full") {
            "full" => false,
            "proprioception" => true,
            other => return Err(bad(format!("`observe` is `full` or `proprioception`, got `{other}`"))),
        };
        if proprioception && cameras.is_empty() {
            return Err(
                bad("`observe = \"proprioception\"` hides the target from the observation: name the `cameras` that show it".into()),
            );
        }
        Ok(Settings {
            cameras,
            camera_size: params.int_in("camera-size", 64, 1..=1 << 16)? as u32,
            camera_fov: params.real("camera-fov", 50.0)? as f32,
            camera_depth: params.flag("camera-depth", false)?,
            proprioception,
            target_radius: positive("target-radius", 0.025)?,
            robot: params.text("robot")?.unwrap_or("arm").to_string(),
            arm,
            fingers: params.text("finger-joints")?.map(names),
            hand: params.text("hand")?.unwrap_or("hand").to_string(),
            tip: triple(params, "tip-offset", TIP)?,
            ready,
            center: triple(params, "workspace-center", SHOULDER)?,
            radius: range(params, "workspace-radius", (0.35, 0.85), |v| v >= 0.0)?,
            elevation: range(params, "workspace-elevation", (-0.35, 1.2), |v| v.abs() <= core::f64::consts::FRAC_PI_2)?,
            min_height: params.real("workspace-min-height", 0.1)? as f32,
            control,
            max_step: positive("max-joint-step", 0.05)?,
            gains,
            max_ee_step: positive("max-ee-step", 0.05)?,
            ik_damping: params.non_negative("ik-damping", 0.05)? as f32,
            max_ik_step: positive("max-ik-joint-step", 0.25)?,
            max_velocity: positive("max-joint-velocity", 2.0)?,
            gain: positive("motor-gain", 1000.0)?,
            substeps: substeps as u32,
            success_distance: positive("success-distance", 0.05)?,
            gripper_distance: positive("gripper-distance", 0.15)?,
            bonus: params.real("success-bonus", 1.0)?,
            action_cost: params.real("action-cost", 0.01)?,
        })
    }
}

/// The world and the handles the env reads and drives.
struct Scene {
    sim: Simulation,
    /// Arm joints, then finger joints (one `joint-states` call reads them all).
    joints: Vec<u64>,
    /// How many of `joints` are arm joints.
    arm: usize,
    /// Start pose, one position per arm joint.
    ready: Vec<f32>,
    hand: u64,
    /// The fixed body that shows the target.
    marker: u64,
    /// The arm joints' axes, for end-effector control.
    chain: Option<Chain>,
}

/// The arm and finger joints: as named, else arm7's when the robot has them, else every
/// movable joint but the fingers (and no fingers).
fn joint_names(s: &Settings, movable: &[&str]) -> (Vec<String>, Vec<String>) {
    let has_all = |list: &str| names(list).iter().all(|n| movable.contains(&n.as_str()));
    let fingers = s.fingers.clone().unwrap_or_else(|| if has_all(DEFAULT_FINGERS) { names(DEFAULT_FINGERS) } else { Vec::new() });
    let arm = s.arm.clone().unwrap_or_else(|| {
        if has_all(DEFAULT_ARM) {
            names(DEFAULT_ARM)
        } else {
            movable.iter().filter(|n| !fingers.iter().any(|f| f == *n)).map(|n| n.to_string()).collect()
        }
    });
    (arm, fingers)
}

/// Adds the cameras `s` names for env `index`: three around the workspace and one on the hand.
fn add_cameras(sim: &Simulation, s: &Settings, index: u32, hand: u64) -> Result<(), PluginError> {
    let c = s.center;
    // The workspace is a ball of up to 0.85 m around the centre, above the floor: seen whole
    // at 2 m with the default 50° field of view.
    let aim = [c[0], c[1], c[2] + 0.25];
    for name in &s.cameras {
        let (pose, body) = match name.as_str() {
            "front" => (ph::look_at([c[0] + 2.0, c[1], c[2] + 0.5], aim, [0.0, 0.0, 1.0]), None),
            "side" => (ph::look_at([c[0], c[1] - 2.0, c[2] + 0.5], aim, [0.0, 0.0, 1.0]), None),
            "top" => (ph::look_at([c[0], c[1], c[2] + 2.3], c, [1.0, 0.0, 0.0]), None),
            // On the hand, looking past the fingers (the hand's +Z).
            _ => (
                Some(ph::Pose {
                    translation: ph::v3(0.0, 0.05, 0.05),
                    rotation: ph::from_axes([1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]),
                }),
                Some(hand),
            ),
        };
        let pose = pose.ok_or_else(|| bad(format!("camera `{name}`: no view of the workspace centre {c:?}")))?;
        let mut cam = ph::camera(name, index, pose, s.camera_fov, s.camera_size);
        cam.body = body;
        cam.channels.depth = s.camera_depth;
        sim.add_camera(&cam).map_err(ph::failed("add-camera"))?;
    }
    Ok(())
}

fn build(s: &Settings, index: u32) -> Result<Scene, PluginError> {
    let sim = Simulation::new(WorldDesc { gravity: ph::v3(0.0, 0.0, -9.81), timestep: CONTROL_DT, substeps: s.substeps });
    let floor = sim.add_body(ph::fixed(ph::at(0.0, 0.0, -0.05))).map_err(ph::failed("add-body"))?;
    sim.add_collider(floor, &ph::collider(ph::Shape::Cuboid(ph::v3(1.0, 1.0, 0.05)), 1.0)).map_err(ph::failed("add-collider"))?;
    if !s.cameras.is_empty() {
        sim.set_colour(floor, ph::v3(0.55, 0.55, 0.52)).map_err(ph::failed("set-colour"))?;
    }
    let robot = sim.load_robot(&s.robot, ph::at(0.0, 0.0, 0.0), true).map_err(ph::failed("load-robot"))?;
    let movable: Vec<&str> = robot.joints.iter().map(|(n, _)| n.as_str()).collect();
    let (arm, fingers) = joint_names(s, &movable);
    if arm.is_empty() || arm.len() > MAX_JOINTS {
        return Err(bad(format!(
            "robot `{}` has {} arm joints to drive; the env drives 1 to {MAX_JOINTS} (name them in `arm-joints`)",
            s.robot,
            arm.len()
        )));
    }
    let joints = arm.iter().chain(&fingers).map(|n| robot.joint(&s.robot, n)).collect::<Result<Vec<_>, _>>()?;
    let hand = robot.link(&s.robot, &s.hand, "`hand`, the end effector")?;
    let ready = match &s.ready {
        Some(r) if r.len() == arm.len() => r.clone(),
        Some(r) => return Err(bad(format!("`ready` has {} positions for {} arm joints ({arm:?})", r.len(), arm.len()))),
        None => (0..arm.len()).map(|i| READY.get(i).copied().unwrap_or(0.0)).collect(),
    };
    // The target: a small ball that touches nothing, there to be drawn (frames, the monitor).
    let marker = sim.add_body(ph::fixed(ph::at(0.0, 0.0, -1.0))).map_err(ph::failed("add-body"))?;
    let ghost = ph::ColliderDesc { memberships: 0, filter: 0, ..ph::collider(ph::Shape::Ball(s.target_radius), 1.0) };
    sim.add_collider(marker, &ghost).map_err(ph::failed("add-collider"))?;
    if !s.cameras.is_empty() {
        sim.set_colour(marker, ph::v3(0.95, 0.1, 0.1)).map_err(ph::failed("set-colour"))?;
        add_cameras(&sim, s, index, hand)?;
    }
    let chain = match s.control {
        Control::EndEffectorDelta => Some(Chain::calibrate(&sim, &robot, &s.robot, &joints[..arm.len()])?),
        _ => None,
    };
    Ok(Scene { sim, arm: arm.len(), joints, ready, hand, marker, chain })
}

/// One arm in its own simulated world.
pub struct ArmReach {
    settings: Settings,
    /// Its index in the instance (its cameras name it).
    index: u32,
    scene: Scene,
    target: [f32; 3],
    q: Vec<f32>,
    qd: Vec<f32>,
    tip: [f32; 3],
    /// End-effector control: the arm joints' position targets, moved by each step's joint
    /// displacements (targets taken from the measured pose would sag under gravity).
    targets: Vec<f32>,
    gripper_closed: bool,
    /// Why the last step could not be simulated (the episode is cut; the world is rebuilt at
    /// the next reset).
    broken: Option<String>,
}

impl ArmReach {
    fn distance(&self) -> f32 {
        let d: [f32; 3] = core::array::from_fn(|i| self.target[i] - self.tip[i]);
        math::sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    }

    /// Reads joints and the fingertip from the world.
    fn read(&mut self) -> Result<(), PluginError> {
        let sim = &self.scene.sim;
        let states = sim.joint_states(&self.scene.joints).map_err(ph::failed("joint-states"))?;
        let hand = sim.pose(self.scene.hand).map_err(ph::failed("pose"))?;
        let off = ph::rotate(hand.rotation, self.settings.tip);
        let t = hand.translation;
        let tip = [t.x + off[0], t.y + off[1], t.z + off[2]];
        let n = self.scene.arm;
        let q: Vec<f32> = states[..n].iter().map(|s| s.position).collect();
        let qd: Vec<f32> = states[..n].iter().map(|s| s.velocity).collect();
        if q.iter().chain(&qd).chain(&tip).all(|x| x.is_finite()) {
            (self.q, self.qd, self.tip) = (q, qd, tip);
        } else {
            self.broken = Some(format!("the simulation produced a non-finite state: joints {q:?}, velocities {qd:?}, fingertip {tip:?}"));
        }
        Ok(())
    }

    fn draw_target(s: &Settings, rng: &mut Rng) -> [f32; 3] {
        let c = s.center;
        loop {
            let r = rng.uniform(s.radius.0, s.radius.1);
            let azimuth = rng.uniform(-core::f64::consts::PI, core::f64::consts::PI);
            let elevation = rng.uniform(s.elevation.0, s.elevation.1);
            let (se, ce) = (math::sin(elevation), math::cos(elevation));
            let (sa, ca) = (math::sin(azimuth), math::cos(azimuth));
            let p = [c[0] + (r * ce * ca) as f32, c[1] + (r * ce * sa) as f32, c[2] + (r * se) as f32];
            if p[2] >= s.min_height {
                return p;
            }
        }
    }

    /// Values of the full observation (what snapshots keep).
    fn obs_len(arm: usize) -> usize {
        2 * arm + 10
    }

    /// The full observation: joints, velocities, fingertip, target, their difference and
    /// the gripper.
    fn full(&self, out: &mut [f32]) {
        let n = self.q.len();
        out[..n].copy_from_slice(&self.q);
        out[n..2 * n].copy_from_slice(&self.qd);
        let rest = &mut out[2 * n..];
        rest[..3].copy_from_slice(&self.tip);
        rest[3..6].copy_from_slice(&self.target);
        for i in 0..3 {
            rest[6 + i] = self.target[i] - self.tip[i];
        }
        rest[9] = if self.gripper_closed { 1.0 } else { 0.0 };
    }
}

impl Environment for ArmReach {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        let s = Settings::from(params)?;
        // Unnamed joints are the robot's: load it to count them.
        let n = match &s.arm {
            Some(a) => a.len(),
            None => build(&Settings { cameras: Vec::new(), ..s.clone() }, 0)?.arm,
        };
        let actions = if s.control == Control::EndEffectorDelta { 3 } else { n };
        let mut high = vec![Q_BOUND; n];
        high.extend(vec![f32::INFINITY; n]);
        if !s.proprioception {
            high.extend([2.0; 9]);
        }
        high.push(1.0);
        let mut low: Vec<f32> = high.iter().map(|h| -h).collect();
        *low.last_mut().expect("gripper") = 0.0;
        Ok(EnvSpec {
            id: "ArmReach-v0".into(),
            observation_space: box1d(&low, &high),
            action_space: box1d(&vec![-1.0; actions], &vec![1.0; actions]),
            max_episode_steps: Some(params.int_in("episode-steps", 100, 1..=100_000)? as u32),
            info_features: vec!["distance".into(), "gripper-closed".into(), "is-success".into()],
            reward_threshold: None,
            max_envs_per_instance: 256,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Self::new_at(params, 0)
    }

    fn new_at(params: &Params, index: u32) -> Result<Self, PluginError> {
        let settings = Settings::from(params)?;
        let scene = build(&settings, index)?;
        let n = scene.arm;
        Ok(ArmReach {
            settings,
            index,
            scene,
            target: [0.0; 3],
            q: vec![0.0; n],
            qd: vec![0.0; n],
            tip: [0.0; 3],
            targets: vec![0.0; n],
            gripper_closed: false,
            broken: None,
        })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&["target", "initial-joints"])?;
        if self.broken.take().is_some() {
            self.scene = build(&self.settings, self.index)?;
        }
        let n = self.scene.arm;
        let q0: Vec<f32> = match options.reals("initial-joints", n)? {
            Some(v) => v.iter().map(|&x| x as f32).collect(),
            None => (0..n).map(|i| self.scene.ready[i] + rng.uniform(-0.1, 0.1) as f32).collect(),
        };
        self.target = match options.reals("target", 3)? {
            Some(v) => [v[0] as f32, v[1] as f32, v[2] as f32],
            None => Self::draw_target(&self.settings, rng),
        };
        if q0.iter().chain(&self.target).any(|x| !x.is_finite()) {
            return Err(PluginError::InvalidParams("reset options `target` and `initial-joints` must be finite".into()));
        }
        let sim = &self.scene.sim;
        let [x, y, z] = self.target;
        sim.set_pose(self.scene.marker, ph::at(x, y, z)).map_err(ph::failed("set-pose"))?;
        for (&j, &q) in self.scene.joints.iter().zip(&q0) {
            sim.set_joint_state(j, q, 0.0).map_err(ph::failed("set-joint-state"))?;
        }
        for &j in &self.scene.joints[n..] {
            sim.set_joint_state(j, 0.0, 0.0).map_err(ph::failed("set-joint-state"))?;
        }
        self.gripper_closed = false;
        self.targets = q0;
        self.read()
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        if let Some(bad) = action.iter().find(|a| !a.is_finite() || a.abs() > ACTION_SANE) {
            self.broken = Some(format!("action {action:?} has {bad}, not a joint velocity command (finite, within ±{ACTION_SANE})"));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let s = &self.settings;
        let clipped: Vec<f32> = action.iter().map(|a| a.clamp(-1.0, 1.0)).collect();
        // The gripper acts on where the hand was when the command was given.
        self.gripper_closed = self.distance() <= s.gripper_distance;
        let finger = if self.gripper_closed { FINGER_CLOSED } else { 0.0 };
        if let Some(chain) = &self.scene.chain {
            let columns = chain.jacobian(&self.scene.sim, self.tip)?;
            let dx: [f32; 3] = core::array::from_fn(|k| clipped[k] * s.max_ee_step);
            let dq = damped_least_squares(&columns, dx, s.ik_damping);
            // Each target moves by its displacement, and stays within one such step of where
            // the joint is (no wind-up against a limit or an obstacle).
            for ((t, d), q) in self.targets.iter_mut().zip(dq).zip(&self.q) {
                let d = d.clamp(-s.max_ik_step, s.max_ik_step);
                *t = (*t + d).clamp(q - s.max_ik_step, q + s.max_ik_step);
            }
        }
        let motors: Vec<(u64, Motor)> = self
            .scene
            .joints
            .iter()
            .enumerate()
            .map(|(i, &j)| {
                // Past the arm joints, the fingers; joint actions are one per arm joint.
                let motor = match s.control {
                    _ if i >= self.scene.arm => Motor::Position((finger, 400.0, 40.0)),
                    Control::EndEffectorDelta => Motor::Position((self.targets[i], s.gains.0, s.gains.1)),
                    Control::JointVelocity => Motor::Velocity((clipped[i] * s.max_velocity, s.gain)),
                    Control::JointPositionDelta => Motor::Position((self.q[i] + clipped[i] * s.max_step, s.gains.0, s.gains.1)),
                };
                (j, motor)
            })
            .collect();
        let sim = &self.scene.sim;
        if let Err(e) = sim.set_motors(&motors).and_then(|()| sim.step(1)) {
            self.broken = Some(format!("action {action:?} could not be simulated: {e}"));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        self.read()?;
        if self.broken.is_some() {
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let d = self.distance();
        let success = d <= self.settings.success_distance;
        let effort: f64 = clipped.iter().map(|a| f64::from(a * a)).sum();
        let reward = -f64::from(d) - self.settings.action_cost * effort + if success { self.settings.bonus } else { 0.0 };
        Ok(Transition { reward, terminated: success })
    }

    fn observe(&self, out: &mut [f32]) {
        if self.settings.proprioception {
            let n = self.q.len();
            out[..n].copy_from_slice(&self.q);
            out[n..2 * n].copy_from_slice(&self.qd);
            out[2 * n] = if self.gripper_closed { 1.0 } else { 0.0 };
        } else {
            self.full(out);
        }
    }

    fn infos(&self, out: &mut [f64]) {
        let d = self.distance();
        out[0] = f64::from(d);
        out[1] = if self.gripper_closed { 1.0 } else { 0.0 };
        out[2] = if d <= self.settings.success_distance { 1.0 } else { 0.0 };
    }

    fn truncation(&mut self) -> Option<String> {
        self.broken.clone()
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        let mut obs = vec![0.0; Self::obs_len(self.q.len())];
        self.full(&mut obs);
        if self.scene.chain.is_some() {
            obs.extend_from_slice(&self.targets);
        }
        ph::save_snapshot(&self.scene.sim, &obs, out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let n = self.q.len();
        let extra = if self.scene.chain.is_some() { n } else { 0 };
        let mut f = vec![0.0; Self::obs_len(n) + extra];
        ph::load_snapshot(&self.scene.sim, state, &mut f, "arm-reach")?;
        self.q = f[..n].to_vec();
        self.qd = f[n..2 * n].to_vec();
        self.tip = [f[2 * n], f[2 * n + 1], f[2 * n + 2]];
        self.target = [f[2 * n + 3], f[2 * n + 4], f[2 * n + 5]];
        self.gripper_closed = f[2 * n + 9] != 0.0;
        if extra > 0 {
            self.targets = f[Self::obs_len(n)..].to_vec();
        }
        self.broken = None;
        Ok(())
    }
}

paddock_sdk::export_env!(ArmReach);
