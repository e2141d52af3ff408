//! The plugin registry: published plugin versions in a store (a local directory or an S3
//! prefix) that teams share.
//!
//! Layout under the registry's root:
//! - `blobs/sha256/<hex>.wasm` — components, addressed by content;
//! - `plugins/<team>/<name>/<version>/manifest.json` — a [`Manifest`] (sha256, size, world
//!   and package version, description, author, publish time, optional ed25519 signature);
//!   created with a conditional put, which is the publish's commit point: of concurrent
//!   publishers of one version exactly one wins, and a published version never changes;
//! - `plugins/<team>/<name>/<version>/yanked` — present when the version is yanked (version
//!   requirements skip it; an exact `=x.y.z` still resolves, with a warning).
//!
//! A pull checks the component's size and sha256 against the manifest, the signature (when
//! there is one) against the manifest's key, and — when trusted keys are configured — that
//! one of them signed it. The signed message binds the name, the version and the sha256.

use crate::config::RunConfig;
use crate::store::{Location, Objects, S3Settings};
use anyhow::Context;
use base64::Engine as _;
use ed25519_dalek::{Signer, Verifier};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::config::{REF_PREFIX, RegistrySection};

/// A plugin name and version requirement: `team/x@^1.2` (no `@`: any version).
#[derive(Clone, Debug, PartialEq)]
pub struct PluginRef {
    /// `team/x`.
    pub name: String,
    /// The version requirement.
    pub req: semver::VersionReq,
    /// The requirement as written.
    pub req_text: String,
}

/// Checks a published name: `team/x`, each part lowercase letters, digits, `-` or `_`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok_part = |p: &str| {
        !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    match name.split_once('/') {
        Some((team, x)) if ok_part(team) && ok_part(x) => Ok(()),
        _ => anyhow::bail!("invalid plugin name `{name}`: write TEAM/NAME, each of lowercase letters, digits, `-` and `_`"),
    }
}

impl PluginRef {
    /// Parses `team/x@REQ` (REQ a semver requirement such as `^1.2`, `=1.2.0`, `1.2`).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.strip_prefix(REF_PREFIX).unwrap_or(s);
        let (name, req_text) = s.split_once('@').unwrap_or((s, "*"));
        check_name(name)?;
        let req = semver::VersionReq::parse(req_text)
            .with_context(|| format!("plugin `{s}`: `{req_text}` is not a version requirement (e.g. ^1.2, =1.2.0)"))?;
        Ok(PluginRef { name: name.into(), req, req_text: req_text.into() })
    }

    /// Whether the requirement pins one exact version (`=x.y.z`).
    pub fn exact(&self) -> Option<semver::Version> {
        let [c] = self.req.comparators.as_slice() else { return None };
        if c.op != semver::Op::Exact {
            return None;
        }
        Some(semver::Version { major: c.major, minor: c.minor?, patch: c.patch?, pre: c.pre.clone(), build: Default::default() })
    }
}

/// A signature over a published version.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Signature {
    /// The signer's public key, `ed25519:<base64>`.
    pub public_key: String,
    /// The ed25519 signature of [`signed_message`], base64.
    pub signature: String,
}

/// What a published version records.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Manifest {
    /// `team/x`.
    pub name: String,
    /// The version (semver).
    pub version: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The world it targets (`environment`, `reward`, `algorithm`, …).
    pub world: String,
    /// The `paddock:rl` package version it was built against.
    pub package_version: String,
    /// What it is.
    pub description: String,
    /// Who published it.
    pub author: String,
    /// When, Unix seconds.
    pub published_unix: u64,
    /// The ed25519 signature, if it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// The bytes a signature covers: the name, the version and the component's sha256.
pub fn signed_message(name: &str, version: &str, sha256: &str) -> Vec<u8> {
    format!("paddock-plugin-signature-v1\n{name}\n{version}\n{sha256}\n").into_bytes()
}

const SECRET_PREFIX: &str = "paddock-ed25519-secret:";
const PUBLIC_PREFIX: &str = "ed25519:";

/// A new signing key; returns the secret key file's text and the public key.
pub fn keygen() -> anyhow::Result<(String, String)> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((format!("{SECRET_PREFIX}{}\n", b64.encode(seed)), public_key_text(&key.verifying_key())))
}

/// `ed25519:<base64>`.
pub fn public_key_text(k: &ed25519_dalek::VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(k.as_bytes()))
}

