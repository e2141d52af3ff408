//! `legged-walk`: a legged robot from a URDF walking forward (+x) on flat ground, in the
//! spirit of the PyBullet locomotion envs (Tan et al., 2018, "Sim-to-Real: Learning Agile
//! Locomotion For Quadruped Robots") — any legged robot, named by configuration
//! (`configs/a1-walk-ppo.toml` takes the Unitree A1 of pybullet_data; `docs/robots.md`).
//!
//! - The robot is loaded with a free base at `base-height` above the floor, its joints in
//!   the `ready` pose (± `reset-noise` rad); every reset restores that world exactly (a
//!   snapshot of the built world), then adds the noise.
//! - Action: one real in [-1, 1] per driven joint (clipped): a position target of
//!   `ready + action-scale × action` rad, tracked by a PD torque `kp (target − q) − kd q̇`
//!   (`pd-gains`, N·m/rad and N·m·s/rad), computed again at each of the `sim-steps` physics
//!   steps of one env step and capped by the URDF's effort limits — how a legged robot's
//!   joint controllers run at a higher rate than its policy. A non-finite action, or one
//!   beyond ±100, ends the episode *truncated* with the reason in the run log; so does a
//!   world that blows up.
//! - Observation (10 + 2·joints + feet): base height; gravity's direction in the base frame
//!   (3); base linear and angular velocity in the base frame (3, and 3 scaled by 0.25);
//!   joint positions less the ready pose, joint velocities scaled by 0.1 (the usual scales
//!   of legged-robot policies, so every input is of order 1); one 0/1 contact flag per foot.
//! - Reward per step: `forward-weight` × min(forward velocity, `target-velocity`) (m/s) +
//!   `healthy-reward` × upright (the base's up axis · world up) − `ctrl-cost` × ‖action‖²
//!   (an energy proxy) − `contact-cost` × (links other than feet touching the floor).
//! - Terminates when the base falls below `min-height` or tilts beyond `max-tilt` rad.
//! - Info features: `x-velocity` (m/s), `distance` (m forward since the reset),
//!   `average-velocity` (distance over the episode's time, m/s), `feet-contact` (the fraction
//!   of feet on the floor).
//!
//! Parameters: `robot` (granted name, default `robot`), `base` (link; default the root),
//! `feet` (comma-separated link names), `joints` (comma-separated; default every movable
//! joint), `ready` (one position per joint; default zeros), `base-height` (0.3 m),
//! `target-velocity` (1.0 m/s), `action-scale` (0.5 rad), `pd-gains` ([40, 1]),
//! `timestep` (0.02 s per env step), `sim-steps` (physics steps per env step, 4), `substeps`
//! (solver substeps per physics step, 1), `reset-noise` (0.05), `min-height`
//! (0.15 m), `max-tilt` (0.8 rad), `forward-weight` (1.0), `healthy-reward` (0.2),
//! `ctrl-cost` (0.005), `contact-cost` (0.1), `episode-steps` (500), `friction` (floor, 1.0).

use paddock_sdk::physics::{self as ph, Motor, Simulation, WorldDesc};
use paddock_sdk::space::box1d;
use paddock_sdk::types::{EnvSpec, PluginError};
use paddock_sdk::{Environment, Params, Rng, Transition, math};

const PARAMS: &[&str] = &[
    "robot",
    "base",
    "feet",
    "joints",
    "ready",
    "base-height",
    "target-velocity",
    "action-scale",
    "pd-gains",
    "sim-steps",
    "timestep",
    "substeps",
    "reset-noise",
    "min-height",
    "max-tilt",
    "forward-weight",
    "healthy-reward",
    "ctrl-cost",
    "contact-cost",
    "episode-steps",
    "friction",
];
const ACTION_SANE: f32 = 100.0;
const MAX_JOINTS: usize = 32;
const MAX_FEET: usize = 8;

fn bad(m: String) -> PluginError {
    PluginError::InvalidParams(m)
}

