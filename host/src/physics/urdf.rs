//! URDF import: a robot description file becomes bodies, colliders and multibody joints in a
//! [`Simulation`]. Links → bodies (mass and inertia from `<inertial>`, colliders from
//! `<collision>`: box, cylinder, sphere, capsule, and STL meshes as convex hulls); joints →
//! multibody links (revolute with limits, continuous, prismatic, fixed). The root link is
//! fixed to the world or free. Every error names the file and the element.

use super::mesh::ImportOptions;
use super::{JointDesc, JointDynamics, JointKind, PhysicsError, ShapeDesc, Simulation, body_id, vec3};
use rapier3d::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// The collision group of robot links (bit 32 of a collider's `memberships`).
pub const ROBOT_GROUP: Group = Group::GROUP_32;

/// What a loaded robot exposes: its links' bodies and movable joints, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadedRobot {
    /// Link names and body handles.
    pub links: Vec<(String, u64)>,
    /// Movable joint names and joint handles (fixed joints are built but not listed).
    pub joints: Vec<(String, u64)>,
}

pub(super) fn pose_of(p: &urdf_rs::Pose) -> Pose {
    let [x, y, z] = p.xyz.0;
    let [roll, pitch, yaw] = p.rpy.0;
    // URDF: fixed-axis roll (X), pitch (Y), yaw (Z) = Rz · Ry · Rx.
    let q = Rotation::from_axis_angle(Vector::Z, yaw as f32)
        * Rotation::from_axis_angle(Vector::Y, pitch as f32)
        * Rotation::from_axis_angle(Vector::X, roll as f32);
    Pose::from_parts(vec3(x as f32, y as f32, z as f32), q)
}

/// A URDF primitive (box, cylinder, capsule, sphere) as a shape and the turn that stands it
/// in the link frame (cylinders and capsules run along Z in URDF and along Y in rapier);
/// `Ok(None)` for a mesh, and an error that names the sizes when one is not positive. The
/// colliders and the visuals ([`super::visual`]) both read primitives here.
pub(super) fn primitive(g: &urdf_rs::Geometry) -> Result<Option<(ShapeDesc, Rotation)>, String> {
    let along_z = Rotation::from_axis_angle(Vector::X, std::f32::consts::FRAC_PI_2);
    let positive = |what: &str, v: &[f64]| {
        if v.iter().all(|x| x.is_finite() && *x > 0.0) { Ok(()) } else { Err(format!("{what} must be positive, got {v:?}")) }
    };
    Ok(Some(match g {
        urdf_rs::Geometry::Box { size } => {
            positive("box size", &size.0)?;
            let [x, y, z] = size.0.map(|v| v as f32 / 2.0);
            (ShapeDesc::Cuboid(vec3(x, y, z)), Rotation::IDENTITY)
        }
        urdf_rs::Geometry::Cylinder { radius, length } => {
            positive("cylinder radius and length", &[*radius, *length])?;
            (ShapeDesc::Cylinder(*length as f32 / 2.0, *radius as f32), along_z)
        }
        urdf_rs::Geometry::Capsule { radius, length } => {
            positive("capsule radius and length", &[*radius, *length])?;
            (ShapeDesc::Capsule(*length as f32 / 2.0, *radius as f32), along_z)
        }
        urdf_rs::Geometry::Sphere { radius } => {
            positive("sphere radius", &[*radius])?;
            (ShapeDesc::Ball(*radius as f32), Rotation::IDENTITY)
        }
        urdf_rs::Geometry::Mesh { .. } => return Ok(None),
    }))
}

/// A collider shape for a URDF geometry, with the turn [`primitive`] gives it.
fn shape_of(file: &Path, link: &str, g: &urdf_rs::Geometry, opts: &ImportOptions) -> Result<(SharedShape, Rotation), PhysicsError> {
    let err = |m: String| PhysicsError::Robot(format!("{}: link `{link}`: {m}", file.display()));
    if let Some((desc, turn)) = primitive(g).map_err(err)? {
        let shape = match desc {
            ShapeDesc::Cuboid(h) => SharedShape::cuboid(h.x, h.y, h.z),
            ShapeDesc::Cylinder(hh, r) => SharedShape::cylinder(hh, r),
            ShapeDesc::Capsule(hh, r) => SharedShape::capsule_y(hh, r),
            ShapeDesc::Ball(r) => SharedShape::ball(r),
            ShapeDesc::ConvexHull(_) => unreachable!("a URDF primitive is not a hull"),
        };
        return Ok((shape, turn));
    }
    let urdf_rs::Geometry::Mesh { filename, scale } = g else { unreachable!("primitive() reads every other geometry") };
    let mesh = super::mesh::resolve(file, filename, &opts.packages).map_err(err)?;
    let s = scale.as_ref().map_or([1.0; 3], |s| s.0);
    if s.iter().any(|v| !v.is_finite() || *v == 0.0) {
        return Err(err(format!("mesh `{filename}`: scale must be finite and non-zero, got {s:?}")));
    }
    let shape = super::mesh::collision_shape(&mesh, s, opts.collision).map_err(|e| err(format!("mesh `{filename}`: {e}")))?;
    Ok((shape, Rotation::IDENTITY))
}

