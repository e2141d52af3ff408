//! What a robot looks like: its URDF `<visual>` elements (geometry and colour), kept beside
//! the collision shapes for pictures (`paddock eval --frames`, the monitor's scene) and for
//! cameras later. Static parts of a world, like the joint dynamics: snapshots do not carry
//! them.
//!
//! Visuals never fail a load: a picture is not worth a refused robot. A visual mesh that
//! cannot be found is noted ([`Simulation::visual_problems`], which `paddock env robot`
//! prints) and its link is drawn by its collision shapes; a mesh is read only when a picture
//! is first drawn (a training run that draws none never reads the 9 MB of the Panda's
//! COLLADA visuals), through the mesh cache.

use super::mesh::{ImportOptions, MeshCollision, collision_shape, resolve};
use super::{ShapeDesc, Simulation, body_id};
use rapier3d::prelude::{Pose, RigidBodyHandle, Rotation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One visual element of a link.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Visual {
    body: RigidBodyHandle,
    /// Pose in the body's frame.
    local: Pose,
    look: Look,
    /// Colour (red, green, blue, alpha; 0 to 1), when the file gives one.
    rgba: Option<[f32; 4]>,
}

/// A visual's geometry.
#[derive(Clone, Debug, PartialEq)]
enum Look {
    Shape(ShapeDesc),
    /// A mesh file (found at import), scaled; read when first drawn.
    Mesh(PathBuf, [f64; 3]),
}

/// A robot file's named colours, which a visual may name without repeating the colour:
/// `<material name="…"><color rgba="…"/></material>` at the top level, or inside an earlier
/// visual (the Panda defines `panda_white` in its first link and names it in the others).
pub(super) fn materials(robot: &urdf_rs::Robot) -> HashMap<String, [f32; 4]> {
    let inline = robot.links.iter().flat_map(|l| &l.visual).filter_map(|v| v.material.as_ref());
    let mut named = HashMap::new();
    for m in robot.materials.iter().chain(inline) {
        if let Some(c) = &m.color
            && !m.name.is_empty()
        {
            named.entry(m.name.clone()).or_insert_with(|| rgba(c));
        }
    }
    named
}

fn rgba(c: &urdf_rs::Color) -> [f32; 4] {
    c.rgba.0.map(|v| if v.is_finite() { v.clamp(0.0, 1.0) as f32 } else { 1.0 })
}

/// The colour of a visual: its own, else the named material's.
fn colour_of(v: &urdf_rs::Visual, named: &HashMap<String, [f32; 4]>) -> Option<[f32; 4]> {
    let m = v.material.as_ref()?;
    m.color.as_ref().map(rgba).or_else(|| named.get(&m.name).copied())
}

fn zero_size(g: &urdf_rs::Geometry) -> bool {
    match g {
        urdf_rs::Geometry::Box { size } => size.0.contains(&0.0),
        urdf_rs::Geometry::Cylinder { radius, length } | urdf_rs::Geometry::Capsule { radius, length } => *radius == 0.0 || *length == 0.0,
        urdf_rs::Geometry::Sphere { radius } => *radius == 0.0,
        urdf_rs::Geometry::Mesh { .. } => false,
    }
}

impl Simulation {
    /// Keeps the visual elements of `link` (of robot file `file`), on `body`.
    pub(super) fn add_visuals(
        &mut self,
        file: &Path,
        link: &urdf_rs::Link,
        body: RigidBodyHandle,
        named: &HashMap<String, [f32; 4]>,
        opts: &ImportOptions,
    ) {
        for v in &link.visual {
            let origin = super::urdf::pose_of(&v.origin);
            let rgba = colour_of(v, named);
            let (look, turn) = match &v.geometry {
                urdf_rs::Geometry::Mesh { filename, scale } => {
                    let s = scale.as_ref().map_or([1.0; 3], |s| s.0);
                    match resolve(file, filename, &opts.packages) {
                        Ok(path) if s.iter().all(|v| v.is_finite() && *v != 0.0) => (Look::Mesh(path, s), Rotation::IDENTITY),
                        Ok(_) => {
                            self.visual_problems
                                .push(format!("link `{}`: visual mesh `{filename}` has a zero or non-finite scale", link.name));
                            continue;
                        }
                        Err(e) => {
                            self.visual_problems.push(format!("link `{}`: visual {e}", link.name));
                            continue;
                        }
                    }
                }
                g => match super::urdf::primitive(g) {
                    Ok(Some((shape, turn))) => (Look::Shape(shape), turn),
                    // A zero size: nothing to see (Laikago's toes), drawn by its colliders.
                    Err(_) if zero_size(g) => continue,
                    Err(_) => {
                        self.visual_problems.push(format!("link `{}`: a visual {g:?} has a negative or non-finite size", link.name));
                        continue;
                    }
                    Ok(None) => unreachable!("meshes are read above"),
                },
            };
            let local = Pose::from_parts(origin.translation, origin.rotation * turn);
            self.visuals.push(Visual { body, local, look, rgba });
        }
    }

    /// What went wrong keeping the robot files' visuals (each such link is drawn by its
    /// collision shapes).
    pub fn visual_problems(&self) -> &[String] {
        &self.visual_problems
    }

    /// How many visual elements the world's robots have.
    pub fn visual_count(&self) -> usize {
        self.visuals.len()
    }

    /// The visuals to draw, posed, with their colours (0–255), and the bodies they stand
    /// for; a body one of whose visual meshes cannot be read is left out (drawn by its
    /// colliders instead).
    pub(super) fn visual_shapes(&self) -> (Vec<super::render::SceneShape>, Vec<u64>) {
        let (local, drawn) = self.visual_locals();
        (self.posed(local), drawn)
    }

    /// As [`Simulation::visual_shapes`], each pose in its body's frame (cameras keep these:
    /// exact whatever the body's pose when they were taken).
    pub(super) fn visual_locals(&self) -> (Vec<super::render::SceneShape>, Vec<u64>) {
        let mut out: Vec<super::render::SceneShape> = Vec::new();
        let mut broken: Vec<RigidBodyHandle> = Vec::new();
        for v in &self.visuals {
            if self.world.bodies.get(v.body).is_none() {
                continue;
            }
            let shape = match &v.look {
                Look::Shape(s) => s.clone(),
                Look::Mesh(path, scale) => match collision_shape(path, *scale, MeshCollision::Hull) {
                    Ok(hull) => match hull.as_convex_polyhedron() {
                        Some(h) => ShapeDesc::ConvexHull(h.points().to_vec()),
                        None => continue,
                    },
                    Err(_) => {
                        broken.push(v.body);
                        continue;
                    }
                },
            };
            if v.rgba.is_some_and(|c| c[3] <= 0.0) {
                continue;
            }
            let colour = v.rgba.map(|c| [c[0], c[1], c[2]].map(|x| (x * 255.0).round() as u8));
            out.push(super::render::SceneShape { body: body_id(v.body), pose: v.local, shape, colour });
        }
        out.retain(|s| !broken.iter().any(|b| body_id(*b) == s.body));
        let mut drawn: Vec<u64> = self.visuals.iter().filter(|v| !broken.contains(&v.body)).map(|v| body_id(v.body)).collect();
        drawn.dedup();
        (out, drawn)
    }
}
