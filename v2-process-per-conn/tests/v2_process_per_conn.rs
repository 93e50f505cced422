//! v2 (processes) over real sockets. The server runs as its own binary: forking is only
//! sound in a single-threaded process, and a test binary has many threads.

use common::procfs;
use common::testkit::{
    ChildServer, Client, TIMEOUT, TestServer, hold_idle, listening_socket_inode, socket_inodes,
    spawn_binary, speaks_both_protocols, starvation, wait_until,
};

fn v2_process() -> ChildServer {
    spawn_binary(env!("CARGO_BIN_EXE_v2-process-per-conn"), &[])
}

fn children(server: &ChildServer) -> Vec<u32> {
    procfs::children(server.pid()).expect("the server's /proc entry")
}

/// v1's limit, gone: while client A stays connected, client B is answered at once.
#[test]
fn a_connected_client_no_longer_blocks_the_next_one() {
    let v1 =
        TestServer::start(v1_blocking::SERVER, v1_blocking::Config::default(), v1_blocking::run);
    let v2 = v2_process();
    assert!(!starvation(v1.addr(), 1).unwrap().answered_while_held, "v1 should make B wait");
    assert!(starvation(v2.addr(), 1).unwrap().answered_while_held, "v2 made B wait");
}

#[test]
fn answers_both_protocols_and_names_itself() {
    let server = v2_process();
    speaks_both_protocols(
        &mut Client::connect(server.addr()).unwrap(),
        v2_process_per_conn::SERVER,
    );
}

/// A child serves one connection and holds nothing else: not the listening socket, which
/// the parent alone accepts on (Stevens' `close(listenfd)` in the child).
#[test]
fn a_child_holds_no_copy_of_the_listening_socket() {
    let server = v2_process();
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    let child = children(&server).first().copied().expect("a child serving the connection");
    let listener = listening_socket_inode(server.addr().port()).unwrap().expect("the listener");
    assert!(socket_inodes(server.pid()).unwrap().contains(&listener), "the parent's own copy");
    let mut held = socket_inodes(child).unwrap();
    assert!(!held.contains(&listener), "the child {child} holds the listener: {held:?}");
    // The connection may be open twice (the shutdown keeps a clone); it is one socket.
    held.sort_unstable();
    held.dedup();
    assert_eq!(held.len(), 1, "the child holds only its connection: {held:?}");
}

// ANCHOR: zombies
/// Every child is reaped as it exits: after many short connections, none is left, not
/// even as a zombie (a zombie is still listed as a child until reaped).
#[test]
fn no_zombies_after_many_short_connections() {
    let server = v2_process();
    for _ in 0..50 {
        let mut c = Client::connect(server.addr()).unwrap();
        assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
        c.check_exit();
    }
    let left = || children(&server);
    assert!(wait_until(TIMEOUT, || left().is_empty()), "children left behind: {:?}", {
        left().iter().map(|&pid| (pid, procfs::state(pid).ok())).collect::<Vec<_>>()
    });
}
// ANCHOR_END: zombies

/// Opens a connection, makes one request, and returns the request count that connection's
/// `/stats` reports (that `/stats` request included).
fn requests_seen_by_stats(addr: std::net::SocketAddr) -> Option<u64> {
    let mut c = Client::connect(addr).ok()?;
    assert_eq!(c.get("/hello").ok()?.status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&c.get("/stats").ok()?.body).ok()?;
    stats["requests"].as_u64()
}

// ANCHOR: counters
/// 「다중 접속 서버의 구현 방식」's "processes cannot easily share information", made visible: each child
/// counts only its own requests, so the total never adds up across connections. The same
/// three connections to the thread version add up.
#[test]
fn request_counters_do_not_add_up_across_connections() {
    let forked = v2_process();
    let seen: Vec<Option<u64>> = (0..3).map(|_| requests_seen_by_stats(forked.addr())).collect();
    assert_eq!(seen, [Some(2); 3], "each child sees only its own /hello and /stats");

    let threaded = TestServer::start(
        v2_thread_per_conn::SERVER,
        v2_thread_per_conn::Config::default(),
        v2_thread_per_conn::run,
    );
    let seen: Vec<Option<u64>> = (0..3).map(|_| requests_seen_by_stats(threaded.addr())).collect();
    assert_eq!(seen, [Some(2), Some(4), Some(6)], "threads share one counter");
}
// ANCHOR_END: counters

// ANCHOR: limit
/// The fork version's own limit, pinned: every open connection is a whole process.
#[test]
fn limit_200_idle_connections_make_200_processes() {
    let server = v2_process();
    let idle = hold_idle(server.addr(), 200).unwrap();
    assert!(wait_until(TIMEOUT, || children(&server).len() == 200), "{}", children(&server).len());
    drop(idle);
    assert!(
        wait_until(TIMEOUT, || children(&server).is_empty()),
        "children outlived their clients"
    );
}
// ANCHOR_END: limit

#[test]
fn refuses_to_fork_from_a_multithreaded_process() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dispatcher = std::sync::Arc::new(common::Dispatcher::with_builtin_routes("t"));
    // The test harness runs this on a thread of its own, so there are at least two.
    let error = v2_process_per_conn::run(listener, dispatcher, Default::default()).unwrap_err();
    assert!(error.to_string().contains("single-threaded"), "{error}");
}
