//! The load engine against real servers on loopback: every mode counts what it should,
//! every kind of error is classified, and open loop catches the stall closed loop hides.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::testkit::TestServer;
use common::{Dispatcher, Request, Response, Stats};
use loadgen::bench::{self, BenchConfig, Wire};

fn v4() -> TestServer {
    TestServer::start(
        v4_nio::SERVER,
        v4_nio::Config::new(v4_nio::Model { workers: 2, ..Default::default() }),
        v4_nio::run,
    )
}

fn config(server: &TestServer, connections: usize, ms: u64) -> BenchConfig {
    BenchConfig::new(server.addr(), connections, Duration::from_millis(ms), "/hello")
}

#[test]
fn keep_alive_pipelined_close_and_line_runs_count_their_requests() {
    let server = v4();
    let runs = [
        config(&server, 4, 300),
        BenchConfig { pipeline: 8, ..config(&server, 2, 300) },
        BenchConfig { close: true, ..config(&server, 2, 300) },
        BenchConfig { wire: Wire::Line, ..config(&server, 2, 300) },
        BenchConfig { threads: 2, ..config(&server, 4, 300) },
    ];
    for run in runs {
        let before = server.stats().requests();
        let s = bench::run(&run).unwrap();
        assert!(s.requests > 0 && s.errors.total() == 0, "{run:?}: {s:?}");
        // The server answered at least what we counted (it may have answered a few more
        // that arrived after the deadline).
        assert!(server.stats().requests() - before >= s.requests, "{run:?}");
        assert!(s.latency_us.p50 > 0 && s.latency_us.p50 <= s.latency_us.max);
        if run.close {
            assert!(s.connections_opened >= s.requests, "a connection per request: {s:?}");
        } else {
            assert_eq!(s.connections_opened, run.connections as u64);
        }
    }
}

#[test]
fn errors_are_classified() {
    // Refused: a port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s = bench::run(&BenchConfig::new(port, 2, Duration::from_millis(200), "/hello")).unwrap();
    assert!(s.errors.refused > 0 && s.requests == 0, "{s:?}");

    // Bad status: a path with no route.
    let server = v4();
    let s =
        bench::run(&BenchConfig { path: "/nowhere".into(), ..config(&server, 2, 200) }).unwrap();
    assert!(s.errors.bad_status > 0 && s.requests == 0, "{s:?}");

    // Timeout: v1 serves one connection at a time, so the second is never answered.
    let v1 = TestServer::start(v1_blocking::SERVER, common::Config::default(), v1_blocking::run);
    let run = BenchConfig {
        timeout: Duration::from_millis(300),
        ..BenchConfig::new(v1.addr(), 2, Duration::from_millis(1000), "/hello")
    };
    let s = bench::run(&run).unwrap();
    assert!(s.requests > 0 && s.errors.timeout > 0, "{s:?}");
    assert_eq!(s.errors.connect_timeout, 0, "{s:?}");

    // Connect timeout, counted per connection and apart from requests: a listener that
    // never accepts, whose queue (backlog 1) is full after a couple of handshakes; the
    // kernel drops the other SYNs.
    let full =
        common::cli::listen("127.0.0.1:0".parse().unwrap(), 1, common::cli::Sharing::Exclusive)
            .unwrap();
    let run = BenchConfig {
        timeout: Duration::from_millis(300),
        warm_up: Duration::ZERO,
        ..BenchConfig::new(full.local_addr().unwrap(), 8, Duration::from_millis(600), "/hello")
    };
    let s = bench::run(&run).unwrap();
    assert!(s.errors.connect_timeout > 0 && s.requests == 0, "{s:?}");
}

/// A starved client is in the tail, not left out of it: against a server that accepts
/// and never answers, every request sent is in the distribution at the timeout, the p99
/// says so, and none is counted answered.
#[test]
fn requests_never_answered_are_in_the_percentiles_at_the_timeout() {
    // The kernel completes the handshakes into the backlog; nobody ever reads them.
    let silent =
        common::cli::listen("127.0.0.1:0".parse().unwrap(), 64, common::cli::Sharing::Exclusive)
            .unwrap();
    let timeout = Duration::from_millis(300);
    let run = BenchConfig {
        timeout,
        warm_up: Duration::ZERO,
        ..BenchConfig::new(silent.local_addr().unwrap(), 4, Duration::from_millis(1000), "/hello")
    };
    let s = bench::run(&run).unwrap();
    assert_eq!((s.requests, s.clients_answered), (0, 0), "{s:?}");
    assert!(s.sent >= 4 && s.errors.timeout >= 4, "{s:?}");
    let timeout_us = timeout.as_micros() as u64;
    assert!(s.latency_us.p99 >= timeout_us && s.latency_us.p50 >= timeout_us, "{s:?}");
    assert_eq!(s.fmt_latency(s.latency_us.p99), "≥ 300.0 ms");

    // Beside answered ones: v1 answers one connection and starves the other, whose
    // requests then set the tail: a p99 at the timeout, not v1's microseconds.
    let v1 = TestServer::start(v1_blocking::SERVER, common::Config::default(), v1_blocking::run);
    let run = BenchConfig {
        timeout,
        ..BenchConfig::new(v1.addr(), 2, Duration::from_millis(1000), "/hello")
    };
    let s = bench::run(&run).unwrap();
    assert!(s.requests > 100 && s.errors.timeout > 0, "{s:?}");
    assert!(s.sent > s.requests, "{s:?}");
    assert_eq!((s.clients_answered, s.clients), (1, 2), "one client served, one starved");
    // The starved share is tiny here (1 request per timeout against thousands answered),
    // so it shows at the very top: the maximum is the timeout.
    assert!(s.latency_us.max >= timeout_us, "{s:?}");
}

