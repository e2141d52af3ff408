//! What drives a joint: its motor (position, velocity or effort, within the joint's limits,
//! [`super::dynamics`]) and the efforts applied as equal and opposite forces each substep.

use super::{JointEntry, JointKind, Link, MAX_MOTOR, Motor, PhysicsError, Res, Simulation, axis_of, desc, finite};
use rapier3d::prelude::*;

impl Simulation {
    pub(super) fn generic_mut(&mut self, h: u64) -> Res<&mut GenericJoint> {
        let link = self.joint(h)?.link;
        match link {
            Link::Impulse(ih) => self.world.impulse_joints.get_mut(ih, true).map(|j| &mut j.data).ok_or(PhysicsError::InvalidHandle(h)),
            Link::Multibody(mh) => {
                let (mb, id) = self.world.multibody_joints.get_mut(mh).ok_or(PhysicsError::InvalidHandle(h))?;
                mb.link_mut(id).map(|l| &mut l.joint.data).ok_or(PhysicsError::InvalidHandle(h))
            }
        }
    }

    /// Sets a joint's motor.
    pub fn set_motor(&mut self, h: u64, m: Motor) -> Res<()> {
        let kind = self.joint(h)?.kind;
        let Some(ax) = axis_of(kind) else {
            return Err(desc(format!("joint {h} is {kind:?}: only revolute and prismatic joints have motors")));
        };
        let values: Vec<f32> = match m {
            Motor::Off => vec![],
            Motor::Position(a, b, c) => vec![a, b, c],
            Motor::Velocity(a, b) => vec![a, b],
            Motor::Effort(a) => vec![a],
        };
        finite(&format!("motor of joint {h}"), &values)?;
        if values.iter().any(|v| v.abs() > MAX_MOTOR) {
            return Err(desc(format!("motor of joint {h}: {values:?} exceeds ±{MAX_MOTOR:e} (no real actuator does)")));
        }
        let m = self.limited(h, m);
        let effort = if let Motor::Effort(e) = m { e } else { 0.0 };
        // A position or velocity motor's gains are accelerations, but the force it applies is
        // bounded by the joint's effort limit (the solver's impulse bound), as an actuator's is.
        let cap = self.joint_dynamics(h).max_effort.min(MAX_MOTOR);
        let g = self.generic_mut(h)?;
        match m {
            Motor::Off | Motor::Effort(_) => {
                g.set_motor(ax, 0.0, 0.0, 0.0, 0.0);
                g.set_motor_max_force(ax, 0.0);
            }
            Motor::Position(target, stiffness, damping) => {
                g.set_motor_model(ax, MotorModel::AccelerationBased);
                g.set_motor_position(ax, target, stiffness, damping);
                g.set_motor_max_force(ax, cap);
            }
            Motor::Velocity(target, damping) => {
                g.set_motor_model(ax, MotorModel::AccelerationBased);
                g.set_motor_velocity(ax, target, damping);
                g.set_motor_max_force(ax, cap);
            }
        }
        self.joints[h as usize].effort = effort;
        Ok(())
    }

    /// The joint axis in world coordinates (from the parent's pose).
    pub(super) fn world_axis(&self, j: &JointEntry) -> Vector {
        let p = self.world.bodies[j.parent].position();
        p.rotation * (j.frame1.rotation * Vector::X)
    }

    /// Applies each effort motor as equal and opposite forces/torques for the next substep.
    pub(super) fn apply_efforts(&mut self) {
        for idx in 0..self.joints.len() {
            let j = self.joints[idx];
            if j.effort == 0.0 {
                continue;
            }
            let axis = self.world_axis(&j);
            let v = axis * j.effort;
            match j.kind {
                JointKind::Revolute => {
                    self.world.bodies[j.child].add_torque(v, true);
                    self.world.bodies[j.parent].add_torque(-v, true);
                }
                JointKind::Prismatic => {
                    self.world.bodies[j.child].add_force(v, true);
                    self.world.bodies[j.parent].add_force(-v, true);
                }
                _ => {}
            }
            self.joints[idx].applied = j.effort;
        }
    }
}
