//! v7 over real sockets: what completion I/O with multishot operations, provided buffers
//! and batching changes (system calls per request, buffers held by idle connections,
//! sends per pipelined burst), and the limit it keeps from v5 (a blocking handler stalls
//! its ring).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::cli::{Sharing, listen};
use common::handlers::builtin_routes;
use common::testkit::{
    Client, NO_ANSWER_WAIT, TIMEOUT, TestServer, connect_all, server_has_read, spawn_binary,
    speaks_both_protocols, wait_for, wait_until,
};
use common::{Dispatcher, Request, Response, Stats};
use v7_uring_per_core::{Config, Features, Model, SERVER, run};

/// The built-in routes, `GET /thread`, which names the thread that ran the handler, and
/// `GET /turn`, which numbers the handlers this server ran in the order it ran them.
fn dispatcher() -> Dispatcher {
    let stats = Stats::new(SERVER);
    let turns = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let routes = builtin_routes(&stats)
        .route("GET", "/thread", |_: &Request| {
            Response::text(200, std::thread::current().name().unwrap_or("?").to_owned())
        })
        .route("GET", "/turn", move |_: &Request| {
            let turn = turns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Response::text(200, turn.to_string())
        });
    Dispatcher::new(routes, stats)
}

fn v7(rings: usize) -> TestServer {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 1024, Sharing::ReusePort).expect("bind");
    let server = TestServer::on_listener(
        listener,
        dispatcher(),
        Config::new(Model { rings, ..Model::default() }),
        run,
    );
    // Answered: its rings run, and its figures are registered.
    let mut c = Client::connect(server.addr()).expect("connect");
    assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!");
    server
}

#[test]
fn answers_both_protocols_and_names_itself() {
    let server = v7(2);
    let mut c = Client::connect(server.addr()).unwrap();
    speaks_both_protocols(&mut c, SERVER);
    assert!(c.line("GET /thread").unwrap().starts_with("200 ring-"));
    assert_eq!(c.line("exit").unwrap(), "200 Bye! Closing the connection.");
    assert!(c.is_closed_by_server());
}

