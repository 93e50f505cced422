//! The per-core program answers `GET /hello`, and with two loops has two threads that each
//! serve: the kernel spreads new connections over the loops' listeners, so after twenty
//! clients both loop threads have woken to work (their voluntary context switches grew).

mod support;

use support::{Server, asleep, idle_clients, threads, voluntary_switches, wait_until};

#[test]
fn each_of_two_loops_serves() {
    let server = Server::start(env!("CARGO_BIN_EXE_per-core"), &["2"]);
    let pid = server.pid();
    // The address is printed once every listener listens; the second loop's thread may
    // still be starting then. The main thread is the first loop.
    wait_until("two loop threads", || threads(pid).len() == 2);
    let loops: Vec<u32> = threads(pid).into_iter().map(|(tid, _)| tid).collect();
    // Counted from when each sleeps in its wait, so that a count that grows means woken by
    // a connection, not the loop's first sleep.
    wait_until("both loops asleep", || loops.iter().all(|&tid| asleep(pid, tid)));
    let before: Vec<u64> = loops.iter().map(|&tid| voluntary_switches(pid, tid)).collect();
    let _first = server.client_answered_twice();
    // Spread by a hash of the addresses: all 20 on one loop has a chance of 2 in 2^20.
    let _clients = idle_clients(&server, 20);
    for (tid, before) in loops.iter().zip(before) {
        let after = voluntary_switches(pid, *tid);
        assert!(after > before, "loop thread {tid} never woke: {before} -> {after}");
    }
    assert_eq!(threads(pid).len(), 2, "two loops, and no thread besides");
}
