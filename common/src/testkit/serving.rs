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
