//! An experiment's files in its store: uploading the plan's plugin and robot files, and a
//! worker's local copy of them.

use crate::format::experiment::Plan;
use crate::store::Objects;
use anyhow::Context;
use std::path::Path;

/// Uploads the plan's plugin and robot files (and the meshes a robot file names beside
/// it) to the experiment's store, each once.
pub fn upload_files(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<()> {
    for (path, key) in &plan.files {
        let path = Path::new(path);
        let bytes = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        objects.put_new(key, &bytes)?;
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("urdf")) {
            let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
            let base = path.parent().unwrap_or(Path::new(""));
            for mesh in crate::run::carry::mesh_files(&String::from_utf8_lossy(&bytes)) {
                let Some(rel) = crate::run::carry::travelling_mesh(&mesh) else { continue };
                let from = base.join(rel);
                let data = std::fs::read(&from).with_context(|| format!("failed to read mesh {}", from.display()))?;
                objects.put_new(&format!("{dir}/{}", rel.display()), &data)?;
            }
        }
    }
    Ok(())
}

/// The plan with every file it names fetched from the store into `work_dir/files/` (each
/// checked against its sha256) and its paths pointing at those copies.
pub fn localize(objects: &dyn Objects, plan: &Plan, work_dir: &Path) -> anyhow::Result<Plan> {
    let mut out = plan.clone();
    for (path, key) in &plan.files {
        let local = work_dir.join(key);
        if !local.is_file() {
            let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
            for e in objects.list(dir)? {
                let data = objects.get(&e.key)?.with_context(|| format!("{}: {} vanished", objects.location(), e.key))?;
                let to = work_dir.join(&e.key);
                if let Some(parent) = to.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                crate::store::write_atomically(&to, &data)?;
            }
            let sha = dir.rsplit('/').next().unwrap_or("");
            let found = crate::run::carry::file_sha256(&local).with_context(|| format!("{}: {key} is missing", objects.location()))?;
            if found != sha {
                anyhow::bail!("{}: {key} holds sha256 {found}, not the {sha} it is named by", objects.location());
            }
        }
        let local = local.display().to_string();
        out.base = out.base.replace(path.as_str(), &local);
    }
    for t in &mut out.trials {
        localize_overrides(plan, work_dir, &mut t.overrides);
    }
    Ok(out)
}

/// A trial's overrides with the plan's file paths pointing at the worker's copies (fetched
/// by [`localize`]).
pub fn localize_overrides(plan: &Plan, work_dir: &Path, overrides: &mut [String]) {
    for (path, key) in &plan.files {
        let local = work_dir.join(key).display().to_string();
        for o in overrides.iter_mut() {
            *o = o.replace(path.as_str(), &local);
        }
    }
}
