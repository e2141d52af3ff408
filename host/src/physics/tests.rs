use super::*;

fn body(kind: BodyKind, z: f32) -> BodyDesc {
    BodyDesc {
        kind,
        pose: Pose::from_translation(vec3(0.0, 0.0, z)),
        linear_damping: 0.0,
        angular_damping: 0.0,
        gravity_scale: 1.0,
        can_sleep: false,
    }
}

fn collider(shape: ShapeDesc) -> ColliderDesc {
    ColliderDesc {
        shape,
        local_pose: Pose::IDENTITY,
        friction: 0.5,
        restitution: 0.0,
        density: 1000.0,
        memberships: u32::MAX,
        filter: u32::MAX,
    }
}

/// A two-link pendulum (multibody) beside a box falling on a fixed floor (contacts).
fn scene() -> (Simulation, Vec<u64>, Vec<u64>) {
    let mut s = Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 2).expect("world");
    let floor = s.add_body(body(BodyKind::Fixed, 0.0)).expect("floor");
    s.add_collider(floor, collider(ShapeDesc::Cuboid(vec3(5.0, 5.0, 0.1)))).expect("floor collider");
    let base = s.add_body(body(BodyKind::Fixed, 3.0)).expect("base");
    let l1 = s.add_body(body(BodyKind::Dynamic, 2.5)).expect("l1");
    s.add_collider(l1, ColliderDesc { memberships: 2, filter: 0, ..collider(ShapeDesc::Capsule(0.25, 0.05)) }).expect("c1");
    let l2 = s.add_body(body(BodyKind::Dynamic, 2.0)).expect("l2");
    s.add_collider(l2, ColliderDesc { memberships: 2, filter: 0, ..collider(ShapeDesc::Capsule(0.25, 0.05)) }).expect("c2");
    let hinge = |parent, child| JointDesc {
        kind: JointKind::Revolute,
        parent,
        child,
        parent_anchor: Pose::from_translation(vec3(0.0, 0.0, -0.25)),
        child_anchor: Pose::from_translation(vec3(0.0, 0.0, 0.25)),
        axis: Vector::Y,
        limits: None,
        multibody: true,
    };
    let j1 = s.add_joint(JointDesc { parent_anchor: Pose::IDENTITY, ..hinge(base, l1) }).expect("j1");
    let j2 = s.add_joint(hinge(l1, l2)).expect("j2");
    let cube = s.add_body(body(BodyKind::Dynamic, 1.0)).expect("cube");
    s.add_collider(
        cube,
        collider(ShapeDesc::ConvexHull(vec![
            vec3(-0.1, -0.1, -0.1),
            vec3(0.1, -0.1, -0.1),
            vec3(-0.1, 0.1, -0.1),
            vec3(0.1, 0.1, -0.1),
            vec3(-0.1, -0.1, 0.1),
            vec3(0.1, -0.1, 0.1),
            vec3(-0.1, 0.1, 0.1),
            vec3(0.1, 0.1, 0.1),
        ])),
    )
    .expect("hull");
    s.set_joint_state(j1, 0.3, 0.0).expect("start swinging");
    (s, vec![l1, l2, cube], vec![j1, j2])
}

fn trace(s: &mut Simulation, bodies: &[u64], joints: &[u64], steps: usize) -> Vec<u32> {
    let mut out = Vec::new();
    for k in 0..steps {
        s.set_motor(joints[1], Motor::Effort(if k % 50 < 25 { 0.5 } else { -0.5 })).expect("motor");
        s.step(1).expect("step");
        for &b in bodies {
            let p = s.pose(b).expect("pose");
            out.extend([p.translation.x, p.translation.y, p.translation.z, p.rotation.x, p.rotation.w].map(f32::to_bits));
        }
        for j in s.joint_states(joints).expect("joints") {
            out.extend([j.position.to_bits(), j.velocity.to_bits()]);
        }
    }
    out
}

#[test]
fn the_same_actions_give_bit_identical_trajectories_and_snapshots_restore_exactly() {
    let (mut a, bodies, joints) = scene();
    let (mut b, _, _) = scene();
    assert_eq!(trace(&mut a, &bodies, &joints, 1000), trace(&mut b, &bodies, &joints, 1000));
    let snap = a.snapshot();
    let first = trace(&mut a, &bodies, &joints, 200);
    a.restore(&snap).expect("restore");
    assert_eq!(first, trace(&mut a, &bodies, &joints, 200), "snapshot → step → restore → step");
    // The cube rests on the floor: a contact carries its weight (m g = 8 kg · 9.81).
    let contacts = a.contacts();
    let on_floor: f32 = contacts.iter().filter(|c| c.body_a == bodies[2] || c.body_b == bodies[2]).map(|c| c.normal_force).sum();
    assert!((on_floor - 8.0 * 9.81).abs() < 2.0, "normal force {on_floor} N for an 8 kg cube: {contacts:?}");
    // A ray down from above the cube hits it.
    let (hit, dist, _) = a.cast_ray(vec3(0.0, 0.0, 1.0), vec3(0.0, 0.0, -1.0), 5.0, u32::MAX).expect("hit");
    assert_eq!(hit, bodies[2]);
    assert!((dist - (1.0 - 0.3)).abs() < 0.05, "the cube's top rests at 0.3 m: distance {dist}");
    assert!(a.restore(b"garbage").is_err());
}