/// Reads a secret key file written by `paddock plugin keygen`.
pub fn read_signing_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read key file {}", path.display()))?;
    let b64 = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .with_context(|| format!("{} is not a Paddock secret key (made by `paddock plugin keygen`)", path.display()))?;
    let seed = base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
    let seed = seed.with_context(|| format!("{}: the key is garbled", path.display()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Parses `ed25519:<base64>`.
pub fn parse_public_key(text: &str) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let b64 =
        text.trim().strip_prefix(PUBLIC_PREFIX).with_context(|| format!("public key `{text}` does not start with `{PUBLIC_PREFIX}`"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
    let bytes = bytes.with_context(|| format!("public key `{text}` is not 32 base64 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("public key `{text}` is invalid: {e}"))
}

/// One version as `plugin ls` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionRow {
    /// The manifest.
    pub manifest: Manifest,
    /// Whether it is yanked.
    pub yanked: bool,
}

/// A registry.
pub struct Registry {
    objects: Arc<dyn Objects>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.objects.location())
    }
}

fn manifest_key(name: &str, version: &str) -> String {
    format!("plugins/{name}/{version}/manifest.json")
}

fn yank_key(name: &str, version: &str) -> String {
    format!("plugins/{name}/{version}/yanked")
}

fn blob_key(sha256: &str) -> String {
    format!("blobs/sha256/{sha256}.wasm")
}

impl Registry {
    /// The registry at `location`, or `$PADDOCK_REGISTRY` when `None`.
    pub fn open(location: Option<&str>, s3: &S3Settings) -> anyhow::Result<Self> {
        let env = std::env::var("PADDOCK_REGISTRY").ok();
        let text = location
            .map(String::from)
            .or(env)
            .context("no plugin registry given: pass --registry URI, set PADDOCK_REGISTRY, or set [registry] location in the config")?;
        Ok(Registry { objects: crate::store::open(&Location::parse(&text)?, s3)? })
    }

    /// A registry over an open store.
    pub fn over(objects: Arc<dyn Objects>) -> Self {
        Registry { objects }
    }

    /// Where it is.
    pub fn location(&self) -> Location {
        self.objects.location()
    }

    /// Publishes `component` (already checked to be a plugin: `world`, `package_version`)
    /// as `name@version`. Refused when that version exists, whoever published it.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &self,
        component: &[u8],
        name: &str,
        version: &semver::Version,
        world: &str,
        package_version: &str,
        description: &str,
        author: &str,
        key: Option<&ed25519_dalek::SigningKey>,
    ) -> anyhow::Result<Manifest> {
        check_name(name)?;
        let sha256 = hex::encode(sha2::Sha256::digest(component));
        let v = version.to_string();
        let signature = key.map(|k| Signature {
            public_key: public_key_text(&k.verifying_key()),
            signature: base64::engine::general_purpose::STANDARD.encode(k.sign(&signed_message(name, &v, &sha256)).to_bytes()),
        });
        let manifest = Manifest {
            name: name.into(),
            version: v.clone(),
            sha256: sha256.clone(),
            size: component.len() as u64,
            world: world.into(),
            package_version: package_version.into(),
            description: description.into(),
            author: author.into(),
            published_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            signature,
        };
        if self.objects.get(&manifest_key(name, &v))?.is_some() {
            return Err(self.already(name, &v));
        }
        // Content-addressed: a concurrent publisher of the same bytes writes the same object.
        self.objects.put(&blob_key(&sha256), component)?;
        if !self.objects.put_new(&manifest_key(name, &v), &serde_json::to_vec_pretty(&manifest)?)? {
            return Err(self.already(name, &v));
        }
        Ok(manifest)
    }

    fn already(&self, name: &str, v: &str) -> anyhow::Error {
        let sha = self.manifest(name, v).ok().map_or_else(String::new, |m| format!(" (sha256 {})", &m.sha256[..12.min(m.sha256.len())]));
        anyhow::anyhow!(
            "{name}@{v} is already published in {}{sha}; published versions are immutable — publish a new version",
            self.objects.location()
        )
    }

    /// The manifest of `name@version`.
    pub fn manifest(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        let data = self
            .objects
            .get(&manifest_key(name, version))?
            .with_context(|| format!("{name}@{version} is not published in {}", self.objects.location()))?;
        let m: Manifest = serde_json::from_slice(&data)
            .with_context(|| format!("{name}@{version}: its manifest in {} is garbled", self.objects.location()))?;
        if m.name != name || m.version != version {
            anyhow::bail!(
                "{name}@{version}: the manifest in {} names {}@{} instead; refusing it",
                self.objects.location(),
                m.name,
                m.version
            );
        }
        Ok(m)
    }

    /// Every version of `name`, oldest first.
    pub fn versions(&self, name: &str) -> anyhow::Result<Vec<(semver::Version, bool)>> {
        check_name(name)?;
        let mut out = Vec::new();
        let entries = self.objects.list(&format!("plugins/{name}"))?;
        for e in &entries {
            let Some(rest) = e.key.strip_prefix(&format!("plugins/{name}/")) else { continue };
            let Some(v) = rest.strip_suffix("/manifest.json") else { continue };
            let Ok(version) = semver::Version::parse(v) else { continue };
            let yanked = entries.iter().any(|y| y.key == yank_key(name, v));
            out.push((version, yanked));
        }
        out.sort();
        Ok(out)
    }

    /// Every published name (`team/x`), sorted.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for team in self.objects.list_dirs("plugins")? {
            for x in self.objects.list_dirs(&format!("plugins/{team}"))? {
                out.push(format!("{team}/{x}"));
            }
        }
        Ok(out)
    }

    /// The newest version `r` admits: yanked versions only when pinned exactly. Returns the
    /// manifest and whether it is yanked.
    pub fn resolve(&self, r: &PluginRef) -> anyhow::Result<(Manifest, bool)> {
        let versions = self.versions(&r.name)?;
        if versions.is_empty() {
            anyhow::bail!("plugin {} is not published in {}", r.name, self.objects.location());
        }
        let exact = r.exact();
        let pick = versions.iter().rev().find(|(v, yanked)| r.req.matches(v) && (!yanked || exact.as_ref() == Some(v)));
        let Some((v, yanked)) = pick else {
            let list: Vec<String> = versions.iter().map(|(v, y)| if *y { format!("{v} (yanked)") } else { v.to_string() }).collect();
            anyhow::bail!(
                "no version of {} matches `{}` in {} (published: {})",
                r.name,
                r.req_text,
                self.objects.location(),
                list.join(", ")
            );
        };
        Ok((self.manifest(&r.name, &v.to_string())?, *yanked))
    }

    /// The component of `m`, checked: size and sha256 against the manifest, the signature
    /// (when present), and a trusted signer when `trusted` is not empty. `cache` keeps
    /// verified components by hash.
    pub fn fetch(&self, m: &Manifest, trusted: &[String], cache: Option<&Path>) -> anyhow::Result<Vec<u8>> {
        let what = format!("plugin {}@{}", m.name, m.version);
        verify_signature(m, trusted).with_context(|| format!("{what} from {} refused", self.objects.location()))?;
        let cached = cache.map(|c| c.join(cache_file_name(m)));
        if let Some(p) = &cached
            && let Ok(data) = std::fs::read(p)
            && hex::encode(sha2::Sha256::digest(&data)) == m.sha256
        {
            return Ok(data);
        }
        let data = self
            .objects
            .get(&blob_key(&m.sha256))?
            .with_context(|| format!("{what}: its component is missing from {}", self.objects.location()))?;
        let got = hex::encode(sha2::Sha256::digest(&data));
        if got != m.sha256 || data.len() as u64 != m.size {
            anyhow::bail!(
                "{what} from {} refused: the component's sha256 is {got} ({} bytes) but the manifest says {} ({} bytes) — it was changed after publishing",
                self.objects.location(),
                data.len(),
                m.sha256,
                m.size
            );
        }
        if let Some(p) = &cached {
            crate::store::write_atomically(p, &data)?;
        }
        Ok(data)
    }

    /// Marks `name@version` yanked (or, with `undo`, not).
    pub fn yank(&self, name: &str, version: &semver::Version, undo: bool) -> anyhow::Result<()> {
        let v = version.to_string();
        self.manifest(name, &v)?;
        if undo {
            self.objects.delete(&yank_key(name, &v))
        } else {
            let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            self.objects.put(&yank_key(name, &v), format!("{{\"yanked_unix\": {at}}}\n").as_bytes())
        }
    }
}

