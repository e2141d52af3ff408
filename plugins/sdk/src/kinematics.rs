//! Differential kinematics of a loaded robot's joint chain, measured from the world itself:
//! [`Chain::calibrate`] moves each joint a little once (as the env builds its world) to find
//! which link it turns and its axis in that link's frame; [`Chain::jacobian`] then gives the
//! position Jacobian of any point from the links' poses, and [`damped_least_squares`] turns a
//! wanted displacement of that point into joint displacements (end-effector control).
//!
//! No URDF reading and no contract change: only `set-joint-state`, `joint-states` and `pose`.
//! Revolute and prismatic joints; a serial chain, or any tree (each joint's link is the one
//! it moves that none of the joints below it moves).

use crate::physics::{BodyHandle, JointHandle, Pose, Quat, Robot, Simulation, rotate, rotate_inverse};
use crate::types::PluginError;

/// How far each joint is moved to measure it (rad or m).
const PROBE: f32 = 0.05;
/// A link pose that changed by less than this (m, or quaternion component) did not move.
const STILL: f32 = 1e-6;

/// What one joint does to its link, in that link's frame.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Motion {
    /// Turns it about `axis` (unit, positive joint direction) through `point`.
    Revolute { axis: [f32; 3], point: [f32; 3] },
    /// Slides it along `axis` (unit, positive joint direction).
    Prismatic { axis: [f32; 3] },
}

/// The joints of a chain with the link each one moves and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    links: Vec<BodyHandle>,
    motions: Vec<Motion>,
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    core::array::from_fn(|i| a[i] - b[i])
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f32; 3]) -> f32 {
    libm::sqrtf(dot(a, a))
}

fn xyz(p: &Pose) -> [f32; 3] {
    [p.translation.x, p.translation.y, p.translation.z]
}

/// `conj(a) · b`: the rotation from frame `a` to frame `b`, in `a`'s coordinates.
fn relative(a: Quat, b: Quat) -> Quat {
    let (ax, ay, az, aw) = (-a.x, -a.y, -a.z, a.w);
    Quat {
        w: aw * b.w - ax * b.x - ay * b.y - az * b.z,
        x: aw * b.x + ax * b.w + ay * b.z - az * b.y,
        y: aw * b.y - ax * b.z + ay * b.w + az * b.x,
        z: aw * b.z + ax * b.y - ay * b.x + az * b.w,
    }
}

fn moved(a: &Pose, b: &Pose) -> bool {
    let (ra, rb) = (a.rotation, b.rotation);
    // q and −q are one rotation.
    let same_rotation = [(ra.x, rb.x), (ra.y, rb.y), (ra.z, rb.z), (ra.w, rb.w)].iter().all(|(p, q)| (p - q).abs() < STILL)
        || [(ra.x, -rb.x), (ra.y, -rb.y), (ra.z, -rb.z), (ra.w, -rb.w)].iter().all(|(p, q)| (p - q).abs() < STILL);
    !same_rotation || norm(sub(xyz(a), xyz(b))) > STILL
}

/// What a probe `step` of a joint did to its link, from pose `a` to pose `b`.
fn motion(a: &Pose, b: &Pose, step: f32) -> Motion {
    // q and −q are one rotation: take the one with w ≥ 0, the short way round (a small probe
    // is a small angle, whichever sign the world gave the two quaternions).
    let r = relative(a.rotation, b.rotation);
    let r = if r.w < 0.0 { Quat { x: -r.x, y: -r.y, z: -r.z, w: -r.w } } else { r };
    let v = [r.x, r.y, r.z];
    let sin_half = norm(v);
    let d = sub(xyz(b), xyz(a));
    if sin_half <= 1e-5 {
        let len = norm(d);
        return Motion::Prismatic { axis: rotate_inverse(a.rotation, d).map(|c| c / len * step.signum()) };
    }
    // Turned by θ about u (link frame); the joint's positive direction is u when the probe step
    // was positive.
    let theta = 2.0 * libm::atan2f(sin_half, r.w);
    let u_local = v.map(|c| c / sin_half);
    let u = rotate(a.rotation, u_local);
    // p1 − p0 = (cos θ − 1) r + sin θ (u × r) with r = p0 − c ⊥ u (c on the axis): solve for r.
    let d = sub(d, u.map(|c| c * dot(u, d)));
    let (ca, sa) = (libm::cosf(theta) - 1.0, libm::sinf(theta));
    let den = ca * ca + sa * sa;
    let ud = cross(u, d);
    let r: [f32; 3] = core::array::from_fn(|k| (ca * d[k] - sa * ud[k]) / den);
    Motion::Revolute { axis: u_local.map(|c| c * step.signum()), point: rotate_inverse(a.rotation, r.map(|c| -c)) }
}

