//! v2's timeline, read from its `--trace` file: each connection is served on a thread of
//! its own, named for it, started by the accepting thread with an arrow to it.

use std::collections::BTreeSet;

use common::testkit::Client;
use common::testkit::trace::TracedServer;

/// Three clients at once, each asking for a slow request and a quick one.
fn three_clients_at_once(addr: std::net::SocketAddr) {
    let clients: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connect");
                client.send(b"GET /sleep?ms=20\nGET /hello\n").expect("send");
                [client.read_line(), client.read_line()].map(|answer| answer.expect("answer"))
            })
        })
        .collect();
    for client in clients {
        let answers = client.join().expect("a client thread");
        assert_eq!(answers, ["200 slept 20 ms".to_owned(), "200 Hello, World!".to_owned()]);
    }
}

#[test]
fn each_connection_is_served_on_a_thread_of_its_own() {
    let server = TracedServer::start(env!("CARGO_BIN_EXE_v2-thread-per-conn"), &[]);
    three_clients_at_once(server.addr());
    let trace = server.stop().expect("a trace in the format");

    let served = trace.threads_per_conn(&["read", "decode", "handle", "write"]);
    assert_eq!(served.len(), 3, "{served:?}");
    let mut threads = BTreeSet::new();
    for (conn, on) in &served {
        assert_eq!(on.len(), 1, "connection {conn} was served on {on:?}");
        let thread = *on.first().expect("one thread");
        assert!(threads.insert(thread), "connection {conn} shares its thread with another");
        assert_eq!(trace.thread_name(thread), Some(format!("conn-{conn}").as_str()));
    }
    assert_eq!(trace.spans("handle").count(), 6);

    // The accepting thread started each one, and handed it its connection.
    let spawns: Vec<_> = trace.spans("spawn").collect();
    assert_eq!(spawns.len(), 3, "{spawns:#?}");
    assert!(
        spawns.iter().all(|s| s.name == "thread" && trace.thread_name(s.thread()) == Some("main"))
    );
    let handoffs = trace.handoffs();
    for (conn, on) in &served {
        let arrow = handoffs.iter().find(|(start, _)| start.conn() == Some(*conn));
        let (start, end) = arrow.unwrap_or_else(|| panic!("no arrow to connection {conn}"));
        assert_eq!(trace.thread_name(start.thread()), Some("main"));
        assert!(on.contains(&end.thread()), "connection {conn}'s arrow ends elsewhere");
    }
}
