//! Data flows one way: sources -> model (state -> analysis -> findings ->
//! view) -> renderers -> server. This test reads `src/` and fails on an
//! import against that direction or on a cycle between model modules, so a
//! shortcut shows up in review instead of years later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of a source file: `model/view`, `collect`, `render`, ...
/// (files below a top-level module other than `model` count as that module).
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs").trim_end_matches("/mod");
    let mut parts = rel.split('/');
    let top = parts.next().unwrap_or_default();
    match (top, parts.next()) {
        ("model", Some(sub)) => format!("model/{sub}"),
        _ => top.to_string(),
    }
}

/// Targets of `crate::a::b` (and, inside model, `super::a`) in non-test code.
fn imports(module: &str, src: &str) -> BTreeSet<String> {
    let code = src.split("#[cfg(test)]").next().unwrap_or(src);
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let top = ident(rest);
        if top.is_empty() {
            continue;
        }
        let target = if top == "model" {
            let sub = ident(rest.get("model::".len()..).unwrap_or(""));
            if sub.is_empty() {
                "model".to_string()
            } else {
                format!("model/{sub}")
            }
        } else {
            top
        };
        out.insert(target);
    }
    if module.starts_with("model/") {
        for (i, _) in code.match_indices("super::") {
            let sub = ident(&code[i + "super::".len()..]);
            if !sub.is_empty() {
                out.insert(format!("model/{sub}"));
            }
        }
    }
    out.remove(module);
    out
}

/// Files of modules declared `#[cfg(test)]` in their parent (test code).
fn test_only_modules(dir: &Path) -> BTreeSet<String> {
    let parent = ["mod.rs", "lib.rs"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    let mut lines = parent.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            if let Some(next) = lines.peek() {
                let decl = next
                    .trim()
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                if let Some(name) = decl.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                    out.insert(format!("{name}.rs"));
                }
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let test_only = test_only_modules(&dir);
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("dir entry").path();
            let file = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if test_only.contains(&file) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let module = module_of(&rel);
                let src = std::fs::read_to_string(&path).expect("source is UTF-8");
                g.entry(module.clone())
                    .or_default()
                    .extend(imports(&module, &src));
            }
        }
    }
    g
}

/// Modules each layer may import (besides itself and `Error`/`Result` from lib).
fn allowed(module: &str, target: &str) -> bool {
    let top = target.split('/').next().unwrap_or(target);
    // lib.rs items (Error, Result, VERSION) are everyone's.
    if matches!(top, "Error" | "Result" | "VERSION") {
        return true;
    }
    match module.split('/').next().unwrap_or(module) {
        "model" => target.starts_with("model/"),
        "health" | "gzip" | "memory" | "web" => false,
        "sources" => matches!(
            target,
            "model/state" | "model/env" | "model/cni" | "model/capacity" | "model/limits"
        ),
        "render" => target.starts_with("model/") || top == "health",
        "collect" => matches!(top, "sources" | "model" | "health" | "http" | "memory"),
        // `web`: the TLS and basic-auth layer in front of the router.
        "server" => matches!(top, "model" | "render" | "health" | "gzip" | "web"),
        "node_agent" => matches!(
            top,
            "sources" | "model" | "render" | "health" | "http" | "server"
        ),
        "capture" => matches!(top, "sources" | "collect" | "model" | "health" | "http"),
        // The wiring layers may use everything.
        "app" | "main" | "lib" => true,
        // clap types only: their value parsers and the threshold/defaults types.
        "cli" => matches!(
            target,
            "model/findings" | "model/state" | "render/catalogue"
        ),
        other => panic!("module {other} has no layering rule: add one"),
    }
}

#[test]
fn imports_follow_the_data_flow() {
    let g = graph();
    let mut wrong = Vec::new();
    for (m, targets) in &g {
        for t in targets {
            if !allowed(m, t) {
                wrong.push(format!("{m} -> {t}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the data flow:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn model_modules_have_no_cycle() {
    let g = graph();
    let model: BTreeMap<&String, Vec<&String>> = g
        .iter()
        .filter(|(m, _)| m.starts_with("model/"))
        .map(|(m, t)| (m, t.iter().filter(|t| t.starts_with("model/")).collect()))
        .collect();
    assert!(
        model.len() >= 6,
        "expected the model modules, found {model:?}"
    );
    // Depth-first search with colours; a grey target is a back edge.
    fn visit<'a>(
        m: &'a String,
        g: &BTreeMap<&'a String, Vec<&'a String>>,
        colour: &mut BTreeMap<&'a String, u8>,
        path: &mut Vec<&'a String>,
    ) -> Option<String> {
        match colour.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].iter().map(|s| s.as_str()).collect();
                cycle.push(m);
                return Some(cycle.join(" -> "));
            }
            _ => {}
        }
        colour.insert(m, 1);
        path.push(m);
        for t in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(t, g, colour, path) {
                return Some(c);
            }
        }
        path.pop();
        colour.insert(m, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for m in model.keys() {
        if let Some(cycle) = visit(m, &model, &mut colour, &mut Vec::new()) {
            panic!("cycle between model modules: {cycle}");
        }
    }
}

#[test]
fn the_checker_sees_a_cycle_and_a_wrong_import() {
    // The parser itself must find what it is meant to find.
    let findings = imports(
        "model/findings",
        "use super::view::View;\nuse crate::model::analysis::X;",
    );
    assert!(findings.contains("model/view") && findings.contains("model/analysis"));
    assert!(!allowed("collect", "server"));
    assert!(!allowed("model/view", "render"));
    assert!(allowed("render", "model/view"));
    let test_only = imports(
        "render",
        "fn f() {}\n#[cfg(test)]\nmod tests { use crate::server::X; }",
    );
    assert!(test_only.is_empty(), "{test_only:?}");
}
