//! Every figure the live page draws has its one-line definition on the page: the page's
//! own figures, and each version's `model` figures as its `/stats` gives them, read from
//! every version started as a student starts it.

use std::collections::BTreeSet;
use std::process::Command;

use common::testkit::{ChildServer, Client};
use loadgen::serve::Version;
use serde_json::Value;

const PAGE: &str = include_str!("../../common/src/live.html");

/// The keys of the page's `DEFINITIONS`, one `"key": "definition",` a line.
fn defined() -> BTreeSet<String> {
    let start = PAGE.find("const DEFINITIONS = {").expect("the page defines its figures");
    let block = &PAGE[start..];
    let block = &block[..block.find("\n};").expect("the definitions end")];
    block
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"')?.split_once("\": \""))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// The names the page itself passes to `draw` and `perSecond`, as the page looks them up.
fn drawn_by_the_page() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for call in ["draw(\"", "perSecond(\"", "draw(`"] {
        for (at, _) in PAGE.match_indices(call) {
            let rest = &PAGE[at + call.len()..];
            let end = rest.find(['"', '`']).expect("a name ends");
            names.insert(rest[..end].split(" (cap ").next().unwrap_or_default().to_owned());
        }
    }
    // The figure names the page builds from variables are the model's, checked below.
    names.remove("name");
    names
}

/// Every number under `value`, by the path the page gives it, a loop's or a ring's index
/// as `*`.
fn model_paths(value: &Value, path: String, out: &mut BTreeSet<String>) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::Number(_) => {
            out.insert(path);
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| model_paths(v, join(k), out)),
        Value::Array(items) => items.iter().for_each(|v| model_paths(v, join("*"), out)),
        _ => {}
    }
}

/// The version's `/stats`, from a fresh server; `None` if it cannot start here (v7 where
/// io_uring is blocked).
fn stats_of(version: Version) -> Option<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["serve", version.name(), "--addr", "127.0.0.1:0"]);
    let server = ChildServer::spawn(command).ok()?;
    let mut client = Client::connect(server.addr()).expect("a started server answers");
    let answer = client.get("/stats").expect("/stats is answered");
    Some(serde_json::from_slice(&answer.body).expect("/stats is JSON"))
}

#[test]
fn every_figure_the_live_page_draws_is_defined_on_it() {
    let defined = defined();
    let mut missing: Vec<String> =
        drawn_by_the_page().into_iter().filter(|name| !defined.contains(name)).collect();
    let (mut started, mut figures) = (0, 0);
    for version in Version::all() {
        let Some(stats) = stats_of(version) else {
            eprintln!("{} did not start here: its figures are not checked", version.name());
            continue;
        };
        started += 1;
        let mut paths = BTreeSet::new();
        model_paths(&stats["model"], String::new(), &mut paths);
        figures += paths.len();
        let undefined = paths.into_iter().filter(|path| !defined.contains(path));
        missing.extend(undefined.map(|path| format!("{}: {path}", version.name())));
    }
    assert!(started + 1 >= Version::all().len(), "only {started} versions started");
    assert!(figures >= 30, "only {figures} figures of the versions' own were read");
    assert!(missing.is_empty(), "drawn without a definition: {missing:#?}");
}