/// Reads and parses a URDF file (with [`substitute_env`]'s substitutions).
pub fn read_urdf(path: &Path) -> Result<urdf_rs::Robot, PhysicsError> {
    let err = |m: String| PhysicsError::Robot(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    let text = substitute_env(&text).map_err(err)?;
    urdf_rs::read_from_string(&text).map_err(|e| err(format!("not a valid URDF: {e}")))
}

/// Replaces the `$(optenv VAR default…)` and `$(env VAR)` substitutions xacro leaves in
/// some published files (Husky's) with the variable's value or the default, as ROS's
/// launch tools do; any other `$(…)` is an error naming it.
fn substitute_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(')') else { return Err("an unclosed `$(` substitution".into()) };
        let inner = &rest[at + 2..at + end];
        let mut words = inner.split_whitespace();
        let value = match (words.next(), words.next()) {
            (Some("optenv"), Some(var)) => std::env::var(var).unwrap_or_else(|_| words.collect::<Vec<_>>().join(" ")),
            (Some("env"), Some(var)) => std::env::var(var).map_err(|_| format!("`$({inner})`: environment variable {var} is not set"))?,
            _ => {
                return Err(format!(
                    "`$({inner})` is a xacro substitution; expand the file with xacro first (only $(env …) and $(optenv …) are read)"
                ));
            }
        };
        out.push_str(&value);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A URDF's kinematic tree: link indexes by name, the root, and the links breadth first.
struct Tree<'a> {
    index: HashMap<&'a str, usize>,
    root: usize,
    order: Vec<usize>,
    /// The joint that moves each link (none for the root).
    parent_joint: HashMap<usize, &'a urdf_rs::Joint>,
}

impl<'a> Tree<'a> {
    fn of(robot: &'a urdf_rs::Robot) -> Result<Self, String> {
        if robot.links.is_empty() {
            return Err("it defines no <link>".into());
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, l) in robot.links.iter().enumerate() {
            if index.insert(l.name.as_str(), i).is_some() {
                return Err(format!("link `{}` is defined twice", l.name));
            }
        }
        let mut parent_joint: HashMap<usize, &urdf_rs::Joint> = HashMap::new();
        for j in &robot.joints {
            use urdf_rs::JointType::{Floating, Planar, Spherical};
            if matches!(j.joint_type, Floating | Planar | Spherical) {
                return Err(format!(
                    "joint `{}`: unsupported joint type `{:?}` (supported: revolute, continuous, prismatic, fixed; a free base is `fixed-base = false`)",
                    j.name, j.joint_type
                ));
            }
            let find = |name: &str, role: &str| {
                index.get(name).copied().ok_or_else(|| format!("joint `{}`: its {role} link `{name}` is not defined", j.name))
            };
            let (p, c) = (find(&j.parent.link, "parent")?, find(&j.child.link, "child")?);
            if let Some(other) = parent_joint.insert(c, j) {
                return Err(format!(
                    "joint `{}`: link `{}` already has a parent joint `{}`; the joints form a loop, and URDF describes a tree",
                    j.name, j.child.link, other.name
                ));
            }
            if p == c {
                return Err(format!("joint `{}`: link `{}` is its own parent (a loop)", j.name, j.child.link));
            }
        }
        let roots: Vec<usize> = (0..robot.links.len()).filter(|i| !parent_joint.contains_key(i)).collect();
        let [root] = roots.as_slice() else {
            if roots.is_empty() {
                return Err("its joints form a loop: every link has a parent joint".into());
            }
            let names: Vec<&str> = roots.iter().map(|&i| robot.links[i].name.as_str()).collect();
            return Err(format!("it needs exactly one root link, found {}: {names:?}", names.len()));
        };
        let mut order = Vec::new();
        let mut queue = VecDeque::from([*root]);
        while let Some(i) = queue.pop_front() {
            order.push(i);
            queue.extend(robot.joints.iter().filter(|j| index[j.parent.link.as_str()] == i).map(|j| index[j.child.link.as_str()]));
        }
        if order.len() != robot.links.len() {
            let cut: Vec<&str> = (0..robot.links.len()).filter(|i| !order.contains(i)).map(|i| robot.links[i].name.as_str()).collect();
            return Err(format!("its joints form a loop through links {cut:?}"));
        }
        Ok(Tree { index, root: *root, order, parent_joint })
    }

