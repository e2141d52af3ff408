//! Cameras: pictures of a world rendered by the host, for envs that learn from pixels.
//!
//! A camera is a pinhole (OpenGL's convention: it looks along its local −Z, +Y is up, +X to
//! the right) fixed in the world or on a body, with a vertical field of view and a size in
//! pixels. It renders up to three kinds of channel, each `height × width`, row 0 at the top:
//! - `rgb`: three channels, 0 to 255: the shape's colour (its robot file's material, the one
//!   [`Simulation::set_colour`] gave its body, else one per moving body and grey for fixed
//!   ones), lit by an ambient term and one directional light (per-pixel normals);
//! - `depth`: the distance along the camera's axis (z-depth, what depth sensors give), m;
//!   `far` where nothing is seen;
//! - `segmentation`: the index of the body seen plus one (the low 32 bits of its handle + 1),
//!   0 where nothing is.
//!
//! The renderer casts one ray per pixel against each shape whose bounding sphere covers the
//! pixel, exactly: spheres, boxes, capsules and cylinders analytically, convex hulls (meshes,
//! decomposed parts) through their face planes. Nothing is tessellated, so a depth is exact
//! to float precision and a sphere's silhouette is round at any size. The same state gives
//! the same bytes: the arithmetic is plain f32 in a fixed order, one camera at a time.
//!
//! Cameras, like visuals, are static parts of a world: snapshots do not carry them.

use super::render::SceneShape;
use super::{PhysicsError, Res, ShapeDesc, Simulation, desc};
use crate::spaces::Channels;
use rapier3d::prelude::{Pose, RigidBodyHandle};

/// The largest width or height of a camera, in pixels.
pub const MAX_SIDE: u32 = 512;

/// A camera as an env describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraDesc {
    /// Its name, unique among an env's cameras (`front`, `wrist`).
    pub name: String,
    /// The env (index in its plugin instance) whose observation shows it.
    pub env: u32,
    /// The body it rides on; `None` for a camera fixed in the world.
    pub body: Option<u64>,
    /// Its pose in the body's frame (or the world's).
    pub pose: Pose,
    /// Vertical field of view, degrees, in (0, 180).
    pub fov_y: f32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// What it renders.
    pub channels: Channels,
    /// Nearest distance it sees, m (> 0).
    pub near: f32,
    /// Farthest distance it sees, m (> near): the depth of empty pixels.
    pub far: f32,
}

impl CameraDesc {
    /// Values per image: channels × height × width.
    pub fn len(&self) -> usize {
        self.channels.count() * self.width as usize * self.height as usize
    }

    /// Whether it renders nothing (never, once added).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Focal length in pixels.
    fn focal(&self) -> f32 {
        self.height as f32 / 2.0 / (self.fov_y.to_radians() / 2.0).tan()
    }
}

/// A pose whose camera at `eye` looks at `target` with `up` (world or body frame) as up.
pub fn look_at(eye: [f32; 3], target: [f32; 3], up: [f32; 3]) -> Option<Pose> {
    let back = norm(sub(eye, target))?;
    let right = norm(cross(up, back))?;
    let up = cross(back, right);
    let m = rapier3d::prelude::Rotation::from_mat3(&glam_mat(right, up, back));
    Some(Pose::from_parts(v(eye), m))
}

fn glam_mat(x: [f32; 3], y: [f32; 3], z: [f32; 3]) -> rapier3d::glamx::Mat3 {
    rapier3d::glamx::Mat3::from_cols(v(x), v(y), v(z))
}

type V = [f32; 3];

fn v(a: V) -> rapier3d::prelude::Vector {
    rapier3d::prelude::Vector::new(a[0], a[1], a[2])
}
fn a(x: rapier3d::prelude::Vector) -> V {
    [x.x, x.y, x.z]
}
fn sub(p: V, q: V) -> V {
    [p[0] - q[0], p[1] - q[1], p[2] - q[2]]
}
fn dot(p: V, q: V) -> f32 {
    p[0] * q[0] + p[1] * q[1] + p[2] * q[2]
}
fn cross(p: V, q: V) -> V {
    [p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]]
}
fn norm(p: V) -> Option<V> {
    let l = dot(p, p).sqrt();
    (l > 1e-9 && l.is_finite()).then(|| [p[0] / l, p[1] / l, p[2] / l])
}

