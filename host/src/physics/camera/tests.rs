use super::*;
use crate::physics::{BodyDesc, BodyKind, ColliderDesc, vec3};

fn world() -> Simulation {
    Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 1).expect("world")
}

fn body_at(s: &mut Simulation, kind: BodyKind, p: [f32; 3], shape: ShapeDesc) -> u64 {
    let b = s
        .add_body(BodyDesc {
            kind,
            pose: Pose::from_translation(vec3(p[0], p[1], p[2])),
            linear_damping: 0.0,
            angular_damping: 0.0,
            gravity_scale: 0.0,
            can_sleep: false,
        })
        .expect("body");
    let c = ColliderDesc { shape, local_pose: Pose::IDENTITY, friction: 0.5, restitution: 0.0, density: 1000.0, memberships: 0, filter: 0 };
    s.add_collider(b, c).expect("collider");
    b
}

/// A camera at the origin looking along −Z (the world's), `side`² pixels, 60° field.
fn cam(name: &str, side: u32, channels: Channels) -> CameraDesc {
    CameraDesc {
        name: name.into(),
        env: 0,
        body: None,
        pose: Pose::IDENTITY,
        fov_y: 60.0,
        width: side,
        height: side,
        channels,
        near: 0.01,
        far: 10.0,
    }
}

const ALL: Channels = Channels { rgb: true, depth: true, segmentation: true };

fn image(s: &mut Simulation, index: usize) -> Vec<f32> {
    s.prepare_cameras();
    let mut out = vec![0.0; s.cameras()[index].len()];
    s.render(index, &mut out).expect("render");
    out
}

/// The pixel (x right, y down, continuous) a camera-frame point projects to.
fn project(c: &CameraDesc, p: [f32; 3]) -> (f32, f32) {
    let f = c.focal();
    (c.width as f32 / 2.0 + f * p[0] / -p[2], c.height as f32 / 2.0 - f * p[1] / -p[2])
}

#[test]
fn a_point_lands_on_its_pixel() {
    for p in [[0.0, 0.0, -1.0], [0.21, -0.13, -1.2], [-0.3, 0.25, -0.9], [0.05, 0.4, -1.5]] {
        let mut s = world();
        let b = body_at(&mut s, BodyKind::Fixed, p, ShapeDesc::Ball(0.015));
        let c = cam("front", 128, Channels { segmentation: true, ..Channels::default() });
        s.add_camera(c.clone()).expect("camera");
        let img = image(&mut s, 0);
        let id = (super::super::unpack(b).0 + 1) as f32;
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (i, &v) in img.iter().enumerate() {
            if v == id {
                sx += (i % 128) as f32 + 0.5;
                sy += (i / 128) as f32 + 0.5;
                n += 1.0;
            }
        }
        assert!(n >= 4.0, "the ball at {p:?} covers {n} pixels");
        let (ex, ey) = project(&c, p);
        assert!((sx / n - ex).abs() <= 0.5 && (sy / n - ey).abs() <= 0.5, "{p:?}: seen at ({}, {}), expected ({ex}, {ey})", sx / n, sy / n);
    }
}

#[test]
fn depth_at_the_centre_of_a_sphere_and_a_box_is_exact_to_a_millimetre() {
    let mut s = world();
    body_at(&mut s, BodyKind::Fixed, [0.0, 0.0, -2.0], ShapeDesc::Ball(0.25));
    s.add_camera(cam("c", 64, Channels { depth: true, ..Channels::default() })).expect("camera");
    let d = image(&mut s, 0);
    // Pixel centres nearest the axis are half a pixel off it; the sphere is flat there.
    for p in [31 * 64 + 31, 32 * 64 + 32, 31 * 64 + 32] {
        assert!((d[p] - 1.75).abs() < 1e-3, "sphere depth {} at pixel {p}", d[p]);
    }
    assert_eq!(d[0], 10.0, "an empty pixel is at `far`");

    let mut s = world();
    body_at(&mut s, BodyKind::Fixed, [0.1, -0.05, -1.8], ShapeDesc::Cuboid(vec3(0.3, 0.3, 0.3)));
    s.add_camera(cam("c", 64, Channels { depth: true, ..Channels::default() })).expect("camera");
    let d = image(&mut s, 0);
    assert!((d[32 * 64 + 32] - 1.5).abs() < 1e-3, "box face depth {}", d[32 * 64 + 32]);
    // A box turned 45° about the view axis still shows its face at 1.5 m.
    let mut s = world();
    let b = body_at(&mut s, BodyKind::Dynamic, [0.0, 0.0, -1.8], ShapeDesc::Cuboid(vec3(0.3, 0.3, 0.3)));
    s.set_pose(b, Pose::from_parts(vec3(0.0, 0.0, -1.8), rapier3d::prelude::Rotation::from_rotation_z(0.785))).expect("turn");
    s.add_camera(cam("c", 64, Channels { depth: true, ..Channels::default() })).expect("camera");
    let d = image(&mut s, 0);
    assert!((d[32 * 64 + 32] - 1.5).abs() < 1e-3, "turned box face depth {}", d[32 * 64 + 32]);
}

