//! Where runs and published plugins live: a directory on local disk or an S3 prefix
//! (`s3://bucket/prefix`, any S3-compatible server). Both are seen through [`Objects`], a
//! small blocking key/value interface with the one atomic operation the registry needs
//! ([`Objects::put_new`]: create a key only if it does not exist).
//!
//! - [`s3`]: the S3 side over `aws-sdk-s3` (the SDK's credential chain, region and endpoint
//!   conventions; its standard retry mode with backoff; multipart uploads for large files).
//!
//! What a run looks like in a store (mirroring, listing, fetching) belongs to the run
//! directory's format: [`crate::run::mirror`] and [`crate::run::runs`].

pub mod s3;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A store location as users write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on local disk.
    Local(PathBuf),
    /// `s3://bucket/prefix` (the prefix may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// Keys start with this, without a trailing `/` (may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parses `s3://bucket/prefix`, `file://path` or a plain path.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                anyhow::bail!("store `{s}` names no bucket (write s3://BUCKET/PREFIX)");
            }
            return Ok(Location::S3 { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() });
        }
        if s.contains("://") && !s.starts_with("file://") {
            anyhow::bail!("store `{s}`: only local paths, file:// and s3:// locations are supported");
        }
        Ok(Location::Local(PathBuf::from(s.strip_prefix("file://").unwrap_or(s))))
    }

    /// This location with `name` appended (a run inside a store).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::S3 { bucket, prefix } => Location::S3 { bucket: bucket.clone(), prefix: join_key(prefix, name) },
        }
    }

    /// Whether this is an S3 location.
    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// The last path segment (a run's name).
    pub fn name(&self) -> Option<String> {
        match self {
            Location::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::S3 { prefix, .. } => prefix.rsplit('/').next().filter(|s| !s.is_empty()).map(String::from),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `a/b` from `a` and `b`, either possibly empty.
pub fn join_key(a: &str, b: &str) -> String {
    match (a.trim_end_matches('/'), b.trim_start_matches('/')) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}/{b}"),
    }
}

/// `key/` — the prefix of every key below `key` — or `""` for the root.
pub fn dir_prefix(key: &str) -> String {
    match key.trim_end_matches('/') {
        "" => String::new(),
        k => format!("{k}/"),
    }
}

/// Store failures a caller must tell apart from an outage (which is worth waiting out):
/// each means the store will not come back by itself as it was.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist (deleted, never made, or another account's name).
    #[error("{0}: the bucket does not exist (was it deleted, or recreated under another account?)")]
    NoBucket(String),
    /// An object a conditional write expected is gone: deleted since it was read.
    #[error("{0} is gone: it was deleted since it was read (the store lost its state?)")]
    Vanished(String),
    /// The credentials were refused (HTTP 403: a wrong or expired key, no permission).
    #[error("{location}: credentials refused: {code} ({message}); {who}")]
    Denied {
        /// What was asked for.
        location: String,
        /// The service's error code (`AccessDenied`, `InvalidAccessKeyId`, `ExpiredToken`…).
        code: String,
        /// The service's message.
        message: String,
        /// Which credentials were used (profile, key id), as far as the environment tells.
        who: String,
    },
}

/// The [`StoreError`] behind `e`, if one is.
pub fn store_error(e: &anyhow::Error) -> Option<&StoreError> {
    e.chain().find_map(|c| c.downcast_ref::<StoreError>())
}

/// The credentials the AWS SDK would use, as far as the environment says (for messages
/// about refused credentials): the profile and the access key id, never the secret.
pub fn credentials_in_use() -> String {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    match std::env::var("AWS_ACCESS_KEY_ID") {
        Ok(id) if !id.is_empty() => format!("access key id {id} from AWS_ACCESS_KEY_ID (profile `{profile}` is not used)"),
        _ => format!("profile `{profile}` (or the instance role): check `aws sts get-caller-identity`"),
    }
}

