//! Rigid-body physics for env plugins: the host side of the `physics` interface over
//! rapier3d 0.36 (`PhysicsWorld`), built with rapier's enhanced determinism so the same
//! actions give bit-identical trajectories.
//!
//! One [`Simulation`] per env: bodies, colliders (ball, cuboid, capsule, cylinder, convex
//! hull), joints — impulse joints or reduced-coordinate multibody links, whose two bodies do
//! not collide with each other — with limits and motors (position/velocity targets with
//! stiffness/damping, acceleration-based as rapier recommends, so gains do not depend on the
//! link's mass; or a direct effort applied as equal and opposite forces/torques on the two
//! bodies), URDF robots ([`urdf`]), readouts (poses, velocities, joint
//! positions/velocities/efforts, contacts with normal forces, ray casts), and whole-world
//! snapshots (bincode of the serialisable state) for exact resume.
//!
//! Handles: a body or collider handle packs rapier's index and generation into a `u64`; a
//! joint handle indexes this simulation's joint table (so one handle space covers impulse and
//! multibody joints). Every non-finite input is refused, and a step that produces a
//! non-finite pose or velocity reports `diverged` — a blown-up world never hands NaN on.

pub mod camera;
mod dynamics;
mod motors;
mod readout;
mod snapshot;
pub use crate::spaces::Channels;
pub use camera::{CameraDesc, look_at};
pub use dynamics::JointDynamics;
pub mod mesh;
pub mod render;
mod types;
pub mod urdf;
mod visual;
pub use types::{BodyDesc, BodyKind, ColliderDesc, Contact, JointDesc, JointKind, JointState, Motor, ShapeDesc};

use rapier3d::prelude::*;
use serde::{Deserialize, Serialize};

/// Errors of physics calls (mirrors the WIT `physics-error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PhysicsError {
    /// A handle that names nothing live.
    #[error("handle {0} names nothing in this world")]
    InvalidHandle(u64),
    /// An invalid description; the text says which field.
    #[error("{0}")]
    InvalidDesc(String),
    /// A robot could not be loaded.
    #[error("{0}")]
    Robot(String),
    /// The simulation produced a non-finite value.
    #[error("the simulation diverged: {0}")]
    Diverged(String),
    /// Snapshot bytes that do not decode.
    #[error("bad snapshot: {0}")]
    BadSnapshot(String),
}

type Res<T> = Result<T, PhysicsError>;

fn desc(msg: impl Into<String>) -> PhysicsError {
    PhysicsError::InvalidDesc(msg.into())
}

/// Checks that every value is finite, naming `what`.
fn finite(what: &str, v: &[f32]) -> Res<()> {
    if v.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(desc(format!("{what} holds a non-finite value: {v:?}"))) }
}

/// A vector from WIT-like parts.
pub fn vec3(x: f32, y: f32, z: f32) -> Vector {
    Vector::new(x, y, z)
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Link {
    Impulse(ImpulseJointHandle),
    Multibody(MultibodyJointHandle),
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct JointEntry {
    kind: JointKind,
    link: Link,
    parent: RigidBodyHandle,
    child: RigidBodyHandle,
    /// Joint frames in each body's coordinates.
    frame1: Pose,
    frame2: Pose,
    /// The joint axis in the joint frame.
    axis: Vector,
    effort: f32,
    /// Effort applied in the last step (for readouts).
    applied: f32,
}

/// What a snapshot holds.
#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    world: PhysicsWorld,
    joints: Vec<JointEntry>,
    substeps: u32,
    timestep: f32,
}

/// 2: `substeps` are rapier's solver substeps within one step (1 ran `substeps` whole steps).
const SNAPSHOT_VERSION: u32 = 2;

/// The largest motor value (target, gain, force) accepted: beyond it the solver's arithmetic
/// overflows.
pub const MAX_MOTOR: f32 = 1e9;

/// One simulated world.
pub struct Simulation {
    world: PhysicsWorld,
    joints: Vec<JointEntry>,
    substeps: u32,
    timestep: f32,
    /// Per joint handle: damping and limits from a robot file (not in snapshots).
    dynamics: Vec<JointDynamics>,
    /// Joints that follow others (not in snapshots).
    mimics: Vec<dynamics::Mimic>,
    /// What the robots look like (not in snapshots).
    visuals: Vec<visual::Visual>,
    /// Visuals that could not be kept.
    visual_problems: Vec<String>,
    /// Cameras, body colours and what rendering keeps (not in snapshots).
    cams: camera::Cameras,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Simulation({} bodies, {} joints)", self.world.bodies.len(), self.joints.len())
    }
}

