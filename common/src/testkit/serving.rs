//! Which thread served each connection, read from a trace: the checks of the models that
//! keep a connection on one thread for its whole life (v5's loops, v7's rings) and of the
//! loops that serve everyone on one (v4-syscalls), beside [`super::trace`]'s.

use std::collections::{BTreeMap, BTreeSet};

use super::trace::{Thread, Trace};

/// What a connection's life leaves in a trace, besides its accept and close: the spans of
/// serving it.
pub const SERVED: [&str; 4] = ["read", "decode", "handle", "write"];

/// Each connection with the one thread that accepted it, served it (its spans and
/// instants of [`SERVED`]) and closed it. Fails naming the first connection seen on two
/// threads, or served but never accepted, or accepted on one thread and served on
/// another.
pub fn one_thread_per_conn(trace: &Trace) -> Result<BTreeMap<u64, Thread>, String> {
    let mut threads: BTreeMap<u64, BTreeSet<Thread>> = BTreeMap::new();
    let lifelong = ["accept", "close"];
    for event in &trace.events {
        let cat = event.cat.as_str();
        if !(SERVED.contains(&cat) || lifelong.contains(&cat)) {
            continue;
        }
        if let Some(conn) = event.conn().filter(|&conn| conn > 0) {
            threads.entry(conn).or_default().insert(event.thread());
        }
    }
    let accepted: BTreeSet<u64> = trace.instants("accept").filter_map(|a| a.conn()).collect();
    let mut owners = BTreeMap::new();
    for (conn, on) in threads {
        if !accepted.contains(&conn) {
            return Err(format!("connection {conn} was served but its accept is not recorded"));
        }
        let mut on = on.into_iter();
        match (on.next(), on.next()) {
            (Some(thread), None) => owners.insert(conn, thread),
            (first, second) => {
                return Err(format!("connection {conn} is on {first:?} and {second:?}"));
            }
        };
    }
    Ok(owners)
}

/// The threads that waited in `call` (`epoll_wait`, `io_uring_enter`).
pub fn threads_waiting_in(trace: &Trace, call: &str) -> BTreeSet<Thread> {
    trace.spans("wait").filter(|wait| wait.name == call).map(|wait| wait.thread()).collect()
}

/// The scenario v5 and v7 share: `binary` started with `args` (two loops or rings,
/// threads named `{lane}-0` and `{lane}-1`, each waiting in `call`), sixteen clients
/// connected at once and asking `/hello` three rounds over; then each client's connection
/// is served by one thread for its whole life, both threads serve some, and each waits in
/// `call` on its own. Returns the trace and which thread served each client's connection,
/// for the version's own further checks.
pub fn every_connection_stays_on_one_of_two(
    binary: &str,
    args: &[&str],
    lane: &str,
    call: &str,
) -> (Trace, BTreeMap<u64, Thread>) {
    use super::Client;
    use super::trace::TracedServer;
    // Connections hashed over two sockets all land on one with odds of 1 in 2^15.
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 3;
    let server = TracedServer::start(binary, args);
    // All at once, as a load generator opens them, so both threads' sockets get some.
    let streams: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(server.addr()).expect("connect"))
        .collect();
    let mut clients: Vec<Client> = streams.into_iter().map(Client::from_stream).collect();
    // Round after round over every client: each thread serves its connections interleaved.
    for _ in 0..ROUNDS {
        for client in &mut clients {
            assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
        }
    }
    drop(clients);
    let trace = server.stop().expect("a trace in the format");
    let mut owners = one_thread_per_conn(&trace).expect("a connection left its thread");
    // The clients', not the shutdown's own connect, which may wake a thread.
    owners.retain(|&conn, _| trace.spans("handle").any(|h| h.conn() == Some(conn)));
    assert_eq!(owners.len(), CLIENTS, "connections served: {owners:?}");
    let threads: BTreeSet<_> = owners.values().copied().collect();
    let names: BTreeSet<_> = threads.iter().filter_map(|&t| trace.thread_name(t)).collect();
    let expected = BTreeSet::from([format!("{lane}-0"), format!("{lane}-1")]);
    let names: BTreeSet<String> = names.into_iter().map(str::to_owned).collect();
    assert_eq!(names, expected, "both serve connections: {owners:?}");
    assert_eq!(threads_waiting_in(&trace, call), threads, "each waits in {call} on its own");
    for (conn, thread) in &owners {
        let handled = trace.spans("handle").filter(|h| h.conn() == Some(*conn));
        let names: Vec<_> = handled.map(|h| (h.name.as_str(), h.thread())).collect();
        assert_eq!(names, vec![("GET /hello", *thread); ROUNDS], "connection {conn}");
    }
    (trace, owners)
}
