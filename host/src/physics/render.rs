//! Pictures of a physics scene: every collider, posed, projected orthographically onto the
//! x–z plane (a side view: x to the right, z up) and filled as the convex hull of points on
//! its surface: in the colour the robot file gives it, else one colour per body, fixed bodies
//! grey. Simple, but it looks like the robot.

use super::{ShapeDesc, vec3};
use crate::format::scene::{SceneFile, ScenePolygon};
use rapier3d::prelude::{Pose, Vector};

/// One shape to draw: a collider, or a visual of a robot file.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneShape {
    /// Its body.
    pub body: u64,
    /// Its pose in the world.
    pub pose: Pose,
    /// Its shape.
    pub shape: ShapeDesc,
    /// Its own colour (a robot file's material), or `None` for its body's.
    pub colour: Option<[u8; 3]>,
}

impl SceneShape {
    /// A shape in its body's colour.
    pub fn plain(body: u64, pose: Pose, shape: ShapeDesc) -> Self {
        SceneShape { body, pose, shape, colour: None }
    }
}

/// Points on a shape's surface in its own frame (enough for a convex outline).
fn outline(shape: &ShapeDesc) -> Vec<Vector> {
    let ring = |r: f32, h: f32, axis: usize| -> Vec<Vector> {
        (0..24)
            .map(|k| {
                let a = k as f32 / 24.0 * std::f32::consts::TAU;
                let (s, c) = (a.sin() * r, a.cos() * r);
                match axis {
                    0 => vec3(h, s, c),
                    1 => vec3(s, h, c),
                    _ => vec3(s, c, h),
                }
            })
            .collect()
    };
    let sphere = |r: f32, centre: Vector| -> Vec<Vector> { (0..3).flat_map(|axis| ring(r, 0.0, axis)).map(|p| p + centre).collect() };
    match shape {
        ShapeDesc::Ball(r) => sphere(*r, Vector::ZERO),
        ShapeDesc::Cuboid(h) => {
            let mut v = Vec::new();
            for sx in [-1.0, 1.0] {
                for sy in [-1.0, 1.0] {
                    for sz in [-1.0, 1.0] {
                        v.push(vec3(sx * h.x, sy * h.y, sz * h.z));
                    }
                }
            }
            v
        }
        ShapeDesc::Capsule(hh, r) => {
            let mut v = sphere(*r, vec3(0.0, *hh, 0.0));
            v.extend(sphere(*r, vec3(0.0, -*hh, 0.0)));
            v
        }
        ShapeDesc::Cylinder(hh, r) => {
            let mut v = ring(*r, *hh, 1);
            v.extend(ring(*r, -*hh, 1));
            v
        }
        ShapeDesc::ConvexHull(points) => points.clone(),
    }
}

/// The 2D convex hull (Andrew's monotone chain), counter-clockwise.
fn hull(mut p: Vec<(f32, f32)>) -> Vec<(f32, f32)> {
    p.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
    let mut h: Vec<(f32, f32)> = Vec::with_capacity(p.len() * 2);
    for pass in 0..2 {
        let start = h.len();
        let iter: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 { Box::new(p.iter()) } else { Box::new(p.iter().rev()) };
        for &q in iter {
            while h.len() >= start + 2 && cross(h[h.len() - 2], h[h.len() - 1], q) <= 0.0 {
                h.pop();
            }
            h.push(q);
        }
        h.pop();
    }
    h
}

/// A shape's projected outline: its body, the corners (x, z) in world units and its own
/// colour.
pub type Outline = (u64, Vec<(f32, f32)>, Option<[u8; 3]>);

/// Each shape's projected outline.
pub fn project(scene: &[SceneShape]) -> Vec<Outline> {
    scene
        .iter()
        .map(|s| {
            let pts = outline(&s.shape).into_iter().map(|p| s.pose * p).map(|w| (w.x, w.z)).collect();
            (s.body, hull(pts), s.colour)
        })
        .collect()
}

/// The x–z extent of the outlines of fixed (`still`) or moving bodies: (x0, x1, z0, z1), or
/// `None` when there are none.
fn extent(polys: &[Outline], fixed: &[u64], still: bool) -> Option<(f32, f32, f32, f32)> {
    let (mut x0, mut x1, mut z0, mut z1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, z) in polys.iter().filter(|(b, _, _)| fixed.contains(b) == still).flat_map(|(_, p, _)| p) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        z0 = z0.min(z);
        z1 = z1.max(z);
    }
    (x0 <= x1).then_some((x0, x1, z0, z1))
}

/// How far beside the moving bodies fixed ones still count for the view (m).
const FIXED_REACH: f32 = 1.5;