fn names(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[derive(Clone)]
struct Settings {
    robot: String,
    base: Option<String>,
    feet: Vec<String>,
    joints: Option<Vec<String>>,
    ready: Option<Vec<f32>>,
    base_height: f32,
    target: f64,
    scale: f32,
    gains: (f32, f32),
    timestep: f32,
    sim_steps: u32,
    substeps: u32,
    noise: f64,
    min_height: f32,
    max_tilt: f32,
    forward_weight: f64,
    healthy_reward: f64,
    ctrl_cost: f64,
    contact_cost: f64,
    friction: f32,
}

impl Settings {
    fn from(p: &Params) -> Result<Self, PluginError> {
        p.check_known(PARAMS)?;
        let non_negative = |name: &str, default: f64| p.real_if(name, default, "≥ 0", |v| v >= 0.0);
        let positive = |name: &str, default: f64| p.real_if(name, default, "> 0", |v| v > 0.0);
        let feet = names(p.text("feet")?.unwrap_or(""));
        if feet.len() > MAX_FEET {
            return Err(bad(format!("`feet` names at most {MAX_FEET} links, got {}", feet.len())));
        }
        let gains = match p.reals("pd-gains", 2)? {
            Some(&[kp, kd]) if kp > 0.0 && kd >= 0.0 && kp.is_finite() && kd.is_finite() => (kp as f32, kd as f32),
            Some(v) => return Err(bad(format!("`pd-gains` must be [kp > 0, kd ≥ 0], got {v:?}"))),
            None => (40.0, 1.0),
        };
        let ready = match p.get_reals("ready")? {
            Some(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Some(v.iter().map(|&x| x as f32).collect()),
            Some(v) => return Err(bad(format!("`ready` must be one finite position per joint, got {v:?}"))),
            None => None,
        };
        let timestep = p.real_if("timestep", 0.02, "in (0, 0.1] s", |v| v > 0.0 && v <= 0.1)? as f32;
        Ok(Settings {
            robot: p.text("robot")?.unwrap_or("robot").to_string(),
            base: p.text("base")?.map(String::from),
            feet,
            joints: p.text("joints")?.map(names),
            ready,
            base_height: positive("base-height", 0.3)? as f32,
            target: positive("target-velocity", 1.0)?,
            scale: positive("action-scale", 0.5)? as f32,
            gains,
            timestep,
            sim_steps: p.int_in("sim-steps", 4, 1..=100)? as u32,
            substeps: p.int_in("substeps", 1, 1..=100)? as u32,
            noise: non_negative("reset-noise", 0.05)?,
            min_height: non_negative("min-height", 0.15)? as f32,
            max_tilt: p.real_if("max-tilt", 0.8, "in (0, π]", |v| v > 0.0 && v <= core::f64::consts::PI)? as f32,
            forward_weight: p.real("forward-weight", 1.0)?,
            healthy_reward: p.real("healthy-reward", 0.2)?,
            ctrl_cost: non_negative("ctrl-cost", 0.005)?,
            contact_cost: non_negative("contact-cost", 0.1)?,
            friction: non_negative("friction", 1.0)? as f32,
        })
    }
}

/// The world, the handles the env reads and drives, and the world as built (resets restore it).
struct Scene {
    sim: Simulation,
    floor: u64,
    base: u64,
    joints: Vec<u64>,
    feet: Vec<u64>,
    /// Every link body of the robot (for floor contacts).
    links: Vec<u64>,
    ready: Vec<f32>,
    built: Vec<u8>,
}

fn build(s: &Settings) -> Result<Scene, PluginError> {
    let dt = s.timestep / s.sim_steps as f32;
    let sim = Simulation::new(WorldDesc { gravity: ph::v3(0.0, 0.0, -9.81), timestep: dt, substeps: s.substeps });
    let floor = sim.add_body(ph::fixed(ph::at(0.0, 0.0, -0.05))).map_err(ph::failed("add-body"))?;
    let ground = ph::ColliderDesc { friction: s.friction, ..ph::collider(ph::Shape::Cuboid(ph::v3(200.0, 200.0, 0.05)), 1.0) };
    sim.add_collider(floor, &ground).map_err(ph::failed("add-collider"))?;
    let robot = sim.load_robot(&s.robot, ph::at(0.0, 0.0, s.base_height), false).map_err(ph::failed("load-robot"))?;
    let base = match &s.base {
        Some(b) => robot.link(&s.robot, b, "`base`")?,
        None => robot.links[0].1,
    };
    let feet = s.feet.iter().map(|f| robot.link(&s.robot, f, "`feet`")).collect::<Result<Vec<_>, _>>()?;
    let movable: Vec<&str> = robot.joints.iter().map(|(n, _)| n.as_str()).collect();
    let joint_names: Vec<String> = s.joints.clone().unwrap_or_else(|| movable.iter().map(|n| n.to_string()).collect());
    if joint_names.is_empty() || joint_names.len() > MAX_JOINTS {
        return Err(bad(format!("the env drives 1 to {MAX_JOINTS} joints; robot `{}` gives {}", s.robot, joint_names.len())));
    }
    let joints = joint_names.iter().map(|n| robot.joint(&s.robot, n)).collect::<Result<Vec<_>, _>>()?;
    let ready = match &s.ready {
        Some(r) if r.len() == joints.len() => r.clone(),
        Some(r) => return Err(bad(format!("`ready` has {} positions for {} joints ({joint_names:?})", r.len(), joints.len()))),
        None => vec![0.0; joints.len()],
    };
    for (&j, &q) in joints.iter().zip(&ready) {
        sim.set_joint_state(j, q, 0.0).map_err(ph::failed("set-joint-state"))?;
    }
    let links = robot.links.iter().map(|(_, h)| *h).collect();
    let built = sim.snapshot();
    Ok(Scene { sim, floor, base, joints, feet, links, ready, built })
}

/// What the env reads from the world after each step.
#[derive(Clone, Default)]
struct Readout {
    height: f32,
    x: f32,
    /// Gravity's direction in the base frame.
    gravity: [f32; 3],
    linear: [f32; 3],
    angular: [f32; 3],
    /// World-frame forward velocity.
    vx: f32,
    q: Vec<f32>,
    qd: Vec<f32>,
    feet: Vec<bool>,
    /// Links other than feet touching the floor.
    other_contacts: u32,
}

/// One legged robot in its own world.
pub struct LeggedWalk {
    settings: Settings,
    scene: Scene,
    now: Readout,
    start_x: f32,
    steps: u32,
    broken: Option<String>,
}

impl LeggedWalk {
    fn read(&mut self) -> Result<(), PluginError> {
        let sc = &self.scene;
        let pose = sc.sim.pose(sc.base).map_err(ph::failed("pose"))?;
        let (lin, ang) = sc.sim.velocity(sc.base).map_err(ph::failed("velocity"))?;
        let states = sc.sim.joint_states(&sc.joints).map_err(ph::failed("joint-states"))?;
        let q_rot = pose.rotation;
        let mut r = Readout {
            height: pose.translation.z,
            x: pose.translation.x,
            gravity: ph::rotate_inverse(q_rot, [0.0, 0.0, -1.0]),
            linear: ph::rotate_inverse(q_rot, [lin.x, lin.y, lin.z]),
            angular: ph::rotate_inverse(q_rot, [ang.x, ang.y, ang.z]),
            vx: lin.x,
            q: states.iter().zip(&sc.ready).map(|(s, r)| s.position - r).collect(),
            qd: states.iter().map(|s| s.velocity).collect(),
            feet: vec![false; sc.feet.len()],
            other_contacts: 0,
        };
        for c in sc.sim.contacts() {
            let other = if c.body_a == sc.floor {
                c.body_b
            } else if c.body_b == sc.floor {
                c.body_a
            } else {
                continue;
            };
            if let Some(i) = sc.feet.iter().position(|&f| f == other) {
                r.feet[i] = true;
            } else if sc.links.contains(&other) {
                r.other_contacts += 1;
            }
        }
        let finite = [r.height, r.x, r.vx].iter().chain(&r.linear).chain(&r.angular).chain(&r.q).chain(&r.qd).all(|v| v.is_finite());
        if finite {
            self.now = r;
        } else {
            self.broken = Some(format!("the simulation produced a non-finite state (base height {}, x {})", r.height, r.x));
        }
        Ok(())
    }

    /// The base's up axis · world up (1 upright, 0 on its side).
    fn upright(&self) -> f32 {
        -self.now.gravity[2]
    }

    fn fallen(&self) -> bool {
        self.now.height < self.settings.min_height || self.upright() < math::cosf(self.settings.max_tilt)
    }

    fn obs_len(joints: usize, feet: usize) -> usize {
        10 + 2 * joints + feet
    }

    fn distance(&self) -> f32 {
        self.now.x - self.start_x
    }
}

impl Environment for LeggedWalk {
    fn spec(params: &Params) -> Result<EnvSpec, PluginError> {
        let s = Settings::from(params)?;
        // The joint count is the robot's unless named: load it to count.
        let joints = match &s.joints {
            Some(j) => j.len(),
            None => build(&s)?.joints.len(),
        };
        let n = Self::obs_len(joints, s.feet.len());
        let mut low = vec![f32::NEG_INFINITY; n];
        let mut high = vec![f32::INFINITY; n];
        for i in n - s.feet.len()..n {
            (low[i], high[i]) = (0.0, 1.0);
        }
        Ok(EnvSpec {
            id: "LeggedWalk-v0".into(),
            observation_space: box1d(&low, &high),
            action_space: box1d(&vec![-1.0; joints], &vec![1.0; joints]),
            max_episode_steps: Some(params.int_in("episode-steps", 500, 1..=100_000)? as u32),
            info_features: vec!["x-velocity".into(), "distance".into(), "average-velocity".into(), "feet-contact".into()],
            reward_threshold: None,
            max_envs_per_instance: 256,
            supports_snapshot: true,
        })
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let settings = Settings::from(params)?;
        let scene = build(&settings)?;
        Ok(LeggedWalk { settings, scene, now: Readout::default(), start_x: 0.0, steps: 0, broken: None })
    }

    fn reset(&mut self, rng: &mut Rng, options: &Params) -> Result<(), PluginError> {
        options.check_known(&[])?;
        if self.broken.take().is_some() {
            self.scene = build(&self.settings)?;
        }
        let sc = &self.scene;
        sc.sim.restore(&sc.built).map_err(ph::failed("restore"))?;
        let noise = self.settings.noise;
        for (&j, &q) in sc.joints.iter().zip(&sc.ready) {
            let dq = if noise > 0.0 { rng.uniform(-noise, noise) as f32 } else { 0.0 };
            sc.sim.set_joint_state(j, q + dq, 0.0).map_err(ph::failed("set-joint-state"))?;
        }
        self.steps = 0;
        self.read()?;
        self.start_x = self.now.x;
        Ok(())
    }

    fn step(&mut self, action: &[f32], _rng: &mut Rng) -> Result<Transition, PluginError> {
        if let Some(b) = action.iter().find(|a| !a.is_finite() || a.abs() > ACTION_SANE) {
            self.broken = Some(format!("action {action:?} has {b}, not a joint command (finite, within ±{ACTION_SANE})"));
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let s = &self.settings;
        let clipped: Vec<f32> = action.iter().map(|a| a.clamp(-1.0, 1.0)).collect();
        let targets: Vec<f32> = self.scene.ready.iter().zip(&clipped).map(|(r, a)| r + s.scale * a).collect();
        let sc = &self.scene;
        for _ in 0..s.sim_steps {
            let pd = sc.sim.joint_states(&sc.joints).map(|states| {
                sc.joints
                    .iter()
                    .zip(&states)
                    .zip(&targets)
                    .map(|((&j, st), &t)| (j, Motor::Effort(s.gains.0 * (t - st.position) - s.gains.1 * st.velocity)))
                    .collect::<Vec<_>>()
            });
            if let Err(e) = pd.and_then(|m| sc.sim.set_motors(&m)).and_then(|()| sc.sim.step(1)) {
                self.broken = Some(format!("action {action:?} could not be simulated: {e}"));
                return Ok(Transition { reward: 0.0, terminated: false });
            }
        }
        self.steps += 1;
        self.read()?;
        if self.broken.is_some() {
            return Ok(Transition { reward: 0.0, terminated: false });
        }
        let s = &self.settings;
        let forward = f64::from(self.now.vx).min(s.target);
        let effort: f64 = clipped.iter().map(|a| f64::from(a * a)).sum();
        let fallen = self.fallen();
        let healthy = if fallen { 0.0 } else { s.healthy_reward * f64::from(self.upright()) };
        let reward = s.forward_weight * forward + healthy - s.ctrl_cost * effort - s.contact_cost * f64::from(self.now.other_contacts);
        Ok(Transition { reward, terminated: fallen })
    }

    fn observe(&self, out: &mut [f32]) {
        let r = &self.now;
        out[0] = r.height;
        out[1..4].copy_from_slice(&r.gravity);
        out[4..7].copy_from_slice(&r.linear);
        for (o, w) in out[7..10].iter_mut().zip(&r.angular) {
            *o = 0.25 * w;
        }
        let n = r.q.len();
        out[10..10 + n].copy_from_slice(&r.q);
        for (o, v) in out[10 + n..10 + 2 * n].iter_mut().zip(&r.qd) {
            *o = 0.1 * v;
        }
        for (o, &f) in out[10 + 2 * n..].iter_mut().zip(&r.feet) {
            *o = if f { 1.0 } else { 0.0 };
        }
    }

    fn infos(&self, out: &mut [f64]) {
        let d = f64::from(self.distance());
        let elapsed = f64::from(self.steps) * f64::from(self.settings.timestep);
        out[0] = f64::from(self.now.vx);
        out[1] = d;
        out[2] = if elapsed > 0.0 { d / elapsed } else { 0.0 };
        let feet = self.now.feet.len().max(1) as f64;
        out[3] = self.now.feet.iter().filter(|f| **f).count() as f64 / feet;
    }

    fn truncation(&mut self) -> Option<String> {
        self.broken.clone()
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), PluginError> {
        ph::save_snapshot(&self.scene.sim, &[self.start_x, self.steps as f32], out);
        Ok(())
    }

    fn load(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let mut head = [0.0f32; 2];
        ph::load_snapshot(&self.scene.sim, state, &mut head, "legged-walk")?;
        self.start_x = head[0];
        self.steps = head[1] as u32;
        self.broken = None;
        self.read()
    }
}

paddock_sdk::export_env!(LeggedWalk);
