//! `loadgen grade` against servers whose model is known: every workspace version, and
//! small Python servers written outside the workspace's code (`tests/fixtures/`), each
//! graded as what it is. Each grade runs the real binary, as a student would, and is
//! read back from `--json`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// A grade takes under ten seconds here; this bounds one that hangs.
const GRADE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `loadgen grade --json --no-matrix --no-versus` with `args` (the first two
/// stages): its exit status and its JSON.
fn grade(args: &[&str]) -> (bool, Value) {
    run_grade(&["--no-matrix", "--no-versus"], args)
}

/// Runs `loadgen grade --json`, with `options` before `args`.
fn run_grade(options: &[&str], args: &[&str]) -> (bool, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("grade")
        .arg("--json")
        .args(options)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("loadgen starts");
    let mut status = None;
    common::testkit::wait_until(GRADE_TIMEOUT, || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("grade {args:?} took over {GRADE_TIMEOUT:?}");
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (status.success(), json)
}

fn closest(json: &Value) -> &str {
    json["closest"].as_str().unwrap_or("none")
}

/// Grades version `name` with `options` and checks it is found to be `expected`.
fn version_is(name: &str, options: &[&str], expected: &str) -> Value {
    let mut args = vec!["--version", name];
    if !options.is_empty() {
        args.push("--");
        args.extend(options);
    }
    let (passed, json) = grade(&args);
    assert!(passed, "{name} {options:?} did not pass: {json:#}");
    assert_eq!(closest(&json), expected, "{name} {options:?}: {}", json["why"]);
    json
}

fn fingerprint<'a>(json: &'a Value, field: &str) -> &'a Value {
    &json["fingerprint"][field]
}

#[test]
fn v1_is_serial() {
    let json = version_is("v1-blocking", &[], "v1-blocking");
    assert_eq!(fingerprint(&json, "serial"), true);
}

#[test]
fn v2_gives_each_connection_a_thread_or_a_process_and_only_processes_isolate_a_crash() {
    let threads = version_is("v2-thread-per-conn", &[], "v2-thread-per-conn");
    assert_eq!(fingerprint(&threads, "crash_isolated"), false);
    let processes = version_is("v2-process-per-conn", &[], "v2-process-per-conn");
    assert_eq!(fingerprint(&processes, "crash_isolated"), true);
}

#[test]
fn v3_is_a_pool_of_its_threads() {
    let json = version_is("v3-thread-pool", &["--threads", "4"], "v3-thread-pool");
    assert_eq!(fingerprint(&json, "pool"), 4);
    // The crash question (`GET /abort`) ended that server: its threads are watched on a
    // fresh one, not reported as "Connection refused".
    assert_eq!(fingerprint(&json, "crash_isolated"), false);
    assert!(json["threads"].is_object(), "{}", json["threads_skipped"]);
}

#[test]
fn v4_nio_hands_handlers_to_workers_and_without_them_is_one_loop() {
    version_is("v4-nio", &[], "v4-nio");
    version_is("v4-nio", &["--workers", "0"], "v4-syscalls");
}

#[test]
fn v4_syscalls_is_one_loop_and_select_refuses_past_its_bitmap() {
    let epoll = version_is("v4-syscalls", &[], "v4-syscalls");
    assert_eq!(fingerprint(&epoll, "crowd_answered"), true);
    let select = version_is("v4-syscalls", &["--api", "select"], "v4-syscalls");
    assert_eq!(fingerprint(&select, "crowd_answered"), false);
    assert!(select["why"].as_str().is_some_and(|w| w.contains("select")), "{}", select["why"]);
}

#[test]
fn v5_is_a_loop_per_core() {
    version_is("v5-reactor-per-core", &["--loops", "2"], "v5-reactor-per-core");
}

#[test]
fn v6_runs_handlers_on_its_workers_unless_they_are_spawned() {
    version_is("v6-async", &["--workers", "2"], "v6-async");
    // Handlers on the blocking pool stall nobody: the model of v4-nio's workers.
    version_is("v6-async", &["--workers", "2", "--blocking", "spawn"], "v4-nio");
}

/// A fixture server's path.
fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name].iter().collect();
    path.to_string_lossy().into_owned()
}

/// Whether a process whose command line names `path` is still running.
fn still_running(path: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(path))
    })
}

/// Grades the Python fixture `name`, checks nothing of it is left running, and returns
/// whether it passed and its grade.
fn python(name: &str) -> (bool, Value) {
    let path = fixture(name);
    let result = grade(&["--", "python3", &path, "--addr", "{addr}"]);
    let gone = common::testkit::wait_until(Duration::from_secs(10), || !still_running(&path));
    assert!(gone, "{name} was left running after its grade");
    result
}

