//! The server's modules form layers: a top-level module (a folder under
//! `src/`, or a file beside `lib.rs`) may name another only if that one does
//! not name it back, directly or through others. A circle means neither can
//! be read, tested or replaced alone; README.md's layout table lists the
//! layers.
//!
//! The check reads the source text: every `crate::name` path outside
//! comments, `use crate::{a, b}` groups included. `lib.rs` is the root that
//! declares every module, so it is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, in a fixed order: what the source-reading
/// tests (this one, and the routes' access test in `protocols`) read.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to: its folder, or its own name.
fn top_level(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules `code` names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let close = group.find('}').unwrap_or(group.len());
            for item in group[..close].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() && name != "self" {
                    names.insert(name.to_string());
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The source without `//` comments (doc comments included), which may
/// name modules without depending on them.
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which top-level module names which, from the files under `src`.
fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let module = top_level(src, &file);
        if module == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("read a source file");
        let named = named_modules(&without_comments(&source));
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(named.into_iter().filter(|name| *name != module));
    }
    graph
}

/// A circle in `graph`, as the modules along it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).expect("on the path");
                let mut circle = path[start..].to_vec();
                circle.push(node.to_string());
                return Some(circle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, marks, path) {
                return Some(circle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(circle);
        }
    }
    None
}

#[test]
fn no_module_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = dependencies(&src);
    assert!(
        graph.len() > 5,
        "found too few modules under {}: {graph:?}",
        src.display()
    );
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "modules import each other in a circle: {}\nevery edge: {graph:#?}",
            circle.join(" → ")
        );
    }
}

#[test]
fn the_reader_finds_what_a_circle_is_made_of() {
    let code = "use crate::grpc::body::GrpcBody;\nuse crate::{state, stream::tail};\n// crate::ops in a comment\nlet x = crate::error::clip(1); notcrate::net";
    let named = named_modules(&without_comments(code));
    let expected: BTreeSet<String> = ["grpc", "state", "stream", "error"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(named, expected);

    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("grpc", vec!["stream"]),
        ("protocols", vec!["grpc"]),
        ("stream", vec!["protocols"]),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), to.into_iter().map(String::from).collect()))
    .collect();
    let circle = find_circle(&graph).expect("a circle");
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4);
}