/// A rotation as three rows (m · x).
#[derive(Clone, Copy, Debug)]
struct M3([V; 3]);

impl M3 {
    fn of(pose: &Pose) -> M3 {
        let m = rapier3d::glamx::Mat3::from_quat(pose.rotation);
        // glam is column-major: rows are the transposed columns.
        let (c0, c1, c2) = (a(m.x_axis), a(m.y_axis), a(m.z_axis));
        M3([[c0[0], c1[0], c2[0]], [c0[1], c1[1], c2[1]], [c0[2], c1[2], c2[2]]])
    }
    fn mul(&self, x: V) -> V {
        [dot(self.0[0], x), dot(self.0[1], x), dot(self.0[2], x)]
    }
}

/// A shape's geometry in its own frame.
#[derive(Clone, Debug)]
enum Prim {
    Ball(f32),
    Cuboid(V),
    /// Along local Y: half-height of the segment, radius.
    Capsule(f32, f32),
    /// Along local Y: half-height, radius.
    Cylinder(f32, f32),
    /// Outward face planes (n, d): inside where n·x ≤ d for all.
    Hull(Vec<(V, f32)>),
}

/// One shape to render, in its body's frame.
#[derive(Clone, Debug)]
struct Item {
    body: RigidBodyHandle,
    local: Pose,
    prim: Prim,
    /// Bounding-sphere radius about the local origin.
    radius: f32,
    colour: [f32; 3],
    segment: f32,
}

/// Cameras and what they need, kept in a [`Simulation`].
#[derive(Debug, Default)]
pub(super) struct Cameras {
    pub(super) list: Vec<CameraDesc>,
    /// Colours given to bodies (`set-colour`), 0–255.
    pub(super) colours: Vec<(RigidBodyHandle, [u8; 3])>,
    items: Vec<Item>,
    /// What `items` were built from: bodies, colliders, visuals, colours.
    key: Option<(usize, usize, usize, usize)>,
    /// Stepped since the host last rendered (the next teleport ends an episode: capture it).
    pub(super) stepped: bool,
}

/// The light: where it comes from (world frame, unit), and how much is ambient.
const LIGHT: V = [0.3713907, -0.557086, 0.742781];
const AMBIENT: f32 = 0.45;
const SKY: [f32; 3] = [200.0, 214.0, 230.0];

fn palette(i: u32) -> [u8; 3] {
    const P: [[u8; 3]; 8] =
        [[66, 133, 244], [234, 67, 53], [251, 188, 5], [52, 168, 83], [171, 71, 188], [0, 172, 193], [255, 112, 67], [124, 179, 66]];
    P[i as usize % P.len()]
}

fn prim(shape: &ShapeDesc) -> Option<(Prim, f32)> {
    Some(match shape {
        ShapeDesc::Ball(r) => (Prim::Ball(*r), *r),
        ShapeDesc::Cuboid(h) => (Prim::Cuboid(a(*h)), h.length()),
        ShapeDesc::Capsule(hh, r) => (Prim::Capsule(*hh, *r), hh + r),
        ShapeDesc::Cylinder(hh, r) => (Prim::Cylinder(*hh, *r), (hh * hh + r * r).sqrt()),
        ShapeDesc::ConvexHull(points) => {
            let pts: Vec<rapier3d::prelude::Vector> = points.clone();
            if pts.len() < 4 {
                return None;
            }
            let (verts, tris) = rapier3d::parry::transformation::convex_hull(&pts);
            let centre = verts.iter().fold([0.0; 3], |c, p| [c[0] + p.x, c[1] + p.y, c[2] + p.z]);
            let centre = centre.map(|x| x / verts.len().max(1) as f32);
            let mut planes: Vec<(V, f32)> = Vec::new();
            for t in &tris {
                let [p, q, r] = t.map(|i| a(verts[i as usize]));
                let Some(mut n) = norm(cross(sub(q, p), sub(r, p))) else { continue };
                let mut d = dot(n, p);
                if dot(n, centre) > d {
                    n = n.map(|x| -x);
                    d = -d;
                }
                if !planes.iter().any(|(m, e)| dot(*m, n) > 0.99999 && (e - d).abs() < 1e-6) {
                    planes.push((n, d));
                }
            }
            let radius = verts.iter().map(|p| p.length()).fold(0.0, f32::max);
            if planes.len() < 4 {
                return None;
            }
            (Prim::Hull(planes), radius)
        }
    })
}

