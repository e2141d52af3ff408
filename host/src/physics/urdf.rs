//! URDF import: a robot description file becomes bodies, colliders and multibody joints in a
//! [`Simulation`]. Links → bodies (mass and inertia from `<inertial>`, colliders from
//! `<collision>`: box, cylinder, sphere, capsule, and STL meshes as convex hulls); joints →
//! multibody links (revolute with limits, continuous, prismatic, fixed). The root link is
//! fixed to the world or free. Every error names the file and the element.

use super::mesh::ImportOptions;
use super::{JointDesc, JointDynamics, JointKind, PhysicsError, Simulation, body_id, vec3};
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

fn pose_of(p: &urdf_rs::Pose) -> Pose {
    let [x, y, z] = p.xyz.0;
    let [roll, pitch, yaw] = p.rpy.0;
    // URDF: fixed-axis roll (X), pitch (Y), yaw (Z) = Rz · Ry · Rx.
    let q = Rotation::from_axis_angle(Vector::Z, yaw as f32)
        * Rotation::from_axis_angle(Vector::Y, pitch as f32)
        * Rotation::from_axis_angle(Vector::X, roll as f32);
    Pose::from_parts(vec3(x as f32, y as f32, z as f32), q)
}

/// A collider shape for a URDF geometry; cylinders and capsules run along Z in URDF and along
/// Y in rapier, so they come with a turn.
fn shape_of(file: &Path, link: &str, g: &urdf_rs::Geometry, opts: &ImportOptions) -> Result<(SharedShape, Rotation), PhysicsError> {
    let err = |m: String| PhysicsError::Robot(format!("{}: link `{link}`: {m}", file.display()));
    let along_z = Rotation::from_axis_angle(Vector::X, std::f32::consts::FRAC_PI_2);
    let positive = |what: &str, v: &[f64]| {
        if v.iter().all(|x| x.is_finite() && *x > 0.0) { Ok(()) } else { Err(err(format!("{what} must be positive, got {v:?}"))) }
    };
    Ok(match g {
        urdf_rs::Geometry::Box { size } => {
            positive("box size", &size.0)?;
            let [x, y, z] = size.0;
            (SharedShape::cuboid(x as f32 / 2.0, y as f32 / 2.0, z as f32 / 2.0), Rotation::IDENTITY)
        }
        urdf_rs::Geometry::Cylinder { radius, length } => {
            positive("cylinder radius and length", &[*radius, *length])?;
            (SharedShape::cylinder(*length as f32 / 2.0, *radius as f32), along_z)
        }
        urdf_rs::Geometry::Capsule { radius, length } => {
            positive("capsule radius and length", &[*radius, *length])?;
            (SharedShape::capsule_y(*length as f32 / 2.0, *radius as f32), along_z)
        }
        urdf_rs::Geometry::Sphere { radius } => {
            positive("sphere radius", &[*radius])?;
            (SharedShape::ball(*radius as f32), Rotation::IDENTITY)
        }
        urdf_rs::Geometry::Mesh { filename, scale } => {
            let mesh = super::mesh::resolve(file, filename, &opts.packages).map_err(err)?;
            let s = scale.as_ref().map_or([1.0; 3], |s| s.0);
            if s.iter().any(|v| !v.is_finite() || *v == 0.0) {
                return Err(err(format!("mesh `{filename}`: scale must be finite and non-zero, got {s:?}")));
            }
            let shape = super::mesh::collision_shape(&mesh, s, opts.collision).map_err(|e| err(format!("mesh `{filename}`: {e}")))?;
            (shape, Rotation::IDENTITY)
        }
    })
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
        for &i in &tree.order {
            for j in robot.joints.iter().filter(|j| tree.index[j.parent.link.as_str()] == i) {
                world_pose.insert(tree.index[j.child.link.as_str()], world_pose[&i] * pose_of(&j.origin));
            }
            let fixed = i == tree.root && fixed_base;
            bodies.insert(i, self.insert_link(path, &robot.links[i], world_pose[&i], fixed, opts)?);
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
            let damping = j.dynamics.as_ref().map_or(0.0, |d| d.damping);
            if !(damping.is_finite() && damping >= 0.0) {
                return Err(format!("<dynamics damping=\"{damping}\"> must be ≥ 0"));
            }
            let d = JointDynamics { damping: damping as f32, max_velocity: or_inf(j.limit.velocity), max_effort: or_inf(j.limit.effort) };
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
        let volume: f32 = shapes.iter().map(|(s, _)| s.mass_properties(1.0).mass()).sum();
        let from_shapes = mass > 0.0 && [it.ixx, it.iyy, it.izz].iter().all(|v| *v == 0.0) && volume > 0.0;
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
mod tests {
    use super::*;

    fn arm() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../robots/arm7.urdf")
    }

    fn sim() -> Simulation {
        Simulation::new(vec3(0.0, 0.0, -9.81), 0.02, 4).expect("world")
    }

    /// The arm tipped over at joint 2 and left to fall under gravity for 2 s: joint states.
    fn fall(s: &mut Simulation, r: &LoadedRobot) -> Vec<u32> {
        let handles: Vec<u64> = r.joints.iter().map(|j| j.1).collect();
        s.set_joint_state(handles[1], 0.6, 0.0).expect("tip it");
        s.set_joint_state(handles[3], -0.8, 0.0).expect("bend the elbow");
        let mut bits = Vec::new();
        for _ in 0..100 {
            s.step(1).expect("step");
            for j in s.joint_states(&handles).expect("states") {
                bits.extend([j.position.to_bits(), j.velocity.to_bits()]);
            }
        }
        bits
    }

    #[test]
    fn the_shipped_arm_loads_with_seven_joints_and_two_fingers_falls_within_its_limits_and_deterministically() {
        let mut s = sim();
        let r = s.load_urdf(&arm(), Pose::IDENTITY, true, &ImportOptions::default()).expect("arm7.urdf loads");
        assert_eq!(r.links.len(), 11);
        assert_eq!(
            r.joints.iter().map(|j| j.0.as_str()).collect::<Vec<_>>(),
            ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "finger_left_joint", "finger_right_joint"]
        );
        // The hand starts straight above the base: 0.1 + 0.2 + 0.3 + 0.2 + 0.3 + 0.1 + 0.1 + 0.05 m.
        let hand = r.links.iter().find(|l| l.0 == "hand").expect("hand").1;
        let z = s.pose(hand).expect("pose").translation.z;
        assert!((z - 1.35).abs() < 1e-4, "hand at z = {z}");
        assert_eq!(s.shapes().len(), 11, "one collider per link");
        let a = fall(&mut s, &r);
        // Joint 2 (limits ±1.76) falls onto its limit and stays within it.
        let j2: Vec<f32> = a.chunks(18).map(|c| f32::from_bits(c[2])).collect();
        assert!(j2.iter().all(|p| p.abs() < 1.76 + 0.05), "joint 2 within its limits: {:?}", &j2[j2.len() - 5..]);
        assert!(j2[j2.len() - 1] > 1.0, "the arm fell: {}", j2[j2.len() - 1]);
        // Deterministic: a second arm, the same bits.
        let mut s2 = sim();
        let r2 = s2.load_urdf(&arm(), Pose::IDENTITY, true, &ImportOptions::default()).expect("again");
        assert_eq!(a, fall(&mut s2, &r2));
    }

    #[test]
    fn position_motors_hold_the_arm_in_a_pose_against_gravity() {
        let mut s = sim();
        let r = s.load_urdf(&arm(), Pose::IDENTITY, true, &ImportOptions::default()).expect("arm7.urdf loads");
        let handles: Vec<u64> = r.joints.iter().map(|j| j.1).collect();
        let targets = [0.3, 0.5, -0.2, -1.2, 0.1, 1.0, 0.0];
        for (&j, &t) in handles.iter().zip(&targets) {
            s.set_motor(j, super::super::Motor::Position(t, 400.0, 40.0)).expect("motor");
        }
        s.step(150).expect("3 s");
        let states = s.joint_states(&handles).expect("states");
        for (st, t) in states.iter().zip(targets) {
            assert!((st.position - t).abs() < 0.1, "joint at {} for target {t}: {states:?}", st.position);
            assert!(st.velocity.abs() < 0.05, "settled: {states:?}");
        }
    }

    fn load_text(name: &str, text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        match sim().load_urdf(&path, Pose::IDENTITY, true, &ImportOptions::default()) {
            Err(PhysicsError::Robot(m)) => m,
            other => panic!("{name}: expected a robot error, got {other:?}"),
        }
    }

    #[test]
    fn bad_urdf_files_are_errors_naming_the_file_and_element() {
        let link = |n: &str| {
            format!(
                r#"<link name="{n}"><inertial><mass value="1"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial></link>"#
            )
        };
        let m = load_text("broken.urdf", "<robot name=\"x\"><link name=\"a\"");
        assert!(m.contains("broken.urdf") && m.contains("not a valid URDF"), "{m}");
        let m = load_text(
            "float.urdf",
            &format!(
                r#"<robot name="x">{}{}<joint name="free" type="floating"><parent link="a"/><child link="b"/></joint></robot>"#,
                link("a"),
                link("b")
            ),
        );
        assert!(m.contains("float.urdf") && m.contains("joint `free`") && m.contains("unsupported joint type"), "{m}");
        let m = load_text(
            "ghost.urdf",
            &format!(
                r#"<robot name="x">{}<joint name="j" type="fixed"><parent link="a"/><child link="nowhere"/></joint></robot>"#,
                link("a")
            ),
        );
        assert!(m.contains("joint `j`") && m.contains("child link `nowhere` is not defined"), "{m}");
        let m = load_text(
            "mesh.urdf",
            r#"<robot name="x"><link name="a"><collision><geometry><mesh filename="meshes/gone.stl"/></geometry></collision></link></robot>"#,
        );
        assert!(m.contains("mesh.urdf") && m.contains("link `a`") && m.contains("meshes/gone.stl"), "{m}");
        let m = load_text("two.urdf", &format!(r#"<robot name="x">{}{}</robot>"#, link("a"), link("b")));
        assert!(m.contains("exactly one root link"), "{m}");
        match sim().load_urdf(Path::new("/no/such/robot.urdf"), Pose::IDENTITY, true, &ImportOptions::default()) {
            Err(PhysicsError::Robot(m)) => assert!(m.contains("/no/such/robot.urdf") && m.contains("cannot read it"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stl_meshes_become_convex_hulls() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A tetrahedron, as ASCII STL.
        let facet = |v: [[f32; 3]; 3]| {
            let [a, b, c] = v.map(|p| format!("vertex {} {} {}", p[0], p[1], p[2]));
            format!("facet normal 0 0 1\nouter loop\n{a}\n{b}\n{c}\nendloop\nendfacet\n")
        };
        let (p0, p1, p2, p3) = ([0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.2]);
        let body: String = [[p0, p2, p1], [p0, p1, p3], [p0, p3, p2], [p1, p2, p3]].map(facet).concat();
        std::fs::write(dir.path().join("tet.stl"), format!("solid tet\n{body}endsolid tet\n")).expect("stl");
        let urdf = dir.path().join("tet.urdf");
        std::fs::write(&urdf, r#"<robot name="t"><link name="a"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial><collision><geometry><mesh filename="tet.stl" scale="2 2 2"/></geometry></collision></link></robot>"#).expect("urdf");
        let mut s = sim();
        let r = s.load_urdf(&urdf, Pose::from_translation(vec3(0.0, 0.0, 1.0)), false, &ImportOptions::default()).expect("loads");
        let shapes = s.shapes();
        assert_eq!(shapes.len(), 1);
        let super::super::ShapeDesc::ConvexHull(points) = &shapes[0].2 else { panic!("{:?}", shapes[0].2) };
        assert!(points.iter().any(|p| (p.x - 0.4).abs() < 1e-5), "scaled ×2: {points:?}");
        // A free base falls.
        s.step(10).expect("step");
        assert!(s.pose(r.links[0].1).expect("pose").translation.z < 1.0);
    }

    #[test]
    fn bad_robots_name_the_link_joint_or_package_and_published_quirks_load() {
        let link = |n: &str, mass: f64| {
            format!(
                r#"<link name="{n}"><inertial><mass value="{mass}"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link>"#
            )
        };
        let joint = |n: &str, kind: &str, p: &str, c: &str| {
            format!(
                r#"<joint name="{n}" type="{kind}"><parent link="{p}"/><child link="{c}"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="5" velocity="2"/></joint>"#
            )
        };
        let robot = |body: String| format!(r#"<robot name="r">{body}</robot>"#);
        // A link a joint moves, with no mass of its own or welded to it.
        let m = load_text(
            "massless.urdf",
            &robot([link("base", 1.0), link("arm", 0.0), joint("shoulder", "revolute", "base", "arm")].concat()),
        );
        assert!(m.contains("massless.urdf") && m.contains("link `arm` has no mass") && m.contains("joint `shoulder` moves it"), "{m}");
        // ... but a massless frame welded to a heavy link is fine.
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().join("frame.urdf");
        let body = [
            link("base", 1.0),
            link("arm", 1.0),
            link("tool", 0.0),
            joint("shoulder", "revolute", "base", "arm"),
            joint("weld", "fixed", "arm", "tool"),
        ]
        .concat();
        std::fs::write(&ok, robot(body)).expect("write");
        sim().load_urdf(&ok, Pose::IDENTITY, true, &ImportOptions::default()).expect("a massless frame link loads");
        // A loop: two parents for one link, or no root at all.
        let m = load_text(
            "loop.urdf",
            &robot(
                [
                    link("a", 1.0),
                    link("b", 1.0),
                    link("c", 1.0),
                    joint("ab", "revolute", "a", "b"),
                    joint("bc", "revolute", "b", "c"),
                    joint("ac", "revolute", "a", "c"),
                ]
                .concat(),
            ),
        );
        assert!(m.contains("loop.urdf") && m.contains("joint `ac`") && m.contains("loop"), "{m}");
        let m = load_text(
            "ring.urdf",
            &robot([link("a", 1.0), link("b", 1.0), joint("ab", "revolute", "a", "b"), joint("ba", "revolute", "b", "a")].concat()),
        );
        assert!(m.contains("loop"), "{m}");
        // An unknown package and a missing mesh.
        let mesh = |f: &str| {
            format!(
                r#"<robot name="r"><link name="a"><inertial><mass value="1"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial><collision><geometry><mesh filename="{f}"/></geometry></collision></link></robot>"#
            )
        };
        let m = load_text("pkg.urdf", &mesh("package://ghost_description/meshes/base.dae"));
        assert!(m.contains("pkg.urdf") && m.contains("link `a`") && m.contains("unknown package `ghost_description`"), "{m}");
        let m = load_text("gone.urdf", &mesh("meshes/base.obj"));
        assert!(m.contains("link `a`") && m.contains("meshes/base.obj") && m.contains("not found"), "{m}");
        // A xacro substitution that was never expanded.
        let m = load_text(
            "xacro.urdf",
            &robot(
                r#"<link name="a"><inertial><origin xyz="$(arg x) 0 0"/><mass value="1"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial></link>"#
                    .to_string(),
            ),
        );
        assert!(m.contains("xacro.urdf") && m.contains("$(arg x)") && m.contains("expand the file with xacro"), "{m}");
        // A mimic naming no joint.
        let body = [link("a", 1.0), link("b", 1.0), r#"<joint name="j" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="5" velocity="2"/><mimic joint="nothing"/></joint>"#.to_string()].concat();
        let m = load_text("mimic.urdf", &robot(body));
        assert!(m.contains("joint `j`") && m.contains("<mimic> names no joint `nothing`"), "{m}");
    }

    #[test]
    fn a_mimic_joint_follows_its_leader_and_limits_and_damping_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let urdf = dir.path().join("gripper.urdf");
        let link = |n: &str| {
            format!(
                r#"<link name="{n}"><inertial><mass value="0.1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial></link>"#
            )
        };
        let body = format!(
            r#"<robot name="g">{}{}{}<joint name="left" type="prismatic"><parent link="palm"/><child link="l"/><axis xyz="1 0 0"/><limit lower="0" upper="0.04" effort="20" velocity="0.2"/><dynamics damping="0.5"/></joint><joint name="right" type="prismatic"><parent link="palm"/><child link="r"/><axis xyz="-1 0 0"/><limit lower="0" upper="0.04" effort="20" velocity="0.2"/><mimic joint="left" multiplier="1" offset="0"/></joint></robot>"#,
            link("palm"),
            link("l"),
            link("r")
        );
        std::fs::write(&urdf, body).expect("write");
        let mut s = Simulation::new(vec3(0.0, 0.0, 0.0), 0.01, 4).expect("world");
        let r = s.load_urdf(&urdf, Pose::IDENTITY, true, &ImportOptions::default()).expect("loads");
        let (left, right) = (r.joints[0].1, r.joints[1].1);
        assert_eq!(s.joint_dynamics(left), JointDynamics { damping: 0.5, max_velocity: 0.2, max_effort: 20.0 });
        // Asked for 1 m/s, the finger moves at its 0.2 m/s limit; the other follows it.
        s.set_motor(left, super::super::Motor::Velocity(1.0, 1000.0)).expect("motor");
        s.step(10).expect("0.1 s");
        let st = s.joint_states(&[left, right]).expect("states");
        assert!((st[0].velocity - 0.2).abs() < 0.02, "held to its velocity limit: {st:?}");
        assert!((st[1].position - st[0].position).abs() < 0.005, "the mimic follows: {st:?}");
        s.step(30).expect("0.3 s more");
        let st = s.joint_states(&[left, right]).expect("states");
        assert!(st[0].position > 0.035 && (st[1].position - st[0].position).abs() < 0.005, "{st:?}");
    }
}