fn failed(m: String) -> PluginError {
    PluginError::Failed(m)
}

impl Chain {
    /// Measures the joints `chain` (of `robot`, granted as `name`) where the world stands now.
    /// Every movable joint of the robot is moved by a small step (back if forward moves
    /// nothing, at a limit) and put back with its velocity, so that a joint's link is one no
    /// other joint below it moves (a finger's link is not the wrist's). Errors name a joint
    /// that moves no link.
    pub fn calibrate(sim: &Simulation, robot: &Robot, name: &str, chain: &[JointHandle]) -> Result<Chain, PluginError> {
        let poses = |sim: &Simulation| -> Result<Vec<Pose>, PluginError> {
            robot.links.iter().map(|(_, b)| sim.pose(*b).map_err(crate::physics::failed("pose"))).collect()
        };
        let handles: Vec<JointHandle> = robot.joints.iter().map(|(_, h)| *h).collect();
        let states = sim.joint_states(&handles).map_err(crate::physics::failed("joint-states"))?;
        let rest = poses(sim)?;
        // For each joint: the probe step, the poses it gave and which links moved.
        let mut probes = Vec::with_capacity(handles.len());
        for (j, s) in handles.iter().zip(&states) {
            let mut found = (0.0, Vec::new(), vec![false; rest.len()]);
            for step in [PROBE, -PROBE] {
                sim.set_joint_state(*j, s.position + step, 0.0).map_err(crate::physics::failed("set-joint-state"))?;
                let after = poses(sim)?;
                sim.set_joint_state(*j, s.position, s.velocity).map_err(crate::physics::failed("set-joint-state"))?;
                let moves: Vec<bool> = rest.iter().zip(&after).map(|(a, b)| moved(a, b)).collect();
                if moves.iter().any(|&m| m) {
                    found = (step, after, moves);
                    break;
                }
            }
            probes.push(found);
        }
        let mut links = Vec::with_capacity(chain.len());
        let mut motions = Vec::with_capacity(chain.len());
        for h in chain {
            let Some(i) = handles.iter().position(|x| x == h) else {
                return Err(failed(format!("robot `{name}` has no movable joint with handle {h}")));
            };
            let jname = &robot.joints[i].0;
            let (step, after, moves) = &probes[i];
            if !moves.iter().any(|&m| m) {
                return Err(failed(format!("robot `{name}`: joint `{jname}` moves no link when it is turned or slid")));
            }
            // Its link: one it moves that no joint below it (moving a strict subset) moves.
            let below = |k: usize| k != i && (0..rest.len()).all(|l| !probes[k].2[l] || moves[l]) && probes[k].2 != *moves;
            let own = (0..rest.len()).find(|&l| moves[l] && !(0..probes.len()).any(|k| below(k) && probes[k].2[l]));
            let Some(l) = own else {
                return Err(failed(format!("robot `{name}`: joint `{jname}` moves no link of its own")));
            };
            links.push(robot.links[l].1);
            motions.push(motion(&rest[l], &after[l], *step));
        }
        Ok(Chain { links, motions })
    }

    /// How many joints.
    pub fn len(&self) -> usize {
        self.motions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.motions.is_empty()
    }

    /// The position Jacobian of world point `at` (rigidly attached past every joint): one
    /// column per joint, ∂at/∂q, in world coordinates.
    pub fn jacobian(&self, sim: &Simulation, at: [f32; 3]) -> Result<Vec<[f32; 3]>, PluginError> {
        self.links
            .iter()
            .zip(&self.motions)
            .map(|(&link, m)| {
                let pose = sim.pose(link).map_err(crate::physics::failed("pose"))?;
                Ok(match *m {
                    Motion::Revolute { axis, point } => {
                        let w = rotate(pose.rotation, axis);
                        let t = xyz(&pose);
                        let c: [f32; 3] = core::array::from_fn(|k| t[k] + rotate(pose.rotation, point)[k]);
                        cross(w, sub(at, c))
                    }
                    Motion::Prismatic { axis } => rotate(pose.rotation, axis),
                })
            })
            .collect()
    }
}

