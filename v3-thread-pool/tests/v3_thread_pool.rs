//! v3 over real sockets: the basics, a panicking handler, and v3's own limit.

use common::testkit::{Client, TIMEOUT, TestServer, starvation, wait_until};
use common::{Dispatcher, Request, Response, Stats};
use v3_thread_pool::{Config, Model, SERVER, run};

fn pool_of(threads: usize) -> Config {
    Config::new(Model { threads, ..Default::default() })
}

#[test]
fn answers_both_protocols_and_shows_its_pool() {
    let server = TestServer::start(SERVER, pool_of(3), run);
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    let r = c.get("/stats").unwrap();
    assert_eq!(r.header("server"), Some(SERVER));
    let stats: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(stats["model"]["pool_size"], 3);
    assert_eq!(stats["model"]["busy_workers"], 1, "this very connection: {stats}");
}

// ANCHOR: limit
/// v3's own limit, pinned: with a pool of N, N idle clients hold every worker, and a new
/// client is accepted but not answered until one of them leaves.
#[test]
fn limit_n_idle_clients_starve_a_pool_of_n() {
    let server = TestServer::start(SERVER, pool_of(4), run);
    let seen = starvation(server.addr(), 4).unwrap();
    assert!(!seen.answered_while_held, "a pool of 4 answered a 5th client while 4 were held");
    assert!(seen.answered_after_release, "the 5th client was never answered");
}
// ANCHOR_END: limit

// ANCHOR: panic
/// A handler that panics costs its request a 500, never a worker: afterwards the pool
/// still serves as many clients at once as it has workers.
#[test]
fn a_panicking_handler_leaves_the_pool_at_full_strength() {
    let stats = Stats::new(SERVER);
    let routes = common::handlers::builtin_routes(&stats).route(
        "GET",
        "/panic",
        |_: &Request| -> Response { panic!("a bug in a handler") },
    );
    let dispatcher = Dispatcher::new(routes, stats);
    let server = TestServer::with_dispatcher(dispatcher, pool_of(3), run);

    for _ in 0..6 {
        let mut c = Client::connect(server.addr()).unwrap();
        assert_eq!(c.get("/panic").unwrap().status, 500);
        assert_eq!(c.get("/hello").unwrap().status, 200, "the connection survives too");
    }
    // Three clients served at the same time need three live workers.
    let held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::connect(server.addr()).unwrap();
            assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
            c
        })
        .collect();
    assert!(wait_until(TIMEOUT, || server.model("busy_workers") == 3));
    assert_eq!(server.model("pool_size"), 3);
    assert_eq!(server.model("worker_panics"), 0, "no worker died");
    drop(held);
}
// ANCHOR_END: panic