    /// Every link a joint moves (and a free root) must have mass: its own or that of links
    /// welded to it by fixed joints (a massless frame link on a heavy one is fine).
    fn check_masses(&self, robot: &urdf_rs::Robot, fixed_base: bool) -> Result<(), String> {
        let is_fixed = |i: usize| self.parent_joint.get(&i).is_some_and(|j| j.joint_type == urdf_rs::JointType::Fixed);
        // The body each link is welded into: walk up fixed joints.
        let weld_root = |mut i: usize| {
            while is_fixed(i) {
                i = self.index[self.parent_joint[&i].parent.link.as_str()];
            }
            i
        };
        let mut mass: HashMap<usize, f64> = HashMap::new();
        for (i, l) in robot.links.iter().enumerate() {
            *mass.entry(weld_root(i)).or_default() += l.inertial.mass.value.max(0.0);
        }
        for (&body, &m) in &mass {
            if m > 0.0 || (body == self.root && fixed_base) {
                continue;
            }
            let link = &robot.links[body].name;
            return Err(match self.parent_joint.get(&body) {
                Some(j) => format!(
                    "link `{link}` has no mass (no <inertial>, or mass 0) but joint `{}` moves it; give it an <inertial> with its mass and inertia",
                    j.name
                ),
                None => format!(
                    "link `{link}` (the root) has no mass, so it cannot be a free base; give it an <inertial>, or load it with a fixed base"
                ),
            });
        }
        Ok(())
    }
}

impl Simulation {
    /// Builds the robot described by the URDF file at `path`, its root link at `base`, fixed
    /// to the world or free, resolving meshes as `opts` says.
    pub fn load_urdf(&mut self, path: &Path, base: Pose, fixed_base: bool, opts: &ImportOptions) -> Result<LoadedRobot, PhysicsError> {
        let err = |m: String| PhysicsError::Robot(format!("{}: {m}", path.display()));
        let robot = read_urdf(path)?;
        let tree = Tree::of(&robot).map_err(err)?;
        tree.check_masses(&robot, fixed_base).map_err(err)?;

        // Bodies in breadth-first order from the root, posed at zero joint positions.
        let mut world_pose: HashMap<usize, Pose> = HashMap::from([(tree.root, base)]);
        let mut bodies: HashMap<usize, RigidBodyHandle> = HashMap::new();
        let named = super::visual::materials(&robot);
        for &i in &tree.order {
            for j in robot.joints.iter().filter(|j| tree.index[j.parent.link.as_str()] == i) {
                world_pose.insert(tree.index[j.child.link.as_str()], world_pose[&i] * pose_of(&j.origin));
            }
            let fixed = i == tree.root && fixed_base;
            let body = self.insert_link(path, &robot.links[i], world_pose[&i], fixed, opts)?;
            self.add_visuals(path, &robot.links[i], body, &named, opts);
            bodies.insert(i, body);
        }
        let mut out = LoadedRobot {
            links: tree.order.iter().map(|&i| (robot.links[i].name.clone(), body_id(bodies[&i]))).collect(),
            joints: Vec::new(),
        };
        let mut handles: HashMap<&str, u64> = HashMap::new();
        for j in &robot.joints {
            let h = self.insert_joint(j, &bodies, &tree.index).map_err(|e| err(format!("joint `{}`: {e}", j.name)))?;
            handles.insert(j.name.as_str(), h);
            if j.joint_type != urdf_rs::JointType::Fixed {
                out.joints.push((j.name.clone(), h));
            }
        }
        for j in &robot.joints {
            let Some(m) = &j.mimic else { continue };
            let leader =
                handles.get(m.joint.as_str()).ok_or_else(|| err(format!("joint `{}`: <mimic> names no joint `{}`", j.name, m.joint)))?;
            self.add_mimic(handles[j.name.as_str()], *leader, m.multiplier.unwrap_or(1.0) as f32, m.offset.unwrap_or(0.0) as f32)
                .map_err(|e| err(format!("joint `{}`: <mimic>: {e}", j.name)))?;
        }
        // A free root needs no joint: it is a dynamic body at the multibody's root.
        Ok(out)
    }

