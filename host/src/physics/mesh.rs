//! Mesh files a robot names: where a `package://` or relative path points
//! ([`resolve`]), and the collider a mesh becomes ([`collision_shape`]): its convex hull (the
//! cheap default) or an approximate convex decomposition (V-HACD, parry's) for concave parts.
//! STL, OBJ and COLLADA are read by the `mesh-loader` crate. Shapes are cached per file,
//! scale and mode, so the hundred envs of a run that load one robot read each mesh once.

use rapier3d::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// What a mesh collides as (`[env] mesh_collision`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshCollision {
    /// Its convex hull: one convex shape, the fastest contacts; fills a concave part's hollows.
    #[default]
    Hull,
    /// An approximate convex decomposition (V-HACD): a compound of convex parts that keeps
    /// the hollows (a gripper's jaws, a wheel arch); slower to load and to collide.
    Decompose,
}

/// How a robot file is imported: where `package://` paths resolve, and what meshes collide
/// as. The same for every robot of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Folders searched for `package://NAME/…`: each holds package folders (`DIR/NAME`) or
    /// is one (`…/NAME`). `[env] packages`, then `ROS_PACKAGE_PATH`.
    pub packages: Vec<PathBuf>,
    /// What meshes collide as.
    pub collision: MeshCollision,
}

impl ImportOptions {
    /// `packages`, then the folders of `ROS_PACKAGE_PATH`, with `collision`.
    pub fn with_ros_package_path(mut packages: Vec<PathBuf>, collision: MeshCollision) -> Self {
        if let Some(ros) = std::env::var_os("ROS_PACKAGE_PATH") {
            packages.extend(std::env::split_paths(&ros).filter(|p| !p.as_os_str().is_empty()));
        }
        ImportOptions { packages, collision }
    }
}

/// The file a URDF mesh reference names: `package://NAME/REST` through the package search
/// path, then the URDF's own folder (`DIR/NAME/REST`, where a run's carried copy keeps it)
/// and its parent when that is the package (the ROS layout `NAME/urdf/robot.urdf`);
/// `file://PATH` and plain paths relative to the URDF's folder. The error says where it
/// looked.
pub fn resolve(urdf: &Path, filename: &str, packages: &[PathBuf]) -> Result<PathBuf, String> {
    let dir = urdf.parent().unwrap_or(Path::new("."));
    let Some(rest) = filename.strip_prefix("package://") else {
        let rel = filename.strip_prefix("file://").unwrap_or(filename);
        if rel.contains("://") {
            return Err(format!("mesh `{filename}`: only package://, file:// and plain paths are supported"));
        }
        let path = dir.join(rel);
        return if path.is_file() { Ok(path) } else { Err(format!("mesh `{filename}` not found (looked for {})", path.display())) };
    };
    let (package, inner) = rest.split_once('/').unwrap_or((rest, ""));
    if package.is_empty() || inner.is_empty() {
        return Err(format!("mesh `{filename}`: a package path is package://NAME/PATH"));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in packages.iter().map(PathBuf::as_path).chain([dir]) {
        roots.push(p.join(package));
        if p.file_name().is_some_and(|n| n == package) {
            roots.push(p.to_path_buf());
        }
    }
    if let Some(parent) = dir.parent()
        && parent.file_name().is_some_and(|n| n == package)
    {
        roots.push(parent.to_path_buf());
    }
    let found: Vec<&PathBuf> = roots.iter().filter(|r| r.is_dir()).collect();
    if found.is_empty() {
        let searched: Vec<String> = packages.iter().map(|p| p.display().to_string()).chain([dir.display().to_string()]).collect();
        return Err(format!(
            "mesh `{filename}`: unknown package `{package}` (searched {}); add the folder that holds it to `[env] packages` or ROS_PACKAGE_PATH",
            searched.join(", ")
        ));
    }
    found.iter().map(|r| r.join(inner)).find(|p| p.is_file()).ok_or_else(|| {
        let tried: Vec<String> = found.iter().map(|r| r.join(inner).display().to_string()).collect();
        format!("mesh `{filename}` not found in package `{package}` (looked for {})", tried.join(", "))
    })
}

type Key = (PathBuf, [u32; 3], MeshCollision, Option<std::time::SystemTime>, u64);

static SHAPES: LazyLock<Mutex<HashMap<Key, SharedShape>>> = LazyLock::new(Default::default);

/// The collider of mesh file `path` scaled by `scale`: cached per file version.
pub fn collision_shape(path: &Path, scale: [f64; 3], mode: MeshCollision) -> Result<SharedShape, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key: Key = (path.to_path_buf(), scale.map(|s| (s as f32).to_bits()), mode, meta.modified().ok(), meta.len());
    if let Some(s) = SHAPES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
        return Ok(s.clone());
    }
    let shape = build_shape(path, scale, mode)?;
    SHAPES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, shape.clone());
    Ok(shape)
}

