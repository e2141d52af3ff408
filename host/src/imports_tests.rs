//! The import directions ARCHITECTURE.md writes down, checked: each module of the host names
//! only modules below it in [`ORDER`] (`crate::x` outside comments), and the contract's
//! generated records (`crate::runtime::bindings`) anywhere.

use std::path::{Path, PathBuf};

/// ARCHITECTURE.md's list, top to bottom.
const ORDER: &[&str] = &[
    "cli", "monitor", "exp", "run", "registry", "config", "envset", "runtime", "learner", "physics", "format", "store", "device", "log",
    "seed", "spaces",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").map(|e| e.expect("entry").path()) {
        if e.is_dir() {
            files(&e, out);
        } else if e.extension().is_some_and(|x| x == "rs") {
            out.push(e);
        }
    }
}

#[test]
fn modules_import_only_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        let Some(rank) = ORDER.iter().position(|m| *m == module) else { continue };
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let used: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if rest[used.len()..].starts_with("::bindings") && used == "runtime" {
                    continue;
                }
                match ORDER.iter().position(|m| *m == used) {
                    Some(r) if r > rank || used == module => {}
                    Some(_) => wrong.push(format!("{}:{}: `{module}` imports `{used}`, which is above it", rel.display(), n + 1)),
                    None => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against ARCHITECTURE.md's directions:\n{}", wrong.join("\n"));
    assert!(all.len() > 50, "{} files", all.len());
}