    /// One URDF joint as a multibody link, with its limits and dynamics.
    fn insert_joint(
        &mut self,
        j: &urdf_rs::Joint,
        bodies: &HashMap<usize, RigidBodyHandle>,
        index: &HashMap<&str, usize>,
    ) -> Result<u64, String> {
        use urdf_rs::JointType as T;
        let kind = match j.joint_type {
            T::Prismatic => JointKind::Prismatic,
            T::Fixed => JointKind::Fixed,
            _ => JointKind::Revolute,
        };
        let [ax, ay, az] = j.axis.xyz.0;
        let (lo, hi) = (j.limit.lower, j.limit.upper);
        let limited = matches!(j.joint_type, T::Revolute | T::Prismatic) && lo.is_finite() && hi.is_finite() && lo < hi;
        let desc = JointDesc {
            kind,
            parent: body_id(bodies[&index[j.parent.link.as_str()]]),
            child: body_id(bodies[&index[j.child.link.as_str()]]),
            parent_anchor: pose_of(&j.origin),
            child_anchor: Pose::IDENTITY,
            axis: if kind == JointKind::Fixed { Vector::X } else { vec3(ax as f32, ay as f32, az as f32) },
            limits: limited.then_some((lo as f32, hi as f32)),
            multibody: true,
        };
        let h = self.add_joint(desc).map_err(|e| e.to_string())?;
        if kind != JointKind::Fixed {
            // An absent or zero limit is no limit (urdf-rs reads a missing one as 0).
            let or_inf = |v: f64| if v > 0.0 && v.is_finite() { v as f32 } else { f32::INFINITY };
            let (damping, friction) = j.dynamics.as_ref().map_or((0.0, 0.0), |d| (d.damping, d.friction));
            for (name, v) in [("damping", damping), ("friction", friction)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(format!("<dynamics {name}=\"{v}\"> must be ≥ 0"));
                }
            }
            let d = JointDynamics {
                damping: damping as f32,
                friction: friction as f32,
                max_velocity: or_inf(j.limit.velocity),
                max_effort: or_inf(j.limit.effort),
            };
            self.set_joint_dynamics(h, d).map_err(|e| e.to_string())?;
        }
        Ok(h)
    }

    /// The body of one URDF link at `pose` (fixed, or dynamic), with its inertial and its
    /// collision shapes.
    fn insert_link(
        &mut self,
        path: &Path,
        link: &urdf_rs::Link,
        pose: Pose,
        fixed: bool,
        opts: &ImportOptions,
    ) -> Result<RigidBodyHandle, PhysicsError> {
        let kind = if fixed { RigidBodyBuilder::fixed() } else { RigidBodyBuilder::dynamic() };
        let inertial = &link.inertial;
        let mass = inertial.mass.value as f32;
        let it = &inertial.inertia;
        let vals = [mass as f64, it.ixx, it.iyy, it.izz, it.ixy, it.ixz, it.iyz];
        if vals.iter().any(|v| !v.is_finite()) || mass < 0.0 {
            return Err(PhysicsError::Robot(format!(
                "{}: link `{}`: <inertial> holds a negative or non-finite value",
                path.display(),
                link.name
            )));
        }
        let com = pose_of(&inertial.origin);
        let mut shapes = Vec::new();
        for c in &link.collision {
            let (shape, turn) = shape_of(path, &link.name, &c.geometry, opts)?;
            let local = pose_of(&c.origin);
            shapes.push((shape, Pose::from_parts(local.translation, local.rotation * turn)));
        }
        // A link with a mass but no inertia tensor (all zero, as some published files have)
        // takes the inertia of its collision shapes at that mass, as PyBullet does.
        let no_tensor = mass > 0.0 && [it.ixx, it.iyy, it.izz].iter().all(|v| *v == 0.0);
        let volume: f32 = if no_tensor { shapes.iter().map(|(s, _)| s.mass_properties(1.0).mass()).sum() } else { 0.0 };
        let from_shapes = no_tensor && volume > 0.0;
        let mut b = kind.pose(pose).can_sleep(false);
        if from_shapes {
            // The colliders carry the mass (density below).
        } else if mass > 0.0 {
            let m = Matrix::from_cols(
                vec3(it.ixx as f32, it.ixy as f32, it.ixz as f32),
                vec3(it.ixy as f32, it.iyy as f32, it.iyz as f32),
                vec3(it.ixz as f32, it.iyz as f32, it.izz as f32),
            );
            let rotated = Matrix::from_quat(com.rotation) * m * Matrix::from_quat(com.rotation).transpose();
            b = b.additional_mass_properties(MassProperties::with_inertia_matrix(com.translation, mass, rotated));
        } else {
            // A massless link (common for frames): a token mass keeps the solver sane.
            b = b.additional_mass_properties(MassProperties::new(com.translation, 1e-3, vec3(1e-6, 1e-6, 1e-6)));
        }
        let density = if from_shapes { mass / volume } else { 0.0 };
        let h = self.world.insert_body(b);
        for (shape, at) in shapes {
            // Links of a robot never collide with each other (PyBullet's default): they are
            // in group 32 and do not look at it; everything else sees them.
            let groups = InteractionGroups::new(ROBOT_GROUP, Group::ALL.difference(ROBOT_GROUP), InteractionTestMode::And);
            let c = ColliderBuilder::new(shape).position(at).density(density).friction(0.8).collision_groups(groups);
            self.world.insert_collider(c, Some(h));
        }
        Ok(h)
    }
}

#[cfg(test)]
#[path = "urdf_tests.rs"]
mod tests;
