//! The library's module graph stays layered: which top-level module may
//! import which (the pipeline in `src/lib.rs`), read from the `crate::`
//! paths in the production code. A new import across layers fails here
//! with the file that made it, before it becomes a cycle.
//!
//! `cargo test -p lb-userspace --test module_layers -- --nocapture` prints
//! the graph.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Each module and what it may import. Leaves first; nothing imports
/// `daemon` except the operator's views of it (`top`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("error_text", &[]),
    ("atomic_file", &[]),
    ("log_format", &[]),
    ("defaults", &[]),
    ("config", &["error_text", "defaults"]),
    ("import", &["config", "error_text"]),
    ("exec", &["defaults", "error_text"]),
    ("dataplane", &["config", "error_text"]),
    (
        "vrrp",
        &["atomic_file", "config", "defaults", "exec", "error_text"],
    ),
    (
        "health",
        &["config", "dataplane", "defaults", "exec", "error_text"],
    ),
    (
        "ipvs",
        &[
            "atomic_file",
            "config",
            "dataplane",
            "defaults",
            "error_text",
        ],
    ),
    ("xdp", &["config", "dataplane", "defaults", "error_text"]),
    (
        "flowsync",
        &["config", "dataplane", "defaults", "error_text", "xdp"],
    ),
    (
        "daemon",
        &[
            "atomic_file",
            "config",
            "dataplane",
            "defaults",
            "error_text",
            "exec",
            "flowsync",
            "health",
            "ipvs",
            "vrrp",
            "xdp",
        ],
    ),
    ("top", &["daemon", "error_text"]),
];

#[test]
fn every_import_between_modules_follows_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let mut violations = Vec::new();
    for (module, imports) in &graph {
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| m == module) else {
            violations.push(format!(
                "{module}: a new top-level module: add it to ALLOWED"
            ));
            continue;
        };
        for (import, file) in imports {
            if !allowed.contains(&import.as_str()) {
                violations.push(format!("{module} -> {import} ({})", file.display()));
            }
        }
    }
    for (module, imports) in &graph {
        let names: BTreeSet<&str> = imports.keys().map(String::as_str).collect();
        println!(
            "{module:10} -> {}",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(
        violations.is_empty(),
        "imports across layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_reader_sees_nested_use_trees() {
    let text = "use crate::{config::{A, B}, dataplane::C};\nfn f() { crate::vrrp::x(); }";
    let found: Vec<String> = crate_imports(text);
    assert_eq!(found, ["config", "dataplane", "vrrp"]);
}

/// module -> (imported module -> first file that imports it).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let Some(module) = top_module(relative) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("readable source");
        for import in crate_imports(production(&text, relative)) {
            if import != module {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(import)
                    .or_insert_with(|| relative.to_path_buf());
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `vrrp/io/runtime/mod.rs` -> `vrrp`; the crate root and the binaries
/// (which may use everything) -> `None`.
fn top_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main" | "bin")).then(|| name.to_owned())
}

/// The text before `#[cfg(test)]`; nothing for a file of tests.
fn production<'a>(text: &'a str, relative: &Path) -> &'a str {
    let is_tests = relative.file_stem().is_some_and(|s| s == "tests")
        || relative.components().any(|c| c.as_os_str() == "tests");
    if is_tests {
        return "";
    }
    text.split("#[cfg(test)]").next().unwrap_or_default()
}

/// The first segment after every `crate::`, including each branch of a
/// `crate::{a, b::c}` tree; comments are skipped.
fn crate_imports(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(tree) = rest.strip_prefix('{') {
            found.extend(tree_heads(tree));
        } else {
            found.push(identifier(rest).to_owned());
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The first identifier of each top-level item of a `{...}` tree (the
/// text starts just after the `{`).
fn tree_heads(tree: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                heads.push(identifier(&tree[i..]).to_owned());
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}
