//! Tests of the URDF importer.

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
    assert_eq!(s.collider_shapes(&[]).len(), 11, "one collider per link");
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
        &format!(r#"<robot name="x">{}<joint name="j" type="fixed"><parent link="a"/><child link="nowhere"/></joint></robot>"#, link("a")),
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
    let super::super::ShapeDesc::ConvexHull(points) = &shapes[0].shape else { panic!("{:?}", shapes[0].shape) };
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
    let m =
        load_text("massless.urdf", &robot([link("base", 1.0), link("arm", 0.0), joint("shoulder", "revolute", "base", "arm")].concat()));
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
    assert_eq!(s.joint_dynamics(left), JointDynamics { damping: 0.5, friction: 0.0, max_velocity: 0.2, max_effort: 20.0 });
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

#[test]
fn joint_friction_holds_a_pendulum_until_gravity_or_effort_beats_it() {
    // A 1 kg bob 0.5 m from a horizontal hinge, held out level: gravity's torque is 4.9 N·m.
    let dir = tempfile::tempdir().expect("tempdir");
    let swing = |friction: f32, effort: f32| -> f32 {
        let urdf = dir.path().join(format!("pendulum-{friction}.urdf"));
        let body = format!(
            r#"<robot name="p"><link name="base"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link><link name="arm"><inertial><origin xyz="0.5 0 0"/><mass value="1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial></link><joint name="hinge" type="continuous"><parent link="base"/><child link="arm"/><axis xyz="0 1 0"/><dynamics damping="0" friction="{friction}"/></joint></robot>"#
        );
        std::fs::write(&urdf, body).expect("write");
        let mut s = Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 4).expect("world");
        let r = s.load_urdf(&urdf, Pose::IDENTITY, true, &ImportOptions::default()).expect("loads");
        let hinge = r.joints[0].1;
        assert_eq!(s.joint_dynamics(hinge).friction, friction);
        if effort != 0.0 {
            s.set_motor(hinge, super::super::Motor::Effort(effort)).expect("effort");
        }
        s.step(50).expect("0.5 s");
        s.joint_states(&[hinge]).expect("state")[0].position
    };
    let free = swing(0.0, 0.0);
    assert!(free.abs() > 0.5, "no friction: it swings down ({free} rad)");
    let held = swing(6.0, 0.0);
    assert!(held.abs() < 0.01, "6 N·m of friction holds 4.9 N·m of gravity ({held} rad)");
    let slipping = swing(3.0, 0.0);
    assert!(slipping.abs() > 0.05 && slipping.abs() < free.abs() * 0.8, "3 N·m slows the fall ({slipping} rad vs {free})");
    // Friction acts under an effort motor too: gravity plus a push the same way beats it.
    let pushed = swing(6.0, 4.0 * free.signum());
    assert!(pushed.abs() > 0.05 && pushed.signum() == free.signum(), "{pushed} rad");
    // A negative friction is refused by name.
    let bad = dir.path().join("bad.urdf");
    std::fs::write(&bad, r#"<robot name="p"><link name="base"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link><link name="arm"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link><joint name="hinge" type="continuous"><parent link="base"/><child link="arm"/><axis xyz="0 1 0"/><dynamics friction="-1"/></joint></robot>"#).expect("write");
    let mut s = Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 4).expect("world");
    let m = s.load_urdf(&bad, Pose::IDENTITY, true, &ImportOptions::default()).expect_err("negative friction").to_string();
    assert!(m.contains("friction=\"-1\"") && m.contains("hinge"), "{m}");
}

