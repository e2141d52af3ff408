//! The import directions ARCHITECTURE.md writes down, checked: each module of the host names
//! only modules below it in [`ORDER`] (`crate::x` outside comments), and the contract's
//! generated records (`crate::runtime::bindings`) anywhere. Within the layers that orchestrate
//! (`cli/`, `exp/`, `run/`, and the formats), no two files import each other; the viewers
//! (the monitor, `exp status`) stand on the formats and the store alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// ARCHITECTURE.md's list, top to bottom.
const ORDER: &[&str] = &[
    "cli", "exp", "run", "registry", "config", "envset", "runtime", "learner", "physics", "monitor", "format", "store", "device", "log",
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

/// Every source file outside tests, by module path (`exp::worker::poll`), with its code
/// (comments and `#[cfg(test)] mod tests` cut).
fn modules() -> BTreeMap<String, (PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut out = BTreeMap::new();
    for file in all {
        let rel = file.strip_prefix(&src).expect("under src").to_path_buf();
        let name = rel.to_string_lossy().replace('\\', "/");
        if name.ends_with("tests.rs") || name == "main.rs" || name == "lib.rs" {
            continue;
        }
        let stem = name.trim_end_matches(".rs").trim_end_matches("/mod");
        let text = std::fs::read_to_string(&file).expect("read");
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        out.insert(stem.replace('/', "::"), (rel, code));
    }
    out
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let (mut depth, mut part, mut parts) = (0, String::new(), Vec::new());
    for ch in tree.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut part));
                continue;
            }
            _ => {}
        }
        part.push(ch);
    }
    parts.push(part);
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if let Some((head, rest)) = p.split_once('{') {
            let mut pre = prefix.to_vec();
            pre.extend(head.split("::").map(str::trim).filter(|x| !x.is_empty()).map(String::from));
            expand(&rest[..rest.rfind('}').unwrap_or(rest.len())], &pre, out);
        } else {
            let mut path = prefix.to_vec();
            path.extend(p.split(" as ").next().unwrap_or("").split("::").map(str::trim).filter(|x| !x.is_empty()).map(String::from));
            out.push(path);
        }
    }
}

/// The path written after `crate::`, `super::` or `self::` at `rest`: identifiers joined by
/// `::`, ending in an identifier or one `{...}` group.
fn path_at(rest: &str) -> String {
    let (mut end, mut depth) = (0, 0);
    for (i, ch) in rest.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    end = i + 1;
                    break;
                }
            }
            c if depth > 0 || c.is_ascii_alphanumeric() || c == '_' || c == ':' => {}
            _ => break,
        }
        end = i + ch.len_utf8();
    }
    rest[..end].trim_end_matches(':').to_string()
}

/// Which modules each module names (its own and its ancestors' names aside).
fn imports(mods: &BTreeMap<String, (PathBuf, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = BTreeMap::new();
    for (me, (rel, code)) in mods {
        let parts: Vec<String> = me.split("::").map(String::from).collect();
        // A file with children (`x/mod.rs`, or `x.rs` beside `x/`) is their `super`.
        let has_children = rel.ends_with("mod.rs") || src.join(rel.with_extension("")).is_dir();
        let mut named = BTreeSet::new();
        let mut resolve = |path: Vec<String>| {
            for k in (1..=path.len()).rev() {
                let m = path[..k].join("::");
                if mods.contains_key(&m) {
                    named.insert(m);
                    return;
                }
            }
        };
        for (kind, base) in [("crate::", Vec::new()), ("super::", parts[..parts.len() - 1].to_vec()), ("self::", parts.clone())] {
            for (at, _) in code.match_indices(kind) {
                if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut paths = Vec::new();
                expand(&path_at(&code[at + kind.len()..]), &base, &mut paths);
                for p in paths {
                    resolve(p);
                }
            }
        }
        if has_children {
            for child in mods.keys().filter(|k| k.strip_prefix(&format!("{me}::")).is_some_and(|r| !r.contains("::"))) {
                let name = child.rsplit("::").next().unwrap_or("");
                let used = code
                    .match_indices(&format!("{name}::"))
                    .any(|(at, _)| !code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
                if used {
                    named.insert(child.clone());
                }
            }
        }
        named.remove(me);
        edges.insert(me.clone(), named);
    }
    edges
}

#[test]
fn no_two_files_of_the_orchestrating_layers_import_each_other() {
    let mods = modules();
    let edges = imports(&mods);
    let watched = |m: &str| ["cli", "exp", "run", "format"].contains(&m.split("::").next().unwrap_or(""));
    let mut both = Vec::new();
    for (a, named) in &edges {
        for b in named {
            if a < b && watched(a) && edges.get(b).is_some_and(|n| n.contains(a)) {
                both.push(format!("{} <-> {}", mods[a].0.display(), mods[b].0.display()));
            }
        }
    }
    assert!(both.is_empty(), "files that import each other:\n{}", both.join("\n"));
    // The scan sees imports at all: a known one.
    assert!(edges["exp::worker::poll"].contains("exp::worker::trial_run"), "{:?}", edges["exp::worker::poll"]);
}

#[test]
fn the_viewers_stand_on_the_formats_and_the_store_alone() {
    let mods = modules();
    let edges = imports(&mods);
    // The monitor, and what `exp status` reads and prints.
    let viewers: Vec<&String> =
        mods.keys().filter(|m| m.starts_with("monitor") || ["exp::report", "format::index"].contains(&m.as_str())).collect();
    let heavy = ["runtime", "learner", "physics", "envset", "config", "registry", "run"];
    let mut wrong = Vec::new();
    for v in viewers {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![v.clone()]);
        let mut via = BTreeMap::new();
        while let Some(m) = todo.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    via.insert(n.clone(), m.clone());
                    todo.push(n.clone());
                }
            }
        }
        for m in seen.iter().filter(|m| heavy.contains(&m.split("::").next().unwrap_or(""))) {
            wrong.push(format!("{v} reaches {m} (through {})", via[m]));
        }
    }
    assert!(wrong.is_empty(), "viewers that pull in the trainer:\n{}", wrong.join("\n"));
}

#[test]
fn one_place_mirrors_a_run_and_the_cli_writes_no_store() {
    let mods = modules();
    let sites: Vec<&String> =
        mods.iter().filter(|(m, (_, code))| m.as_str() != "run::mirror" && code.contains("Mirror::start(")).map(|(m, _)| m).collect();
    assert_eq!(sites, ["run::lifecycle"], "modules that start a run's mirror");
    for (m, (rel, code)) in mods.iter().filter(|(m, _)| m.starts_with("cli")) {
        for word in ["put_new(", "put_if_match(", "Mirror", "store::s3", "S3Store"] {
            assert!(!code.contains(word), "{m} ({}) uses `{word}`: the CLI only talks", rel.display());
        }
    }
}
