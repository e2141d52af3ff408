//! TensorBoard event files (`events.out.tfevents.*`), written here rather than through a
//! crate: the one we used wrote from a thread that panicked on any I/O error (a full disk
//! killed the run with a panic), where this returns the error to the run, which names the
//! disk.
//!
//! The format: TFRecords — each record is its length (u64, little-endian), the masked
//! CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data — each holding a
//! `tensorflow.Event` protobuf: a first one with `file_version = "brain.Event:2"`, then one
//! per scalar (`wall_time`, `step`, `summary { value { tag, simple_value } }`).

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An open event file.
pub(super) struct EventWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new event file in `dir` (named as TensorBoard's writers name theirs).
    pub(super) fn create(dir: &Path) -> anyhow::Result<Self> {
        let now = wall_time();
        let name = format!(
            "{}{:010}.{}.{}.0",
            crate::format::run_dir::TENSORBOARD_PREFIX,
            now as u64,
            crate::format::status::this_host(),
            std::process::id()
        );
        let path = dir.join(name);
        let file = std::fs::File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
        let mut w = EventWriter { file: std::io::BufWriter::new(file), path };
        let mut event = Vec::new();
        field_f64(&mut event, 1, now);
        field_bytes(&mut event, 3, b"brain.Event:2");
        w.record(&event)?;
        Ok(w)
    }

    /// Appends one scalar point.
    pub(super) fn scalar(&mut self, tag: &str, value: f32, step: u64) -> anyhow::Result<()> {
        let mut v = Vec::new();
        field_bytes(&mut v, 1, tag.as_bytes());
        key(&mut v, 2, 5);
        v.extend_from_slice(&value.to_le_bytes());
        let mut summary = Vec::new();
        field_bytes(&mut summary, 1, &v);
        let mut event = Vec::new();
        field_f64(&mut event, 1, wall_time());
        key(&mut event, 2, 0);
        varint(&mut event, step);
        field_bytes(&mut event, 5, &summary);
        self.record(&event)
    }

    /// Writes what is buffered to the file.
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        self.file.flush().with_context(|| format!("failed to write {}", self.path.display()))
    }

    fn record(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut out = Vec::with_capacity(data.len() + 16);
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&out).with_context(|| format!("failed to write {}", self.path.display()))
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A protobuf field key: field number and wire type.
fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_f64(out: &mut Vec<u8>, field: u64, v: f64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn field_bytes(out: &mut Vec<u8>, field: u64, v: &[u8]) {
    key(out, field, 2);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// CRC-32C (Castagnoli), bitwise: event files are small and written once per metric line.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// TFRecord's masked CRC.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_records_match_the_format() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283, "the standard check value");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = EventWriter::create(dir.path()).expect("create");
        w.scalar("train/return", 12.5, 300).expect("scalar");
        w.flush().expect("flush");
        let bytes = std::fs::read(&w.path).expect("read");
        let mut at = 0;
        let mut n = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().expect("8")) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")), masked_crc(len_bytes));
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().expect("4")), masked_crc(data));
            at += 16 + len;
            n += 1;
        }
        assert_eq!((at, n), (bytes.len(), 2));
        // The scalar's event holds its tag, value and step.
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("brain.Event:2") && text.contains("train/return"));
        assert!(bytes.windows(4).any(|w| w == 12.5f32.to_le_bytes()));
    }
}
