//! Camera images per second on one core: the arm-reach scene (robots/arm7.urdf on its floor,
//! the target ball) seen by arm-reach's front camera, 64×64, colour and depth, the arm in its
//! ready pose; then with segmentation too, and at 128×128. One thread, as each env's images
//! are rendered by one thread.
//!
//!     cargo bench --bench camera
//!
//! The peer figures (PyBullet's `getCameraImage` with its TinyRenderer, MuJoCo's renderer on
//! the same arm) come from scripts/bench_cameras.py.

use paddock::physics::mesh::{ImportOptions, MeshCollision};
use paddock::physics::{BodyDesc, BodyKind, CameraDesc, Channels, ColliderDesc, ShapeDesc, Simulation, look_at, vec3};
use rapier3d::prelude::Pose;
use std::time::Instant;

fn scene(side: u32, channels: Channels) -> Simulation {
    let mut s = Simulation::new(vec3(0.0, 0.0, -9.81), 0.05, 1).expect("world");
    let fixed = |z: f32| BodyDesc {
        kind: BodyKind::Fixed,
        pose: Pose::from_translation(vec3(0.0, 0.0, z)),
        linear_damping: 0.0,
        angular_damping: 0.0,
        gravity_scale: 1.0,
        can_sleep: false,
    };
    let collider = |shape| ColliderDesc {
        shape,
        local_pose: Pose::IDENTITY,
        friction: 0.5,
        restitution: 0.0,
        density: 1.0,
        memberships: u32::MAX,
        filter: u32::MAX,
    };
    let floor = s.add_body(fixed(-0.05)).expect("floor");
    s.add_collider(floor, collider(ShapeDesc::Cuboid(vec3(1.0, 1.0, 0.05)))).expect("floor");
    let urdf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../robots/arm7.urdf");
    let robot =
        s.load_urdf(&urdf, Pose::IDENTITY, true, &ImportOptions { packages: Vec::new(), collision: MeshCollision::Hull }).expect("arm7");
    for ((_, j), q) in robot.joints.iter().zip([0.0, 0.4, 0.0, -1.6, 0.0, 1.2, 0.0]) {
        s.set_joint_state(*j, q, 0.0).expect("ready");
    }
    let target = s.add_body(fixed(0.0)).expect("target");
    s.add_collider(target, ColliderDesc { memberships: 0, filter: 0, ..collider(ShapeDesc::Ball(0.05)) }).expect("ball");
    s.set_pose(target, Pose::from_translation(vec3(0.4, 0.3, 0.6))).expect("target pose");
    let pose = look_at([2.0, 0.0, 0.8], [0.0, 0.0, 0.55], [0.0, 0.0, 1.0]).expect("front");
    s.add_camera(CameraDesc {
        name: "front".into(),
        env: 0,
        body: None,
        pose,
        fov_y: 50.0,
        width: side,
        height: side,
        channels,
        near: 0.01,
        far: 10.0,
    })
    .expect("camera");
    s.prepare_cameras();
    s
}

fn main() {
    tch::set_num_threads(1);
    let rgbd = Channels { rgb: true, depth: true, segmentation: false };
    for (side, channels, what) in
        [(64, rgbd, "rgb+depth"), (64, Channels { segmentation: true, ..rgbd }, "rgb+depth+seg"), (128, rgbd, "rgb+depth")]
    {
        let s = scene(side, channels);
        let mut out = vec![0.0f32; s.cameras()[0].len()];
        let mut n = 0u64;
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < 3.0 {
            for _ in 0..200 {
                s.render(0, &mut out).expect("render");
            }
            n += 200;
        }
        let per_s = n as f64 / start.elapsed().as_secs_f64();
        println!("{{\"renderer\": \"paddock\", \"size\": {side}, \"channels\": \"{what}\", \"images_per_s\": {per_s:.0}}}");
    }
}
