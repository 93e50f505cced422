//! The system-call census against a server whose calls are known: v1 reads each request
//! with one `recvfrom` and writes each answer with one `sendto`, and waits in nothing else.
//! Needs perf or strace; without either the test says so and passes, except where `CI`
//! is set (`.ci/run` installs them).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::testkit::ChildServer;
use loadgen::bench::{self, BenchConfig};
use loadgen::census::{Counting, Tool, listener_pid};

#[test]
fn a_blocking_server_makes_one_read_and_one_write_per_request() {
    let tool = match Tool::find() {
        Ok(tool) => tool,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI requires a census tool: {why}");
            let _ = writeln!(std::io::stderr(), "skipped the census test: {why}");
            return;
        }
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["serve", "v1-blocking", "--addr", "127.0.0.1:0"]);
    let server = ChildServer::spawn(command).expect("start v1");
    assert_eq!(listener_pid(server.addr().port()).unwrap(), Some(server.pid()));

    let counting = Counting::start(tool, server.pid()).expect("attach");
    let load = BenchConfig::new(server.addr(), 1, Duration::from_secs(1), "/hello");
    let summary = bench::run(&load).expect("load");
    let census = counting.finish(summary.requests).expect("counts");
    assert!(summary.requests > 100, "{summary:?}");
    let per = |name: &str| {
        let calls = census.calls.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
        calls as f64 / summary.requests as f64
    };
    // One connection's setup (accept, socket options) spread over the requests, and the
    // requests in flight at the end of the window: a few per cent at most.
    for call in ["recvfrom", "sendto"] {
        assert!(
            (0.98..1.05).contains(&per(call)),
            "{call}: {:.3} per request; {census:?}",
            per(call)
        );
    }
    assert!(
        census.per_request() < 2.1,
        "{:.2} calls per request: {census:?}",
        census.per_request()
    );
}
