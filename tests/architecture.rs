//! The dependency rule of ARCHITECTURE.md, checked: modules of `src/` import only the modules before
//! them in the order the data flows (config → net → providers → research → evidence → synth → check →
//! render), under a pipeline, a language server and a CLI that only convert. An import against that
//! order, or a cycle, fails this test with the offending file and line.
//!
//! Hand-written over `cargo-modules` or a `syn` walk: a tool would be another install in CI, and
//! `crate::name` paths are all this rule needs (the code base uses no glob re-exports across modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/`, in the order data flows: a module may import only those before it.
const LAYERS: &[&str] = &[
    "sanitize",
    "text",
    "registry",
    "config",
    "report",
    "cost",
    "net",
    "providers",
    "research",
    "evidence",
    "synth",
    "check",
    "render",
    "store",
    "pipeline",
    "lsp",
    "cli",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/render/summary.rs` → `render`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The code of a file without its test module (tests may use anything) and without comments.
fn shipped_code(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let all: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < all.len() {
        let line = all[i].trim_start();
        if line.starts_with("#[cfg(test)]")
            && all
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            break;
        }
        if !line.starts_with("//") {
            let code = match line.find("//") {
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            lines.push((i + 1, code.to_string()));
        }
        i += 1;
    }
    lines
}

/// Every `crate::name` in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `$crate::` in macros and `some_crate::` are not this crate.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && !name.is_empty()
        {
            out.push(name);
        }
        rest = after;
    }
    // `use crate::{a, b::c}`: each name in the braces.
    if let Some(open) = code.find("crate::{") {
        let inner = &code[open + "crate::{".len()..];
        for part in inner.split([',', '}']) {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_import_only_the_stages_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(rank) = LAYERS.iter().position(|l| *l == module) else {
            wrong.push(format!(
                "{}: module `{module}` is not in LAYERS: place it in the data flow",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, code) in shipped_code(&text) {
            for name in crate_paths(&code) {
                if name == module || !LAYERS.contains(&name.as_str()) {
                    continue;
                }
                graph
                    .entry(module.clone())
                    .or_default()
                    .insert(name.clone());
                let dep = LAYERS.iter().position(|l| *l == name).unwrap();
                if dep > rank {
                    wrong.push(format!(
                        "{}:{line}: `{module}` imports `{name}`, which comes after it: {}",
                        file.strip_prefix(&src).unwrap().display(),
                        code.trim()
                    ));
                }
            }
        }
    }
    let summary: Vec<String> = graph
        .iter()
        .map(|(m, deps)| {
            format!(
                "{m} -> {}",
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        wrong.is_empty(),
        "imports against the data flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_rule_catches_a_backward_import() {
    // The checker itself: a render import inside synth is found; one in a test module is not.
    let code = "use crate::render::escape_text;\nfn f() {}\n#[cfg(test)]\nmod tests {\n use crate::cli;\n}\n";
    let found: Vec<String> = shipped_code(code)
        .iter()
        .flat_map(|(_, c)| crate_paths(c))
        .collect();
    assert_eq!(found, vec!["render".to_string()]);
    assert_eq!(
        crate_paths("use crate::{config::Env, net::{Http, Request}};"),
        vec!["config", "net", "Request"]
    );
}
