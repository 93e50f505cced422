//! The workspace and the registry must agree on which versions exist. A version is a folder
//! `v<N>-<model>` (the workspace's members find it by that pattern), its entry in
//! `registry/src/lib.rs`, its tests against the fault matrix and shutdown, and its chapter in
//! the book's table of contents. Forgetting any of these fails here, with what to add; what
//! loadgen needs is checked by loadgen's own test (`every_version_of_the_registry_can_be_run`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The package name of every folder of the workspace's root that the members' pattern
/// `v[0-9]*` takes for a version, with its folder.
fn version_crates() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root()).expect("list the workspace's root") {
        let folder = entry.expect("a folder entry").path();
        let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let is_version =
            name.starts_with('v') && name[1..].starts_with(|c: char| c.is_ascii_digit());
        let manifest = folder.join("Cargo.toml");
        if !is_version || !manifest.is_file() {
            continue;
        }
        let text = read(&manifest);
        let package = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \"").and_then(|l| l.strip_suffix('"')))
            .unwrap_or_else(|| panic!("{} has no `name = \"…\"` line", manifest.display()));
        found.push((package.to_owned(), folder));
    }
    found.sort();
    found
}

#[test]
fn every_version_crate_has_a_registry_entry_and_every_entry_a_crate() {
    let crates = version_crates();
    for (name, folder) in &crates {
        assert!(
            registry::find(name).is_some(),
            "{} is a version crate of the workspace ({}), but the registry does not know it: \
             add a `pub const` entry for it and its line in VERSIONS in registry/src/lib.rs",
            name,
            folder.display()
        );
        assert!(
            folder.ends_with(name),
            "{}: the folder of a version is named as its crate, so that `cargo run -p` and the \
             folder agree; rename {} to {name}",
            name,
            folder.display()
        );
    }
    for v in registry::VERSIONS {
        assert!(
            crates.iter().any(|(name, _)| name == v.name),
            "the registry names {0}, but there is no folder {0}/ with a Cargo.toml at the \
             workspace's root (the workspace's members take every v<N>-… folder)",
            v.name
        );
    }
}

#[test]
fn every_version_runs_the_fault_matrix_and_the_shutdown_tests() {
    for v in registry::VERSIONS {
        let tests = root().join(v.name).join("tests");
        let faults = tests.join("faults.rs");
        assert!(
            faults.is_file() && read(&faults).contains("harness::fault_matrix"),
            "{0} has no {1} calling harness::fault_matrix: copy v1-blocking/tests/faults.rs \
             and name {0} in it",
            v.name,
            faults.display()
        );
        let shutdown = tests.join("shutdown.rs");
        assert!(
            shutdown.is_file() && read(&shutdown).contains("shutdown_tests!"),
            "{0} has no {1} with common::shutdown_tests!: copy v1-blocking/tests/shutdown.rs \
             and name {0}'s binary in it",
            v.name,
            shutdown.display()
        );
    }
}

#[test]
fn every_chapter_is_in_the_books_table_of_contents() {
    let summary = read(&root().join("docs/src/SUMMARY.md"));
    for v in registry::VERSIONS {
        assert!(
            summary.contains(&format!("]({})", v.chapter)),
            "{}'s chapter {} is not in docs/src/SUMMARY.md: add a line `- [title]({})` where \
             it falls in the story",
            v.name,
            v.chapter,
            v.chapter
        );
    }
}
