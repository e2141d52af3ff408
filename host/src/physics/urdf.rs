//! URDF import: a robot description file becomes bodies, colliders and multibody joints in a
//! [`Simulation`]. Links → bodies (mass and inertia from `<inertial>`, colliders from
//! `<collision>`: box, cylinder, sphere, capsule, and STL meshes as convex hulls); joints →
//! multibody links (revolute with limits, continuous, prismatic, fixed). The root link is
//! fixed to the world or free. Every error names the file and the element.

use super::{JointDesc, JointKind, PhysicsError, Simulation, body_id, vec3};
use rapier3d::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

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
fn shape_of(file: &Path, link: &str, g: &urdf_rs::Geometry) -> Result<(SharedShape, Rotation), PhysicsError> {
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
            if filename.starts_with("package://") {
                return Err(err(format!("mesh `{filename}`: package:// paths are not supported; give a path relative to the URDF file")));
            }
            let rel = filename.strip_prefix("file://").unwrap_or(filename);
            let path = file.parent().unwrap_or(Path::new(".")).join(rel);
            if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("stl")) {
                return Err(err(format!("mesh `{filename}`: only STL meshes are supported")));
            }
            let mut f = std::fs::File::open(&path).map_err(|e| err(format!("mesh `{filename}` ({}): {e}", path.display())))?;
            let mesh = stl_io::read_stl(&mut f).map_err(|e| err(format!("mesh `{filename}` is not a readable STL file: {e}")))?;
            let s = scale.as_ref().map_or([1.0; 3], |s| s.0);
            let points: Vec<Vector> =
                mesh.vertices.iter().map(|v| vec3(v[0] * s[0] as f32, v[1] * s[1] as f32, v[2] * s[2] as f32)).collect();
            let hull = SharedShape::convex_hull(&points)
                .ok_or_else(|| err(format!("mesh `{filename}`: its {} vertices span no volume", points.len())))?;
            (hull, Rotation::IDENTITY)
        }
    })
}

impl Simulation {
    /// Builds the robot described by the URDF file at `path`, its root link at `base`, fixed
    /// to the world or free.
    pub fn load_urdf(&mut self, path: &Path, base: Pose, fixed_base: bool) -> Result<LoadedRobot, PhysicsError> {
        let err = |m: String| PhysicsError::Robot(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let robot = urdf_rs::read_from_string(&text).map_err(|e| err(format!("not a valid URDF: {e}")))?;
        if robot.links.is_empty() {
            return Err(err("it defines no <link>".into()));
        }
        let index: HashMap<&str, usize> = robot.links.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect();
        let mut parent_of: HashMap<usize, usize> = HashMap::new();
        for j in &robot.joints {
            use urdf_rs::JointType::{Floating, Planar, Spherical};
            if matches!(j.joint_type, Floating | Planar | Spherical) {
                return Err(err(format!(
                    "joint `{}`: unsupported joint type `{:?}` (supported: revolute, continuous, prismatic, fixed)",
                    j.name, j.joint_type
                )));
            }
            let find = |name: &str, role: &str| {
                index.get(name).copied().ok_or_else(|| err(format!("joint `{}`: its {role} link `{name}` is not defined", j.name)))
            };
            let (p, c) = (find(&j.parent.link, "parent")?, find(&j.child.link, "child")?);
            if parent_of.insert(c, p).is_some() {
                return Err(err(format!("joint `{}`: link `{}` already has a parent joint (URDF describes a tree)", j.name, j.child.link)));
            }
        }
        let roots: Vec<usize> = (0..robot.links.len()).filter(|i| !parent_of.contains_key(i)).collect();
        let [root] = roots.as_slice() else {
            let names: Vec<&str> = roots.iter().map(|&i| robot.links[i].name.as_str()).collect();
            return Err(err(format!("it needs exactly one root link, found {}: {names:?}", names.len())));
        };

        // Bodies in breadth-first order from the root, posed at zero joint positions.
        let mut world_pose: HashMap<usize, Pose> = HashMap::from([(*root, base)]);
        let mut bodies: HashMap<usize, RigidBodyHandle> = HashMap::new();
        let mut queue = VecDeque::from([*root]);
        let mut order = Vec::new();
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for j in robot.joints.iter().filter(|j| index[j.parent.link.as_str()] == i) {
                let c = index[j.child.link.as_str()];
                world_pose.insert(c, world_pose[&i] * pose_of(&j.origin));
                queue.push_back(c);
            }
        }
        if order.len() != robot.links.len() {
            return Err(err("its joints form a loop".into()));
        }
        for &i in &order {
            let fixed = i == *root && fixed_base;
            bodies.insert(i, self.insert_link(path, &robot.links[i], world_pose[&i], fixed)?);
        }
        let mut out =
            LoadedRobot { links: order.iter().map(|&i| (robot.links[i].name.clone(), body_id(bodies[&i]))).collect(), joints: Vec::new() };
        for j in &robot.joints {
            let kind = match j.joint_type {
                urdf_rs::JointType::Prismatic => JointKind::Prismatic,
                urdf_rs::JointType::Fixed => JointKind::Fixed,
                _ => JointKind::Revolute,
            };
            let [ax, ay, az] = j.axis.xyz.0;
            let limited = matches!(j.joint_type, urdf_rs::JointType::Revolute | urdf_rs::JointType::Prismatic)
                && j.limit.lower.is_finite()
                && j.limit.upper.is_finite()
                && j.limit.lower < j.limit.upper;
            let desc = JointDesc {
                kind,
                parent: body_id(bodies[&index[j.parent.link.as_str()]]),
                child: body_id(bodies[&index[j.child.link.as_str()]]),
                parent_anchor: pose_of(&j.origin),
                child_anchor: Pose::IDENTITY,
                axis: if kind == JointKind::Fixed { Vector::X } else { vec3(ax as f32, ay as f32, az as f32) },
                limits: limited.then_some((j.limit.lower as f32, j.limit.upper as f32)),
                multibody: true,
            };
            let h = self.add_joint(desc).map_err(|e| err(format!("joint `{}`: {e:?}", j.name)))?;
            if kind != JointKind::Fixed {
                out.joints.push((j.name.clone(), h));
            }
        }
        // A free root needs no joint: it is a dynamic body at the multibody's root.
        Ok(out)
    }

