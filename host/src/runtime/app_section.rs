//! A plugin's `paddock:app` custom section: the source files of a plugin that runs on one
//! of Paddock's language runtimes (`plugins/python/sdk/paddock_runtime.py`, `plugins/js/sdk/paddock_runtime.js`).
//!
//! Such a component is the runtime (an interpreter and a loader, the same bytes for every
//! plugin of a world) with the project's files appended as this section. The host compiles
//! the component *without* the section, so every version of every plugin on one runtime
//! shares one compiled artifact, and hands the section back to each instance through
//! `paddock:runtime/app.source` (`wit/runtime/runtime.wit`), which the loader calls on its
//! first call. The format (`PDKAPP1`): the 8 bytes
//! `PDKAPP1\n`, then per file a little-endian u32 path length, the path (UTF-8,
//! `/`-separated), a little-endian u32 length and the bytes.

use std::ops::Range;

/// The interface through which a plugin reads the section.
pub const INTERFACE: &str = "paddock:runtime/app@0.1.0";
/// The custom section's name.
pub const SECTION: &str = "paddock:app";
/// The section's first bytes.
pub const MAGIC: &[u8] = b"PDKAPP1\n";

/// A top-level section: (id, the whole section's byte range, its content's byte range).
type Section = (u8, Range<usize>, Range<usize>);

/// The top-level sections of a component or module; `None` when the bytes are not laid out
/// as sections.
fn sections(bytes: &[u8]) -> Option<Vec<Section>> {
    let mut out = Vec::new();
    let mut at = 8; // magic and version/layer
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let (size, n) = leb_u32(bytes.get(at..)?)?;
        at += n;
        let end = at.checked_add(size as usize).filter(|&e| e <= bytes.len())?;
        out.push((id, start..end, at..end));
        at = end;
    }
    Some(out)
}

fn leb_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().take(5).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(v).ok().map(|v| (v, i + 1));
        }
    }
    None
}

fn leb_encode(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A component split into its code (every byte but the `paddock:app` sections) and the
/// content of its (last) `paddock:app` section, if it has one.
pub struct Split {
    /// The component without its `paddock:app` sections (what is compiled).
    pub code: Vec<u8>,
    /// The section's content (`PDKAPP1` …).
    pub app: Option<Vec<u8>>,
}

/// Splits `bytes` (a component) at its top-level `paddock:app` sections. Bytes that are not
/// laid out as sections come back whole, for the compiler to name what is wrong.
pub fn split(bytes: &[u8]) -> Split {
    let Some(secs) = sections(bytes) else { return Split { code: bytes.to_vec(), app: None } };
    let is_app = |content: &Range<usize>| {
        let c = &bytes[content.clone()];
        leb_u32(c).is_some_and(|(n, k)| c.get(k..k + n as usize) == Some(SECTION.as_bytes()))
    };
    let apps: Vec<_> = secs.iter().filter(|(id, _, content)| *id == 0 && is_app(content)).collect();
    let Some(last) = apps.last() else { return Split { code: bytes.to_vec(), app: None } };
    let c = &bytes[last.2.clone()];
    let (n, k) = leb_u32(c).expect("checked above");
    let app = c[k + n as usize..].to_vec();
    let mut code = bytes[..8].to_vec();
    for (id, whole, content) in &secs {
        if !(*id == 0 && is_app(content)) {
            code.extend_from_slice(&bytes[whole.clone()]);
        }
    }
    Split { code, app: Some(app) }
}

/// Builds the content of a `paddock:app` section from (path, bytes) files.
pub fn encode(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (path, data) in files {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// The files of a `paddock:app` section's content, or why it cannot be read.
pub fn decode(content: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut rest = content.strip_prefix(MAGIC).ok_or("it does not start with PDKAPP1")?;
    let mut files = Vec::new();
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, String> {
        let n = rest.get(..4).ok_or("it ends inside a length")?;
        let n = u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize;
        let data = rest.get(4..4 + n).ok_or("it ends inside a file")?.to_vec();
        *rest = &rest[4 + n..];
        Ok(data)
    };
    while !rest.is_empty() {
        let path = String::from_utf8(take(&mut rest)?).map_err(|_| "a path is not UTF-8")?;
        let data = take(&mut rest)?;
        files.push((path, data));
    }
    Ok(files)
}

/// `runtime` (a component, without a `paddock:app` section) with `content` appended as its
/// `paddock:app` section.
pub fn append(runtime: &[u8], content: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(content.len() + SECTION.len() + 8);
    leb_encode(SECTION.len(), &mut payload);
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(content);
    let mut out = Vec::with_capacity(runtime.len() + payload.len() + 8);
    out.extend_from_slice(runtime);
    out.push(0);
    leb_encode(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal component: the preamble and one custom section.
    fn component() -> Vec<u8> {
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        c.extend_from_slice(&[0, 5, 4, b'n', b'a', b'm', b'e']);
        c
    }

    #[test]
    fn an_appended_section_splits_off_and_its_files_read_back() {
        let files = vec![("app.py".to_string(), b"x = 1\n".to_vec()), ("pkg/__init__.py".to_string(), Vec::new())];
        let content = encode(&files);
        let base = component();
        let one = append(&base, &content);
        let s = split(&one);
        assert_eq!(s.code, base, "the code is the runtime, byte for byte");
        assert_eq!(decode(&s.app.expect("app")).expect("decode"), files);
        // A second, larger version: the same code.
        let two = append(&base, &encode(&[("app.py".to_string(), vec![b'#'; 300])]));
        assert_eq!(split(&two).code, base);
        assert!(split(&base).app.is_none());
        assert!(decode(b"PDKAPP1\n\x05\0\0\0ab").is_err(), "a truncated section is refused");
        assert!(decode(b"nope").is_err());
    }
}
