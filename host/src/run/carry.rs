//! A run carries what it needs to be evaluated and resumed anywhere: every plugin version it
//! used, content-addressed (`plugins/<name>-<sha256>.wasm`), and the robot files its env may load
//! (`robots/<name>/…`, the URDF beside the meshes it names by relative path). The S3
//! mirror uploads them with the run's other files and a fetch brings them back, so a run's
//! URI is all another machine needs.
//!
//! On resume and evaluation [`resolve`] points each plugin at the version `plugins.lock`
//! recorded as live at the checkpoint: the original file when it is still there with the
//! same sha256 (so hot reload keeps watching it), else the carried copy. A different version
//! only on request (`paddock train --resume RUN --plugin ROLE=FILE`), which the loop then
//! records in `plugins.lock` like a hot reload.

use crate::config::RunConfig;
use crate::format::run_dir::{self, LockEntry, PLUGINS_DIR, ROBOTS_DIR};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Why a plugin or robot file could not be carried into a run.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    /// A file could not be read, copied or written.
    #[error("failed to {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is no longer the version that was loaded.
    #[error("{path} changed while the run was starting (sha256 {found}, loaded {expected}); start it again")]
    Changed {
        /// The file.
        path: PathBuf,
        /// The loaded version.
        expected: String,
        /// What the file holds now.
        found: String,
    },
}

/// The carried copy of plugin `name`'s version with this sha256 (`<name>-<sha256>.wasm`:
/// content-addressed, and the loader names the plugin `name`).
pub fn plugin_blob(run_dir: &Path, name: &str, sha256: &str) -> PathBuf {
    run_dir.join(PLUGINS_DIR).join(format!("{name}-{sha256}.wasm"))
}

/// Hex sha256 of a file.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(sha2::Sha256::digest(fs_err::read(path)?)))
}

/// Copies the plugin file `source` (loaded as plugin `name`, version `sha256`) into the
/// run, once.
pub fn carry_plugin(run_dir: &Path, source: &Path, name: &str, sha256: &str) -> Result<PathBuf, CarryError> {
    let blob = plugin_blob(run_dir, name, sha256);
    if blob.exists() {
        return Ok(blob);
    }
    let bytes = std::fs::read(source).map_err(|e| CarryError::Io { what: "read", path: source.to_path_buf(), source: e })?;
    let found = hex::encode(sha2::Sha256::digest(&bytes));
    if found != sha256 {
        return Err(CarryError::Changed { path: source.to_path_buf(), expected: sha256.to_string(), found });
    }
    write_atomic(&blob, &bytes)?;
    Ok(blob)
}

/// Writes `bytes` to `path` through a `.tmp-` file (never uploaded or read as complete).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CarryError> {
    fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CarryError + 'a {
        move |source| CarryError::Io { what, path: path.to_path_buf(), source }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!("{}{name}", run_dir::PARTIAL_PREFIX));
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("write", path))
}

/// Copies each robot file to `robots/<name>/` in the run, with the meshes it names: those
/// by a relative path inside its own folder at that path, `package://PKG/PATH` ones (found
/// through the package search path) at `PKG/PATH`, where the loader finds them beside the
/// carried URDF. Returns a note per mesh that cannot travel (outside the URDF's folder, or
/// not found: loading the robot names the error).
pub fn carry_robots(run_dir: &Path, robots: &crate::runtime::RobotGrants) -> Result<Vec<String>, CarryError> {
    let mut notes = Vec::new();
    for (name, urdf) in &robots.files {
        let text = std::fs::read(urdf).map_err(|source| CarryError::Io { what: "read robot file", path: urdf.clone(), source })?;
        let file_name = urdf.file_name().map_or_else(|| "robot.urdf".into(), |n| n.to_string_lossy().into_owned());
        let to = run_dir.join(ROBOTS_DIR).join(name);
        write_atomic(&to.join(&file_name), &text)?;
        let base = urdf.parent().unwrap_or(Path::new(""));
        for mesh in mesh_files(&String::from_utf8_lossy(&text)) {
            let (from, rel) = if let Some(rel) = travelling_mesh(&mesh) {
                (base.join(rel), rel.to_path_buf())
            } else if let Some(rest) = mesh.strip_prefix("package://")
                && let Some(rel) = travelling_mesh(rest)
            {
                match crate::physics::mesh::resolve(urdf, &mesh, &robots.import.packages) {
                    Ok(from) => (from, rel.to_path_buf()),
                    Err(e) => {
                        notes.push(format!("robot `{name}`: {e}; it does not travel with the run"));
                        continue;
                    }
                }
            } else {
                notes.push(format!("robot `{name}`: mesh `{mesh}` is not under {} and does not travel with the run", base.display()));
                continue;
            };
            let bytes = std::fs::read(&from).map_err(|source| CarryError::Io { what: "read mesh", path: from.clone(), source })?;
            write_atomic(&to.join(rel), &bytes)?;
        }
    }
    Ok(notes)
}