    /// The body of one URDF link at `pose` (fixed, or dynamic), with its inertial and its
    /// collision shapes.
    fn insert_link(&mut self, path: &Path, link: &urdf_rs::Link, pose: Pose, fixed: bool) -> Result<RigidBodyHandle, PhysicsError> {
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
        let mut b = kind.pose(pose).can_sleep(false);
        if mass > 0.0 {
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
        let h = self.world.insert_body(b);
        for c in &link.collision {
            let (shape, turn) = shape_of(path, &link.name, &c.geometry)?;
            let local = pose_of(&c.origin);
            let collider =
                ColliderBuilder::new(shape).position(Pose::from_parts(local.translation, local.rotation * turn)).density(0.0).friction(0.8);
            self.world.insert_collider(collider, Some(h));
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
        let r = s.load_urdf(&arm(), Pose::IDENTITY, true).expect("arm7.urdf loads");
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
        let r2 = s2.load_urdf(&arm(), Pose::IDENTITY, true).expect("again");
        assert_eq!(a, fall(&mut s2, &r2));
    }

    #[test]
    fn position_motors_hold_the_arm_in_a_pose_against_gravity() {
        let mut s = sim();
        let r = s.load_urdf(&arm(), Pose::IDENTITY, true).expect("arm7.urdf loads");
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
        match sim().load_urdf(&path, Pose::IDENTITY, true) {
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
        match sim().load_urdf(Path::new("/no/such/robot.urdf"), Pose::IDENTITY, true) {
            Err(PhysicsError::Robot(m)) => assert!(m.contains("/no/such/robot.urdf") && m.contains("cannot read it"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stl_meshes_become_convex_hulls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tri = |a: [f32; 3], b: [f32; 3], c: [f32; 3]| stl_io::Triangle {
            normal: stl_io::Normal::new([0.0, 0.0, 1.0]),
            vertices: [stl_io::Vertex::new(a), stl_io::Vertex::new(b), stl_io::Vertex::new(c)],
        };
        // A tetrahedron.
        let (p0, p1, p2, p3) = ([0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.2]);
        let mesh = [tri(p0, p2, p1), tri(p0, p1, p3), tri(p0, p3, p2), tri(p1, p2, p3)];
        let mut f = std::fs::File::create(dir.path().join("tet.stl")).expect("stl");
        stl_io::write_stl(&mut f, mesh.iter()).expect("write stl");
        let urdf = dir.path().join("tet.urdf");
        std::fs::write(&urdf, r#"<robot name="t"><link name="a"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial><collision><geometry><mesh filename="tet.stl" scale="2 2 2"/></geometry></collision></link></robot>"#).expect("urdf");
        let mut s = sim();
        let r = s.load_urdf(&urdf, Pose::from_translation(vec3(0.0, 0.0, 1.0)), false).expect("loads");
        let shapes = s.shapes();
        assert_eq!(shapes.len(), 1);
        let super::super::ShapeDesc::ConvexHull(points) = &shapes[0].2 else { panic!("{:?}", shapes[0].2) };
        assert!(points.iter().any(|p| (p.x - 0.4).abs() < 1e-5), "scaled ×2: {points:?}");
        // A free base falls.
        s.step(10).expect("step");
        assert!(s.pose(r.links[0].1).expect("pose").translation.z < 1.0);
    }
}