/// The window to draw a scene in, (x0, x1, z0, z1): the moving bodies and the fixed ones
/// (`fixed`) within [`FIXED_REACH`] of them — so a 100 m floor does not shrink a hopper to a
/// dot — padded by a quarter on each side (at least 0.25 m).
fn bounds(polys: &[Outline], fixed: &[u64]) -> (f32, f32, f32, f32) {
    let (x0, x1, z0, z1) = match (extent(polys, fixed, false), extent(polys, fixed, true)) {
        (None, None) => return (-1.0, 1.0, -1.0, 1.0),
        (Some(m), None) => m,
        (None, Some(s)) => s,
        (Some(m), Some(s)) => {
            let (sx0, sx1) = (s.0.max(m.0 - FIXED_REACH), s.1.min(m.1 + FIXED_REACH));
            if sx0 > sx1 { m } else { (m.0.min(sx0), m.1.max(sx1), m.2.min(s.2), m.3.max(s.3)) }
        }
    };
    let pad = ((x1 - x0).max(z1 - z0) * 0.25).max(0.25);
    (x0 - pad, x1 + pad, z0 - pad, z1 + pad)
}

/// `view` as it was, or panned sideways to centre the moving bodies once one of them leaves
/// it (a walker walking off the picture); its size never changes, so the picture holds still
/// between pans.
fn follow(view: (f32, f32, f32, f32), polys: &[Outline], fixed: &[u64]) -> (f32, f32, f32, f32) {
    let Some((mx0, mx1, _, _)) = extent(polys, fixed, false) else { return view };
    let (x0, x1, z0, z1) = view;
    if mx0 >= x0 && mx1 <= x1 {
        return view;
    }
    let shift = (mx0 + mx1) / 2.0 - (x0 + x1) / 2.0;
    (x0 + shift, x1 + shift, z0, z1)
}

impl SceneFile {
    /// Projects `scene`; `fixed` bodies get no colour. `view` is the previous picture's,
    /// kept (or panned, see [`follow`]); the first one is [`bounds`].
    pub fn new(step: u64, scene: &[SceneShape], fixed: &[u64], view: Option<[f32; 4]>) -> Self {
        let polys = project(scene);
        let (x0, x1, z0, z1) = match view {
            Some([x0, x1, z0, z1]) => follow((x0, x1, z0, z1), &polys, fixed),
            None => bounds(&polys, fixed),
        };
        let view = [x0, x1, z0, z1];
        let mut moving: Vec<u64> = polys.iter().map(|p| p.0).filter(|b| !fixed.contains(b)).collect();
        moving.dedup();
        let polygons = polys
            .into_iter()
            .filter(|(_, poly, _)| poly.len() >= 3)
            .map(|(body, poly, rgb)| ScenePolygon {
                body: moving.iter().position(|&b| b == body),
                points: poly.into_iter().map(|(x, z)| [x, z]).collect(),
                rgb,
            })
            .collect();
        SceneFile { step, view, polygons, camera: None }
    }
}