#[test]
fn visuals_are_kept_with_their_colours_and_a_missing_visual_mesh_is_noted_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("part.obj"), "v 0 0 0\nv 0.2 0 0\nv 0 0.2 0\nv 0 0 0.2\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
        .expect("obj");
    let inertial = r#"<inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>"#;
    let collision = r#"<collision><geometry><box size="0.1 0.1 0.1"/></geometry></collision>"#;
    let body = format!(
        r#"<robot name="v"><material name="orange"><color rgba="1 0.5 0 1"/></material>
        <link name="base">{inertial}{collision}<visual><geometry><cylinder radius="0.1" length="0.4"/></geometry><material name="orange"/></visual></link>
        <link name="arm">{inertial}{collision}<visual><geometry><mesh filename="part.obj"/></geometry><material name="own"><color rgba="0 0 1 1"/></material></visual></link>
        <link name="tool">{inertial}{collision}<visual><geometry><mesh filename="gone.stl"/></geometry></visual><visual><geometry><sphere radius="0"/></geometry></visual></link>
        <link name="tip">{inertial}<visual><geometry><sphere radius="0.01"/></geometry><material name="own"/></visual></link>
        <joint name="j1" type="revolute"><parent link="base"/><child link="arm"/><origin xyz="0 0 0.3"/><axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="5" velocity="2"/></joint>
        <joint name="j2" type="fixed"><parent link="arm"/><child link="tool"/><origin xyz="0.3 0 0"/></joint>
        <joint name="j3" type="fixed"><parent link="tool"/><child link="tip"/><origin xyz="0.1 0 0"/></joint></robot>"#
    );
    let urdf = dir.path().join("v.urdf");
    std::fs::write(&urdf, body).expect("write");
    let mut s = sim();
    let r = s.load_urdf(&urdf, Pose::IDENTITY, true, &ImportOptions::default()).expect("a missing visual mesh does not refuse the robot");
    assert_eq!(s.visual_count(), 3, "a zero-size visual is nothing to see");
    assert!(matches!(s.visual_problems(), [p] if p.contains("link `tool`") && p.contains("gone.stl")), "{:?}", s.visual_problems());
    let shapes = s.shapes();
    let of = |link: &str| {
        let body = r.links.iter().find(|l| l.0 == link).expect("link").1;
        shapes.iter().filter(|s| s.body == body).cloned().collect::<Vec<_>>()
    };
    // The base: its orange cylinder (the named material), standing along z, not its box.
    let base = of("base");
    assert!(
        matches!(&base[..], [v] if v.colour == Some([255, 128, 0]) && matches!(v.shape, super::super::ShapeDesc::Cylinder(..))),
        "{base:?}"
    );
    assert!((base[0].pose * vec3(0.0, 0.2, 0.0)).z.abs() > 0.19, "the cylinder's axis is the URDF's z");
    // The arm: its blue mesh, as the hull of the file's points, where the link is.
    let arm = of("arm");
    assert!(
        matches!(&arm[..], [v] if v.colour == Some([0, 0, 255]) && matches!(&v.shape, super::super::ShapeDesc::ConvexHull(p) if p.len() == 4)),
        "{arm:?}"
    );
    assert!((arm[0].pose.translation.z - 0.3).abs() < 1e-5);
    // The tool, whose visual mesh is gone: drawn by its collision box, in its body's colour.
    let tool = of("tool");
    assert!(matches!(&tool[..], [v] if v.colour.is_none() && matches!(v.shape, super::super::ShapeDesc::Cuboid(_))), "{tool:?}");
    // A colour named by a material another link's visual defined (as the Panda's file does).
    assert!(matches!(&of("tip")[..], [v] if v.colour == Some([0, 0, 255])), "{:?}", of("tip"));
}

#[test]
fn a_position_motor_is_held_to_the_joint_effort_limit() {
    // The 1 kg bob 0.5 m out (4.9 N·m of gravity) held level by a stiff position motor: a
    // 100 N·m actuator holds it, a 2 N·m one cannot.
    let dir = tempfile::tempdir().expect("tempdir");
    let hold = |effort: f32| -> f32 {
        let urdf = dir.path().join(format!("arm-{effort}.urdf"));
        let body = format!(
            r#"<robot name="p"><link name="base"><inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link><link name="arm"><inertial><origin xyz="0.5 0 0"/><mass value="1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial></link><joint name="hinge" type="revolute"><parent link="base"/><child link="arm"/><axis xyz="0 1 0"/><limit lower="-3" upper="3" effort="{effort}" velocity="10"/></joint></robot>"#
        );
        std::fs::write(&urdf, body).expect("write");
        let mut s = Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 4).expect("world");
        let r = s.load_urdf(&urdf, Pose::IDENTITY, true, &ImportOptions::default()).expect("loads");
        let hinge = r.joints[0].1;
        s.set_motor(hinge, super::super::Motor::Position(0.0, 400.0, 40.0)).expect("motor");
        s.step(100).expect("1 s");
        s.joint_states(&[hinge]).expect("state")[0].position
    };
    let strong = hold(100.0);
    assert!(strong.abs() < 0.05, "a 100 N·m actuator holds the arm level ({strong} rad)");
    let weak = hold(2.0);
    assert!(weak.abs() > 0.5, "a 2 N·m actuator cannot hold 4.9 N·m ({weak} rad)");
}