/// The nearest hit of the ray o + t·d (t ≥ `near`) on `p`, with its normal.
fn hit(p: &Prim, o: V, d: V, near: f32) -> Option<(f32, V)> {
    let sphere = |c: V, r: f32| -> Option<(f32, V)> {
        let oc = sub(o, c);
        let (aa, b, cc) = (dot(d, d), dot(oc, d), dot(oc, oc) - r * r);
        let disc = b * b - aa * cc;
        if disc < 0.0 {
            return None;
        }
        let t = (-b - disc.sqrt()) / aa;
        if t < near {
            return None;
        }
        let x = [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]];
        Some((t, sub(x, c).map(|e| e / r)))
    };
    // The side of an infinite cylinder along Y, within |y| ≤ hh.
    let side = |hh: f32, r: f32| -> Option<(f32, V)> {
        let aa = d[0] * d[0] + d[2] * d[2];
        if aa <= 0.0 {
            return None;
        }
        let b = o[0] * d[0] + o[2] * d[2];
        let cc = o[0] * o[0] + o[2] * o[2] - r * r;
        let disc = b * b - aa * cc;
        if disc < 0.0 {
            return None;
        }
        let t = (-b - disc.sqrt()) / aa;
        let y = o[1] + t * d[1];
        (t >= near && y.abs() <= hh).then(|| (t, [(o[0] + t * d[0]) / r, 0.0, (o[2] + t * d[2]) / r]))
    };
    let nearer = |x: Option<(f32, V)>, y: Option<(f32, V)>| match (x, y) {
        (Some(p), Some(q)) => Some(if q.0 < p.0 { q } else { p }),
        (p, q) => p.or(q),
    };
    match p {
        Prim::Ball(r) => sphere([0.0; 3], *r),
        Prim::Cuboid(h) => {
            let (mut t0, mut t1, mut axis, mut sign) = (f32::NEG_INFINITY, f32::INFINITY, 0, 0.0);
            for k in 0..3 {
                if d[k] == 0.0 {
                    if o[k].abs() > h[k] {
                        return None;
                    }
                    continue;
                }
                let inv = 1.0 / d[k];
                let (mut a0, mut a1) = ((-h[k] - o[k]) * inv, (h[k] - o[k]) * inv);
                let mut s = -1.0;
                if a0 > a1 {
                    std::mem::swap(&mut a0, &mut a1);
                    s = 1.0;
                }
                if a0 > t0 {
                    (t0, axis, sign) = (a0, k, s);
                }
                t1 = t1.min(a1);
            }
            if t0 > t1 || t0 < near {
                return None;
            }
            let mut n = [0.0; 3];
            n[axis] = sign;
            Some((t0, n))
        }
        Prim::Capsule(hh, r) => nearer(side(*hh, *r), nearer(sphere([0.0, *hh, 0.0], *r), sphere([0.0, -*hh, 0.0], *r))),
        Prim::Cylinder(hh, r) => {
            let cap = |y: f32, ny: f32| -> Option<(f32, V)> {
                if d[1] == 0.0 {
                    return None;
                }
                let t = (y - o[1]) / d[1];
                let (x, z) = (o[0] + t * d[0], o[2] + t * d[2]);
                (t >= near && x * x + z * z <= r * r).then_some((t, [0.0, ny, 0.0]))
            };
            nearer(side(*hh, *r), nearer(cap(*hh, 1.0), cap(-*hh, -1.0)))
        }
        Prim::Hull(planes) => {
            let (mut t0, mut t1, mut n0) = (f32::NEG_INFINITY, f32::INFINITY, [0.0; 3]);
            for (n, dist) in planes {
                let (den, num) = (dot(*n, d), dist - dot(*n, o));
                if den == 0.0 {
                    if num < 0.0 {
                        return None;
                    }
                } else {
                    let t = num / den;
                    if den < 0.0 {
                        if t > t0 {
                            (t0, n0) = (t, *n);
                        }
                    } else {
                        t1 = t1.min(t);
                    }
                }
                if t0 > t1 {
                    return None;
                }
            }
            (t0 >= near).then_some((t0, n0))
        }
    }
}