/// Joint displacements that move the point by `dx` (as nearly as the joints can), by damped
/// least squares: `dq = Jᵀ (J Jᵀ + λ² I)⁻¹ dx`. `damping` λ keeps the step small near a
/// singularity.
pub fn damped_least_squares(columns: &[[f32; 3]], dx: [f32; 3], damping: f32) -> Vec<f32> {
    let mut a = [[0.0f32; 3]; 3];
    for c in columns {
        for r in 0..3 {
            for k in 0..3 {
                a[r][k] += c[r] * c[k];
            }
        }
    }
    for (r, row) in a.iter_mut().enumerate() {
        row[r] += damping * damping;
    }
    // Solve a y = dx (symmetric positive definite 3×3) by Cramer's rule.
    let det = |m: &[[f32; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&a);
    if !(d.is_finite() && d.abs() > f32::MIN_POSITIVE) {
        return vec![0.0; columns.len()];
    }
    let y: [f32; 3] = core::array::from_fn(|k| {
        let mut m = a;
        for r in 0..3 {
            m[r][k] = dx[r];
        }
        det(&m) / d
    });
    columns.iter().map(|c| dot(*c, y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_rotation_and_least_squares() {
        let q = crate::physics::axis_angle(crate::physics::v3(0.0, 0.0, 1.0), 0.3);
        let r = relative(crate::physics::IDENTITY, q);
        assert!((r.z - q.z).abs() < 1e-6 && (r.w - q.w).abs() < 1e-6);
        let back = relative(q, q);
        assert!((back.w - 1.0).abs() < 1e-6);
        // Two joints that move the point along x and y: a move along x+y is theirs exactly
        // (undamped), and z, which no joint reaches, is left.
        let dq = damped_least_squares(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [0.1, 0.2, 0.3], 1e-3);
        assert!((dq[0] - 0.1).abs() < 1e-5 && (dq[1] - 0.1).abs() < 1e-5, "{dq:?}");
        let damped = damped_least_squares(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [0.1, 0.2, 0.3], 0.5);
        assert!(damped[0] < 0.1 && damped[0] > 0.0);
    }

    #[test]
    fn a_probe_finds_the_axis_and_a_point_on_it() {
        use crate::physics::{Vec3, axis_angle, v3};
        // A link at (1, 0, 0.5), turned 0.4 rad about z, on a joint whose axis is the link's
        // own x axis through the point (0, 0.2, 0) of the link frame.
        let q0 = axis_angle(v3(0.0, 0.0, 1.0), 0.4);
        let a = Pose { translation: v3(1.0, 0.0, 0.5), rotation: q0 };
        let (axis_local, point_local) = ([1.0, 0.0, 0.0], [0.0, 0.2, 0.0]);
        let u = rotate(q0, axis_local);
        let c: [f32; 3] = core::array::from_fn(|k| xyz(&a)[k] + rotate(q0, point_local)[k]);
        for step in [0.05f32, -0.05] {
            let turn = axis_angle(v3(u[0], u[1], u[2]), step);
            let q1 = Quat {
                w: turn.w * q0.w - turn.x * q0.x - turn.y * q0.y - turn.z * q0.z,
                x: turn.w * q0.x + turn.x * q0.w + turn.y * q0.z - turn.z * q0.y,
                y: turn.w * q0.y - turn.x * q0.z + turn.y * q0.w + turn.z * q0.x,
                z: turn.w * q0.z + turn.x * q0.y - turn.y * q0.x + turn.z * q0.w,
            };
            let p1 = rotate(turn, sub(xyz(&a), c));
            let translation = Vec3 { x: c[0] + p1[0], y: c[1] + p1[1], z: c[2] + p1[2] };
            // The same pose with its quaternion negated (the other hemisphere) reads the same.
            let flipped = Quat { x: -q1.x, y: -q1.y, z: -q1.z, w: -q1.w };
            for rotation in [q1, flipped] {
                let b = Pose { translation, rotation };
                let Motion::Revolute { axis, point } = motion(&a, &b, step) else { panic!("revolute") };
                assert!(norm(sub(axis, axis_local)) < 1e-3, "{step}: {axis:?}");
                // Any point on the axis: its offset from the true one is along the axis.
                let off = sub(point, point_local);
                assert!(norm(sub(off, axis_local.map(|x| x * dot(off, axis_local)))) < 1e-3, "{step}: {point:?}");
            }
        }
        // A slide along the link's y axis.
        let b = Pose { translation: v3(1.0 - 0.05 * libm::sinf(0.4), 0.05 * libm::cosf(0.4), 0.5), rotation: q0 };
        let Motion::Prismatic { axis } = motion(&a, &b, 0.05) else { panic!("prismatic") };
        assert!(norm(sub(axis, [0.0, 1.0, 0.0])) < 1e-3, "{axis:?}");
    }
}