// ANCHOR: batching
/// Batching: under keep-alive load from 8 connections, one `io_uring_enter` carries the
/// I/O of several requests (their receives' completions, their sends, the sends'
/// completions). A loop that entered the kernel once per operation would make about two
/// enters per request (a send submitted, then a wait); readiness loops make a `read`
/// and a `write` per request at least (`loadgen syscalls` counts those for v5).
#[test]
fn one_enter_carries_several_requests_under_load() {
    let server = v7(2);
    let (enters, completions, requests) =
        (server.model("enters"), server.model("completions"), server.stats().requests());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).expect("connect");
                for i in 0..200 {
                    let answer = c.line(&format!("GET /echo?msg={i}")).expect("an answer");
                    assert_eq!(answer, format!("200 {i}"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let requests = server.stats().requests() - requests;
    let enters = server.model("enters") - enters;
    let completions = server.model("completions") - completions;
    assert_eq!(requests, 1600);
    let per_request = enters as f64 / requests as f64;
    let per_enter = completions as f64 / enters as f64;
    eprintln!(
        "v7: {enters} enters for {requests} requests: {per_request:.3} enters per request, \
         {per_enter:.2} completions per enter"
    );
    assert!(per_request < 0.75, "{per_request:.3} io_uring_enter calls per request");
}
// ANCHOR_END: batching

/// Provided buffers: 1,000 connections, each with a multishot receive armed, hold no
/// buffer while they are silent (the kernel's head of the buf ring says so), though each
/// ring has only 256; and every one of them is then served from those 256.
#[test]
fn idle_connections_hold_no_buffers() {
    let server = v7(2);
    let (idle, failed) = connect_all(server.addr(), 1000, TIMEOUT).expect("connect");
    assert!(failed.is_empty(), "{} connections failed: {:?}", failed.len(), failed.first());
    assert!(
        wait_until(TIMEOUT, || server.model("connections") == 1000),
        "accepted {} of 1000",
        server.model("connections")
    );
    // A sample of the kernel's head taken after they were all accepted.
    let sweeps = server.model("sweeps");
    assert!(wait_until(TIMEOUT, || server.model("sweeps") >= sweeps + 2), "no sweep");
    assert_eq!(server.model("buffers_in_use"), 0, "idle connections hold buffers");
    let buffers: u64 = {
        let rings = server.stats().model("rings").expect("model.rings");
        rings.as_array().expect("a list").iter().map(|r| r["buffers"].as_u64().unwrap_or(0)).sum()
    };
    assert!(buffers < 1000, "{buffers} buffers: not fewer than the connections");

    // Every connection is served, by the few buffers: a request each, in turn.
    let mut clients: Vec<Client> = idle
        .into_iter()
        .map(|stream| {
            stream.set_nonblocking(false).expect("blocking");
            Client::from_stream(stream)
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_timeout(TIMEOUT).unwrap();
        assert_eq!(c.line(&format!("GET /echo?msg={i}")).unwrap(), format!("200 {i}"));
    }
    let sweeps = server.model("sweeps");
    assert!(wait_until(TIMEOUT, || server.model("sweeps") >= sweeps + 2), "no sweep");
    assert_eq!(server.model("buffers_in_use"), 0, "buffers not given back after use");
}

/// With one buffer per ring, two requests that arrive while the ring is busy find the
/// buf ring empty for the second: its multishot receive ends with ENOBUFS, is counted,
/// and is re-armed once the buffer is back, and both are answered.
#[test]
fn an_empty_buf_ring_ends_a_receive_which_is_re_armed() {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort).expect("bind");
    let model = Model { rings: 1, buffers: 1, ..Model::default() };
    let server = TestServer::on_listener(listener, dispatcher(), Config::new(model), run);
    let mut clients: Vec<Client> =
        (0..3).map(|_| Client::connect(server.addr()).expect("connect")).collect();
    for c in &mut clients {
        assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    }
    let requests = server.stats().requests();
    clients[0].send(b"GET /sleep?ms=500\n").unwrap();
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    // Both arrive during the sleep; the kernel delivers them at the ring's next wait.
    clients[1].send(b"GET /echo?msg=one\n").unwrap();
    clients[2].send(b"GET /echo?msg=two\n").unwrap();
    assert_eq!(clients[0].read_line().unwrap(), "200 slept 500 ms");
    assert_eq!(clients[1].read_line().unwrap(), "200 one");
    assert_eq!(clients[2].read_line().unwrap(), "200 two");
    assert!(server.model("enobufs") >= 1, "no receive found the buf ring empty");
}

// ANCHOR: pipelined
/// Sixteen requests in one write are answered in order, in one send: the answers of a
/// turn go out together, the session's whole outbox at once.
#[test]
fn a_pipelined_burst_is_answered_in_order_in_one_send() {
    let server = v7(1);
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    let sends = server.model("sends");
    let burst: String = (0..16).map(|i| format!("GET /echo?msg=n{i}\n")).collect();
    c.send(burst.as_bytes()).unwrap();
    for i in 0..16 {
        assert_eq!(c.read_line().unwrap(), format!("200 n{i}"));
    }
    assert_eq!(server.model("sends") - sends, 1, "the burst's answers took several sends");
}
// ANCHOR_END: pipelined

/// Which ring serves this connection: the name of the thread its handlers run on.
fn ring_of(client: &mut Client) -> String {
    client.line("GET /thread").expect("an answer to /thread").trim_start_matches("200 ").to_owned()
}

// ANCHOR: limit
/// v7's own limit, pinned: completions change how a ring waits, not where handlers run.
/// A handler that blocks runs on its ring's thread, and every other connection of that
/// ring waits for it, batching or not.
#[test]
fn limit_a_blocking_handler_stalls_every_connection_of_its_ring() {
    let server = v7(1);
    let mut busy = Client::connect(server.addr()).unwrap();
    let mut neighbour = Client::connect(server.addr()).unwrap();
    assert_eq!(ring_of(&mut busy), "ring-0");
    assert_eq!(ring_of(&mut neighbour), "ring-0");

    let requests = server.stats().requests();
    busy.send(b"GET /sleep?ms=4000\n").unwrap();
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    let asked = Instant::now();
    neighbour.set_timeout(NO_ANSWER_WAIT).unwrap();
    neighbour.send(b"GET /hello\n").unwrap();
    let stalled = neighbour.read_line();
    assert!(stalled.is_err(), "the ring answered during the sleep: {stalled:?}");
    // Once the handler returns, both are answered, the sleeper first.
    neighbour.set_timeout(TIMEOUT).unwrap();
    assert_eq!(busy.read_line().unwrap(), "200 slept 4000 ms");
    assert_eq!(neighbour.read_line().unwrap(), "200 Hello, World!");
    assert!(asked.elapsed() >= NO_ANSWER_WAIT);
}
// ANCHOR_END: limit

// ANCHOR: eager
/// An answer does not wait for the handlers after it in its turn. A blocker holds the
/// ring's thread (and shows it a slow handler) while two neighbours write `/hello` and
/// `/sleep?ms=500`: both arrive before the ring's next wait, so one turn takes in both,
/// `/hello` first. Its answer goes out before the sleeper's handler starts, not after
/// it with the turn's other sends: within 100 ms of the blocker's, and before the
/// sleeper's.
#[test]
fn an_answer_is_sent_before_a_slow_handler_behind_it_in_the_turn_runs() {
    let server = v7(1);
    let (mut blocker, mut hello, mut sleeper) = (client(&server), client(&server), client(&server));
    let requests = server.stats().requests();
    blocker.send(b"GET /sleep?ms=1000\n").unwrap();
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    hello.send(b"GET /hello\n").unwrap();
    sleeper.send(b"GET /sleep?ms=500\n").unwrap();
    assert!(
        !blocker.has_answer_waiting().unwrap(),
        "the blocker was answered before the others wrote: not one turn"
    );

    assert_eq!(blocker.read_line().unwrap(), "200 slept 1000 ms");
    let blocker_answered = Instant::now();
    assert_eq!(hello.read_line().unwrap(), "200 Hello, World!");
    let waited = blocker_answered.elapsed();
    assert!(!sleeper.has_answer_waiting().unwrap(), "/hello waited for the sleeper's handler");
    assert!(waited < Duration::from_millis(100), "/hello answered {waited:?} after the blocker");
    assert_eq!(sleeper.read_line().unwrap(), "200 slept 500 ms");
}

/// A client of `server`'s one ring.
fn client(server: &TestServer) -> Client {
    let mut c = Client::connect(server.addr()).expect("connect");
    assert_eq!(ring_of(&mut c), "ring-0");
    c
}
// ANCHOR_END: eager

// ANCHOR: reap_early
/// A client that gives up while its request waits behind a slow handler costs the ring
/// nothing. A blocker holds the ring while three neighbours write (`/sleep?ms=1000`,
/// `/sleep?ms=1000`, `/hello`), so one turn takes in all three; once the first sleeper's
/// handler runs, the second resets. Its request is in its session already (the reset's
/// completion comes only when the kernel runs the ring's deferred work), but the early
/// submit after the first sleeper's handler takes the reset in: its handler never runs,
/// and `/hello` is answered right after the first sleeper, not a second later.
#[test]
fn a_client_that_resets_behind_a_slow_handler_has_its_handler_skipped() {
    let server = v7(1);
    let [mut blocker, mut first, mut gone, mut hello] = std::array::from_fn(|_| client(&server));
    let requests = server.stats().requests();
    blocker.send(b"GET /sleep?ms=300\n").unwrap();
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    first.send(b"GET /sleep?ms=1000\n").unwrap();
    gone.send(b"GET /sleep?ms=1000\n").unwrap();
    hello.send(b"GET /hello\n").unwrap();
    assert_eq!(blocker.read_line().unwrap(), "200 slept 300 ms");
    // The first sleeper's handler has started: then the second's client resets.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests + 1));
    reset(gone);
    assert_eq!(first.read_line().unwrap(), "200 slept 1000 ms");
    let first_answered = Instant::now();
    assert_eq!(hello.read_line().unwrap(), "200 Hello, World!");
    let waited = first_answered.elapsed();
    assert!(waited < Duration::from_millis(500), "/hello waited {waited:?} after the first");
    // The blocker, the first sleeper and /hello: the reset one was never handled.
    assert_eq!(server.stats().requests(), requests + 3, "the reset client's handler ran");
}

/// Closes `client` with a reset (SO_LINGER 0), as a load generator does at its timeout.
fn reset(client: Client) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    nix::sys::socket::setsockopt(client.stream(), nix::sys::socket::sockopt::Linger, &linger)
        .expect("SO_LINGER on a connected socket");
    drop(client);
}
// ANCHOR_END: reap_early

// ANCHOR: first_come
/// A ring serves requests in the order they came, even across its turns. `x` is queued
/// for the next turn by its answer's send completion (no request yet), behind two slow
/// ones, and its next request comes in while the first of them runs: it is served at
/// `x`'s place in that turn, once. `z` writes while the second slow one runs, and `x`
/// writes again only after that answer; the ring gets to them in the turn after, behind
/// a slow one again, and must answer `z` first. (Unmarking a turn's connections as it
/// began, rather than as each was advanced, queued `x` again for that next turn when its
/// request came in, ahead of `z`: `x` was served twice in one round, `z` behind it.)
/// Each step waits for a handler to start; the writes due while it runs have its 600 ms.
#[test]
fn a_request_is_not_served_before_one_that_came_earlier() {
    let server = v7(1);
    let [mut a, mut b, mut x, mut s, mut y, mut z] = std::array::from_fn(|_| client(&server));
    let requests = server.stats().requests();
    let started = |n: u64| wait_until(TIMEOUT, || server.stats().requests() >= requests + n);
    a.send(b"GET /sleep?ms=600\n").unwrap();
    assert!(started(1));
    // Taken in together after a's handler: one turn runs b, then x.
    b.send(b"GET /sleep?ms=600\n").unwrap();
    x.send(b"GET /turn\n").unwrap();
    assert!(started(2));
    // Taken in while b runs: queued before x's answer's send completion queues x.
    s.send(b"GET /sleep?ms=600\n").unwrap();
    y.send(b"GET /sleep?ms=600\n").unwrap();
    assert!(x.read_line().unwrap().starts_with("200 "));
    // The next turn runs s, y, then x: x's request comes in while s runs.
    assert!(started(4));
    x.send(b"GET /turn\n").unwrap();
    assert!(started(5));
    // While y runs: z writes; s, answered, asks again (it leads the turn after).
    z.send(b"GET /turn\n").unwrap();
    assert_eq!(s.read_line().unwrap(), "200 slept 600 ms");
    s.send(b"GET /sleep?ms=600\n").unwrap();
    assert!(x.read_line().unwrap().starts_with("200 "));
    x.send(b"GET /turn\n").unwrap();
    let turn = |c: &mut Client| -> u64 {
        let line = c.read_line().unwrap();
        line.strip_prefix("200 ").and_then(|n| n.parse().ok()).expect("a turn's number")
    };
    let (z_turn, x_turn) = (turn(&mut z), turn(&mut x));
    assert!(z_turn < x_turn, "x's third request ({x_turn}) was served before z's ({z_turn})");
    for c in [&mut a, &mut b, &mut y] {
        assert_eq!(c.read_line().unwrap(), "200 slept 600 ms");
    }
    assert_eq!(s.read_line().unwrap(), "200 slept 600 ms");
}
// ANCHOR_END: first_come

/// The ladder's rungs are one binary with switches: each rung serves both protocols and
/// a 64 KiB body whole (zero-copy sends past 16 KiB included, their bytes held until the
/// kernel's notification), and `/stats` says which features it runs with and which the
/// kernel refused (none, here: this kernel has them all).
#[test]
fn every_rung_of_the_ladder_serves_and_says_what_it_runs() {
    let naive = Features {
        defer_taskrun: false,
        multishot_accept: false,
        multishot_recv: false,
        ..Features::default()
    };
    let rungs = [
        (naive, 0),
        (Features::default(), 50),
        (Features { register_ring_fd: true, ..Features::default() }, 50),
        (Features { zero_copy_over: Some(16 * 1024), ..Features::default() }, 50),
        (Features { sqpoll: true, ..Features::default() }, 50),
    ];
    for (features, batch_wait_us) in rungs {
        let model = Model { rings: 1, features, batch_wait_us, ..Model::default() };
        let server = TestServer::start(SERVER, Config::new(model), run);
        let mut c = Client::connect(server.addr()).expect("connect");
        speaks_both_protocols(&mut c, SERVER);
        let body: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let head =
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
        c.send(head.as_bytes()).expect("send the head");
        c.send(&body).expect("send the body");
        let echoed = c.read_response().expect("the echo");
        assert!(echoed.body == body, "{features:?}: the 64 KiB came back changed");
        let stats = c.get("/stats").expect("/stats");
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
        let model = &stats["model"];
        assert_eq!(model["features"]["multishot_recv"], features.multishot_recv, "{model}");
        assert_eq!(model["features"]["sqpoll"], features.sqpoll, "{model}");
        assert_eq!(model["rings"][0]["refused"], serde_json::json!([]), "{features:?}: {model}");
    }
}

/// A stop while requests are in flight, others are pipelining and many connections are
/// idle: the requests in flight get their answers, everyone is closed, and the process
/// exits cleanly within the shutdown deadline: nothing freed under the kernel's feet
/// would show as a crash (or a wrong answer) here.
#[test]
fn a_stop_under_load_finishes_in_time_and_frees_nothing_early() {
    use nix::sys::signal::Signal;
    let mut server = spawn_binary(env!("CARGO_BIN_EXE_v7-uring-per-core"), &["--rings", "2"]);
    let (idle, failed) = connect_all(server.addr(), 200, TIMEOUT).expect("connect");
    assert!(failed.is_empty());
    let mut sleepers: Vec<Client> =
        (0..3).map(|_| Client::connect(server.addr()).expect("connect")).collect();
    for s in &mut sleepers {
        s.send(b"GET /sleep?ms=1000\n").unwrap();
    }
    let addr = server.addr();
    // Bursts answered in full, so the stop comes while the pipeliners are at work.
    let bursts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pipeliners: Vec<_> = (0..4)
        .map(|_| {
            let bursts = std::sync::Arc::clone(&bursts);
            std::thread::spawn(move || {
                let Ok(mut c) = Client::connect(addr) else { return };
                let burst: Vec<u8> = b"GET /hello\n".repeat(100);
                // Until the server closes on us, between two bursts: errors are the end.
                'bursts: while c.send(&burst).is_ok() {
                    for _ in 0..100 {
                        match c.read_line() {
                            Ok(line) => assert_eq!(line, "200 Hello, World!"),
                            Err(_) => break 'bursts,
                        }
                    }
                    bursts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    // The stop must find work in flight: a sleeper's request taken in by its ring (its
    // bytes gone from the socket) and pipelining under way (four bursts answered).
    wait_for(TIMEOUT, "a sleeper in its handler and four bursts answered", || {
        sleepers.iter().any(|s| server_has_read(s.stream()).unwrap_or(false))
            && bursts.load(std::sync::atomic::Ordering::Relaxed) >= 4
    })
    .expect("work in flight before the stop");
    let stopped = Instant::now();
    server.signal(Signal::SIGTERM).expect("SIGTERM");
    for s in &mut sleepers {
        s.set_timeout(TIMEOUT).unwrap();
        // A ring runs one handler at a time: its sleepers are answered one after another.
        assert_eq!(s.read_line().expect("the answer in flight"), "200 slept 1000 ms");
    }
    let deadline = common::shutdown::DEADLINE + Duration::from_secs(2);
    let status = server.wait_timeout(deadline).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "the server ended with {status:?} {:?} after the signal",
        stopped.elapsed()
    );
    for p in pipeliners {
        p.join().expect("a pipelining client panicked");
    }
    drop(idle);
}

/// The shutdown's deadline path: at the deadline, one client is still sending its request
/// (its multishot receive is armed) and another does not read its answers (a send of
/// several megabytes is in flight). The ring cancels both, reaps their completions, frees
/// the connections and the buf ring, and returns within the deadline and the drain's
/// patience. A connection leaked instead (as it is when the kernel does not complete its
/// operations) would keep its socket open: neither client would see its connection close.
#[test]
fn at_the_deadline_what_is_in_flight_is_cancelled_and_reaped_then_closed() {
    use std::io::{Read, Write};
    let server = v7(1);
    let mut sending = Client::connect(server.addr()).expect("connect");
    // Half a head: the request timeout (20 s by default) outlasts the shutdown's deadline.
    sending.send(b"GET /hello HTTP/1.1\r\n").expect("send");
    // Twenty echoes of a mebibyte each, answered into socket buffers far smaller.
    let body = vec![b'x'; common::codec::MAX_BODY];
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    let burst: Vec<u8> = [head.as_bytes(), &body].concat().repeat(20);
    let mut stuck = std::net::TcpStream::connect(server.addr()).expect("connect");
    stuck.set_write_timeout(Some(TIMEOUT)).expect("a timeout");
    stuck.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
    let writer = {
        let mut stuck = stuck.try_clone().expect("a second handle");
        // Ends when the burst is written, or when the server closes the connection.
        std::thread::spawn(move || stuck.write_all(&burst))
    };
    // Our two connections, the first echo's reply on its way (`sends`: the hello of `v7`,
    // then at least one for the echoes).
    let ready = || server.model("connections") == 2 && server.model("sends") >= 2;
    assert!(wait_until(TIMEOUT, ready), "connections {}", server.model("connections"));
    let stopping = Instant::now();
    drop(server);
    let took = stopping.elapsed();
    assert!(
        took >= common::shutdown::DEADLINE && took < common::shutdown::DEADLINE + TIMEOUT,
        "stopped after {took:?}, not at the deadline"
    );
    assert!(sending.is_closed_by_server(), "the receiving connection outlived the server");
    let _ = writer.join().expect("the writer panicked");
    // What the server sent before it closed, then the end (or a reset: it closed with the
    // rest of the burst unread), never a read that times out.
    let mut echoed = Vec::new();
    match stuck.read_to_end(&mut echoed) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}
