//! The fault matrix's rows as `loadgen grade` words them for servers a student might
//! write (small Python fixtures in `tests/fixtures/`): an echo right to the byte passes
//! whatever its `Content-Type`, and a server that dies is called dead.

use std::path::PathBuf;
use std::time::Duration;

use harness::faults::{FAULTS, Fault};
use loadgen::grade::Target;
use loadgen::grade::fingerprint::Fingerprint;
use loadgen::grade::matrix::{self, Row, RowOutcome, Weight};

/// The rows `names` of the matrix against a fresh fixture `name` per fault, expecting
/// of it what a thread per connection does (which every fixture here is).
fn rows(name: &str, names: &[&str]) -> Vec<Row> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name].iter().collect();
    let path = path.to_string_lossy().into_owned();
    let words = ["python3", &path, "--addr", "{addr}"];
    let target = Target::Command(words.iter().map(|w| (*w).to_owned()).collect());
    let threads = Fingerprint { serial: Some(false), ..Fingerprint::default() };
    let log = std::env::temp_dir().join(format!("grade-rows-{}-{name}.log", std::process::id()));
    std::fs::write(&log, "").expect("the server's log can be created");
    let faults: Vec<&Fault> = FAULTS.iter().filter(|f| names.contains(&f.name)).collect();
    assert_eq!(faults.len(), names.len(), "a fault was renamed: {names:?}");
    let rows = matrix::run_faults(&target, &threads, &log, false, &faults);
    let _ = std::fs::remove_file(&log);
    // Each fault's server is stopped with its row: nothing of the fixture is left.
    let gone = common::testkit::wait_until(Duration::from_secs(10), || !running(&path));
    assert!(gone, "{name} was left running");
    rows
}

/// Whether a process whose command line names `path` is still running.
fn running(path: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(path))
    })
}

#[test]
fn a_server_that_dies_out_of_descriptors_is_reported_as_a_crash() {
    let rows = rows("dies_on_emfile.py", &["out_of_file_descriptors"]);
    let RowOutcome::Fail { why } = &rows[0].outcome else {
        panic!("a server that exits on EMFILE passed: {:?}", rows[0]);
    };
    assert!(why.contains("the server stopped answering (a crash)"), "{why}");
    assert!(!why.contains("others wait"), "{why}");
    assert_eq!(rows[0].weight, Weight::CrashOrLostData);
}

#[test]
fn a_server_that_spins_out_of_descriptors_is_reported_as_a_busy_loop() {
    let rows = rows("spins_on_emfile.py", &["out_of_file_descriptors"]);
    let RowOutcome::Fail { why } = &rows[0].outcome else {
        panic!("a server that retries accept at once on EMFILE passed: {:?}", rows[0]);
    };
    assert!(why.contains("a busy loop"), "{why}");
}

#[test]
fn the_echo_row_checks_the_bytes_not_the_content_type() {
    // The fixtures answer every route with `Content-Type: text/plain`, the echo too.
    let rows = rows("threaded.py", &["binary_echo"]);
    assert!(matches!(rows[0].outcome, RowOutcome::Pass), "{:?}", rows[0]);
}
