//! v2's own limit, pinned: every open connection costs a thread, idle or not.
//! Alone in its test binary, so the thread count from /proc is this server's alone.

use common::testkit::{TestServer, thread_growth};
use v2_thread_per_conn::{Config, SERVER, run};

// ANCHOR: limit
#[test]
fn limit_200_idle_connections_make_200_more_threads() {
    let server = TestServer::start(SERVER, Config::default(), run);
    let live = || server.model_once_registered("connection_threads");
    let grew = thread_growth(server.addr(), 200, || live() == 200).unwrap();
    // Exactly one thread per connection; a little slack for a thread finishing elsewhere.
    assert!((198..=205).contains(&grew), "threads grew by {grew} for 200 idle connections");
}
// ANCHOR_END: limit
