//! An experiment's plan and trial states in its store: reading and uploading the plan, a
//! worker's local copy of its files, and which trials are still open.

use super::PLAN;
use crate::exp::spec::Plan;
use crate::exp::trial::{self, TrialState};
use crate::store::Objects;
use anyhow::Context;
use std::path::Path;

/// Reads an experiment's plan from its store.
pub fn read_plan(objects: &dyn Objects) -> anyhow::Result<Plan> {
    parse_plan(objects, objects.get(PLAN)?)
}

/// The plan in `data` (what `objects` holds at [`PLAN`]).
pub(super) fn parse_plan(objects: &dyn Objects, data: Option<Vec<u8>>) -> anyhow::Result<Plan> {
    let data =
        data.with_context(|| format!("{} is not an experiment (no {PLAN}; submit one with `paddock exp run FILE`)", objects.location()))?;
    serde_json::from_slice(&data).with_context(|| format!("{}/{PLAN} is not an experiment plan", objects.location()))
}

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
            for mesh in crate::rundir::carry::mesh_files(&String::from_utf8_lossy(&bytes)) {
                let Some(rel) = crate::rundir::carry::travelling_mesh(&mesh) else { continue };
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
                    std::fs::create_dir_all(parent)?;
                }
                crate::store::write_atomically(&to, &data)?;
            }
            let sha = dir.rsplit('/').next().unwrap_or("");
            let found = crate::rundir::carry::file_sha256(&local).with_context(|| format!("{}: {key} is missing", objects.location()))?;
            if found != sha {
                anyhow::bail!("{}: {key} holds sha256 {found}, not the {sha} it is named by", objects.location());
            }
        }
        let local = local.display().to_string();
        out.base = out.base.replace(path.as_str(), &local);
        for t in &mut out.trials {
            for o in &mut t.overrides {
                *o = o.replace(path.as_str(), &local);
            }
        }
    }
    Ok(out)
}

/// Whether every trial in `states` is final.
pub fn all_final(states: &[(String, TrialState)]) -> bool {
    states.iter().all(|(_, s)| s.status.is_final())
}

/// The ids of the trials that are not final, in plan order.
pub fn open_trials(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<String>> {
    Ok(states(objects, plan)?.into_iter().filter(|(_, s)| !s.status.is_final()).map(|(id, _)| id).collect())
}

/// Reads every trial's state (for `exp status`), in plan order.
pub fn states(objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<(String, TrialState)>> {
    plan.trials.iter().map(|t| Ok((t.id.clone(), trial::read(objects, &t.id)?.state))).collect()
}
