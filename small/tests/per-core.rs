//! The per-core program answers `GET /hello`, and with two loops has two threads that each
//! serve: the kernel spreads new connections over the loops' listeners, so after twenty
//! clients both loop threads have woken to work (their voluntary context switches grew).

mod support;

use support::{Server, idle_clients, threads, voluntary_switches, wait_until};

#[test]
fn each_of_two_loops_serves() {
    let server = Server::start(env!("CARGO_BIN_EXE_per-core"), &["2"]);
    let pid = server.pid();
    // The address is printed once every listener listens; the threads start just after.
    let loop_threads = || -> Vec<u32> {
        threads(pid).into_iter().filter(|(_, name)| name.starts_with("loop")).map(|t| t.0).collect()
    };
    wait_until("two loop threads", || loop_threads().len() == 2);
    let loops = loop_threads();
    let before: Vec<u64> = loops.iter().map(|&tid| voluntary_switches(pid, tid)).collect();
    let _first = server.client_answered_twice();
    // Spread by a hash of the addresses: all 20 on one loop has a chance of 2 in 2^20.
    let _clients = idle_clients(&server, 20);
    for (tid, before) in loops.iter().zip(before) {
        let after = voluntary_switches(pid, *tid);
        assert!(after > before, "loop thread {tid} never woke: {before} -> {after}");
    }
    assert_eq!(threads(pid).len(), 1 + 2, "the main thread (waiting) and the two loops");
}
