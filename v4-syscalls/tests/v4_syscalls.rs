//! The five loops over real sockets: each speaks both protocols and counts its waits; all
//! share v4-nio `--workers 0`'s limit, handlers on the loop, because only the way they
//! wait differs.

use std::time::{Duration, Instant};

use common::overload::Shedding;
use common::testkit::{
    AFTER_CPU_BURN, CPU_BURN_MS, Client, TIMEOUT, TestServer, reset, speaks_both_protocols,
    wait_until,
};
use v4_syscalls::{Api, Config, Model, SERVER, run};

fn server(api: Api) -> TestServer {
    TestServer::start(SERVER, Config::new(Model { api, ..Model::default() }), run)
}

#[test]
fn every_api_serves_both_protocols_and_counts_its_waits() {
    for api in Api::ALL {
        let server = server(api);
        let mut client = Client::connect(server.addr()).expect("connect");
        speaks_both_protocols(&mut client, SERVER);
        let stats = client.get("/stats").expect("/stats");
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
        let model = &stats["model"];
        assert_eq!(model["api"], api.name(), "{stats}");
        // Two requests, each at least one wait that returned an event.
        assert!(model["waits"].as_u64() >= Some(2), "{api:?}: {model}");
        assert!(model["events"].as_u64() >= Some(2), "{api:?}: {model}");
        assert!(model["wait_secs"].as_f64() > Some(0.0), "{api:?}: {model}");
    }
}

#[test]
fn limit_a_busy_handler_stalls_every_connection_whatever_the_api() {
    for api in [Api::Poll, Api::IoUring] {
        let server = server(api);
        let mut busy = Client::connect(server.addr()).expect("connect");
        let mut other = Client::connect(server.addr()).expect("connect");
        assert_eq!(other.line("GET /hello").expect("an answer"), "200 Hello, World!");
        busy.send(format!("GET /cpu?ms={CPU_BURN_MS}\n").as_bytes()).expect("send");
        // The dispatcher counts a request before running its handler.
        assert!(wait_until(TIMEOUT, || server.stats().requests() >= 2), "{api:?}");
        other.send(b"GET /hello\n").expect("send");
        let cpu_done = busy.has_answer_waiting().expect("a look");
        assert!(!cpu_done, "{api:?}: the /cpu ended before the other client asked");
        // Answered only once the loop is done computing: after the /cpu answer, which is
        // already there to read when it is.
        other.set_timeout(AFTER_CPU_BURN).expect("timeout");
        assert_eq!(other.read_line().expect("answered after"), "200 Hello, World!");
        let cpu_done = busy.has_answer_waiting().expect("a look");
        assert!(cpu_done, "{api:?}: answered while the loop computed");
        assert!(busy.read_line().expect("the /cpu answer").starts_with("200"), "{api:?}");
    }
}

/// io_uring's last moments: at a shutdown's deadline, a client still sending its request
/// has a receive in flight, whose buffer the kernel may write into until the receive
/// completes. The loop cancels it and reaps its completion before it frees the buffer
/// (`Drop for Ring`), then ends, and the client sees its connection close.
#[test]
fn io_uring_stops_at_the_deadline_with_a_receive_in_flight() {
    let server = server(Api::IoUring);
    let mut client = Client::connect(server.addr()).expect("connect");
    // Half a head: the request timeout (20 s by default) outlasts the shutdown's deadline.
    client.send(b"GET /hello HTTP/1.1\r\n").expect("send");
    // The loop holds it: the listener and one connection watched (a figure the loop
    // registers as it starts, and updates at its sweeps).
    let watched = || server.model_once_registered("watched");
    assert!(wait_until(TIMEOUT, || watched() == 2), "never accepted: {}", watched());
    server.check_stops_at_the_deadline();
    assert!(client.is_closed_by_server(), "the client's connection outlived the server");
}