#[test]
fn capsules_cylinders_and_hulls_have_exact_depths_too() {
    let cases = [
        (ShapeDesc::Capsule(0.2, 0.1), 1.9),  // its side, along Y, faces the camera
        (ShapeDesc::Cylinder(0.2, 0.1), 1.9), // likewise
        (
            ShapeDesc::ConvexHull(
                [
                    [-1.0, -1.0, -1.0],
                    [1.0, -1.0, -1.0],
                    [-1.0, 1.0, -1.0],
                    [1.0, 1.0, -1.0],
                    [-1.0, -1.0, 1.0],
                    [1.0, -1.0, 1.0],
                    [-1.0, 1.0, 1.0],
                    [1.0, 1.0, 1.0],
                ]
                .iter()
                .map(|p| vec3(p[0] * 0.2, p[1] * 0.2, p[2] * 0.2))
                .collect(),
            ),
            1.8,
        ),
    ];
    for (shape, expected) in cases {
        let mut s = world();
        body_at(&mut s, BodyKind::Fixed, [0.0, 0.0, -2.0], shape.clone());
        // An odd size puts a pixel centre on the axis (a 0.1 m cylinder curves 1.5 mm in half
        // a pixel at 2 m).
        s.add_camera(cam("c", 63, Channels { depth: true, ..Channels::default() })).expect("camera");
        let d = image(&mut s, 0);
        assert!((d[31 * 63 + 31] - expected).abs() < 1e-3, "{shape:?}: depth {}", d[31 * 63 + 31]);
    }
}

#[test]
fn segmentation_names_the_body_seen_and_colours_follow_set_colour() {
    let mut s = world();
    let left = body_at(&mut s, BodyKind::Fixed, [-0.3, 0.0, -1.5], ShapeDesc::Ball(0.1));
    let right = body_at(&mut s, BodyKind::Dynamic, [0.3, 0.0, -1.5], ShapeDesc::Cuboid(vec3(0.1, 0.1, 0.1)));
    s.set_colour(left, [1.0, 0.0, 0.0]).expect("colour");
    s.add_camera(cam("c", 64, ALL)).expect("camera");
    let img = image(&mut s, 0);
    let n = 64 * 64;
    let c = &s.cameras()[0];
    let at = |p: [f32; 3]| {
        let (x, y) = project(c, p);
        y as usize * 64 + x as usize
    };
    let (l, r) = (at([-0.3, 0.0, -1.5]), at([0.3, 0.0, -1.5]));
    assert_eq!(img[4 * n + l], (super::super::unpack(left).0 + 1) as f32);
    assert_eq!(img[4 * n + r], (super::super::unpack(right).0 + 1) as f32);
    assert_eq!(img[4 * n], 0.0, "nothing in the corner");
    assert!(
        img[l] > 100.0 && img[n + l] == 0.0 && img[2 * n + l] == 0.0,
        "the left ball is red: {:?}",
        [img[l], img[n + l], img[2 * n + l]]
    );
    assert!(img[2 * n + r] > img[r], "the moving box has the first palette colour (blue)");
    assert_eq!([img[0], img[n], img[2 * n]], SKY, "sky in the corner");
    assert!(img[..3 * n].iter().all(|v| v.fract() == 0.0), "colours are whole numbers");
}

#[test]
fn the_same_state_gives_the_same_bits_in_another_world() {
    let build = || {
        let mut s = world();
        let b = body_at(&mut s, BodyKind::Dynamic, [0.0, 0.3, -1.0], ShapeDesc::Capsule(0.1, 0.05));
        body_at(&mut s, BodyKind::Fixed, [0.0, -0.5, -1.0], ShapeDesc::Cuboid(vec3(1.0, 0.05, 1.0)));
        s.add_camera(cam("c", 48, ALL)).expect("camera");
        (s, b)
    };
    let (mut s, b) = build();
    s.set_velocity(b, vec3(0.3, 0.1, 0.0), vec3(1.0, 2.0, 0.5)).expect("push");
    s.step(20).expect("step");
    let first = image(&mut s, 0);
    assert_eq!(first.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), image(&mut s, 0).iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let (mut t, _) = build();
    t.restore(&s.snapshot()).expect("restore");
    let second = image(&mut t, 0);
    assert!(first.iter().zip(&second).all(|(a, b)| a.to_bits() == b.to_bits()), "a restored world renders the same bits");
}