fn pack(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

fn unpack(h: u64) -> (u32, u32) {
    (h as u32, (h >> 32) as u32)
}

/// A body handle as the interface carries it.
pub fn body_id(h: RigidBodyHandle) -> u64 {
    let (i, g) = h.into_raw_parts();
    pack(i, g)
}

fn axis_of(kind: JointKind) -> Option<JointAxis> {
    match kind {
        JointKind::Revolute => Some(JointAxis::AngX),
        JointKind::Prismatic => Some(JointAxis::LinX),
        _ => None,
    }
}

impl Simulation {
    /// An empty world: gravity, timestep (s) and solver substeps per step.
    pub fn new(gravity: Vector, timestep: f32, substeps: u32) -> Res<Self> {
        finite("world-desc.gravity", &[gravity.x, gravity.y, gravity.z])?;
        if !(timestep.is_finite() && timestep > 0.0 && timestep <= 1.0) {
            return Err(desc(format!("world-desc.timestep must be in (0, 1] s, got {timestep}")));
        }
        if substeps == 0 || substeps > 1000 {
            return Err(desc(format!("world-desc.substeps must be 1 to 1000, got {substeps}")));
        }
        let mut world = PhysicsWorld { gravity, ..PhysicsWorld::default() };
        // One rapier step per `step`, split by its TGS solver into `substeps` substeps (each
        // recomputes the multibodies' mass matrices and integrates, but collision detection
        // runs once per step).
        world.integration_parameters.dt = timestep;
        world.integration_parameters.num_solver_iterations = substeps as usize;
        // Four constraint-solver passes per substep (rapier's default is one): the joint motors
        // of a robot arm are coupled through its mass matrix, and one pass left a 7-DOF arm's
        // velocity motors ~40% off their targets and drifting after a stop command. The
        // passes are cheap next to a substep (which recomputes the mass matrices).
        world.integration_parameters.num_internal_pgs_iterations = 4;
        Ok(Simulation {
            world,
            joints: Vec::new(),
            substeps,
            timestep,
            dynamics: Vec::new(),
            mimics: Vec::new(),
            visuals: Vec::new(),
            visual_problems: Vec::new(),
            cams: camera::Cameras::default(),
        })
    }

    fn body_handle(&self, h: u64) -> Res<RigidBodyHandle> {
        let (i, g) = unpack(h);
        let handle = RigidBodyHandle::from_raw_parts(i, g);
        if self.world.bodies.contains(handle) { Ok(handle) } else { Err(PhysicsError::InvalidHandle(h)) }
    }

    fn body(&self, h: u64) -> Res<&RigidBody> {
        let handle = self.body_handle(h)?;
        self.world.bodies.get(handle).ok_or(PhysicsError::InvalidHandle(h))
    }

    fn body_mut(&mut self, h: u64) -> Res<&mut RigidBody> {
        let handle = self.body_handle(h)?;
        self.world.bodies.get_mut(handle).ok_or(PhysicsError::InvalidHandle(h))
    }

    fn joint(&self, h: u64) -> Res<&JointEntry> {
        self.joints.get(h as usize).ok_or(PhysicsError::InvalidHandle(h))
    }

    /// Adds a rigid body.
    pub fn add_body(&mut self, d: BodyDesc) -> Res<u64> {
        check_pose("body-desc.pose", &d.pose)?;
        finite("body-desc damping/gravity-scale", &[d.linear_damping, d.angular_damping, d.gravity_scale])?;
        if d.linear_damping < 0.0 || d.angular_damping < 0.0 {
            return Err(desc("body-desc damping must not be negative"));
        }
        let b = match d.kind {
            BodyKind::Fixed => RigidBodyBuilder::fixed(),
            BodyKind::Dynamic => RigidBodyBuilder::dynamic(),
            BodyKind::KinematicPosition => RigidBodyBuilder::kinematic_position_based(),
            BodyKind::KinematicVelocity => RigidBodyBuilder::kinematic_velocity_based(),
        }
        .pose(d.pose)
        .linear_damping(d.linear_damping)
        .angular_damping(d.angular_damping)
        .gravity_scale(d.gravity_scale)
        .can_sleep(d.can_sleep);
        Ok(body_id(self.world.insert_body(b)))
    }

    /// Attaches a collider.
    pub fn add_collider(&mut self, body: u64, d: ColliderDesc) -> Res<u64> {
        let parent = self.body_handle(body)?;
        check_pose("collider-desc.local-pose", &d.local_pose)?;
        finite("collider-desc friction/restitution/density", &[d.friction, d.restitution, d.density])?;
        if d.friction < 0.0 || !(0.0..=1.0).contains(&d.restitution) || d.density < 0.0 {
            return Err(desc("collider-desc: friction and density must be ≥ 0, restitution in [0, 1]"));
        }
        let positive = |what: &str, v: &[f32]| -> Res<()> {
            finite(what, v)?;
            if v.iter().all(|&x| x > 0.0) { Ok(()) } else { Err(desc(format!("{what} must be positive, got {v:?}"))) }
        };
        let builder = match &d.shape {
            ShapeDesc::Ball(r) => {
                positive("shape.ball radius", &[*r])?;
                ColliderBuilder::ball(*r)
            }
            ShapeDesc::Cuboid(h) => {
                positive("shape.cuboid half-extents", &[h.x, h.y, h.z])?;
                ColliderBuilder::cuboid(h.x, h.y, h.z)
            }
            ShapeDesc::Capsule(hh, r) => {
                positive("shape.capsule half-height and radius", &[*hh, *r])?;
                ColliderBuilder::capsule_y(*hh, *r)
            }
            ShapeDesc::Cylinder(hh, r) => {
                positive("shape.cylinder half-height and radius", &[*hh, *r])?;
                ColliderBuilder::cylinder(*hh, *r)
            }
            ShapeDesc::ConvexHull(points) => {
                for p in points {
                    finite("shape.convex-hull point", &[p.x, p.y, p.z])?;
                }
                ColliderBuilder::convex_hull(points)
                    .ok_or_else(|| desc(format!("shape.convex-hull: {} points span no volume", points.len())))?
            }
        };
        let c = builder.position(d.local_pose).friction(d.friction).restitution(d.restitution).density(d.density).collision_groups(
            InteractionGroups::new(Group::from_bits_truncate(d.memberships), Group::from_bits_truncate(d.filter), InteractionTestMode::And),
        );
        let h = self.world.insert_collider(c, Some(parent));
        let (i, g) = h.into_raw_parts();
        Ok(pack(i, g))
    }

    /// Joins two bodies.
    pub fn add_joint(&mut self, d: JointDesc) -> Res<u64> {
        let parent = self.body_handle(d.parent)?;
        let child = self.body_handle(d.child)?;
        if parent == child {
            return Err(desc("joint-desc: parent and child are the same body"));
        }
        check_pose("joint-desc.parent-anchor", &d.parent_anchor)?;
        check_pose("joint-desc.child-anchor", &d.child_anchor)?;
        finite("joint-desc.axis", &[d.axis.x, d.axis.y, d.axis.z])?;
        let axis = d.axis.try_normalize().filter(|_| axis_of(d.kind).is_some() || d.axis.length() > 0.0);
        let axis = match (axis_of(d.kind), axis) {
            (Some(_), None) => return Err(desc("joint-desc.axis must be a non-zero vector for revolute and prismatic joints")),
            (_, a) => a.unwrap_or(Vector::X),
        };
        let mask = match d.kind {
            JointKind::Revolute => JointAxesMask::LOCKED_REVOLUTE_AXES,
            JointKind::Prismatic => JointAxesMask::LOCKED_PRISMATIC_AXES,
            JointKind::Spherical => JointAxesMask::LOCKED_SPHERICAL_AXES,
            JointKind::Fixed => JointAxesMask::LOCKED_FIXED_AXES,
        };
        // Each body's joint frame is its anchor turned so that X is `axis` (given in the joint
        // frame): the same turn on both sides, so at position 0 the child sits at
        // parent · parent-anchor · child-anchor⁻¹ exactly. (Completing each side's frame from
        // its own axis alone would leave a twist about the axis wherever an anchor is rotated:
        // URDF joints with `rpy` origins got their zero, limits and pose off by it.)
        let turn = GenericJoint::complete_ang_frame(axis);
        let mut b = GenericJointBuilder::new(mask)
            .local_frame1(Pose::from_parts(d.parent_anchor.translation, d.parent_anchor.rotation * turn))
            .local_frame2(Pose::from_parts(d.child_anchor.translation, d.child_anchor.rotation * turn));
        if let Some((lo, hi)) = d.limits {
            finite("joint-desc.limits", &[lo, hi])?;
            if lo > hi {
                return Err(desc(format!("joint-desc.limits: lower {lo} above upper {hi}")));
            }
            let Some(ax) = axis_of(d.kind) else { return Err(desc("joint-desc.limits apply to revolute and prismatic joints only")) };
            b = b.limits(ax, [lo, hi]);
        }
        // Two jointed bodies never collide with each other (their shapes meet at the joint).
        let joint = b.contacts_enabled(false).build();
        let (frame1, frame2) = (joint.local_frame1, joint.local_frame2);
        let link = if d.multibody {
            let h = self
                .world
                .insert_multibody_joint(parent, child, joint)
                .ok_or_else(|| desc("joint-desc: this multibody link would close a loop (a body can have one multibody parent)"))?;
            // rapier gives multibody angular dofs a default damping (0.1); a joint here has no
            // friction or damping of its own unless a motor asks for it.
            if let Some((mb, id)) = self.world.multibody_joints.get_mut(h)
                && let Some(link) = mb.link(id)
            {
                let (start, n) = (link.assembly_id(), link.joint().ndofs());
                mb.damping_mut().rows_mut(start, n).fill(0.0);
            }
            Link::Multibody(h)
        } else {
            Link::Impulse(self.world.insert_impulse_joint(parent, child, joint))
        };
        self.joints.push(JointEntry { kind: d.kind, link, parent, child, frame1, frame2, axis, effort: 0.0, applied: 0.0 });
        Ok(self.joints.len() as u64 - 1)
    }

    /// Adds a force at a body's centre of mass for the next step.
    pub fn apply_force(&mut self, body: u64, f: Vector) -> Res<()> {
        finite("apply-force", &[f.x, f.y, f.z])?;
        self.body_mut(body)?.add_force(f, true);
        Ok(())
    }

    /// Adds a torque for the next step.
    pub fn apply_torque(&mut self, body: u64, t: Vector) -> Res<()> {
        finite("apply-torque", &[t.x, t.y, t.z])?;
        self.body_mut(body)?.add_torque(t, true);
        Ok(())
    }

    /// Teleports a body.
    pub fn set_pose(&mut self, body: u64, pose: Pose) -> Res<()> {
        check_pose("set-pose", &pose)?;
        self.body_mut(body)?.set_position(pose, true);
        Ok(())
    }

    /// Sets a body's velocities.
    pub fn set_velocity(&mut self, body: u64, linear: Vector, angular: Vector) -> Res<()> {
        finite("set-velocity", &[linear.x, linear.y, linear.z, angular.x, angular.y, angular.z])?;
        let b = self.body_mut(body)?;
        b.set_linvel(linear, true);
        b.set_angvel(angular, true);
        Ok(())
    }

    /// Sets one joint's position and velocity (resets): a multibody link through its
    /// generalized coordinates, an impulse joint by placing the child relative to the parent.
    pub fn set_joint_state(&mut self, h: u64, position: f32, velocity: f32) -> Res<()> {
        finite("set-joint-state", &[position, velocity])?;
        let j = *self.joint(h)?;
        let Some(ax) = axis_of(j.kind) else { return Err(desc(format!("joint {h} is {:?}: it has no single coordinate to set", j.kind))) };
        match j.link {
            Link::Multibody(mh) => {
                let (mb, id) = self.world.multibody_joints.get_mut(mh).ok_or(PhysicsError::InvalidHandle(h))?;
                let link = mb.link(id).ok_or(PhysicsError::InvalidHandle(h))?;
                let (asm, current) = (link.assembly_id(), link.joint().coords()[ax as usize]);
                let mut disp = vec![0.0; mb.ndofs()];
                disp[asm] = position - current;
                mb.apply_displacements(&disp);
                mb.generalized_velocity_mut()[asm] = velocity;
                // The root pose from its body: a free base stays where it is.
                mb.forward_kinematics(&self.world.bodies, true);
                mb.update_rigid_bodies(&mut self.world.bodies, false);
            }
            Link::Impulse(_) => {
                let parent = *self.world.bodies[j.parent].position();
                let motion = match j.kind {
                    JointKind::Revolute => Pose::from_parts(Vector::ZERO, Rotation::from_axis_angle(Vector::X, position)),
                    _ => Pose::from_translation(Vector::X * position),
                };
                // child = parent · frame1 · motion · frame2⁻¹
                let child = parent * j.frame1 * motion * j.frame2.inverse();
                let axis = self.world_axis(&j);
                let pv = (self.world.bodies[j.parent].linvel(), self.world.bodies[j.parent].angvel());
                let b = &mut self.world.bodies[j.child];
                b.set_position(child, true);
                match j.kind {
                    JointKind::Revolute => {
                        b.set_angvel(pv.1 + axis * velocity, true);
                        b.set_linvel(pv.0, true);
                    }
                    _ => {
                        b.set_linvel(pv.0 + axis * velocity, true);
                        b.set_angvel(pv.1, true);
                    }
                }
            }
        }
        Ok(())
    }

    /// Advances `steps` timesteps; `Diverged` when a body's state is no longer finite or
    /// absurdly large.
    pub fn step(&mut self, steps: u32) -> Res<()> {
        self.cams.stepped = true;
        for _ in 0..steps {
            self.drive_mimics()?;
            self.apply_efforts();
            // rapier asserts on some degenerate inputs; a panic here must not take the
            // host down with the plugin's call.
            let world = &mut self.world;
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.step())) {
                let what =
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                return Err(PhysicsError::Diverged(format!("the physics engine failed: {what}")));
            }
            for (_, b) in self.world.bodies.iter_mut() {
                b.reset_forces(false);
                b.reset_torques(false);
            }
            for (h, b) in self.world.bodies.iter() {
                let (t, v, w) = (b.translation(), b.linvel(), b.angvel());
                let all = [t.x, t.y, t.z, v.x, v.y, v.z, w.x, w.y, w.z];
                if all.iter().any(|x| !x.is_finite() || x.abs() > 1e6) {
                    return Err(PhysicsError::Diverged(format!(
                        "body {} reached position {t:?}, velocity {v:?}, angular velocity {w:?}",
                        body_id(h)
                    )));
                }
            }
        }
        Ok(())
    }
}

fn wrap_angle(a: f32) -> f32 {
    let two_pi = std::f32::consts::TAU;
    let mut a = a % two_pi;
    if a > std::f32::consts::PI {
        a -= two_pi;
    } else if a < -std::f32::consts::PI {
        a += two_pi;
    }
    a
}

fn check_pose(what: &str, p: &Pose) -> Res<()> {
    let (t, r) = (p.translation, p.rotation);
    finite(what, &[t.x, t.y, t.z, r.x, r.y, r.z, r.w])?;
    if (r.length() - 1.0).abs() > 1e-3 {
        return Err(desc(format!("{what}: the rotation is not a unit quaternion (length {})", r.length())));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