/// io_uring's sends do not wait for the handlers after them in a round: a blocker holds
/// the loop (and shows it a slow handler) while two neighbours write `/hello` and
/// `/sleep?ms=500`, so one wait returns both, `/hello` first. Its answer goes out before
/// the sleeper's handler starts: within 100 ms of the blocker's, before the sleeper's.
/// Without the rule (`EagerSends::new(None)`) it fails: "/hello waited for the sleeper's
/// handler", as the round's answers all went with its last wait.
#[test]
fn io_uring_sends_an_answer_before_a_slow_handler_behind_it_runs() {
    let server = server(Api::IoUring);
    let client = || {
        let mut c = Client::connect(server.addr()).expect("connect");
        assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!");
        c
    };
    let (mut blocker, mut hello, mut sleeper) = (client(), client(), client());
    let requests = server.stats().requests();
    blocker.send(b"GET /sleep?ms=1000\n").expect("send");
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    hello.send(b"GET /hello\n").expect("send");
    sleeper.send(b"GET /sleep?ms=500\n").expect("send");
    let not_one_round = "the blocker was answered before the others wrote: not one round";
    assert!(!blocker.has_answer_waiting().expect("a look"), "{not_one_round}");

    assert_eq!(blocker.read_line().expect("the blocker's answer"), "200 slept 1000 ms");
    let blocker_answered = Instant::now();
    assert_eq!(hello.read_line().expect("an answer"), "200 Hello, World!");
    let waited = blocker_answered.elapsed();
    let sleeper_done = sleeper.has_answer_waiting().expect("a look");
    assert!(!sleeper_done, "/hello waited for the sleeper's handler");
    assert!(waited.as_millis() < 100, "/hello answered {waited:?} after the blocker");
    assert_eq!(sleeper.read_line().expect("the sleeper's answer"), "200 slept 500 ms");
}

/// What a round does with a client that resets while its request waits behind a slow
/// handler: a blocker holds the loop while three neighbours write (`/sleep?ms=1000`
/// twice, then `/hello`), so one round takes in all three; once the first sleeper's
/// handler runs, the second's client resets. Returns how many handlers ran (from the
/// blocker's on) and how long `/hello` came after the first sleeper's answer.
fn reset_behind_a_slow_handler(api: Api, shedding: Shedding) -> (u64, Duration) {
    let mut config = Config::new(Model { api, ..Model::default() });
    config.shedding = shedding;
    let server = TestServer::start(SERVER, config, run);
    let client = || {
        let mut c = Client::connect(server.addr()).expect("connect");
        assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!");
        c
    };
    let [mut blocker, mut first, mut gone, mut hello] = std::array::from_fn(|_| client());
    let requests = server.stats().requests();
    blocker.send(b"GET /sleep?ms=500\n").expect("send");
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    first.send(b"GET /sleep?ms=1000\n").expect("send");
    gone.send(b"GET /sleep?ms=1000\n").expect("send");
    hello.send(b"GET /hello\n").expect("send");
    let not_one_round = "the blocker was answered before the others wrote: not one round";
    assert!(!blocker.has_answer_waiting().expect("a look"), "{api:?}: {not_one_round}");
    assert_eq!(blocker.read_line().expect("the blocker's answer"), "200 slept 500 ms");
    // The first sleeper's handler has started: then the second's client resets.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests + 1));
    reset(gone.stream().try_clone().expect("a second handle on the socket"));
    drop(gone);
    assert_eq!(first.read_line().expect("the first's answer"), "200 slept 1000 ms");
    let first_answered = Instant::now();
    assert_eq!(hello.read_line().expect("an answer"), "200 Hello, World!");
    let waited = first_answered.elapsed();
    let departed = server.stats().shedding().departed.get();
    assert_eq!(departed, u64::from(shedding.skip_departed), "{api:?}: departed {departed}");
    (server.stats().requests() - requests, waited)
}

/// The naive io_uring loop hears of a reset no sooner than its readiness siblings, so
/// v7's early reap has nothing to take in here. One operation at a time: once a
/// connection's receive has brought its request, nothing of it is in flight until its
/// answer's send, so the kernel has no completion to report the reset with (tried: with a
/// reap after each early submit, the reaps found the others' receives and sends and
/// nothing of the reset connection's until its answer's send failed with ECONNRESET; its
/// handler still ran). Like epoll's loop, which reads the request before the reset and stops
/// at the short read, it runs the gone client's handler and `/hello` waits for it;
/// with `--skip-departed`, which asks the socket (`poll`) before each handler, both
/// skip it.
#[test]
fn limit_a_client_that_resets_behind_a_slow_handler_is_served_unless_skip_departed() {
    let skip = Shedding { skip_departed: true, ..Shedding::default() };
    let half_a_handler = Duration::from_millis(500);
    for api in [Api::Epoll, Api::IoUring] {
        // The blocker, both sleepers and /hello: the gone client's second of handler too.
        let (handled, waited) = reset_behind_a_slow_handler(api, Shedding::default());
        assert_eq!(handled, 4, "{api:?}: the reset client's handler did not run");
        assert!(waited > half_a_handler, "{api:?}: /hello waited only {waited:?}");
        let (handled, waited) = reset_behind_a_slow_handler(api, skip);
        assert_eq!(handled, 3, "{api:?}: the reset client's handler ran");
        assert!(waited < half_a_handler, "{api:?}: /hello waited {waited:?}");
    }
}
