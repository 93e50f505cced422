//! The engine links no version: `src/engine/` measures any server, so nothing in it may
//! name the parts of loadgen that know the versions (`compare`, `report`, `grade`, `serve`,
//! `peers`, `waits`), the registry, the fault matrix, or a version's crate. Were it to, a
//! student's `loadgen bench` against their own server would keep compiling as before,
//! but the engine could no longer be cut out, or read, on its own.

use std::path::{Path, PathBuf};

/// What an engine file may not name: loadgen's modules that know the versions, and the
/// crates that are versions or name them (as paths: mio's `poll.registry()` is not ours).
const FORBIDDEN: &[&str] = &[
    "crate::compare",
    "crate::report",
    "crate::grade",
    "crate::serve",
    "crate::peers",
    "crate::waits",
    "registry::",
    "harness::",
    "peer_hyper::",
];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the engine's folder reads") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The version crates, as Rust names them (`v4_nio`), from loadgen's manifest.
fn version_crates() -> Vec<String> {
    let manifest = include_str!("../Cargo.toml");
    manifest
        .lines()
        // `v4-nio = { path = "../v4-nio" }`: the versions are named by path.
        .filter_map(|l| l.split_once([' ', '.', '=']).map(|(name, _)| name.trim()))
        .filter(|name| name.starts_with('v') && name[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|name| name.replace('-', "_"))
        .collect()
}

/// What a line names that the engine may not, its comment left out (a comment may say
/// what the engine is not).
fn offences(line: &str, versions: &[String]) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let words =
        FORBIDDEN.iter().map(|w| (*w).to_owned()).chain(versions.iter().map(|v| format!("{v}::")));
    words.filter(|w| code.contains(w.as_str())).collect()
}

#[test]
fn the_engine_names_no_version_nor_what_is_built_on_it() {
    let versions = version_crates();
    assert!(versions.len() >= 9, "the version crates were not found: {versions:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let files = sources(&root);
    assert!(files.len() >= 8, "the engine's files were not found: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("an engine file reads");
        for (n, line) in text.lines().enumerate() {
            for word in offences(line, &versions) {
                found.push(format!(
                    "{}:{}: names `{word}`: {}",
                    file.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(found.is_empty(), "the engine must link no version:\n{}", found.join("\n"));
}

#[test]
fn the_check_would_catch_a_version_named() {
    let versions = version_crates();
    assert_eq!(offences("use v4_nio::Model;", &versions), ["v4_nio::"]);
    assert_eq!(
        offences("let v = crate::serve::Version::V1_BLOCKING;", &versions),
        ["crate::serve"]
    );
    assert_eq!(offences("x(); // not crate::compare", &versions), Vec::<String>::new());
    assert_eq!(offences("let v = registry::find(name);", &versions), ["registry::"]);
    assert!(offences("self.poll.registry().register(", &versions).is_empty());
}