fn python_is(name: &str, expected: &str) -> Value {
    let (passed, json) = python(name);
    assert!(passed, "{name} did not pass: {json:#}");
    assert_eq!(closest(&json), expected, "{name}: {}", json["why"]);
    json
}

#[test]
fn python_servers_are_graded_as_what_they_are() {
    python_is("iterative.py", "v1-blocking");
    python_is("threaded.py", "v2-thread-per-conn");
    let forking = python_is("forking.py", "v2-process-per-conn");
    assert_eq!(fingerprint(&forking, "crash_isolated"), true);
    let pool = python_is("pool4.py", "v3-thread-pool");
    assert_eq!(fingerprint(&pool, "pool"), 4);
    python_is("selectors_loop.py", "v4-syscalls");
    let abort = python_is("threaded_abort.py", "v2-thread-per-conn");
    assert_eq!(fingerprint(&abort, "crash_isolated"), false);
}

/// The outcome of the first conversation named `starting` in `protocol`.
fn outcome<'a>(json: &'a Value, protocol: &str, starting: &str) -> &'a str {
    json["transcripts"]
        .as_array()
        .and_then(|checks| {
            checks.iter().find(|c| {
                c["protocol"] == protocol
                    && c["name"].as_str().is_some_and(|n| n.starts_with(starting))
            })
        })
        .and_then(|c| c["outcome"].as_str())
        .unwrap_or("missing")
}

#[test]
fn broken_python_servers_get_a_clear_verdict_not_a_hang() {
    // No Content-Length: the first HTTP conversation fails, showing the bytes; the line
    // protocol still works, so the grade goes on.
    let (_, json) = python("no_content_length.py");
    assert_eq!(outcome(&json, "http", "GET /hello over HTTP/1.1"), "fail");
    let received = json["transcripts"][3]["received"].as_str().unwrap_or("");
    assert!(received.contains("no Content-Length"), "{received}");
    assert_eq!(closest(&json), "v2-thread-per-conn");

    // Crashes on a malformed line: said so, and where.
    let (passed, json) = python("crash_on_malformed.py");
    assert!(!passed);
    assert_eq!(outcome(&json, "line", "a malformed line"), "fail");
    let why = json["why"].as_str().unwrap_or("");
    assert!(why.contains("exited") && why.contains("malformed"), "{why}");

    // Answers only after the client half-closes; never answers.
    let (passed, json) = python("halfclose_only.py");
    assert!(!passed);
    assert!(json["why"].as_str().is_some_and(|w| w.contains("closed its side")), "{}", json["why"]);
    let (passed, json) = python("mute.py");
    assert!(!passed);
    assert!(json["why"].as_str().is_some_and(|w| w.contains("never answers")), "{}", json["why"]);
}

/// The matrix rows whose outcome is `outcome`, by fault name.
fn rows<'a>(json: &'a Value, outcome: &str) -> Vec<&'a str> {
    json["matrix"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["outcome"] == outcome)
                .filter_map(|r| r["fault"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_fault_matrix_expects_of_a_server_what_its_model_does() {
    // v1, graded as serial, handles every fault as a serial server should.
    let (passed, v1) = run_grade(&["--no-versus"], &["--version", "v1-blocking"]);
    assert!(passed);
    assert_eq!(rows(&v1, "fail"), Vec::<&str>::new(), "{:#}", v1["matrix"]);
    assert!(rows(&v1, "pass").contains(&"slowloris"));
    assert!(
        rows(&v1, "pass").contains(&"aborting_handler"),
        "a version is started with --allow-abort"
    );

    // A thread per connection in Python, without timeouts: a slowloris holds a thread
    // for good, a silent client is never cut off, and out of descriptors it spins.
    let path = fixture("threaded.py");
    let (_, python) = run_grade(&["--no-versus"], &["--", "python3", &path, "--addr", "{addr}"]);
    let failed = rows(&python, "fail");
    for fault in ["slowloris", "silent_connection", "out_of_file_descriptors"] {
        assert!(failed.contains(&fault), "{fault} should fail: {:#}", python["matrix"]);
    }
    // A failure shows the bytes: here the 501 it gave where a 400 was owed.
    let smuggling = python["matrix"]
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| r["fault"] == "smuggling_content_length_and_transfer_encoding")
        })
        .and_then(|r| r["why"].as_str())
        .unwrap_or_default();
    assert!(
        smuggling.contains("\n> POST /echo") && smuggling.contains("\n< HTTP/1.1 501"),
        "{smuggling}"
    );
    // Its routes are not the workspace's: those rows are not held against it.
    assert!(rows(&python, "skipped").contains(&"panicking_handler"), "{:#}", python["matrix"]);
    assert!(rows(&python, "pass").contains(&"reset_mid_response"), "{:#}", python["matrix"]);
    assert!(common::testkit::wait_until(Duration::from_secs(10), || !still_running(&path)));
}