#[test]
fn a_joint_state_set_is_read_back_and_the_pendulum_swings() {
    let (mut s, _, joints) = scene();
    s.set_joint_state(joints[0], -0.4, 1.5).expect("set");
    let j = s.joint_states(&joints).expect("read")[0];
    assert!((j.position + 0.4).abs() < 1e-4 && (j.velocity - 1.5).abs() < 1e-3, "{j:?}");
    s.step(10).expect("step");
    assert!(s.joint_states(&joints).expect("read")[0].position > -0.4, "it moved with its velocity");
}

#[test]
fn bad_input_is_refused_by_name_and_blow_ups_are_reported() {
    let (mut s, bodies, joints) = scene();
    let e = |r: Res<()>| match r.expect_err("refused") {
        PhysicsError::InvalidDesc(m) => m,
        other => panic!("{other:?}"),
    };
    assert!(e(s.set_motor(joints[0], Motor::Effort(f32::NAN))).contains("non-finite"));
    assert!(e(s.apply_force(bodies[0], vec3(f32::INFINITY, 0.0, 0.0))).contains("apply-force"));
    assert!(matches!(s.pose(12345), Err(PhysicsError::InvalidHandle(12345))));
    assert!(matches!(s.joint_states(&[99]), Err(PhysicsError::InvalidHandle(99))));
    assert!(s.add_collider(bodies[0], collider(ShapeDesc::Ball(-1.0))).is_err());
    assert!(s.add_collider(bodies[0], collider(ShapeDesc::ConvexHull(vec![Vector::ZERO; 3]))).is_err());
    assert!(Simulation::new(Vector::ZERO, 0.0, 1).is_err());
    assert!(
        e(s.set_motor(joints[0], Motor::Effort(0.0))
            .and_then(|()| s.set_pose(bodies[0], Pose::from_parts(Vector::ZERO, Rotation::from_xyzw(0.0, 0.0, 0.0, 2.0)))))
        .contains("unit quaternion")
    );
    // A huge effort blows the world up: `Diverged`, not a NaN pose handed on.
    s.set_motor(joints[1], Motor::Effort(1e9)).expect("the largest effort");
    let mut result = Ok(());
    for _ in 0..100 {
        result = s.step(1);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(PhysicsError::Diverged(_))), "{result:?}");
}

#[test]
fn snapshots_leave_mesh_shapes_out_and_restore_them_from_the_world_bit_for_bit() {
    // A ball of 400 points as a hull (a mesh's, in effect) falling onto the floor beside the
    // pendulum scene.
    let hull = |r: f32| -> Vec<Vector> {
        (0..400)
            .map(|i| {
                let (t, p) = (i as f32 * 2.399_963, (i as f32 + 0.5) / 400.0);
                let z = 1.0 - 2.0 * p;
                let s = (1.0 - z * z).sqrt();
                vec3(r * s * t.cos(), r * s * t.sin(), r * z)
            })
            .collect()
    };
    let build = |r: f32| {
        let (mut s, mut bodies, joints) = scene();
        let rock = s.add_body(body(BodyKind::Dynamic, 1.0)).expect("rock");
        s.add_collider(rock, collider(ShapeDesc::ConvexHull(hull(r)))).expect("hull");
        bodies.push(rock);
        (s, bodies, joints)
    };
    let (mut a, bodies, joints) = build(0.2);
    trace(&mut a, &bodies, &joints, 50);
    let snap = a.snapshot();
    let first = trace(&mut a, &bodies, &joints, 200);
    // The hull is left out: the snapshot is far smaller than the world's full encoding.
    let full = bincode::serde::encode_to_vec(a.world.colliders.clone(), bincode::config::standard()).expect("encode");
    assert!(snap.len() < full.len(), "snapshot {} bytes, colliders alone {} bytes", snap.len(), full.len());
    a.restore(&snap).expect("restore");
    assert_eq!(first, trace(&mut a, &bodies, &joints, 200), "restored from the world's own hull, bit for bit");
    // Another world built the same way restores it too (an env restoring a checkpoint).
    let (mut b, _, _) = build(0.2);
    b.restore(&snap).expect("restore into a world built the same way");
    assert_eq!(first, trace(&mut b, &bodies, &joints, 200));
    // A world built with another hull refuses it by saying so.
    let (mut c, _, _) = build(0.3);
    let e = c.restore(&snap).expect_err("other mesh").to_string();
    assert!(e.contains("mesh shape") && e.contains("other meshes"), "{e}");
}