/// Checks `m`'s signature: a present one must verify; with `trusted` keys, one must be
/// present and by a trusted key.
pub fn verify_signature(m: &Manifest, trusted: &[String]) -> anyhow::Result<()> {
    match &m.signature {
        None if trusted.is_empty() => Ok(()),
        None => anyhow::bail!("it is not signed, and trusted keys are configured"),
        Some(s) => {
            let key = parse_public_key(&s.public_key).context("its signature names a bad key")?;
            let sig = base64::engine::general_purpose::STANDARD
                .decode(&s.signature)
                .ok()
                .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
                .context("its signature is garbled")?;
            key.verify(&signed_message(&m.name, &m.version, &m.sha256), &sig)
                .map_err(|_| anyhow::anyhow!("its signature does not verify against key {} (bad signature)", s.public_key))?;
            if !trusted.is_empty() {
                let keys: Vec<ed25519_dalek::VerifyingKey> = trusted.iter().map(|t| parse_public_key(t)).collect::<anyhow::Result<_>>()?;
                if !keys.contains(&key) {
                    anyhow::bail!("it is signed by {}, which is not among the trusted keys", s.public_key);
                }
            }
            Ok(())
        }
    }
}

/// Where pulled components are kept: `$PADDOCK_REGISTRY_CACHE`, else the user's cache.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PADDOCK_REGISTRY_CACHE") {
        return Some(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "paddock").map(|d| d.cache_dir().join("registry"))
}

