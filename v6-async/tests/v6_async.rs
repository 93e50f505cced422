//! v6 over real sockets: what it keeps from v5 (no thread per connection), what it adds
//! (`--blocking spawn` keeps a blocking handler off the event loops), and its own limit
//! (blocking inside async starves the runtime, as idle clients starved v3's pool).

use std::time::Duration;

use common::testkit::{
    Client, NO_ANSWER_WAIT, TIMEOUT, TestServer, answered_within, check_pipelined_echoes,
    speaks_both_protocols, wait_until,
};
use v6_async::{Blocking, Config, Model, SERVER, run};

fn v6(workers: usize, blocking: Blocking) -> TestServer {
    TestServer::start(SERVER, Config::new(Model { workers, blocking, ..Model::default() }), run)
}

/// Sends `GET /sleep?ms=…` on `n` new connections, one at a time, each once the one before
/// is in its handler (the dispatcher counts a request before running it).
///
/// One at a time: sent together, both connections' tasks could land on one worker, the
/// second in its LIFO slot, where the other worker cannot steal it; that worker then
/// sleeps, free to serve a newcomer, while the second sleeper waits for the first (seen:
/// the second was counted only as the first's 5 s ended). A connection accepted while one
/// worker is blocked is spawned to the runtime's shared queue, which wakes the idle one.
fn sleepers(server: &TestServer, n: usize, ms: u64) -> Vec<Client> {
    let before = server.stats().requests();
    (0..n)
        .map(|i| {
            let mut c = Client::connect(server.addr()).expect("connect");
            c.send(format!("GET /sleep?ms={ms}\n").as_bytes()).expect("send");
            let started = wait_until(TIMEOUT, || server.stats().requests() > before + i as u64);
            assert!(started, "/sleep number {} never reached its handler", i + 1);
            c
        })
        .collect()
}

#[test]
fn answers_both_protocols_and_names_itself() {
    let server = v6(2, Blocking::Inline);
    let mut c = Client::connect(server.addr()).unwrap();
    speaks_both_protocols(&mut c, SERVER);
    assert_eq!(server.model("tasks"), 1);
    c.check_exit();
    assert!(wait_until(TIMEOUT, || server.model("tasks") == 0), "the task outlived its connection");
}

// ANCHOR: vs_v5
/// v5's limit, gone: a blocking handler on a v5 loop stalls every connection of that loop;
/// v6 with `--blocking spawn` runs handlers on tokio's blocking pool, so `/hello` is
/// answered while more `/sleep`s are in flight than the runtime has workers.
#[test]
fn a_blocking_handler_stalls_a_v5_loop_but_not_v6_with_spawn() {
    let v5_config = v5_reactor_per_core::Config::new(v5_reactor_per_core::Model {
        loops: 1,
        ..Default::default()
    });
    let listener =
        common::cli::listen("127.0.0.1:0".parse().unwrap(), 128, common::cli::Sharing::ReusePort)
            .unwrap();
    let v5 = TestServer::on_listener(
        listener,
        common::Dispatcher::with_builtin_routes(v5_reactor_per_core::SERVER),
        v5_config,
        v5_reactor_per_core::run,
    );
    let _held = sleepers(&v5, 1, 4000);
    assert!(!answered_within(v5.addr(), NO_ANSWER_WAIT), "v5's loop answered while blocked");

    let server = v6(2, Blocking::Spawn);
    let _held = sleepers(&server, 3, 6000);
    assert!(wait_until(TIMEOUT, || server.model("blocking_in_use") == 3));
    // Well before the sleeps end.
    assert!(
        answered_within(server.addr(), Duration::from_secs(3)),
        "v6 stalled with handlers spawned"
    );
}
// ANCHOR_END: vs_v5

// ANCHOR: limit
/// v6's own limit, pinned: with handlers inline, as many blocking requests as the runtime
/// has workers stall every other task. The code looks non-blocking; the handler is not.
/// (One can be enough, on a quiet server: see the chapter, "Blocking inside async".)
#[test]
fn limit_blocking_inline_handlers_starve_the_runtime() {
    let server = v6(2, Blocking::Inline);
    let held = sleepers(&server, 2, 5000);
    let mut newcomer = Client::connect(server.addr()).unwrap();
    newcomer.set_timeout(NO_ANSWER_WAIT).unwrap();
    newcomer.send(b"GET /hello\n").unwrap();
    assert!(newcomer.read_line().is_err(), "answered while both workers were blocked");
    // Once a worker is free again, it is served.
    newcomer.set_timeout(TIMEOUT + Duration::from_secs(5)).unwrap();
    assert_eq!(newcomer.read_line().unwrap(), "200 Hello, World!");
    drop(held);
}
// ANCHOR_END: limit

#[test]
fn spawned_handlers_run_on_the_blocking_pool_and_come_back() {
    let server = v6(1, Blocking::Spawn);
    let mut c = Client::connect(server.addr()).unwrap();
    check_pipelined_echoes(&mut c, 50);
    assert_eq!(server.model("blocking_in_use"), 0);
}
