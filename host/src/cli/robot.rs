//! `paddock env robot URDF`: load a robot file the way an env's `load-robot` does and say
//! what it holds — links, joints with their limits and dynamics, mass, the leaf links (the
//! end-effector candidates) — then let it hang under gravity for a while to show that it
//! simulates. The first thing to run on a robot of one's own.

use crate::physics::mesh::{ImportOptions, MeshCollision};
use crate::physics::{Simulation, vec3};
use rapier3d::prelude::Pose;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `env robot`.
#[derive(Debug, clap::Args)]
pub struct RobotArgs {
    /// The URDF file.
    urdf: PathBuf,
    /// A folder searched for `package://NAME/…` meshes (repeatable), before
    /// `ROS_PACKAGE_PATH` and the URDF's own folder; as `[env] packages` in a run config.
    #[arg(long = "package", value_name = "DIR")]
    packages: Vec<PathBuf>,
    /// What meshes collide as: their convex hulls, or convex decompositions.
    #[arg(long, value_enum, default_value = "hull")]
    mesh_collision: Collision,
    /// Load the root link free (a legged or wheeled robot) instead of fixed to the world.
    #[arg(long)]
    free_base: bool,
    /// Stand the robot on a floor (its base `--height` above it) instead of letting it hang
    /// in space: a legged or wheeled robot's usual world.
    #[arg(long)]
    floor: bool,
    /// Height of the base above the floor (or the origin), m.
    #[arg(long, default_value_t = 1.0)]
    height: f32,
    /// Seconds to simulate under gravity with the motors off (0: only load).
    #[arg(long, default_value_t = 1.0)]
    seconds: f32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Collision {
    Hull,
    Decompose,
}

/// One joint as the file describes it.
#[derive(serde::Serialize)]
struct JointRow {
    name: String,
    kind: String,
    parent: String,
    child: String,
    limits: Option<(f64, f64)>,
    max_velocity: Option<f64>,
    max_effort: Option<f64>,
    damping: f64,
    friction: f64,
    mimic: Option<String>,
}

/// The report.
#[derive(serde::Serialize)]
struct Report {
    file: PathBuf,
    load_ms: f64,
    links: Vec<(String, f64)>,
    mass_kg: f64,
    joints: Vec<JointRow>,
    leaf_links: Vec<String>,
    colliders: usize,
    /// Visual elements kept for pictures, and those that could not be.
    visuals: usize,
    visual_problems: Vec<String>,
    simulated_s: f32,
    step_rate: Option<f64>,
    lowest_z: Option<f32>,
}

/// Runs `env robot`.
pub fn run(a: RobotArgs) -> anyhow::Result<()> {
    let collision = match a.mesh_collision {
        Collision::Hull => MeshCollision::Hull,
        Collision::Decompose => MeshCollision::Decompose,
    };
    let opts = ImportOptions::with_ros_package_path(a.packages.clone(), collision);
    let mut sim = Simulation::new(vec3(0.0, 0.0, -9.81), 0.01, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.floor {
        use crate::physics::{BodyDesc, BodyKind, ColliderDesc, ShapeDesc};
        let ground = BodyDesc {
            kind: BodyKind::Fixed,
            pose: Pose::from_translation(vec3(0.0, 0.0, -0.05)),
            linear_damping: 0.0,
            angular_damping: 0.0,
            gravity_scale: 1.0,
            can_sleep: false,
        };
        let body = sim.add_body(ground).map_err(|e| anyhow::anyhow!("{e}"))?;
        let shape = ColliderDesc {
            shape: ShapeDesc::Cuboid(vec3(50.0, 50.0, 0.05)),
            local_pose: Pose::IDENTITY,
            friction: 1.0,
            restitution: 0.0,
            density: 0.0,
            memberships: u32::MAX,
            filter: u32::MAX,
        };
        sim.add_collider(body, shape).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let start = Instant::now();
    let robot = sim.load_urdf(&a.urdf, Pose::from_translation(vec3(0.0, 0.0, a.height)), !a.free_base, &opts)?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let desc = crate::physics::urdf::read_urdf(&a.urdf)?;
    let links: Vec<(String, f64)> = desc.links.iter().map(|l| (l.name.clone(), l.inertial.mass.value)).collect();
    let joints: Vec<JointRow> = desc
        .joints
        .iter()
        .map(|j| {
            let positive = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
            let kind = format!("{:?}", j.joint_type).to_lowercase();
            let limited = matches!(j.joint_type, urdf_rs::JointType::Revolute | urdf_rs::JointType::Prismatic);
            JointRow {
                name: j.name.clone(),
                parent: j.parent.link.clone(),
                child: j.child.link.clone(),
                limits: limited.then_some((j.limit.lower, j.limit.upper)),
                max_velocity: if kind == "fixed" { None } else { positive(j.limit.velocity) },
                max_effort: if kind == "fixed" { None } else { positive(j.limit.effort) },
                damping: j.dynamics.as_ref().map_or(0.0, |d| d.damping),
                friction: j.dynamics.as_ref().map_or(0.0, |d| d.friction),
                mimic: j.mimic.as_ref().map(|m| format!("{} × {} + {}", m.joint, m.multiplier.unwrap_or(1.0), m.offset.unwrap_or(0.0))),
                kind,
            }
        })
        .collect();
    let leaf_links: Vec<String> =
        desc.links.iter().filter(|l| !desc.joints.iter().any(|j| j.parent.link == l.name)).map(|l| l.name.clone()).collect();
    let colliders = sim.collider_shapes(&[]).len();
    let steps = (a.seconds.max(0.0) / 0.01).round() as u32;
    let (mut step_rate, mut lowest_z) = (None, None);
    if steps > 0 {
        let t = Instant::now();
        sim.step(steps).map_err(|e| anyhow::anyhow!("{}: simulating it under gravity failed: {e}", a.urdf.display()))?;
        step_rate = Some(f64::from(steps) / t.elapsed().as_secs_f64());
        lowest_z = robot.links.iter().filter_map(|(_, h)| sim.pose(*h).ok()).map(|p| p.translation.z).reduce(f32::min);
    }
    let report = Report {
        file: a.urdf.clone(),
        load_ms,
        mass_kg: links.iter().map(|l| l.1.max(0.0)).sum(),
        links,
        joints,
        leaf_links,
        colliders,
        visuals: sim.visual_count(),
        visual_problems: sim.visual_problems().to_vec(),
        simulated_s: steps as f32 * 0.01,
        step_rate,
        lowest_z,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, a.free_base);
    }
    Ok(())
}

fn print_report(r: &Report, free: bool) {
    let movable = r.joints.iter().filter(|j| j.kind != "fixed").count();
    println!("{}: loaded in {:.0} ms ({} base)", r.file.display(), r.load_ms, if free { "free" } else { "fixed" });
    println!("  {} links, {} joints ({movable} movable), {:.2} kg, {} colliders", r.links.len(), r.joints.len(), r.mass_kg, r.colliders);
    println!(
        "  {:<28} {:<10} {:>18} {:>9} {:>8} {:>8} {:>8}  mimic",
        "joint", "type", "limits", "vel max", "effort", "damping", "friction"
    );
    let or_dash = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    for j in r.joints.iter().filter(|j| j.kind != "fixed") {
        let limits = j.limits.map_or_else(|| "-".to_string(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]"));
        println!(
            "  {:<28} {:<10} {:>18} {:>9} {:>8} {:>8} {:>8}  {}",
            j.name,
            j.kind,
            limits,
            or_dash(j.max_velocity),
            or_dash(j.max_effort),
            format!("{:.3}", j.damping),
            format!("{:.3}", j.friction),
            j.mimic.as_deref().unwrap_or("-")
        );
    }
    println!("  leaf links (end-effector candidates): {}", r.leaf_links.join(", "));
    println!("  {} visual elements kept for pictures", r.visuals);
    for p in &r.visual_problems {
        println!("  visual skipped (a link with none is drawn by its collision shapes): {p}");
    }
    if let (Some(rate), Some(z)) = (r.step_rate, r.lowest_z) {
        println!(
            "  simulated {:.1} s under gravity, motors off: stable, {rate:.0} steps/s, lowest link origin at z = {z:.3} m",
            r.simulated_s
        );
    }
}