/// A mesh reference that can travel beside its URDF: its path relative to the URDF's
/// directory (`file://` allowed), or `None` for `package://`, other schemes, absolute paths
/// and paths leaving the directory.
pub fn travelling_mesh(mesh: &str) -> Option<&Path> {
    if mesh.contains("://") && !mesh.starts_with("file://") {
        return None;
    }
    let rel = Path::new(mesh.strip_prefix("file://").unwrap_or(mesh));
    rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)).then_some(rel)
}

/// The `filename="…"` values of a URDF's mesh elements.
pub fn mesh_files(urdf: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in urdf.split("filename").skip(1) {
        let rest = part.trim_start().strip_prefix('=').map(str::trim_start);
        let Some(rest) = rest else { continue };
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else { continue };
        if let Some(value) = rest[1..].split(quote).next()
            && !out.iter().any(|v| v == value)
        {
            out.push(value.to_string());
        }
    }
    out
}

/// The carried robot file of `name` in the run, if it has one.
fn carried_robot(run_dir: &Path, name: &str) -> Option<PathBuf> {
    let dir = run_dir.join(ROBOTS_DIR).join(name);
    std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("urdf")))
}

/// The version of `role` that was live at env step `step`: the last entry for the role
/// that went live at or before it.
pub fn live_at<'a>(lock: &'a [LockEntry], role: &str, step: u64) -> Option<&'a LockEntry> {
    lock.iter().filter(|e| e.role == role && e.since_step <= step).max_by_key(|e| e.since_step)
}

/// Why a run's plugins cannot be resolved for a resume or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `plugins.lock` is unreadable.
    #[error(transparent)]
    Lock(#[from] run_dir::LockError),
    /// The run carries no copy and the file at the config's path is another version.
    #[error(
        "the {role} plugin {path} is not the version this run recorded (sha256 {found}, the run used {recorded}) and the run carries no copy of it; pass `--plugin {role}=FILE` to resume with another version"
    )]
    Mismatch {
        /// The role.
        role: String,
        /// The file.
        path: PathBuf,
        /// Its sha256.
        found: String,
        /// The recorded one.
        recorded: String,
    },
    /// A replacement names a role the run does not have.
    #[error("--plugin {role}=…: this run has no {role} plugin (it has: {have})")]
    NoRole {
        /// The role asked for.
        role: String,
        /// The roles it has.
        have: String,
    },
}

