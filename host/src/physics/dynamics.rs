//! What a robot file says of its joints beyond their kinematics: damping, Coulomb friction,
//! velocity and effort limits ([`JointDynamics`]) and mimic joints (a gripper's second finger follows the
//! first). Set by the URDF importer; static parts of a world, like its shapes, so snapshots do
//! not carry them (an env rebuilds its world from the same file before it restores one).

use super::{JointKind, Link, Motor, Res, Simulation, desc, finite};

/// One joint's dynamics (URDF `<dynamics damping friction>`, `<limit velocity effort>`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointDynamics {
    /// Viscous damping, N·m·s/rad or N·s/m: a force against the joint's velocity.
    pub damping: f32,
    /// Coulomb (dry) friction, N·m or N: a force of at most this against the joint's motion,
    /// which holds the joint still below it (rapier's multibody joint friction, MuJoCo's
    /// `frictionloss`), whatever drives the joint.
    pub friction: f32,
    /// Largest speed a velocity motor is asked for, rad/s or m/s (∞: none).
    pub max_velocity: f32,
    /// Largest effort an effort motor applies, N·m or N (∞: none).
    pub max_effort: f32,
}

impl Default for JointDynamics {
    fn default() -> Self {
        JointDynamics { damping: 0.0, friction: 0.0, max_velocity: f32::INFINITY, max_effort: f32::INFINITY }
    }
}

/// A joint that follows another: `position = multiplier × leader + offset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Mimic {
    follower: u64,
    leader: u64,
    multiplier: f32,
    offset: f32,
}

/// Gains of the position motor that makes a mimic joint follow its leader (acceleration
/// based: 1/s² and 1/s, independent of the link's mass; those a two-finger gripper uses).
const MIMIC_GAINS: (f32, f32) = (400.0, 40.0);

impl Simulation {
    /// Sets a joint's damping and limits.
    pub fn set_joint_dynamics(&mut self, h: u64, d: JointDynamics) -> Res<()> {
        let j = *self.joint(h)?;
        finite("joint damping and friction", &[d.damping, d.friction])?;
        let positive = |v: f32| v > 0.0;
        if d.damping < 0.0 || d.friction < 0.0 || !positive(d.max_velocity) || !positive(d.max_effort) {
            return Err(desc(format!("joint {h}: damping and friction must be ≥ 0 and the velocity and effort limits > 0, got {d:?}")));
        }
        if let Link::Multibody(mh) = j.link
            && matches!(j.kind, JointKind::Revolute | JointKind::Prismatic)
            && let Some((mb, id)) = self.world.multibody_joints.get_mut(mh)
            && let Some(link) = mb.link(id)
        {
            let start = link.assembly_id();
            mb.damping_mut()[start] = d.damping;
            mb.frictions_mut()[start] = d.friction;
        }
        let n = self.joints.len();
        self.dynamics.resize(n, JointDynamics::default());
        self.dynamics[h as usize] = d;
        Ok(())
    }

    /// The dynamics of joint `h` (defaults when none were set).
    pub fn joint_dynamics(&self, h: u64) -> JointDynamics {
        self.dynamics.get(h as usize).copied().unwrap_or_default()
    }

    /// Makes joint `follower` follow joint `leader` (both revolute or both prismatic).
    pub fn add_mimic(&mut self, follower: u64, leader: u64, multiplier: f32, offset: f32) -> Res<()> {
        let (f, l) = (*self.joint(follower)?, *self.joint(leader)?);
        finite("mimic multiplier and offset", &[multiplier, offset])?;
        if follower == leader || f.kind != l.kind || !matches!(f.kind, JointKind::Revolute | JointKind::Prismatic) {
            return Err(desc(format!(
                "a mimic joint follows another joint of its kind (revolute or prismatic): {follower} ({:?}) cannot follow {leader} ({:?})",
                f.kind, l.kind
            )));
        }
        self.mimics.push(Mimic { follower, leader, multiplier, offset });
        Ok(())
    }

    /// Points each mimic joint's motor at where its leader will be after this step, moving
    /// at the leader's speed (a position motor with a velocity feed-forward: no lag).
    pub(super) fn drive_mimics(&mut self) -> Res<()> {
        let dt = self.timestep;
        for i in 0..self.mimics.len() {
            let m = self.mimics[i];
            let leader = self.joint_states(&[m.leader])?[0];
            let ax = super::axis_of(self.joint(m.follower)?.kind).ok_or_else(|| desc("a mimic joint has one axis"))?;
            let (kp, kd) = MIMIC_GAINS;
            let target = m.multiplier * (leader.position + leader.velocity * dt) + m.offset;
            let g = self.generic_mut(m.follower)?;
            g.set_motor_model(ax, rapier3d::prelude::MotorModel::AccelerationBased);
            g.set_motor(ax, target, m.multiplier * leader.velocity, kp, kd);
            g.set_motor_max_force(ax, super::MAX_MOTOR);
            self.joints[m.follower as usize].effort = 0.0;
        }
        Ok(())
    }

    /// `m` within joint `h`'s limits: a velocity motor's target within its velocity limit, an
    /// effort within its effort limit.
    pub(super) fn limited(&self, h: u64, m: Motor) -> Motor {
        let d = self.joint_dynamics(h);
        match m {
            Motor::Velocity(v, gain) => Motor::Velocity(v.clamp(-d.max_velocity, d.max_velocity), gain),
            Motor::Effort(e) => Motor::Effort(e.clamp(-d.max_effort, d.max_effort)),
            other => other,
        }
    }
}