#[test]
fn a_camera_on_a_body_moves_with_it() {
    let mut s = world();
    let arm = body_at(&mut s, BodyKind::KinematicPosition, [0.0, 0.0, 0.0], ShapeDesc::Ball(0.01));
    // A ball fixed in the world, 1 m ahead of the arm's camera.
    let ball = body_at(&mut s, BodyKind::Fixed, [0.0, 0.0, -1.0], ShapeDesc::Ball(0.05));
    s.add_camera(CameraDesc { body: Some(arm), pose: Pose::from_translation(vec3(0.0, 0.0, -0.05)), ..cam("wrist", 64, ALL) })
        .expect("camera");
    let seg = |s: &mut Simulation| -> (f32, f32) {
        let img = image(s, 0);
        let id = (super::super::unpack(ball).0 + 1) as f32;
        let seg = &img[4 * 64 * 64..];
        let (mut x, mut n) = (0.0, 0.0);
        for (i, &v) in seg.iter().enumerate() {
            if v == id {
                x += (i % 64) as f32 + 0.5;
                n += 1.0;
            }
        }
        (x / n, n)
    };
    let (x0, n0) = seg(&mut s);
    assert!((x0 - 32.0).abs() < 0.5 && n0 > 0.0, "dead ahead: {x0}");
    // The arm steps right: the ball moves left in the wrist image.
    s.set_pose(arm, Pose::from_translation(vec3(0.2, 0.0, 0.0))).expect("move");
    let (x1, _) = seg(&mut s);
    let f = s.cameras()[0].focal();
    let expected = 32.0 - f * 0.2 / 0.95;
    assert!((x1 - expected).abs() < 0.5, "after the move: {x1}, expected {expected}");
}

#[test]
fn bad_cameras_are_refused_by_name() {
    let mut s = world();
    let b = body_at(&mut s, BodyKind::Fixed, [0.0, 0.0, -1.0], ShapeDesc::Ball(0.1));
    let err = |s: &mut Simulation, c: CameraDesc| s.add_camera(c).expect_err("refused").to_string();
    assert!(err(&mut s, CameraDesc { fov_y: 0.0, ..cam("front", 64, ALL) }).contains("camera `front`: field of view 0°"));
    assert!(err(&mut s, CameraDesc { fov_y: 180.0, ..cam("front", 64, ALL) }).contains("below 180°"));
    assert!(err(&mut s, cam("big", 4096, ALL)).contains("camera `big`: 4096×4096 pixels; each side must be 1 to 512"));
    assert!(err(&mut s, cam("none", 0, ALL)).contains("each side must be"));
    assert!(err(&mut s, CameraDesc { body: Some(b + 77), ..cam("wrist", 64, ALL) }).contains("camera `wrist`: is attached to body"));
    assert!(err(&mut s, cam("dark", 64, Channels::default())).contains("renders no channel"));
    assert!(err(&mut s, CameraDesc { near: 0.0, ..cam("n", 64, ALL) }).contains("0 < near < far"));
    s.add_camera(cam("front", 64, ALL)).expect("first");
    assert!(err(&mut s, cam("front", 64, ALL)).contains("already has a camera of this name"));
    assert!(err(&mut s, cam("", 64, ALL)).contains("name is empty"));
}

#[test]
fn look_at_points_the_camera() {
    let pose = look_at([1.0, 0.0, 0.5], [0.0, 0.0, 0.5], [0.0, 0.0, 1.0]).expect("pose");
    let forward = pose.rotation * vec3(0.0, 0.0, -1.0);
    assert!((forward - vec3(-1.0, 0.0, 0.0)).length() < 1e-6, "{forward:?}");
    let up = pose.rotation * vec3(0.0, 1.0, 0.0);
    assert!((up - vec3(0.0, 0.0, 1.0)).length() < 1e-6, "{up:?}");
    assert!(look_at([0.0; 3], [0.0; 3], [0.0, 0.0, 1.0]).is_none());
}
