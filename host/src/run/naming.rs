//! Naming and claiming runs in a store, and fetching an S3 run into a local working copy.
//!
//! A new run is named by its config's `name`, else `<env>-<algo>-s<seed>-<unix time>`, with
//! the robot after the env when the config grants one (`arm-reach-panda-ppo-s1-…`), then
//! `-1`, `-2`, … when taken.
//! In a local store the name is claimed by creating its directory; in an S3 store by a
//! conditional put of its `config.toml` (`If-None-Match: *`), so two machines starting
//! runs at once never share one. An S3 run trains in a local working copy that the
//! [`crate::run::mirror::Mirror`] uploads.

use crate::config::RunConfig;
use crate::format::run_dir::CONFIG;
use crate::run::runs::{self, Checkpoints, Pulled};
use crate::store::{Location, S3Settings};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// A run's base name: the config's `name`, else env, robot (when the env is granted one),
/// algorithm, seed and start time.
pub fn base_name(config: &RunConfig) -> String {
    if let Some(name) = &config.name {
        return name.clone();
    }
    let stem = |p: &Path| {
        if crate::config::is_registry_ref(p) {
            let s = p.to_string_lossy();
            return s.rsplit('/').next().unwrap_or("plugin").split('@').next().unwrap_or("plugin").to_string();
        }
        p.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned())
    };
    let algo = config.algorithm.as_ref().map_or_else(|| "none".into(), |a| stem(&a.plugin));
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let env = match robot_name(config) {
        Some(robot) => format!("{}-{robot}", stem(&config.env.plugin)),
        None => stem(&config.env.plugin),
    };
    format!("{env}-{algo}-s{}-{secs}", config.seed)
}

/// The robot a config grants its env, when it grants one: its file's stem, or its folder's
/// name for a file called `model` (`kuka_iiwa/model.urdf` is `kuka_iiwa`).
fn robot_name(config: &RunConfig) -> Option<String> {
    let mut robots = config.env.robots.values();
    let (Some(file), None) = (robots.next(), robots.next()) else { return None };
    let stem = file.file_stem()?.to_string_lossy();
    let name = if stem.eq_ignore_ascii_case("model") { file.parent()?.file_name()?.to_string_lossy() } else { stem };
    Some(name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect())
}

/// The names a new run may take, in order: `base`, `base-1`, … (1000 of them).
fn candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    (0..1000).map(move |k| if k == 0 { base.to_string() } else { format!("{base}-{k}") })
}

/// Where a newly claimed run lives.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The directory the run trains in (for an S3 run, its local working copy).
    pub dir: PathBuf,
    /// The run's place in an S3 store, when it has one.
    pub remote: Option<Location>,
}

/// Claims a new, unique run named after `base` in `store` and writes `config_text` as its
/// `config.toml` (in the working copy too, for an S3 run).
pub fn claim(store: &Location, s3: &S3Settings, base: &str, config_text: &str) -> anyhow::Result<Claimed> {
    match store {
        Location::Local(root) => {
            std::fs::create_dir_all(root).with_context(|| format!("failed to create run store {}", root.display()))?;
            for dir in candidates(base).map(|name| root.join(name)) {
                match std::fs::create_dir(&dir) {
                    Ok(()) => {
                        std::fs::write(dir.join(CONFIG), config_text).with_context(|| format!("failed to write {CONFIG}"))?;
                        return Ok(Claimed { dir, remote: None });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e).with_context(|| format!("failed to create run dir {}", dir.display())),
                }
            }
            anyhow::bail!("failed to find a free run dir name under {}", root.display())
        }
        Location::S3 { .. } => {
            let objects = crate::store::open(store, s3)?;
            for name in candidates(base) {
                if objects.put_new(&format!("{name}/{CONFIG}"), config_text.as_bytes())? {
                    let location = store.join(&name);
                    let (dir, _) = runs::fresh_working_copy(&location)?;
                    std::fs::write(dir.join(CONFIG), config_text).with_context(|| format!("failed to write {CONFIG}"))?;
                    return Ok(Claimed { dir, remote: Some(location) });
                }
            }
            anyhow::bail!("failed to find a free run name under {store}")
        }
    }
}

/// An S3 run fetched into a fresh local working copy.
#[derive(Debug)]
pub struct Fetched {
    /// The working copy.
    pub dir: PathBuf,
    /// Where an older working copy of the run was moved (kept, never deleted).
    pub moved_aside: Option<PathBuf>,
    /// What was fetched.
    pub pulled: Pulled,
}

/// Fetches an S3 run (its files and the checkpoints `which` names) into a fresh working
/// copy under [`runs::work_dir`].
pub fn fetch(location: &Location, which: &Checkpoints) -> anyhow::Result<Fetched> {
    let (objects, name) = runs::open_run(location)?;
    let (dir, moved_aside) = runs::fresh_working_copy(location)?;
    let pulled = runs::pull_run(objects.as_ref(), &name, &dir, which, &mut |_, _| {})?;
    Ok(Fetched { dir, moved_aside, pulled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_after_their_env_robot_algorithm_and_seed() {
        let name = |robots: &str| {
            let text = format!("seed = 3\n[env]\nplugin = \"p/arm-reach.wasm\"\n{robots}\n[algorithm]\nplugin = \"ppo.wasm\"\n");
            base_name(&RunConfig::parse(&text).expect("config"))
        };
        assert!(name("").starts_with("arm-reach-ppo-s3-"), "{}", name(""));
        assert!(name("robots = { arm = \"x/franka_panda/panda.urdf\" }").starts_with("arm-reach-panda-ppo-s3-"));
        assert!(name("robots = { arm = \"x/kuka_iiwa/model.urdf\" }").starts_with("arm-reach-kuka_iiwa-ppo-s3-"));
        assert!(name("robots = { arm = \"my robot.urdf\" }").starts_with("arm-reach-my-robot-ppo-s3-"));
        // Two robots: neither names the run.
        assert!(name("robots = { a = \"a.urdf\", b = \"b.urdf\" }").starts_with("arm-reach-ppo-s3-"));
        let named = RunConfig::parse("name = \"mine\"\n[env]\nplugin = \"e.wasm\"\nrobots = { a = \"a.urdf\" }\n").expect("config");
        assert_eq!(base_name(&named), "mine");
    }
}