/// A disk too full for what is to be written: the message names the path, what it needs
/// and what it has.
#[derive(Debug, thiserror::Error)]
#[error("the disk holding {path} is full: {what}{}, {:.1} MiB are free; free space there, or point PADDOCK_WORK_DIR at a larger disk", needed_mib.map_or(String::new(), |n| format!(" needs about {n:.1} MiB")), free_mib)]
pub struct DiskFull {
    /// Where it was to be written.
    pub path: PathBuf,
    /// What was to be written.
    pub what: String,
    /// MiB it needs (an estimate), when known.
    pub needed_mib: Option<f64>,
    /// MiB free there.
    pub free_mib: f64,
}

/// Bytes free to this user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a statvfs the call fills.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// [`DiskFull`] unless the file system holding `dir` has `needed` bytes free for `what`.
pub fn ensure_space(dir: &Path, needed: u64, what: &str) -> anyhow::Result<()> {
    match free_bytes(dir) {
        Some(free) if free < needed => Err(DiskFull {
            path: dir.to_path_buf(),
            what: what.to_string(),
            needed_mib: Some(needed as f64 / 1048576.0),
            free_mib: free as f64 / 1048576.0,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Whether `e` is a full disk: [`DiskFull`], or an I/O error that says so (ENOSPC, EDQUOT)
/// anywhere in its chain or text (libtorch's and plugins' errors arrive as text).
pub fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<DiskFull>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull || io.kind() == std::io::ErrorKind::QuotaExceeded)
    }) || format!("{e:#}").contains("No space left on device")
}

/// `e` as [`DiskFull`] (naming `dir`, `what` failed and the free space) when it is a full
/// disk, else as it is.
pub fn name_full_disk(e: anyhow::Error, dir: &Path, what: &str) -> anyhow::Error {
    if !is_disk_full(&e) || e.chain().any(|c| c.downcast_ref::<DiskFull>().is_some()) {
        return e;
    }
    let free = free_bytes(dir).unwrap_or(0);
    let full = DiskFull { path: dir.to_path_buf(), what: what.to_string(), needed_mib: None, free_mib: free as f64 / 1048576.0 };
    anyhow::Error::new(full).context(format!("{e:#}"))
}

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its key, relative to the store's root.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A blocking key/value view of a store. Keys are `/`-separated and relative to the
/// store's root. Errors name the location and the key.
pub trait Objects: Send + Sync {
    /// Where this store is (for messages).
    fn location(&self) -> Location;
    /// The object at `key`, or `None` when there is none.
    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes `key` whole (readers see the old or the new object, never a part; large
    /// objects go up in parts on S3).
    fn put(&self, key: &str, data: &[u8]) -> anyhow::Result<()>;
    /// Creates `key` only if no object has that key: `false` when one already did. Atomic
    /// against concurrent writers (S3 conditional put `If-None-Match: *`; a hard link
    /// locally).
    fn put_new(&self, key: &str, data: &[u8]) -> anyhow::Result<bool>;
    /// Every object whose key starts with `prefix/` (all depths), sorted by key.
    fn list(&self, prefix: &str) -> anyhow::Result<Vec<Entry>>;
    /// The names one level below `prefix/` that hold objects (like `ls`), sorted.
    fn list_dirs(&self, prefix: &str) -> anyhow::Result<Vec<String>>;
    /// Deletes `key` (no error when it is gone already).
    fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// The object at `key` with its version tag (S3: the ETag; locally: a version number),
    /// or `None` when there is none.
    fn get_tagged(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, String)>>;
    /// Writes `key` only if it is still at version `tag` (S3: `If-Match`), atomically
    /// against other writers: `Some(new tag)`, or `None` when another writer changed it
    /// since (HTTP 412). What fences a stale writer. An object deleted since it was read is
    /// not "another writer": that is the error [`StoreError::Vanished`].
    fn put_if_match(&self, key: &str, data: &[u8], tag: &str) -> anyhow::Result<Option<String>>;
    /// [`Objects::put_new`] that returns the new object's tag (`None`: it existed): the tag
    /// of what this call created, never that of a write that came after it (a claim that
    /// read its tag back could take a later writer's as its own and overwrite it).
    fn create_tagged(&self, key: &str, data: &[u8]) -> anyhow::Result<Option<String>>;
}

/// A local version file's name (sorted by version).
fn version_name(n: u64) -> String {
    format!("{n:012}")
}

/// The newest version in a local versions directory.
fn latest_version(dir: &Path) -> anyhow::Result<Option<u64>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok())).max()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("failed to list {}", dir.display()))),
    }
}