#[test]
fn a_server_is_run_beside_the_closest_version_and_starved_clients_are_counted() {
    let path = fixture("pool4.py");
    let page = std::env::temp_dir().join(format!("grade-test-{}.html", std::process::id()));
    let page_arg = page.to_string_lossy().into_owned();
    let (passed, json) = run_grade(
        &["--no-matrix", "--html", &page_arg],
        &["--", "python3", &path, "--addr", "{addr}"],
    );
    assert!(passed, "{json:#}");
    // The page holds the same grade: its verdict and every stage.
    let html = std::fs::read_to_string(&page).expect("the page was written");
    let _ = std::fs::remove_file(&page);
    assert!(html.contains("Behaves like v3-thread-pool"), "{html}");
    for stage in
        ["1. Does it speak", "2. What model", "3. What does it survive", "4. How does it compare"]
    {
        assert!(html.contains(stage), "no {stage:?} in the page");
    }
    // What its threads did, read from /proc: the main thread and the pool's four at least,
    // drawn on the page.
    let threads = &json["threads"];
    assert!(threads["summary"]["lanes"].as_u64().unwrap_or(0) >= 5, "{threads:#}");
    assert!(threads["answered"].as_u64().unwrap_or(0) > 0, "{threads:#}");
    assert!(
        html.contains("<h2>What each thread did</h2><p>") && html.contains("class=\"timeline\"")
    );
    assert_eq!(json["versus_version"], "v3-thread-pool --threads 4", "the pool as it was found");
    let runs = json["versus"].as_array().expect("the runs");
    assert_eq!(runs.len(), 3, "keep-alive, a connection per request, /sleep: {runs:#?}");
    // Four threads, each request holding one 100 ms: at most 40 a second (and a few
    // finishing inside the window that began before it), for both.
    for side in ["graded", "version"] {
        let rate = runs[2][side]["requests_per_sec"].as_f64().unwrap_or(0.0);
        assert!(rate > 0.0 && rate <= 45.0, "{side}: {rate} req/s for /sleep?ms=100 on 4 threads");
    }
    // Beside 100 silent clients a pool of four answers no newcomer, theirs nor ours.
    assert_eq!(json["idle"]["graded_us"], Value::Null, "{:#}", json["idle"]);
    assert_eq!(json["idle"]["version_us"], Value::Null, "{:#}", json["idle"]);
    let keep_alive = &runs[0];
    for side in ["graded", "version"] {
        assert!(
            keep_alive[side]["requests_per_sec"].as_f64().is_some_and(|r| r > 0.0),
            "{keep_alive:#}"
        );
        // 64 keep-alive clients, a pool of 4: the other 60 are starved, and said to be.
        assert_eq!(keep_alive[side]["clients_answered"], 4, "{side}: {keep_alive:#}");
        assert_eq!(keep_alive[side]["clients"], 64);
    }
    assert!(common::testkit::wait_until(Duration::from_secs(10), || !still_running(&path)));
}

#[test]
fn a_running_server_is_graded_without_its_proc_and_says_what_it_could_not_ask() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["serve", "v2-thread-per-conn", "--addr", "127.0.0.1:0"]);
    command.stderr(std::process::Stdio::null());
    let server = common::testkit::ChildServer::spawn(command).expect("v2 starts");
    let addr = server.addr().to_string();
    let (passed, json) = run_grade(&[], &["--addr", &addr]);
    assert!(passed, "{json:#}");
    assert_eq!(fingerprint(&json, "threads_grew"), &Value::Null, "no /proc to read");
    assert_eq!(fingerprint(&json, "crash_isolated"), &Value::Null, "not crashed");
    assert_eq!(json["threads"], Value::Null, "no /proc to draw its threads from");
    assert!(json["threads_skipped"].as_str().unwrap_or("").contains("running already"));
    // A thread per connection and a loop with workers look alike from outside: said so.
    assert_eq!(json["closest"], Value::Null);
    assert!(json["why"].as_str().is_some_and(|w| w.contains("cannot tell")), "{}", json["why"]);
    assert!(json["matrix_skipped"].is_string() && json["versus_skipped"].is_string(), "{json:#}");
    // And the server it did not start is still serving.
    assert!(common::testkit::answered_within(server.addr(), Duration::from_secs(10)));
}