/// Draws `picture` into a `width`×`height` PNG at `path`, fitting its view: each outline
/// filled in its own colour or its body's, fixed bodies (the ground, a robot's base) grey.
pub fn write_png(picture: &SceneFile, width: u32, height: u32, path: &std::path::Path) -> anyhow::Result<()> {
    use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Transform};
    let mut pm = Pixmap::new(width, height).ok_or_else(|| anyhow::anyhow!("invalid frame size {width}×{height}"))?;
    pm.fill(Color::from_rgba8(250, 250, 248, 255));
    let [x0, x1, z0, z1] = picture.view;
    let scale = (width as f32 / (x1 - x0)).min(height as f32 / (z1 - z0));
    let (cx, cz) = ((x0 + x1) / 2.0, (z0 + z1) / 2.0);
    let to_px = |(x, z): (f32, f32)| (width as f32 / 2.0 + (x - cx) * scale, height as f32 / 2.0 - (z - cz) * scale);
    // The ground line, z = 0.
    let mut ground = Paint::default();
    ground.set_color_rgba8(160, 160, 160, 255);
    let (gx0, gy) = to_px((x0 - 10.0, 0.0));
    if let Some(rect) = tiny_skia::Rect::from_xywh(gx0.max(0.0), gy, width as f32, 1.5) {
        pm.fill_rect(rect, &ground, Transform::identity(), None);
    }
    for outline in &picture.polygons {
        let poly = &outline.points;
        let mut pb = PathBuilder::new();
        let (px, py) = to_px((poly[0][0], poly[0][1]));
        pb.move_to(px, py);
        for &[x, z] in &poly[1..] {
            let (px, py) = to_px((x, z));
            pb.line_to(px, py);
        }
        pb.close();
        let Some(path_) = pb.finish() else { continue };
        let mut paint = Paint { anti_alias: true, ..Paint::default() };
        let (r, g, b) = outline.colour();
        paint.set_color_rgba8(r, g, b, 230);
        pm.fill_path(&path_, &paint, FillRule::Winding, Transform::identity(), None);
        // Edged in a darker shade, so that a white part shows on the white background.
        let dark = |c: u8| (f32::from(c) * 0.55) as u8;
        paint.set_color_rgba8(dark(r), dark(g), dark(b), 255);
        pm.stroke_path(&path_, &paint, &tiny_skia::Stroke { width: 1.0, ..Default::default() }, Transform::identity(), None);
    }
    pm.save_png(path).map_err(|e| anyhow::anyhow!("failed to write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_files_colour_moving_bodies_and_keep_their_view() {
        let scene = vec![
            SceneShape::plain(1, Pose::from_translation(vec3(0.0, 0.0, -0.05)), ShapeDesc::Cuboid(vec3(1.0, 1.0, 0.05))),
            SceneShape::plain(2, Pose::from_translation(vec3(0.0, 0.0, 0.5)), ShapeDesc::Ball(0.1)),
            SceneShape::plain(3, Pose::from_translation(vec3(0.3, 0.0, 0.5)), ShapeDesc::Ball(0.1)),
        ];
        let f = SceneFile::new(7, &scene, &[1], None);
        assert_eq!(f.polygons.iter().map(|p| p.body).collect::<Vec<_>>(), [None, Some(0), Some(1)]);
        assert!(f.view[0] < -1.0 && f.view[1] > 1.0 && f.view[3] > 0.6, "{:?}", f.view);
        let again = SceneFile::new(8, &scene, &[1], Some(f.view));
        assert_eq!(again.view, f.view);
        // A walker 10 m down a 100 m floor: the view stays its size and pans to it.
        let far = vec![
            SceneShape::plain(1, Pose::from_translation(vec3(0.0, 0.0, -0.05)), ShapeDesc::Cuboid(vec3(50.0, 1.0, 0.05))),
            SceneShape::plain(2, Pose::from_translation(vec3(10.0, 0.0, 0.5)), ShapeDesc::Ball(0.1)),
        ];
        let first = SceneFile::new(9, &far, &[1], None);
        assert!(first.view[1] - first.view[0] < 10.0, "the floor must not set the view: {:?}", first.view);
        assert!(first.view[0] < 10.0 && first.view[1] > 10.0);
        let near = vec![far[0].clone(), SceneShape::plain(2, Pose::from_translation(vec3(0.0, 0.0, 0.5)), ShapeDesc::Ball(0.1))];
        let start = SceneFile::new(10, &near, &[1], None);
        let panned = SceneFile::new(11, &far, &[1], Some(start.view));
        assert!((panned.view[1] - panned.view[0] - (start.view[1] - start.view[0])).abs() < 1e-4);
        assert!(((panned.view[0] + panned.view[1]) / 2.0 - 10.0).abs() < 1e-4, "{:?}", panned.view);
        assert_eq!(panned.view[2..], start.view[2..]);
        let text = serde_json::to_string(&f).expect("json");
        assert_eq!(serde_json::from_str::<SceneFile>(&text).expect("back"), f);
        assert!(!text.contains("rgb"), "no colour of its own, none written: {text}");
        // A shape with a robot file's colour keeps it, over its body's.
        let orange = SceneShape { colour: Some([255, 128, 0]), ..scene[1].clone() };
        let f = SceneFile::new(12, &[scene[0].clone(), orange], &[1], None);
        assert_eq!((f.polygons[1].rgb, f.polygons[1].colour()), (Some([255, 128, 0]), (255, 128, 0)));
        assert_eq!(f.polygons[0].colour(), (120, 120, 120));
        let text = serde_json::to_string(&f).expect("json");
        assert_eq!(serde_json::from_str::<SceneFile>(&text).expect("back"), f);
    }

    #[test]
    fn hulls_and_projections() {
        let square = hull(vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.5)]);
        assert_eq!(square.len(), 4);
        let ball = project(&[SceneShape::plain(1, Pose::from_translation(vec3(2.0, 0.0, 1.0)), ShapeDesc::Ball(0.5))]);
        let xs: Vec<f32> = ball[0].1.iter().map(|p| p.0).collect();
        assert!(xs.iter().cloned().fold(f32::MIN, f32::max) <= 2.5 + 1e-5 && xs.iter().cloned().fold(f32::MAX, f32::min) >= 1.5 - 1e-5);
    }
}
