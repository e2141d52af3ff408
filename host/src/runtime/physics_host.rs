//! The host side of `paddock:rl/physics`: each `simulation` resource is a
//! [`crate::physics::Simulation`] in the plugin's resource table. Physics errors come back
//! to the plugin as `physics-error` values; only a dead handle traps.

use super::bindings::environment::paddock::rl::physics as wit;
use super::sandbox::PluginState;
use crate::physics::{self as phys, Simulation};
use rapier3d::prelude::{Pose, Rotation, Vector};
use wasmtime::component::Resource;

type R<T> = wasmtime::Result<T>;

fn v(x: wit::Vec3) -> Vector {
    Vector::new(x.x, x.y, x.z)
}

fn w(x: Vector) -> wit::Vec3 {
    wit::Vec3 { x: x.x, y: x.y, z: x.z }
}

fn pose(p: wit::Pose) -> Pose {
    let q = p.rotation;
    Pose::from_parts(v(p.translation), Rotation::from_xyzw(q.x, q.y, q.z, q.w))
}

fn wpose(p: Pose) -> wit::Pose {
    let q = p.rotation;
    wit::Pose { translation: w(p.translation), rotation: wit::Quat { x: q.x, y: q.y, z: q.z, w: q.w } }
}

fn err(e: phys::PhysicsError) -> wit::PhysicsError {
    match e {
        phys::PhysicsError::InvalidHandle(h) => wit::PhysicsError::InvalidHandle(h),
        phys::PhysicsError::InvalidDesc(s) => wit::PhysicsError::InvalidDesc(s),
        phys::PhysicsError::Robot(s) => wit::PhysicsError::Robot(s),
        phys::PhysicsError::Diverged(s) => wit::PhysicsError::Diverged(s),
        phys::PhysicsError::BadSnapshot(s) => wit::PhysicsError::BadSnapshot(s),
    }
}

fn kind(k: wit::JointKind) -> phys::JointKind {
    match k {
        wit::JointKind::Revolute => phys::JointKind::Revolute,
        wit::JointKind::Prismatic => phys::JointKind::Prismatic,
        wit::JointKind::Spherical => phys::JointKind::Spherical,
        wit::JointKind::Fixed => phys::JointKind::Fixed,
    }
}

fn motor(m: wit::Motor) -> phys::Motor {
    match m {
        wit::Motor::Off => phys::Motor::Off,
        wit::Motor::Position((a, b, c)) => phys::Motor::Position(a, b, c),
        wit::Motor::Velocity((a, b)) => phys::Motor::Velocity(a, b),
        wit::Motor::Effort(a) => phys::Motor::Effort(a),
    }
}

impl PluginState {
    fn sim(&mut self, s: &Resource<Simulation>) -> R<&mut Simulation> {
        self.table.get_mut(s).map_err(|e| wasmtime::Error::msg(format!("physics simulation handle: {e}")))
    }
}

impl wit::Host for PluginState {}

impl wit::HostSimulation for PluginState {
    fn new(&mut self, d: wit::WorldDesc) -> R<Resource<Simulation>> {
        // The constructor cannot return an error: a bad description traps, naming the field.
        let sim = Simulation::new(v(d.gravity), d.timestep, d.substeps)
            .map_err(|e| wasmtime::Error::msg(format!("physics simulation constructor: {e:?}")))?;
        let r = self.table.push(sim)?;
        self.simulations.push(r.rep());
        Ok(r)
    }

    fn add_body(&mut self, s: Resource<Simulation>, d: wit::BodyDesc) -> R<Result<u64, wit::PhysicsError>> {
        let kind = match d.kind {
            wit::BodyKind::Fixed => phys::BodyKind::Fixed,
            wit::BodyKind::Dynamic => phys::BodyKind::Dynamic,
            wit::BodyKind::KinematicPosition => phys::BodyKind::KinematicPosition,
            wit::BodyKind::KinematicVelocity => phys::BodyKind::KinematicVelocity,
        };
        let desc = phys::BodyDesc {
            kind,
            pose: pose(d.pose),
            linear_damping: d.linear_damping,
            angular_damping: d.angular_damping,
            gravity_scale: d.gravity_scale,
            can_sleep: d.can_sleep,
        };
        Ok(self.sim(&s)?.add_body(desc).map_err(err))
    }

