//! v5 over real sockets: what it removes from v4 (the hand-off per request), and its own
//! limits (a busy loop stalls its connections, and only those; connections are spread by
//! a hash, not by load).

use std::net::TcpListener;

use common::cli::{Sharing, listen};
use common::procfs;
use common::testkit::{
    AFTER_CPU_BURN, CPU_BURN_MS, Client, TIMEOUT, TestServer, dispatcher_naming_threads,
    spawn_binary, speaks_both_protocols_then_exits, wait_until,
};
use v5_reactor_per_core::{Config, Model, SERVER, run};

fn v5(loops: usize) -> TestServer {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort).expect("bind");
    TestServer::on_listener(
        listener,
        dispatcher_naming_threads(SERVER),
        Config::new(Model { loops, ..Model::default() }),
        run,
    )
}

/// Which loop serves this connection: the name of the thread its handlers run on.
fn loop_of(client: &mut Client) -> String {
    client.line("GET /thread").expect("an answer to /thread").trim_start_matches("200 ").to_owned()
}

#[test]
fn answers_both_protocols_and_names_itself() {
    speaks_both_protocols_then_exits(v5(2).addr(), SERVER);
}

// ANCHOR: no_hand_off
/// v4's cost, gone: there every request crosses from the poller to a worker (a dispatch
/// per request at least, and the handler runs on a `worker` thread); here every request
/// of a connection runs on the one loop thread that accepted it, and the loops' own
/// counts add up to every request served.
#[test]
fn requests_are_served_where_they_were_accepted_with_no_hand_off() {
    let v4 = TestServer::with_dispatcher(
        dispatcher_naming_threads(v4_nio::SERVER),
        v4_nio::Config::new(v4_nio::Model { workers: 2, ..Default::default() }),
        v4_nio::run,
    );
    let mut c = Client::connect(v4.addr()).unwrap();
    for _ in 0..5 {
        assert_eq!(loop_of(&mut c), "worker", "v4 runs handlers on its workers");
    }
    assert!(v4.model("dispatches") >= 5, "v4 hands each request to a worker");

    let server = v5(2);
    let mut clients: Vec<Client> =
        (0..6).map(|_| Client::connect(server.addr()).unwrap()).collect();
    for client in &mut clients {
        let first = loop_of(client);
        assert!(first.starts_with("loop-"), "served on {first}");
        for _ in 0..4 {
            assert_eq!(loop_of(client), first, "a connection moved between threads");
        }
    }
    let per_loop = || -> u64 {
        let loops = server.stats().model("loops").expect("model.loops");
        loops.as_array().expect("a list").iter().map(|l| l["requests"].as_u64().unwrap_or(0)).sum()
    };
    assert!(
        wait_until(TIMEOUT, || per_loop() == server.stats().requests()),
        "not every request was served on a loop"
    );
    assert_eq!(per_loop(), 30);
}
// ANCHOR_END: no_hand_off

/// Threads are the loops and the fixed few (main, signals), however many connections.
#[test]
fn threads_are_the_loops_and_stay_flat() {
    let server = spawn_binary(env!("CARGO_BIN_EXE_v5-reactor-per-core"), &["--loops", "3"]);
    let threads = || procfs::status(Some(server.pid())).map(|s| s.threads).unwrap_or(0);
    assert!(wait_until(TIMEOUT, || threads() == 3 + 2), "threads: {}", threads());
    let idle: Vec<Client> = (0..200).map(|_| Client::connect(server.addr()).unwrap()).collect();
    let mut newcomer = Client::connect(server.addr()).unwrap();
    // Each loop accepts from its own queue in its own time: wait until all have.
    let mut active = || -> u64 {
        let stats = newcomer.get("/stats").expect("/stats");
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
        stats["connections"]["active"].as_u64().unwrap_or(0)
    };
    assert!(wait_until(TIMEOUT, || active() == 201), "not every connection was accepted");
    assert_eq!(threads(), 3 + 2, "200 connections added threads");
    drop(idle);
}