/// A plugin reference resolved and fetched: its local file and the exact reference.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The verified component in the cache.
    pub path: PathBuf,
    /// `registry:team/x@=1.2.3`.
    pub pinned: String,
    /// The manifest.
    pub manifest: Manifest,
    /// Whether the version is yanked.
    pub yanked: bool,
}

/// A verified component's file in the cache: `<x>-<sha256>.wasm` for `team/x` (a plugin
/// is named by its file's stem without the hash, so logs and `plugins.lock` say `x`).
fn cache_file_name(m: &Manifest) -> String {
    let short = m.name.rsplit('/').next().unwrap_or(&m.name);
    format!("{short}-{}.wasm", m.sha256)
}

/// Resolves and fetches `registry:team/x@REQ` into the cache.
pub fn pull_ref(reference: &str, section: &RegistrySection, s3: &S3Settings) -> anyhow::Result<Resolved> {
    let r = PluginRef::parse(reference)?;
    let registry = Registry::open(section.location.as_deref(), s3)?;
    let (manifest, yanked) = registry.resolve(&r)?;
    let cache = cache_dir().context("no cache directory for pulled plugins (set PADDOCK_REGISTRY_CACHE)")?;
    registry.fetch(&manifest, &section.trusted_keys, Some(&cache))?;
    Ok(Resolved {
        path: cache.join(cache_file_name(&manifest)),
        pinned: format!("{REF_PREFIX}{}@={}", manifest.name, manifest.version),
        manifest,
        yanked,
    })
}

/// A config with its registry references resolved: the one to run and the one to record.
#[derive(Clone, Debug)]
pub struct ResolvedConfig {
    /// The config to run: each reference a file in the local cache (`sources` filled).
    pub run: RunConfig,
    /// The config to record: each reference pinned to its exact version (`=x.y.z`).
    pub record: RunConfig,
    /// A warning per yanked version used.
    pub warnings: Vec<String>,
}

/// Resolves `registry:team/x@REQ` plugin references: each is fetched (verified) into
/// the local cache.
pub fn resolve_config(config: &RunConfig) -> anyhow::Result<ResolvedConfig> {
    let (mut run, mut record, mut warnings) = (config.clone(), config.clone(), Vec::new());
    let mut sources = std::collections::BTreeMap::new();
    // The same slots of two copies: the one to run gets the cached file, the one to
    // record the exact reference.
    for ((role, to_run), (_, to_record)) in run.plugin_paths().into_iter().zip(record.plugin_paths()) {
        if !crate::config::is_registry_ref(to_run) {
            continue;
        }
        let text = to_run.to_string_lossy().into_owned();
        let r = pull_ref(&text, &config.registry, &config.s3).map_err(|e| e.context(format!("key `{role}.plugin` = \"{text}\"")))?;
        if r.yanked {
            warnings.push(format!("{role} plugin {} is yanked; it is used because the config pins it exactly", r.pinned));
        }
        sources.insert(r.path.clone(), format!("{} (sha256 {})", r.pinned, r.manifest.sha256));
        *to_run = r.path;
        *to_record = PathBuf::from(r.pinned);
    }
    run.sources = sources;
    Ok(ResolvedConfig { run, record, warnings })
}

#[cfg(test)]
mod tests;