/// Settings for S3 stores beyond the SDK's own environment (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credentials): a run config's `[s3]` section.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct S3Settings {
    /// Endpoint URL of an S3-compatible server (else `AWS_ENDPOINT_URL`, else AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region (else the SDK's chain: `AWS_REGION`, profile; else `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); default: on when an endpoint is set
    /// (most S3-compatible servers want it), off for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Attempts per S3 request before an error is reported (the SDK backs off between
    /// them). Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// Opens a store.
pub fn open(location: &Location, s3: &S3Settings) -> anyhow::Result<Arc<dyn Objects>> {
    Ok(match location {
        Location::Local(root) => Arc::new(LocalObjects { root: root.clone() }),
        Location::S3 { bucket, prefix } => Arc::new(s3::S3Objects::connect(bucket, prefix, s3)?),
    })
}

/// A store in a local directory: each key a file.
#[derive(Debug)]
pub struct LocalObjects {
    /// The directory.
    pub root: PathBuf,
}

impl LocalObjects {
    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        if key.split('/').any(|s| s == ".." || s.is_empty() && !key.is_empty()) {
            anyhow::bail!("invalid key `{key}` in store {}", self.root.display());
        }
        Ok(self.root.join(key))
    }

    /// Where the versions of `key` written by `put_if_match` lie: `.tmp-versions-<name>/`
    /// beside it (a `.tmp-` name, so never listed as an object).
    fn versions_dir(&self, key: &str) -> anyhow::Result<PathBuf> {
        let path = self.path(key)?;
        let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Ok(path.with_file_name(format!(".tmp-versions-{name}")))
    }
}

/// `data` in a synced `.tmp-*` file beside `path` (its directory created); returns the
/// temporary file's path.
fn temp_beside(path: &Path, data: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut tmp =
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).with_context(|| format!("failed to write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, data)?;
    tmp.as_file().sync_all()?;
    let (_, p) = tmp.keep().context("failed to keep a temporary file")?;
    Ok(p)
}

/// Writes `path` whole (a temporary file beside it, renamed over it): readers see the old
/// content or the new, never a part. Creates the directory.
pub fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_beside(path, data)?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))
}

