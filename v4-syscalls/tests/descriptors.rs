//! What the kernel interface changes, with the model held still: v4-nio with `--workers 0`
//! is this same single-threaded loop on epoll (through mio). Written on `select`, the loop
//! cannot watch a descriptor numbered 1,024 or more, and refuses such connections while
//! serving the others; on epoll it watches 10,000 idle connections as easily as one. The
//! servers run as child processes, so their descriptor numbers are theirs alone.

use common::testkit::{Client, TIMEOUT, hold_idle, spawn_binary, wait_until};

const BINARY: &str = env!("CARGO_BIN_EXE_v4-syscalls");

/// Raises this process's descriptor limit to its hard limit, for the client ends.
fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

/// The server's own figure `name` under `model`, asked on `client`'s connection.
fn model(client: &mut Client, name: &str) -> u64 {
    let stats = client.get("/stats").expect("/stats");
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    stats["model"][name].as_u64().unwrap_or(0)
}

// ANCHOR: select_limit
#[test]
fn limit_select_refuses_descriptors_past_fd_setsize_and_serves_the_others() {
    raise_descriptor_limit();
    let server = spawn_binary(BINARY, &["--api", "select", "--backlog", "2048"]);
    // The first connection gets a low descriptor, and keeps it.
    let mut first = Client::connect(server.addr()).expect("connect");
    assert_eq!(first.line("GET /hello").expect("an answer"), "200 Hello, World!");
    // 1,100 more: the server's descriptors climb past 1,023 on the way.
    let idle = hold_idle(server.addr(), 1_100).expect("1,100 connections");
    assert!(
        wait_until(TIMEOUT, || model(&mut first, "refused") > 0),
        "no connection refused past FD_SETSIZE; watched: {}",
        model(&mut first, "watched")
    );
    // It refused only what did not fit, and serves what did.
    let watched = model(&mut first, "watched");
    assert!((1_000..=1_024).contains(&watched), "watched {watched} descriptors");
    assert_eq!(first.line("GET /hello").expect("still served"), "200 Hello, World!");
    // Once the idle clients leave, newcomers get low descriptors and are served again.
    drop(idle);
    assert!(
        wait_until(TIMEOUT, || model(&mut first, "watched") < 10),
        "the idle connections never closed"
    );
    let mut newcomer = Client::connect(server.addr()).expect("connect");
    assert_eq!(newcomer.line("GET /hello").expect("an answer"), "200 Hello, World!");
}
// ANCHOR_END: select_limit

#[test]
fn epoll_watches_ten_thousand_idle_connections() {
    const IDLE: usize = 10_000;
    let limit = raise_descriptor_limit();
    // Our ends of these and of the other test's 1,100, which may run beside it.
    assert!(limit > IDLE as u64 + 1_300, "the descriptor limit ({limit}) is too low");
    let server = spawn_binary(BINARY, &["--api", "epoll", "--backlog", "4096"]);
    let idle = hold_idle(server.addr(), IDLE).expect("10,000 connections");
    let mut newcomer = Client::connect(server.addr()).expect("connect");
    assert!(
        wait_until(TIMEOUT, || model(&mut newcomer, "watched") == IDLE as u64 + 2),
        "watched: {} (expected every connection, the newcomer and the listener)",
        model(&mut newcomer, "watched")
    );
    assert_eq!(model(&mut newcomer, "refused"), 0);
    assert_eq!(newcomer.line("GET /hello").expect("an answer"), "200 Hello, World!");
    drop(idle);
}