    fn add_collider(&mut self, s: Resource<Simulation>, body: u64, d: wit::ColliderDesc) -> R<Result<u64, wit::PhysicsError>> {
        let shape = match d.shape {
            wit::Shape::Ball(r) => phys::ShapeDesc::Ball(r),
            wit::Shape::Cuboid(h) => phys::ShapeDesc::Cuboid(v(h)),
            wit::Shape::Capsule((hh, r)) => phys::ShapeDesc::Capsule(hh, r),
            wit::Shape::Cylinder((hh, r)) => phys::ShapeDesc::Cylinder(hh, r),
            wit::Shape::ConvexHull(points) => phys::ShapeDesc::ConvexHull(points.into_iter().map(v).collect()),
        };
        let desc = phys::ColliderDesc {
            shape,
            local_pose: pose(d.local_pose),
            friction: d.friction,
            restitution: d.restitution,
            density: d.density,
            memberships: d.memberships,
            filter: d.filter,
        };
        Ok(self.sim(&s)?.add_collider(body, desc).map_err(err))
    }

    fn add_joint(&mut self, s: Resource<Simulation>, d: wit::JointDesc) -> R<Result<u64, wit::PhysicsError>> {
        let desc = phys::JointDesc {
            kind: kind(d.kind),
            parent: d.parent,
            child: d.child,
            parent_anchor: pose(d.parent_anchor),
            child_anchor: pose(d.child_anchor),
            axis: v(d.axis),
            limits: d.limits,
            multibody: d.multibody,
        };
        Ok(self.sim(&s)?.add_joint(desc).map_err(err))
    }

    fn load_robot(
        &mut self,
        s: Resource<Simulation>,
        name: String,
        base: wit::Pose,
        fixed: bool,
    ) -> R<Result<wit::Robot, wit::PhysicsError>> {
        let Some(path) = self.robots.files.get(&name).cloned() else {
            let granted: Vec<&String> = self.robots.files.keys().collect();
            return Ok(Err(wit::PhysicsError::Robot(format!(
                "robot `{name}` is not granted by the run config (granted: {granted:?}; add it under [env] robots = {{ {name} = \"path.urdf\" }})"
            ))));
        };
        let import = self.robots.import.clone();
        let loaded = self.sim(&s)?.load_urdf(&path, pose(base), fixed, &import);
        Ok(loaded.map(|r| wit::Robot { links: r.links, joints: r.joints }).map_err(err))
    }

    fn set_motor(&mut self, s: Resource<Simulation>, joint: u64, m: wit::Motor) -> R<Result<(), wit::PhysicsError>> {
        Ok(self.sim(&s)?.set_motor(joint, motor(m)).map_err(err))
    }

    fn set_motors(&mut self, s: Resource<Simulation>, motors: Vec<(u64, wit::Motor)>) -> R<Result<(), wit::PhysicsError>> {
        let sim = self.sim(&s)?;
        for (j, m) in motors {
            if let Err(e) = sim.set_motor(j, motor(m)) {
                return Ok(Err(err(e)));
            }
        }
        Ok(Ok(()))
    }

    fn apply_force(&mut self, s: Resource<Simulation>, body: u64, f: wit::Vec3) -> R<Result<(), wit::PhysicsError>> {
        Ok(self.sim(&s)?.apply_force(body, v(f)).map_err(err))
    }

    fn apply_torque(&mut self, s: Resource<Simulation>, body: u64, t: wit::Vec3) -> R<Result<(), wit::PhysicsError>> {
        Ok(self.sim(&s)?.apply_torque(body, v(t)).map_err(err))
    }

    fn set_pose(&mut self, s: Resource<Simulation>, body: u64, p: wit::Pose) -> R<Result<(), wit::PhysicsError>> {
        self.capture(&s)?;
        Ok(self.sim(&s)?.set_pose(body, pose(p)).map_err(err))
    }

    fn set_velocity(
        &mut self,
        s: Resource<Simulation>,
        body: u64,
        linear: wit::Vec3,
        angular: wit::Vec3,
    ) -> R<Result<(), wit::PhysicsError>> {
        self.capture(&s)?;
        Ok(self.sim(&s)?.set_velocity(body, v(linear), v(angular)).map_err(err))
    }

    fn set_joint_state(&mut self, s: Resource<Simulation>, joint: u64, position: f32, velocity: f32) -> R<Result<(), wit::PhysicsError>> {
        self.capture(&s)?;
        Ok(self.sim(&s)?.set_joint_state(joint, position, velocity).map_err(err))
    }

    fn step(&mut self, s: Resource<Simulation>, steps: u32) -> R<Result<(), wit::PhysicsError>> {
        Ok(self.sim(&s)?.step(steps).map_err(err))
    }

    fn pose(&mut self, s: Resource<Simulation>, body: u64) -> R<Result<wit::Pose, wit::PhysicsError>> {
        Ok(self.sim(&s)?.pose(body).map(wpose).map_err(err))
    }