/// Every file under `dir` (all depths) as a `/`-separated path relative to it, with its
/// size, sorted; `.tmp-*` entries (writes in progress) are skipped. A missing `dir` has none.
pub fn walk(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to list {}", d.display()))),
        };
        for e in rd.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let p = e.path();
            if meta.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push((rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Objects for LocalObjects {
    fn location(&self) -> Location {
        Location::Local(self.root.clone())
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))),
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> anyhow::Result<()> {
        write_atomically(&self.path(key)?, data)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> anyhow::Result<bool> {
        let path = self.path(key)?;
        let tmp = temp_beside(&path, data)?;
        // A hard link fails if the name exists: whole content, at most one winner.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context(format!("failed to create {}", path.display()))),
        }
    }

    fn create_tagged(&self, key: &str, data: &[u8]) -> anyhow::Result<Option<String>> {
        // A created object is at version 0 until a conditional write moves it on.
        Ok(self.put_new(key, data)?.then(|| "0".to_string()))
    }

    fn get_tagged(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        let versions = self.versions_dir(key)?;
        if let Some(n) = latest_version(&versions)? {
            let path = versions.join(version_name(n));
            let data = std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
            return Ok(Some((data, n.to_string())));
        }
        Ok(self.get(key)?.map(|d| (d, "0".to_string())))
    }

    fn put_if_match(&self, key: &str, data: &[u8], tag: &str) -> anyhow::Result<Option<String>> {
        // Lock-free compare-and-swap: each version is a file created exclusively (a hard
        // link fails if the name exists), so of two writers at version N only one makes
        // N + 1, and a writer whose N is not the newest is refused. No lock a stopped
        // process could hold.
        let Ok(n) = tag.parse::<u64>() else { return Ok(None) };
        let path = self.path(key)?;
        let versions = self.versions_dir(key)?;
        if !path.exists() && latest_version(&versions)?.is_none() {
            return Err(StoreError::Vanished(format!("{}", path.display())).into());
        }
        std::fs::create_dir_all(&versions).with_context(|| format!("failed to create {}", versions.display()))?;
        if latest_version(&versions)?.unwrap_or(0) != n {
            return Ok(None);
        }
        let next = versions.join(version_name(n + 1));
        let tmp = temp_beside(&next, data)?;
        let linked = std::fs::hard_link(&tmp, &next);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to create {}", next.display()))),
        }
        // The plain file, for readers that do not ask for a version (it may lag a racing
        // later version for a moment; versioned readers never see that).
        write_atomically(&path, data)?;
        // Keep the last few versions.
        for old in n.saturating_sub(16)..n.saturating_sub(8) {
            let _ = std::fs::remove_file(versions.join(version_name(old)));
        }
        Ok(Some((n + 1).to_string()))
    }

    fn list(&self, prefix: &str) -> anyhow::Result<Vec<Entry>> {
        Ok(walk(&self.path(prefix)?)?.into_iter().map(|(rel, size)| Entry { key: join_key(prefix, &rel), size }).collect())
    }

    fn list_dirs(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let dir = self.path(prefix)?;
        let mut out: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to list {}", dir.display()))),
        };
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context(format!("failed to delete {}", path.display())))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("s3://b/runs/x/").expect("s3"), Location::S3 { bucket: "b".into(), prefix: "runs/x".into() });
        assert_eq!(Location::parse("s3://b").expect("s3"), Location::S3 { bucket: "b".into(), prefix: String::new() });
        assert_eq!(Location::parse("runs/").expect("local"), Location::Local("runs/".into()));
        assert_eq!(Location::parse("file:///tmp/r").expect("file"), Location::Local("/tmp/r".into()));
        assert!(format!("{:#}", Location::parse("s3:///x").expect_err("no bucket")).contains("names no bucket"));
        assert!(format!("{:#}", Location::parse("gs://b/x").expect_err("gcs")).contains("only local paths"));
        assert_eq!(Location::parse("s3://b/runs").expect("s3").join("r1").to_string(), "s3://b/runs/r1");
    }

    #[test]
    fn a_created_objects_tag_is_its_own_not_a_later_writers() {
        // A launch claims fleet.json by creating it; a cancel rewrites it before the launch
        // looks at its tag. The launch's tag must still be the one it created, so its next
        // conditional write is refused (it once read the cancel's tag back and overwrote it).
        let dir = tempfile::tempdir().expect("tempdir");
        let o = LocalObjects { root: dir.path().to_path_buf() };
        let mine = o.create_tagged("fleet.json", b"launching").expect("create").expect("new");
        let (_, seen) = o.get_tagged("fleet.json").expect("get").expect("there");
        o.put_if_match("fleet.json", b"deleted", &seen).expect("cancel").expect("the cancel writes");
        assert!(o.put_if_match("fleet.json", b"active", &mine).expect("launch").is_none(), "the launch is refused");
        assert_eq!(o.get("fleet.json").expect("get").as_deref(), Some(&b"deleted"[..]));
    }

    #[test]
    fn local_objects_round_trip_and_create_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = LocalObjects { root: dir.path().to_path_buf() };
        o.put("a/b/c.txt", b"1").expect("put");
        assert_eq!(o.get("a/b/c.txt").expect("get"), Some(b"1".to_vec()));
        assert_eq!(o.get("a/none").expect("get"), None);
        assert!(o.put_new("a/new", b"x").expect("new"));
        assert!(!o.put_new("a/new", b"y").expect("exists"));
        assert_eq!(o.get("a/new").expect("get"), Some(b"x".to_vec()));
        assert_eq!(o.list("a").expect("list").iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["a/b/c.txt", "a/new"]);
        assert_eq!(o.list_dirs("a").expect("dirs"), ["b"]);
        o.delete("a/new").expect("delete");
        o.delete("a/new").expect("delete twice");
        assert!(o.get("../x").is_err(), "keys cannot leave the store");
    }
}
