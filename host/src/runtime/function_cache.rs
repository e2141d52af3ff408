//! Cranelift's per-function compile cache, on disk: a component whose code is mostly the
//! same as one compiled before (a Python or JavaScript plugin: the interpreter is
//! byte-identical between versions, only the app's data changed) compiles only the
//! functions that changed. Wasmtime asks [`FunctionCache`] for each function by a key that
//! hashes the function's body and the compiler's settings, and hands it each newly compiled
//! function.
//!
//! On disk: `<dir>/<first two hex digits>/<key in hex>`, each entry a small header (magic,
//! the sha256 of the payload) and the payload. Entries are written to a temporary file and
//! renamed into place, so two processes sharing the folder never see half an entry, and an
//! entry whose checksum does not match (truncated, corrupted) is a miss: the function is
//! compiled afresh and the entry rewritten. The cache is an optimisation: a folder that
//! cannot be read or written (missing permissions, a full disk) is named in one warning and
//! compilation goes on without it. Its size is bounded ([`FunctionCache::trim`]: the oldest
//! entries go first).

use crate::log::{Level, RunLog};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The first bytes of every entry (the format's version is its last byte).
const MAGIC: &[u8; 8] = b"PDKFN\x00\x00\x01";
/// Header length: magic + sha256 of the payload.
const HEADER: usize = 8 + 32;

/// Hits, misses and damaged entries since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Functions found in the cache.
    pub hits: u64,
    /// Functions compiled because the cache had no (valid) entry.
    pub misses: u64,
    /// Entries found but refused (wrong checksum or header).
    pub corrupt: u64,
}

/// The on-disk function cache (see the module's docs).
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    log: RunLog,
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    warned_read: AtomicBool,
    warned_write: AtomicBool,
    warned_corrupt: AtomicBool,
}

impl FunctionCache {
    /// A cache in `dir` (created when first written), warnings to `log`.
    pub fn new(dir: PathBuf, log: RunLog) -> Self {
        FunctionCache {
            dir,
            log,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            warned_read: AtomicBool::new(false),
            warned_write: AtomicBool::new(false),
            warned_corrupt: AtomicBool::new(false),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hits and misses so far.
    pub fn counts(&self) -> Counts {
        Counts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(key);
        let fan = name.get(..2).unwrap_or("00").to_string();
        self.dir.join(fan).join(name)
    }

    fn warn_once(&self, flag: &AtomicBool, message: String) {
        if !flag.swap(true, Ordering::Relaxed) {
            self.log.line(Level::Warn, "host", &message);
        }
    }

    /// Deletes the oldest entries (by modification time) until the folder holds at most
    /// `max_bytes`, going down to three quarters of it so that trimming is rare. Returns the
    /// bytes removed. Entries another process removes meanwhile are skipped.
    pub fn trim(&self, max_bytes: u64) -> std::io::Result<u64> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        let fans = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for fan in fans.filter_map(Result::ok) {
            let Ok(files) = std::fs::read_dir(fan.path()) else { continue };
            for f in files.filter_map(Result::ok) {
                let Ok(meta) = f.metadata() else { continue };
                if meta.is_file() {
                    total += meta.len();
                    entries.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len(), f.path()));
                }
            }
        }
        if total <= max_bytes {
            return Ok(0);
        }
        entries.sort();
        let goal = max_bytes / 4 * 3;
        let mut removed = 0;
        for (_, len, path) in entries {
            if total - removed <= goal {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                removed += len;
            }
        }
        Ok(removed)
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let path = self.path(key);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.warn_once(
                        &self.warned_read,
                        format!("the compile cache {} cannot be read ({e}); compiling without it", self.dir.display()),
                    );
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let valid = data.len() >= HEADER && &data[..8] == MAGIC && Sha256::digest(&data[HEADER..])[..] == data[8..HEADER];
        if !valid {
            self.corrupt.fetch_add(1, Ordering::Relaxed);
            self.misses.fetch_add(1, Ordering::Relaxed);
            self.warn_once(
                &self.warned_corrupt,
                format!(
                    "the compile cache {} holds a damaged entry ({}, {} bytes); those functions are compiled afresh and rewritten",
                    self.dir.display(),
                    path.display(),
                    data.len()
                ),
            );
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(data[HEADER..].to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let path = self.path(key);
        // Not `store::write_atomically`: that syncs each file to disk, and a plugin's first
        // compile writes some 20,000 entries; a lost entry is only a miss next time.
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            std::io::Write::write_all(&mut tmp, MAGIC)?;
            std::io::Write::write_all(&mut tmp, &Sha256::digest(&value))?;
            std::io::Write::write_all(&mut tmp, &value)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        match write() {
            Ok(()) => true,
            Err(e) => {
                self.warn_once(
                    &self.warned_write,
                    format!("the compile cache {} cannot be written ({e}); compiling without it", self.dir.display()),
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn entries_round_trip_and_a_damaged_one_is_a_miss_said_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_file = dir.path().join("log.txt");
        let log = RunLog::new(Box::new(std::fs::File::create(&log_file).expect("log")), Level::Info);
        let cache = FunctionCache::new(dir.path().join("fns"), log);
        let key = [7u8; 32];
        assert!(cache.get(&key).is_none());
        assert!(cache.insert(&key, b"compiled code".to_vec()));
        assert_eq!(cache.get(&key).as_deref(), Some(&b"compiled code"[..]));
        // Truncate it: a miss, one warning naming the folder.
        let path = cache.path(&key);
        let bytes = std::fs::read(&path).expect("entry");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        assert!(cache.get(&key).is_none());
        assert!(cache.get(&key).is_none());
        let text = std::fs::read_to_string(&log_file).expect("log");
        assert_eq!(text.matches("holds a damaged entry").count(), 1, "{text}");
        assert!(text.contains(&dir.path().join("fns").display().to_string()), "{text}");
        assert_eq!(cache.counts(), Counts { hits: 1, misses: 3, corrupt: 2 });
        // Rewritten, it is good again.
        assert!(cache.insert(&key, b"compiled code".to_vec()));
        assert!(cache.get(&key).is_some());
    }

    #[test]
    fn an_unwritable_folder_is_said_once_and_inserts_fail_softly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a folder").expect("file");
        let log_file = dir.path().join("log.txt");
        let log = RunLog::new(Box::new(std::fs::File::create(&log_file).expect("log")), Level::Info);
        let cache = FunctionCache::new(blocker.join("fns"), log);
        assert!(!cache.insert(&[1u8; 32], vec![1, 2, 3]));
        assert!(!cache.insert(&[2u8; 32], vec![1, 2, 3]));
        let text = std::fs::read_to_string(&log_file).expect("log");
        assert_eq!(text.matches("cannot be written").count(), 1, "{text}");
    }

    #[test]
    fn trim_removes_the_oldest_entries_down_to_three_quarters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FunctionCache::new(dir.path().to_path_buf(), RunLog::discard());
        for i in 0..8u8 {
            assert!(cache.insert(&[i; 32], vec![0; 1000 - HEADER]));
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(100 - u64::from(i));
            std::fs::File::options().write(true).open(cache.path(&[i; 32])).expect("open").set_modified(t).expect("mtime");
        }
        assert_eq!(cache.trim(10_000).expect("trim"), 0, "under the bound: nothing goes");
        assert_eq!(cache.trim(4_000).expect("trim"), 5_000, "down to 3,000 bytes");
        let left: Vec<bool> = (0..8u8).map(|i| cache.path(&[i; 32]).exists()).collect();
        assert_eq!(left, [false, false, false, false, false, true, true, true], "the oldest went first");
    }
}