/// Vertices (scaled) and triangles of every mesh in the file.
pub fn read_mesh(path: &Path, scale: [f64; 3]) -> Result<(Vec<Vector>, Vec<[u32; 3]>), String> {
    let scene = mesh_loader::Loader::default().merge_meshes(true).load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = scale.map(|v| v as f32);
    let (mut points, mut faces) = (Vec::new(), Vec::new());
    for m in &scene.meshes {
        let base = points.len() as u32;
        points.extend(m.vertices.iter().map(|v| Vector::new(v[0] * s[0], v[1] * s[1], v[2] * s[2])));
        faces.extend(m.faces.iter().map(|f| f.map(|i| i + base)));
    }
    if let Some(bad) = points.iter().find(|p| !p.is_finite()) {
        return Err(format!("{}: a vertex is not finite ({bad:?})", path.display()));
    }
    Ok((points, faces))
}

fn build_shape(path: &Path, scale: [f64; 3], mode: MeshCollision) -> Result<SharedShape, String> {
    let (points, faces) = read_mesh(path, scale)?;
    let flat = || format!("{}: its {} vertices span no volume (no hull)", path.display(), points.len());
    match mode {
        MeshCollision::Hull => SharedShape::convex_hull(&points).ok_or_else(flat),
        MeshCollision::Decompose => {
            if faces.is_empty() {
                return Err(format!("{}: no triangles to decompose", path.display()));
            }
            let shape = SharedShape::convex_decomposition(&points, &faces);
            let parts = shape.as_compound().map_or(1, |c| c.shapes().len());
            if parts == 0 { Err(flat()) } else { Ok(shape) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_paths_resolve_through_the_search_path_the_urdf_folder_and_the_ros_layout() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        let put = |p: &str| {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            std::fs::write(&f, "solid x\nendsolid x\n").expect("write");
            f
        };
        // ROS layout: share/arm_description/{urdf/arm.urdf, meshes/link.stl}.
        let urdf = put("share/arm_description/urdf/arm.urdf");
        let mesh = put("share/arm_description/meshes/link.stl");
        assert_eq!(resolve(&urdf, "package://arm_description/meshes/link.stl", &[]).expect("the URDF's package"), mesh);
        // Through the search path: a folder holding packages, or a package folder itself.
        let other = put("ws/gripper/meshes/finger.obj");
        for p in [root.join("ws"), root.join("ws/gripper")] {
            assert_eq!(resolve(&urdf, "package://gripper/meshes/finger.obj", &[p]).expect("searched"), other);
        }
        // pybullet_data's layout: `package://meshes/…` beside the URDF.
        let panda = put("panda/panda.urdf");
        let link0 = put("panda/meshes/collision/link0.obj");
        assert_eq!(resolve(&panda, "package://meshes/collision/link0.obj", &[]).expect("beside"), link0);
        // Errors say what was searched.
        let e = resolve(&urdf, "package://nowhere/meshes/a.stl", &[root.join("ws")]).expect_err("unknown");
        assert!(e.contains("unknown package `nowhere`") && e.contains("ws") && e.contains("[env] packages"), "{e}");
        let e = resolve(&urdf, "package://gripper/meshes/gone.obj", &[root.join("ws")]).expect_err("missing");
        assert!(e.contains("not found in package `gripper`") && e.contains("gone.obj"), "{e}");
        let e = resolve(&urdf, "http://example.com/a.stl", &[]).expect_err("scheme");
        assert!(e.contains("only package://"), "{e}");
        let e = resolve(&urdf, "../meshes/none.stl", &[]).expect_err("relative");
        assert!(e.contains("not found") && e.contains("none.stl"), "{e}");
    }

    /// An L-shaped prism (concave) as an OBJ file.
    const L_OBJ: &str = "v 0 0 0\nv 2 0 0\nv 2 1 0\nv 1 1 0\nv 1 2 0\nv 0 2 0\n\
        v 0 0 1\nv 2 0 1\nv 2 1 1\nv 1 1 1\nv 1 2 1\nv 0 2 1\n\
        f 1 3 2\nf 1 4 3\nf 1 6 4\nf 4 6 5\n\
        f 7 8 9\nf 7 9 10\nf 7 10 12\nf 10 11 12\n\
        f 1 2 8\nf 1 8 7\nf 2 3 9\nf 2 9 8\nf 3 4 10\nf 3 10 9\nf 4 5 11\nf 4 11 10\nf 5 6 12\nf 5 12 11\nf 6 1 7\nf 6 7 12\n";

    #[test]
    fn a_concave_obj_is_a_hull_by_default_and_keeps_its_notch_when_decomposed() {
        let t = tempfile::tempdir().expect("tempdir");
        let obj = t.path().join("l.obj");
        std::fs::write(&obj, L_OBJ).expect("write");
        let hull = collision_shape(&obj, [1.0; 3], MeshCollision::Hull).expect("hull");
        let parts = collision_shape(&obj, [1.0; 3], MeshCollision::Decompose).expect("decomposed");
        // The notch's corner (1.5, 1.5) is inside the hull, outside the L.
        let notch = Vector::new(1.5, 1.5, 0.5);
        assert!(hull.contains_point(&Pose::IDENTITY, notch), "the hull fills the notch");
        assert!(!parts.contains_point(&Pose::IDENTITY, notch), "the decomposition keeps it");
        assert!(parts.contains_point(&Pose::IDENTITY, Vector::new(0.5, 1.5, 0.5)), "and the L's arm");
        // Scaled, and cached: the same Arc for the same file and scale.
        let big = collision_shape(&obj, [2.0; 3], MeshCollision::Hull).expect("scaled");
        assert!(big.contains_point(&Pose::IDENTITY, Vector::new(3.9, 0.1, 1.9)));
        let again = collision_shape(&obj, [1.0; 3], MeshCollision::Hull).expect("cached");
        assert!(std::ptr::addr_eq(std::sync::Arc::as_ptr(&hull.0), std::sync::Arc::as_ptr(&again.0)));
        // A flat mesh (a ground plane) is a flat hull; a line and an unreadable file are
        // errors naming the file.
        std::fs::write(t.path().join("flat.obj"), "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n").expect("write");
        collision_shape(&t.path().join("flat.obj"), [1.0; 3], MeshCollision::Hull).expect("flat");
        std::fs::write(t.path().join("line.obj"), "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n").expect("write");
        let e = collision_shape(&t.path().join("line.obj"), [1.0; 3], MeshCollision::Hull).expect_err("a line");
        assert!(e.contains("line.obj") && e.contains("span no volume"), "{e}");
        std::fs::write(t.path().join("junk.dae"), "<not collada").expect("write");
        let e = collision_shape(&t.path().join("junk.dae"), [1.0; 3], MeshCollision::Hull).expect_err("junk");
        assert!(e.contains("junk.dae"), "{e}");
    }
}
