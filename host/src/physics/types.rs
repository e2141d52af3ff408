//! The descriptions a [`super::Simulation`] takes and the readouts it gives, mirroring the
//! WIT `physics` records.

use rapier3d::prelude::*;
use serde::{Deserialize, Serialize};

/// Kinds of joints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JointKind {
    /// One rotation about the axis.
    Revolute,
    /// One translation along the axis.
    Prismatic,
    /// Three rotations.
    Spherical,
    /// None.
    Fixed,
}

/// A motor (mirrors the WIT `motor`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Motor {
    /// No motor.
    Off,
    /// Target position, stiffness, damping.
    Position(f32, f32, f32),
    /// Target velocity, damping factor.
    Velocity(f32, f32),
    /// A direct torque or force.
    Effort(f32),
}

/// Joint position, velocity and applied effort.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointState {
    /// rad or m.
    pub position: f32,
    /// rad/s or m/s.
    pub velocity: f32,
    /// N·m or N.
    pub applied: f32,
}

/// A contact after the last step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contact {
    /// First body.
    pub body_a: u64,
    /// Second body.
    pub body_b: u64,
    /// A contact point, world coordinates.
    pub point: Vector,
    /// Normal from a to b.
    pub normal: Vector,
    /// Normal force, N.
    pub normal_force: f32,
}

/// A collision shape.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeDesc {
    /// Radius.
    Ball(f32),
    /// Half-extents.
    Cuboid(Vector),
    /// Half-height, radius (along Y).
    Capsule(f32, f32),
    /// Half-height, radius (along Y).
    Cylinder(f32, f32),
    /// Points.
    ConvexHull(Vec<Vector>),
}

/// Body kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Never moves.
    Fixed,
    /// Forces and contacts move it.
    Dynamic,
    /// Moved by its next pose.
    KinematicPosition,
    /// Moved by its velocity.
    KinematicVelocity,
}

/// A body description.
#[derive(Clone, Copy, Debug)]
pub struct BodyDesc {
    /// Kind.
    pub kind: BodyKind,
    /// Initial pose.
    pub pose: Pose,
    /// Linear damping.
    pub linear_damping: f32,
    /// Angular damping.
    pub angular_damping: f32,
    /// Gravity multiplier.
    pub gravity_scale: f32,
    /// May sleep.
    pub can_sleep: bool,
}

/// A collider description.
#[derive(Clone, Debug)]
pub struct ColliderDesc {
    /// Shape.
    pub shape: ShapeDesc,
    /// Pose relative to the body.
    pub local_pose: Pose,
    /// Friction.
    pub friction: f32,
    /// Restitution.
    pub restitution: f32,
    /// Density.
    pub density: f32,
    /// Group memberships.
    pub memberships: u32,
    /// Group filter.
    pub filter: u32,
}

/// A joint description.
#[derive(Clone, Copy, Debug)]
pub struct JointDesc {
    /// Kind.
    pub kind: JointKind,
    /// Parent body handle.
    pub parent: u64,
    /// Child body handle.
    pub child: u64,
    /// Joint frame in the parent's coordinates.
    pub parent_anchor: Pose,
    /// Joint frame in the child's coordinates.
    pub child_anchor: Pose,
    /// Axis in the joint frame.
    pub axis: Vector,
    /// Position limits.
    pub limits: Option<(f32, f32)>,
    /// A multibody link rather than an impulse joint.
    pub multibody: bool,
}