/// The config to run a run's checkpoint at env step `step` with: each plugin the version
/// `plugins.lock` recorded as live then (the original file when it still holds that
/// version, else the run's copy), unless `replace` names another file for its role; robot
/// files from the run's copies. Returns the config and what a person should know.
pub fn resolve(
    record: &RunConfig,
    run_dir: &Path,
    step: u64,
    replace: &BTreeMap<String, PathBuf>,
) -> Result<(RunConfig, Vec<String>), ResolveError> {
    let lock = run_dir::read_lock(run_dir)?;
    let mut config = record.clone();
    let mut notes = Vec::new();
    let have: Vec<&'static str> = config.plugin_paths().into_iter().map(|(r, _)| r).collect();
    if let Some(role) = replace.keys().find(|r| !have.contains(&r.as_str())) {
        return Err(ResolveError::NoRole { role: role.clone(), have: have.join(", ") });
    }
    let mut sources = BTreeMap::new();
    for (role, path) in config.plugin_paths() {
        let recorded = live_at(&lock, role, step);
        if let Some(file) = replace.get(role) {
            let was = recorded.map_or_else(|| "none recorded".into(), |e| format!("sha256 {}", &e.sha256[..12.min(e.sha256.len())]));
            notes.push(format!("resuming with the {role} plugin {} in place of the recorded version ({was}), as asked", file.display()));
            *path = file.clone();
            continue;
        }
        let Some(entry) = recorded else { continue };
        let blob = plugin_blob(run_dir, &entry.name, &entry.sha256);
        let original = Path::new(&entry.source);
        let original_sha = original.is_file().then(|| file_sha256(original).ok()).flatten();
        if original_sha.as_deref() == Some(entry.sha256.as_str()) {
            *path = original.to_path_buf();
        } else if blob.is_file() {
            if original_sha.is_some() {
                notes.push(format!(
                    "the {role} plugin's file {} changed since the run recorded it; using the recorded version (sha256 {}, carried in the run); `--plugin {role}=FILE` resumes with another",
                    original.display(),
                    &entry.sha256[..12.min(entry.sha256.len())]
                ));
            }
            sources.insert(
                blob.clone(),
                format!("{} (the run's copy of sha256 {})", entry.source, &entry.sha256[..12.min(entry.sha256.len())]),
            );
            *path = blob;
        } else if !crate::config::is_registry_ref(path) && path.is_file() {
            // An older run, from before runs carried their plugins: the file must be the recorded version.
            let found = file_sha256(path).unwrap_or_default();
            if found != entry.sha256 {
                return Err(ResolveError::Mismatch { role: role.to_string(), path: path.clone(), found, recorded: entry.sha256.clone() });
            }
        }
    }
    config.sources = sources;
    for (name, path) in config.env.robots.iter_mut() {
        if let Some(carried) = carried_robot(run_dir, name) {
            *path = carried;
        }
    }
    Ok((config, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: &str, sha: &str, since: u64, source: &str) -> LockEntry {
        LockEntry {
            role: role.into(),
            name: "p".into(),
            source: source.into(),
            sha256: sha.into(),
            world: "reward".into(),
            package_version: "0.1.1".into(),
            since_step: since,
        }
    }

    #[test]
    fn the_version_live_at_a_step_is_the_last_one_before_it() {
        let lock = vec![entry("env", "a", 0, "x"), entry("reward", "b", 0, "y"), entry("reward", "c", 500, "y")];
        assert_eq!(live_at(&lock, "reward", 499).map(|e| e.sha256.as_str()), Some("b"));
        assert_eq!(live_at(&lock, "reward", 500).map(|e| e.sha256.as_str()), Some("c"));
        assert_eq!(live_at(&lock, "env", 10_000).map(|e| e.sha256.as_str()), Some("a"));
        assert!(live_at(&lock, "algorithm", 1).is_none());
    }

    #[test]
    fn meshes_are_found_and_plugins_carried_once_and_checked() {
        let urdf = r#"<mesh filename="meshes/a.stl"/><mesh filename = 'b.obj' scale="1 1 1"/><mesh filename="meshes/a.stl"/>"#;
        assert_eq!(mesh_files(urdf), vec!["meshes/a.stl".to_string(), "b.obj".to_string()]);

        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("p.wasm");
        std::fs::write(&src, b"version one").expect("write");
        let sha = file_sha256(&src).expect("sha");
        let run = dir.path().join("run");
        let blob = carry_plugin(&run, &src, "p", &sha).expect("carry");
        assert_eq!(std::fs::read(&blob).expect("read"), b"version one");
        assert_eq!(crate::runtime::plugin_name(&blob), "p", "the loader names the copy as the original");
        std::fs::write(&src, b"version two").expect("write");
        assert!(carry_plugin(&run, &src, "p", &sha).is_ok(), "already carried: the file is not read again");
        let err = carry_plugin(&run, &src, "p", &"0".repeat(64)).expect_err("changed");
        assert!(err.to_string().contains("changed while the run was starting"), "{err}");
    }
}
