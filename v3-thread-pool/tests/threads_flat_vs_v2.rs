//! v2's limit, gone: 200 connections make v2 grow 200 threads, while v3 stays at its pool
//! size. Alone in its test binary, so the thread counts from /proc are the servers' alone.

use common::testkit::{
    TIMEOUT, TestServer, thread_growth, threads_grown_per_connection, threads_named, wait_until,
};
use v2_thread_per_conn as v2;

// ANCHOR: vs_v2
#[test]
fn connections_grow_v2_threads_but_not_v3s() {
    let v2 = TestServer::start(v2::SERVER, v2::Config::default(), v2::run);
    let v2_grew = threads_grown_per_connection(&v2, 200, "connection_threads");
    // The clients are gone; let their threads finish before counting v3's: the gauge
    // drops as a thread's last act, and the kernel takes the thread away a moment later.
    assert!(wait_until(TIMEOUT, || v2.model("connection_threads") == 0));
    drop(v2);
    assert!(wait_until(TIMEOUT, || threads_named("conn-") == 0), "v2's threads outlived it");

    let threads = 8;
    let config =
        v3_thread_pool::Config::new(v3_thread_pool::Model { threads, ..Default::default() });
    let v3 = TestServer::start(v3_thread_pool::SERVER, config, v3_thread_pool::run);
    let model = |name: &str| v3.model_once_registered(name);
    // The pool is built when `run` starts on the server thread; count from there.
    assert!(wait_until(TIMEOUT, || model("pool_size") == threads as u64));
    // Settled: every worker holds a connection and the other 192 wait in the queue.
    let settled = || model("busy_workers") == 8 && model("queued_connections") == 192;
    let v3_grew = thread_growth(v3.addr(), 200, settled).unwrap();

    assert!((198..=205).contains(&v2_grew), "v2 grew {v2_grew} threads for 200 connections");
    assert_eq!(v3_grew, 0, "v3 grew {v3_grew} threads; its pool of {threads} was made at start");
    assert_eq!(model("pool_size"), threads as u64);
}
// ANCHOR_END: vs_v2
