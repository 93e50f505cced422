//! v3's limit, gone: with N workers, N idle clients starve v3's pool but not v4, and a
//! thousand idle connections cost v4 no thread. Alone in its test binary, so the thread
//! counts from /proc are the servers' alone.

use common::procfs;
use common::testkit::{
    TIMEOUT, TestServer, answered_within, hold_idle, starvation, threads_named, wait_until,
};

const WORKERS: usize = 4;

// ANCHOR: vs_v3
#[test]
fn idle_clients_starve_v3_but_not_v4_and_cost_v4_no_threads() {
    let v3_config = v3_thread_pool::Config::new(v3_thread_pool::Model {
        threads: WORKERS,
        ..Default::default()
    });
    let v3 = TestServer::start(v3_thread_pool::SERVER, v3_config, v3_thread_pool::run);
    let on_v3 = starvation(v3.addr(), WORKERS).unwrap();
    assert!(!on_v3.answered_while_held, "v3 answered with all {WORKERS} workers held");
    drop(v3);

    let v4_config = v4_nio::Config::new(v4_nio::Model { workers: WORKERS, ..Default::default() });
    let v4 = TestServer::start(v4_nio::SERVER, v4_config, v4_nio::run);
    let on_v4 = starvation(v4.addr(), WORKERS).unwrap();
    assert!(on_v4.answered_while_held, "v4 made a client wait behind {WORKERS} idle ones");

    // All of v4's threads exist from the start; the pool is built before the first accept.
    let threads = || procfs::status(None).unwrap().threads;
    assert!(wait_until(TIMEOUT, || v4.stats().model("workers").is_some()));
    // And v3's pool threads have finished with their clients and gone.
    assert!(wait_until(TIMEOUT, || threads_named("pool") == 0));
    let before = threads();
    let idle = hold_idle(v4.addr(), 1000).unwrap();
    assert!(wait_until(TIMEOUT, || v4.stats().active() == 1000), "{}", v4.stats().active());
    assert!(answered_within(v4.addr(), TIMEOUT), "a new client waited behind 1000 idle ones");
    assert_eq!(threads(), before, "v4's threads changed with 1000 idle connections");
    drop(idle);
}
// ANCHOR_END: vs_v3
