//! The module layout that `src/lib.rs` states holds: every top-level module
//! is listed there, and each uses only modules listed after it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules of the "# Layout" section of lib.rs, top first.
fn stated_order(lib: &str) -> Vec<String> {
    let section = lib
        .split("//! # Layout")
        .nth(1)
        .expect("lib.rs has a # Layout section");
    section
        .lines()
        .skip(1) // the rest of the heading's line
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// The `pub mod` declarations of lib.rs.
fn declared(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches([';', ' ', '{']).to_owned())
        .collect()
}

/// The top-level module each `.rs` file under `src/` belongs to.
fn files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src()).expect("under src");
                let first = rel.components().next().expect("a component");
                let name = first.as_os_str().to_string_lossy();
                out.push((name.trim_end_matches(".rs").to_owned(), path));
            }
        }
    }
    out
}

/// The top-level modules a source file names through `crate::`, including
/// each item of a `crate::{a, b::c}` group. Comment lines are skipped.
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(ident(&item));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn every_module_is_listed_and_arrows_only_point_down() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let order = stated_order(&lib);
    let position: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(
        listed,
        declared(&lib),
        "lib.rs's layout must list exactly its modules"
    );

    let mut upward = Vec::new();
    for (module, path) in files() {
        let Some(&from) = position.get(module.as_str()) else {
            continue; // lib.rs and main.rs themselves
        };
        let text = std::fs::read_to_string(&path).expect("source");
        for used in uses(&text) {
            if used == module {
                continue;
            }
            match position.get(used.as_str()) {
                Some(&to) if to > from => {}
                Some(_) => upward.push(format!(
                    "{}: {module} uses {used}, which the layout lists above it",
                    path.display()
                )),
                None => upward.push(format!(
                    "{}: {module} uses crate::{used}, which the layout does not list",
                    path.display()
                )),
            }
        }
    }
    assert!(upward.is_empty(), "\n{}", upward.join("\n"));
}

#[test]
fn the_parser_reads_groups_and_paths() {
    let text = "use crate::{a::b, c, d::{e, f}};\nlet x = crate::g::h();\n// crate::z\n";
    let found: Vec<String> = uses(text).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g"]);
}