impl Simulation {
    /// Adds a camera; checks its size, field of view, range and body.
    pub fn add_camera(&mut self, c: CameraDesc) -> Res<u64> {
        let bad = |m: String| desc(format!("camera `{}`: {m}", c.name));
        if c.name.is_empty() {
            return Err(desc("camera-desc.name is empty: name each camera (`front`, `wrist`)"));
        }
        if c.width == 0 || c.height == 0 || c.width > MAX_SIDE || c.height > MAX_SIDE {
            return Err(bad(format!("{}×{} pixels; each side must be 1 to {MAX_SIDE}", c.width, c.height)));
        }
        if !(c.fov_y.is_finite() && c.fov_y > 0.0 && c.fov_y < 180.0) {
            return Err(bad(format!("field of view {}°; it must be above 0° and below 180°", c.fov_y)));
        }
        if !(c.near.is_finite() && c.far.is_finite() && c.near > 0.0 && c.far > c.near) {
            return Err(bad(format!("near {} m and far {} m; they must be finite with 0 < near < far", c.near, c.far)));
        }
        if c.channels.count() == 0 {
            return Err(bad("renders no channel; ask for rgb, depth or segmentation".into()));
        }
        super::check_pose(&format!("camera `{}` pose", c.name), &c.pose)?;
        if let Some(b) = c.body {
            self.body(b).map_err(|_| bad(format!("is attached to body {b}, which this world does not have")))?;
        }
        if self.cams.list.iter().any(|o| o.name == c.name && o.env == c.env) {
            return Err(bad(format!("env {} already has a camera of this name", c.env)));
        }
        self.cams.list.push(c);
        Ok(self.cams.list.len() as u64 - 1)
    }

    /// This world's cameras, in the order they were added.
    pub fn cameras(&self) -> &[CameraDesc] {
        &self.cams.list
    }

