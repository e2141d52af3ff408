//! Readouts of a [`Simulation`]: body poses and velocities, joint states, contacts, ray
//! casts, and the shapes drawn in pictures.

use super::render::SceneShape;
use super::{Contact, JointKind, JointState, Link, Res, ShapeDesc, Simulation, axis_of, body_id, wrap_angle};
use rapier3d::prelude::*;

impl Simulation {
    /// A body's pose.
    pub fn pose(&self, body: u64) -> Res<Pose> {
        Ok(*self.body(body)?.position())
    }

    /// A body's linear and angular velocity.
    pub fn velocity(&self, body: u64) -> Res<(Vector, Vector)> {
        let b = self.body(body)?;
        Ok((b.linvel(), b.angvel()))
    }

    /// Position, velocity and last effort of each joint (along its axis).
    pub fn joint_states(&self, handles: &[u64]) -> Res<Vec<JointState>> {
        handles
            .iter()
            .map(|&h| {
                let j = self.joint(h)?;
                // A multibody link's own coordinates are exact (and current right after a
                // `set-joint-state`, before any step).
                if let (Link::Multibody(mh), Some(ax)) = (j.link, axis_of(j.kind))
                    && let Some((mb, id)) = self.world.multibody_joints.get(mh)
                    && let Some(link) = mb.link(id)
                {
                    let position = link.joint().coords()[ax as usize];
                    let velocity = mb.generalized_velocity()[link.assembly_id()];
                    let position = if j.kind == JointKind::Revolute { wrap_angle(position) } else { position };
                    return Ok(JointState { position, velocity, applied: j.applied });
                }
                let (p, c) = (&self.world.bodies[j.parent], &self.world.bodies[j.child]);
                let f1 = *p.position() * j.frame1;
                let f2 = *c.position() * j.frame2;
                let rel = f1.inverse() * f2;
                let axis = self.world_axis(j);
                let (position, velocity) = match j.kind {
                    JointKind::Revolute => {
                        let q = rel.rotation;
                        let s = Vector::new(q.x, q.y, q.z).dot(Vector::X);
                        (2.0 * s.atan2(q.w), (c.angvel() - p.angvel()).dot(axis))
                    }
                    JointKind::Prismatic => (rel.translation.x, (c.linvel() - p.linvel()).dot(axis)),
                    _ => (0.0, 0.0),
                };
                let position = if j.kind == JointKind::Revolute { wrap_angle(position) } else { position };
                Ok(JointState { position, velocity, applied: j.applied })
            })
            .collect()
    }

    /// Contacts with a positive normal force after the last step.
    pub fn contacts(&self) -> Vec<Contact> {
        let dt = self.world.integration_parameters.dt;
        let mut out = Vec::new();
        for pair in self.world.contact_pairs() {
            let force = pair.total_impulse_magnitude() / dt;
            if force <= 0.0 {
                continue;
            }
            let (Some(c1), Some(c2)) = (self.world.colliders.get(pair.collider1), self.world.colliders.get(pair.collider2)) else {
                continue;
            };
            let (Some(b1), Some(b2)) = (c1.parent(), c2.parent()) else { continue };
            let Some(m) = pair.manifolds().iter().find(|m| !m.points.is_empty()) else { continue };
            let point = *c1.position() * m.points[0].local_p1;
            out.push(Contact { body_a: body_id(b1), body_b: body_id(b2), point, normal: m.data.normal, normal_force: force });
        }
        out
    }

    /// The first body a ray hits: body, distance, normal.
    pub fn cast_ray(&self, origin: Vector, direction: Vector, max_distance: f32, filter: u32) -> Option<(u64, f32, Vector)> {
        let dir = direction.try_normalize()?;
        if !origin.is_finite() || !max_distance.is_finite() || max_distance <= 0.0 {
            return None;
        }
        let ray = Ray::new(origin, dir);
        let groups = InteractionGroups::new(Group::ALL, Group::from_bits_truncate(filter), InteractionTestMode::And);
        let f = QueryFilter::default().groups(groups);
        let (c, hit) = self.world.cast_ray_and_get_normal(&ray, max_distance, true, f)?;
        let body = self.world.colliders.get(c)?.parent()?;
        Some((body_id(body), hit.time_of_impact, hit.normal))
    }

    /// What to draw of the scene: each robot link's visuals (with their colours) where the
    /// robot file has them, else its colliders, and every other collider, posed.
    pub fn shapes(&self) -> Vec<SceneShape> {
        let (mut out, drawn) = self.visual_shapes();
        out.extend(self.collider_shapes(&drawn));
        out
    }

    /// Every collider (each convex part of a decomposed mesh on its own) but those of the
    /// bodies `skip`, posed.
    pub fn collider_shapes(&self, skip: &[u64]) -> Vec<SceneShape> {
        // From its body's pose: a collider's own world pose is brought up to date only by a
        // step, so a body teleported since (a reset) would be drawn where it was.
        self.posed(self.collider_locals(skip))
    }

    /// Shapes posed in their bodies' frames, posed in the world (those of bodies gone left
    /// out).
    pub(super) fn posed(&self, local: Vec<SceneShape>) -> Vec<SceneShape> {
        local
            .into_iter()
            .filter_map(|mut s| {
                let (i, g) = super::unpack(s.body);
                let body = self.world.bodies.get(RigidBodyHandle::from_raw_parts(i, g))?;
                s.pose = *body.position() * s.pose;
                Some(s)
            })
            .collect()
    }

    /// As [`Simulation::collider_shapes`], each pose in its body's frame.
    pub(super) fn collider_locals(&self, skip: &[u64]) -> Vec<SceneShape> {
        let mut out = Vec::new();
        for (_, c) in self.world.colliders.iter() {
            let Some(parent) = c.parent() else { continue };
            if skip.contains(&body_id(parent)) {
                continue;
            }
            let pose = c.position_wrt_parent().copied().unwrap_or(Pose::IDENTITY);
            let s = c.shape();
            if let Some(parts) = s.as_compound() {
                // A decomposed mesh: each convex part on its own.
                for (local, part) in parts.shapes() {
                    if let Some(h) = part.as_convex_polyhedron() {
                        out.push(SceneShape::plain(body_id(parent), pose * *local, ShapeDesc::ConvexHull(h.points().to_vec())));
                    }
                }
                continue;
            }
            let shape = if let Some(b) = s.as_ball() {
                ShapeDesc::Ball(b.radius)
            } else if let Some(b) = s.as_cuboid() {
                ShapeDesc::Cuboid(b.half_extents)
            } else if let Some(b) = s.as_capsule() {
                ShapeDesc::Capsule(b.half_height(), b.radius)
            } else if let Some(b) = s.as_cylinder() {
                ShapeDesc::Cylinder(b.half_height, b.radius)
            } else if let Some(h) = s.as_convex_polyhedron() {
                ShapeDesc::ConvexHull(h.points().to_vec())
            } else {
                continue;
            };
            out.push(SceneShape::plain(body_id(parent), pose, shape));
        }
        out
    }

    /// Bodies that never move (drawn grey).
    pub fn fixed_bodies(&self) -> Vec<u64> {
        self.world.bodies.iter().filter(|(_, b)| b.is_fixed()).map(|(h, _)| body_id(h)).collect()
    }
}