/// Coordinated omission, shown. The server stalls once for a second. Closed loop sends
/// nothing during the stall, so it records one slow request among thousands and its
/// p99.9 stays small. Open loop keeps its schedule: every request that fell due during
/// the stall is counted late, and p99.9 shows the stall.
#[test]
fn open_loop_catches_a_stall_that_closed_loop_hides() {
    const STALL: Duration = Duration::from_secs(1);
    let stalling_server = || {
        let start = Instant::now();
        let stalled = AtomicBool::new(false);
        let stats = Stats::new("stalls-once");
        let routes = common::HandlerMapping::new().route("GET", "/hello", move |_: &Request| {
            if start.elapsed() > Duration::from_millis(700)
                && !stalled.swap(true, Ordering::Relaxed)
            {
                std::thread::sleep(STALL);
            }
            Response::text(200, "Hello, World!")
        });
        // v1 serves on one thread, so the stall holds up everything, as a GC pause would.
        TestServer::with_dispatcher(
            Dispatcher::new(routes, stats),
            common::Config::default(),
            v1_blocking::run,
        )
    };
    let run = |rate| {
        let server = stalling_server();
        let config = BenchConfig {
            rate,
            ..BenchConfig::new(server.addr(), 1, Duration::from_secs(3), "/hello")
        };
        let summary = bench::run(&config).unwrap();
        assert_eq!(summary.errors.total(), 0, "{summary:?}");
        summary.latency_us
    };
    let closed = run(None);
    let open = run(Some(500.0));
    let stall_us = STALL.as_micros() as u64;
    assert!(
        closed.max >= stall_us * 9 / 10,
        "closed loop should still see one stalled request: {closed:?}"
    );
    assert!(closed.p999 < stall_us / 10, "closed loop's p99.9 should hide the stall: {closed:?}");
    assert!(open.p999 >= stall_us / 2, "open loop's p99.9 should show the stall: {open:?}");
}

/// A connection the generator gives up on is closed with a reset, so the generator keeps
/// no closing socket (FIN_WAIT2, TIME_WAIT) for it: at thousands of abandoned connections a second (C10k against a
/// starved server) a FIN per connection would use up the ephemeral ports and slow every
/// `connect`, the generator's limit read as the server's. And a connection the kernel
/// completed is never counted a connect timeout.
#[test]
fn abandoned_connections_leave_no_time_wait_on_the_generator_s_side() {
    // The kernel completes the handshakes into the backlog; nobody ever reads them.
    let silent =
        common::cli::listen("127.0.0.1:0".parse().unwrap(), 256, common::cli::Sharing::Exclusive)
            .unwrap();
    let addr = silent.local_addr().unwrap();
    let run = BenchConfig {
        timeout: Duration::from_millis(200),
        warm_up: Duration::ZERO,
        ..BenchConfig::new(addr, 16, Duration::from_millis(700), "/hello")
    };
    let s = bench::run(&run).unwrap();
    assert!(s.errors.timeout >= 16 && s.connections_opened > 16, "{s:?}");
    assert_eq!(s.errors.connect_timeout, 0, "{s:?}");
    // Closed with a FIN, each would linger here in FIN_WAIT2 (this listener never answers
    // the FIN with its own) or TIME_WAIT, holding its port for a minute.
    use common::kernel::TcpState::{FinWait1, FinWait2, TimeWait};
    let closing: Vec<_> = common::testkit::socket_states_to(addr.port())
        .unwrap()
        .into_iter()
        .filter(|state| matches!(state, FinWait1 | FinWait2 | TimeWait))
        .collect();
    assert!(closing.is_empty(), "the generator kept {} closing sockets", closing.len());
}

/// A connection per request keeps sending to the end of the run. The check that asks a
/// socket whether its handshake completed (so a slow generator does not count a connect
/// timeout) once marked a client connected without sending its request: the writable event
/// that would have sent it found the client already connected and did nothing, and the
/// client sat idle to the end. It happened at the first tick that fell between a `connect`
/// and its event, a tenth of a second into the run, so a run of two seconds told it.
#[test]
fn a_connection_per_request_keeps_every_client_sending_to_the_end() {
    let server = v4();
    let run = BenchConfig { close: true, ..config(&server, 2, 2_500) };
    let bench = std::thread::spawn(move || bench::run(&run));
    // Requests answered in the run's last second: a client that stalled sends none.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_400) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = server.stats().requests();
    let summary = bench.join().expect("the bench thread").expect("the bench");
    let late = server.stats().requests() - before;
    assert!(late > 0, "no request in the run's last second: the clients stalled: {summary:?}");
    assert_eq!(summary.errors.total(), 0, "{summary:?}");
}