    fn velocity(&mut self, s: Resource<Simulation>, body: u64) -> R<Result<(wit::Vec3, wit::Vec3), wit::PhysicsError>> {
        Ok(self.sim(&s)?.velocity(body).map(|(a, b)| (w(a), w(b))).map_err(err))
    }

    fn joint_states(&mut self, s: Resource<Simulation>, joints: Vec<u64>) -> R<Result<Vec<wit::JointState>, wit::PhysicsError>> {
        let states = self.sim(&s)?.joint_states(&joints).map_err(err);
        Ok(states
            .map(|v| v.into_iter().map(|j| wit::JointState { position: j.position, velocity: j.velocity, applied: j.applied }).collect()))
    }

    fn contacts(&mut self, s: Resource<Simulation>) -> R<Vec<wit::Contact>> {
        let contacts = self.sim(&s)?.contacts();
        Ok(contacts
            .into_iter()
            .map(|c| wit::Contact {
                body_a: c.body_a,
                body_b: c.body_b,
                point: w(c.point),
                normal: w(c.normal),
                normal_force: c.normal_force,
            })
            .collect())
    }

    fn cast_ray(
        &mut self,
        s: Resource<Simulation>,
        origin: wit::Vec3,
        direction: wit::Vec3,
        max_distance: f32,
        filter: u32,
    ) -> R<Option<wit::RayHit>> {
        let hit = self.sim(&s)?.cast_ray(v(origin), v(direction), max_distance, filter);
        Ok(hit.map(|(body, distance, normal)| wit::RayHit { body, distance, normal: w(normal) }))
    }

    fn add_camera(&mut self, s: Resource<Simulation>, d: wit::CameraDesc) -> R<Result<u64, wit::PhysicsError>> {
        let desc = phys::CameraDesc {
            name: d.name,
            env: d.env,
            body: d.body,
            pose: pose(d.pose),
            fov_y: d.fov_y,
            width: d.width,
            height: d.height,
            channels: phys::Channels { rgb: d.channels.rgb, depth: d.channels.depth, segmentation: d.channels.segmentation },
            near: d.near,
            far: d.far,
        };
        Ok(self.sim(&s)?.add_camera(desc).map_err(err))
    }

    fn set_colour(&mut self, s: Resource<Simulation>, body: u64, rgb: wit::Vec3) -> R<Result<(), wit::PhysicsError>> {
        Ok(self.sim(&s)?.set_colour(body, [rgb.x, rgb.y, rgb.z]).map_err(err))
    }

    fn snapshot(&mut self, s: Resource<Simulation>) -> R<Vec<u8>> {
        Ok(self.sim(&s)?.snapshot())
    }

    fn restore(&mut self, s: Resource<Simulation>, state: Vec<u8>) -> R<Result<(), wit::PhysicsError>> {
        self.capture(&s)?;
        Ok(self.sim(&s)?.restore(&state).map_err(err))
    }

    fn drop(&mut self, s: Resource<Simulation>) -> R<()> {
        self.capture(&s)?;
        let rep = s.rep();
        self.table.delete(s)?;
        self.simulations.retain(|&r| r != rep);
        Ok(())
    }
}

impl PluginState {
    /// Before a world that stepped since its cameras were last rendered is teleported or
    /// dropped: its cameras' images, kept as the last view of the episode that ends.
    fn capture(&mut self, s: &Resource<Simulation>) -> R<()> {
        let sim = self.sim(s)?;
        if !sim.stepped_since_render() || sim.cameras().is_empty() {
            return Ok(());
        }
        sim.prepare_cameras();
        sim.rendered();
        let sim = self.table.get(s).map_err(|e| wasmtime::Error::msg(format!("physics simulation handle: {e}")))?;
        let mut taken = Vec::new();
        for (i, c) in sim.cameras().iter().enumerate() {
            let mut out = vec![0.0; c.len()];
            if sim.render(i, &mut out).is_ok() {
                taken.push(((c.env, c.name.clone()), out));
            }
        }
        self.captures.extend(taken);
        Ok(())
    }

    /// Every shape of every simulation this plugin holds, and the fixed bodies (for
    /// pictures of the scene).
    pub(crate) fn scene(&self, first_only: bool) -> (Vec<crate::physics::render::SceneShape>, Vec<u64>) {
        let (mut shapes, mut fixed) = (Vec::new(), Vec::new());
        let take = if first_only { 1 } else { usize::MAX };
        for &rep in self.simulations.iter().take(take) {
            if let Ok(sim) = self.table.get(&Resource::<Simulation>::new_own(rep)) {
                shapes.extend(sim.shapes());
                fixed.extend(sim.fixed_bodies());
            }
        }
        (shapes, fixed)
    }
}