    /// Gives a body a colour (0–1 each) in camera images.
    pub fn set_colour(&mut self, body: u64, rgb: [f32; 3]) -> Res<()> {
        super::finite("set-colour", &rgb)?;
        let h = self.body_handle(body)?;
        let c = rgb.map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8);
        self.cams.colours.retain(|(b, _)| *b != h);
        self.cams.colours.push((h, c));
        Ok(())
    }

    /// Whether the world stepped since [`Simulation::rendered`] was last called.
    pub fn stepped_since_render(&self) -> bool {
        self.cams.stepped
    }

    /// Marks the world's images as taken.
    pub fn rendered(&mut self) {
        self.cams.stepped = false;
    }

    /// Builds what rendering needs, when the world's shapes changed since the last time.
    pub fn prepare_cameras(&mut self) {
        let key = (self.world.bodies.len(), self.world.colliders.len(), self.visual_count(), self.cams.colours.len());
        if self.cams.key == Some(key) {
            return;
        }
        // In their bodies' frames, exactly as the world holds them: the images must not
        // depend on where the bodies were when this was built.
        let (mut shapes, drawn) = self.visual_locals();
        shapes.extend(self.collider_locals(&drawn));
        let fixed = self.fixed_bodies();
        let mut moving: Vec<u64> = Vec::new();
        let mut items = Vec::new();
        for SceneShape { body, pose, shape, colour } in shapes {
            let Ok(handle) = self.body_handle(body) else { continue };
            let Some((prim, radius)) = prim(&shape) else { continue };
            let given = self.cams.colours.iter().find(|(b, _)| *b == handle).map(|(_, c)| *c);
            let rgb = given.or(colour).unwrap_or_else(|| {
                if fixed.contains(&body) {
                    [150, 150, 150]
                } else {
                    let i = moving.iter().position(|&b| b == body).unwrap_or_else(|| {
                        moving.push(body);
                        moving.len() - 1
                    });
                    palette(i as u32)
                }
            });
            let (index, _) = super::unpack(body);
            items.push(Item { body: handle, local: pose, prim, radius, colour: rgb.map(f32::from), segment: (index + 1) as f32 });
        }
        self.cams.items = items;
        self.cams.key = Some(key);
    }

    /// Renders camera `index` into `out` (`channels × height × width`, channel-major: r, g,
    /// b, depth, segmentation as asked). Call [`Simulation::prepare_cameras`] first.
    pub fn render(&self, index: usize, out: &mut [f32]) -> Res<()> {
        let c = self.cams.list.get(index).ok_or(PhysicsError::InvalidHandle(index as u64))?;
        if out.len() != c.len() {
            return Err(desc(format!("camera `{}` renders {} values, not {}", c.name, c.len(), out.len())));
        }
        let mount = match c.body {
            Some(b) => *self.body(b)?.position() * c.pose,
            None => c.pose,
        };
        let cam_inv = mount.inverse();
        let (w, h) = (c.width as usize, c.height as usize);
        let n = w * h;
        let f = c.focal();
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let mut depth = vec![f32::INFINITY; n];
        let mut who = vec![u32::MAX; n];
        let mut normal = vec![[0.0f32; 3]; n];
        for (k, it) in self.cams.items.iter().enumerate() {
            let Some(body) = self.world.bodies.get(it.body) else { continue };
            // camera ← item, and item ← camera (ray into the shape's frame).
            let in_cam = cam_inv * *body.position() * it.local;
            let centre = a(in_cam.translation);
            let z = -centre[2];
            let r = it.radius;
            if z + r < c.near || z - r > c.far {
                continue;
            }
            let (x0, x1, y0, y1) = if z - r <= c.near {
                (0, w, 0, h)
            } else {
                let xs = [(centre[0] - r) / (z - r), (centre[0] - r) / (z + r), (centre[0] + r) / (z - r), (centre[0] + r) / (z + r)];
                let ys = [(centre[1] - r) / (z - r), (centre[1] - r) / (z + r), (centre[1] + r) / (z - r), (centre[1] + r) / (z + r)];
                let (xl, xh) = xs.iter().fold((f32::MAX, f32::MIN), |(l, u), &x| (l.min(x), u.max(x)));
                let (yl, yh) = ys.iter().fold((f32::MAX, f32::MIN), |(l, u), &x| (l.min(x), u.max(x)));
                let px = |x: f32| (cx + f * x).floor();
                let py = |y: f32| (cy - f * y).floor();
                let clampx = |x: f32| x.clamp(0.0, w as f32) as usize;
                let clampy = |y: f32| y.clamp(0.0, h as f32) as usize;
                (clampx(px(xl)), clampx(px(xh) + 1.0), clampy(py(yh)), clampy(py(yl) + 1.0))
            };
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let to_item = in_cam.inverse();
            let rot = M3::of(&to_item);
            let back = M3::of(&in_cam);
            let o = a(to_item.translation);
            for py in y0..y1 {
                let dy = -((py as f32 + 0.5) - cy) / f;
                for px in x0..x1 {
                    let dx = ((px as f32 + 0.5) - cx) / f;
                    let dl = rot.mul([dx, dy, -1.0]);
                    let p = py * w + px;
                    if let Some((t, nl)) = hit(&it.prim, o, dl, c.near)
                        && t < depth[p]
                        && t <= c.far
                    {
                        depth[p] = t;
                        who[p] = k as u32;
                        normal[p] = back.mul(nl);
                    }
                }
            }
        }
        let light = M3::of(&cam_inv).mul(LIGHT);
        let mut o = 0;
        if c.channels.rgb {
            for p in 0..n {
                let rgb = match self.cams.items.get(who[p] as usize) {
                    Some(it) => {
                        let lit = AMBIENT + (1.0 - AMBIENT) * dot(normal[p], light).max(0.0);
                        it.colour.map(|x| (x * lit).round().min(255.0))
                    }
                    None => SKY,
                };
                out[p] = rgb[0];
                out[n + p] = rgb[1];
                out[2 * n + p] = rgb[2];
            }
            o = 3 * n;
        }
        if c.channels.depth {
            for p in 0..n {
                out[o + p] = if depth[p].is_finite() { depth[p] } else { c.far };
            }
            o += n;
        }
        if c.channels.segmentation {
            for p in 0..n {
                out[o + p] = self.cams.items.get(who[p] as usize).map_or(0.0, |it| it.segment);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