/// Opens connections until `wanted` says it has what it needs (at most 64), each with the
/// loop it landed on.
fn connections_until(
    server: &TestServer,
    mut wanted: impl FnMut(&[(Client, String)]) -> bool,
) -> Vec<(Client, String)> {
    let mut clients = Vec::new();
    while !wanted(&clients) {
        assert!(clients.len() < 64, "64 connections all landed on one loop");
        let mut client = Client::connect(server.addr()).expect("connect");
        let on = loop_of(&mut client);
        clients.push((client, on));
    }
    clients
}

// ANCHOR: limit
/// v5's own limit, pinned: a CPU-heavy handler runs on its loop, and every other
/// connection of that loop waits for it, while connections of the other loop are served.
#[test]
fn limit_a_busy_handler_stalls_its_own_loop_and_only_that_one() {
    let server = v5(2);
    // Two connections on one loop, one on the other.
    let mut clients = connections_until(&server, |c| {
        c.len() >= 3
            && c.iter().any(|(_, l)| *l != c[0].1)
            && c.iter().skip(1).any(|(_, l)| *l == c[0].1)
    });
    let busy_loop = clients[0].1.clone();
    let neighbour =
        clients.iter().skip(1).position(|(_, l)| *l == busy_loop).expect("a neighbour") + 1;
    let other = clients.iter().position(|(_, l)| *l != busy_loop).expect("another loop");

    let requests = server.stats().requests();
    clients[0].0.send(format!("GET /cpu?ms={CPU_BURN_MS}\n").as_bytes()).unwrap();
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));
    clients[neighbour].0.send(b"GET /hello\n").unwrap();
    clients[other].0.send(b"GET /hello\n").unwrap();

    assert_eq!(
        clients[other].0.read_line().unwrap(),
        "200 Hello, World!",
        "the other loop stalled too"
    );
    // So the neighbour asked while the handler ran, and the other loop answered meanwhile.
    let cpu_done = clients[0].0.has_answer_waiting().unwrap();
    assert!(!cpu_done, "the other loop's answer came only after the /cpu");
    // The neighbour is served only once the handler is done: its answer comes after the
    // /cpu answer, which is already there to read when it does.
    clients[neighbour].0.set_timeout(AFTER_CPU_BURN).unwrap();
    assert_eq!(clients[neighbour].0.read_line().unwrap(), "200 Hello, World!");
    assert!(clients[0].0.has_answer_waiting().unwrap(), "the busy loop answered its neighbour");
    assert!(clients[0].0.read_line().unwrap().starts_with("200 computed"));
}
// ANCHOR_END: limit

/// SO_REUSEPORT spreads connections by a hash of their addresses, not by load: while one
/// loop is busy, newcomers keep landing on it (and wait) as well as on the idle one.
#[test]
fn connections_are_spread_by_hash_not_by_load() {
    let server = v5(2);
    let mut busy = Client::connect(server.addr()).unwrap();
    let busy_loop = loop_of(&mut busy);
    let requests = server.stats().requests();
    busy.send(format!("GET /cpu?ms={CPU_BURN_MS}\n").as_bytes()).unwrap();
    assert!(wait_until(TIMEOUT, || server.stats().requests() > requests));

    let mut newcomers: Vec<Client> =
        (0..16).map(|_| Client::connect(server.addr()).unwrap()).collect();
    for newcomer in &mut newcomers {
        newcomer.send(b"GET /thread\n").unwrap();
    }
    // Every newcomer landed and asked while the loop was busy.
    assert!(!busy.has_answer_waiting().unwrap(), "the /cpu ended before the newcomers asked");
    // Every newcomer is answered, by the loop the kernel hashed it to. Those on the busy
    // loop are answered only after its /cpu: a loop serves one thing at a time, so when
    // such an answer arrives, the /cpu answer is already there to read.
    let (mut on_busy, mut on_idle) = (0, 0);
    for newcomer in &mut newcomers {
        newcomer.set_timeout(AFTER_CPU_BURN).unwrap();
        if newcomer.read_line().unwrap() == format!("200 {busy_loop}") {
            on_busy += 1;
            let cpu_answered = busy.has_answer_waiting().unwrap();
            assert!(cpu_answered, "a newcomer on the busy loop was served before its /cpu");
        } else {
            on_idle += 1;
        }
    }
    assert!(on_busy > 0 && on_idle > 0, "{on_busy} on the busy loop, {on_idle} on the idle one");
}
