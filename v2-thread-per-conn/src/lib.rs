//! v2-thread-per-conn: a thread per connection.
//!
//! Changed from v1: the accepting thread no longer serves. It spawns a thread named
//! `conn-N` for each accepted connection and goes straight back to `accept`, so a client
//! never waits for another. The price: every open connection holds a thread (its stack,
//! its kernel task, its share of context switches) whether it is busy or idle, and every
//! connection pays for a thread's creation. `/stats` shows the live connection threads
//! under `model.connection_threads`. Version 3 caps the threads with a pool.
//!
//! Run it with `cargo run -p v2-thread-per-conn` (port 8082).

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use common::blocking::incoming;
use common::trace::{self, Cat};
use common::{Dispatcher, accept_failed, handle_connection};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V2_THREAD_PER_CONN.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V2_THREAD_PER_CONN.addr;

/// Its settings: only the shared ones.
pub type Config = common::Config;

/// Its command line: only the options every version shares.
pub type Args = common::cli::Args;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    common::cli::serve(SERVER, args, run)
}

/// Accepts until `config.shutdown` is triggered, one new thread per connection.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let live = dispatcher.stats().level("connection_threads");
    dispatcher.stats().describe("A new thread for every connection: nobody waits, and threads grow with connections, idle or not.");
    dispatcher.stats().shedding().settings(config.shedding, None);
    tracing::info!("a thread per connection: threads grow with connections");
    let mut next_id: u64 = 0;
    // ANCHOR: accept_loop
    for accepted in incoming(&listener) {
        if config.shutdown.is_triggered() {
            break;
        }
        match accepted {
            Ok((stream, conn)) => {
                let (dispatcher, server) = (Arc::clone(&dispatcher), config.shared());
                let accepted = Instant::now();
                // Counted in `connection_threads` until the thread ends, even by a panic.
                let counted = live.hold();
                next_id += 1;
                let thread = std::thread::Builder::new().name(format!("conn-{next_id}"));
                let spawning = trace::span(Cat::Spawn, "thread").conn(conn);
                let handoff = spawning.hand_off();
                let spawned = thread.spawn(move || {
                    let _counted = counted;
                    trace::taken(handoff);
                    let _serving = trace::serving(conn);
                    handle_connection(stream, &dispatcher, &server, accepted);
                });
                drop(spawning);
                // Refused (no memory, or a thread limit): the closure is dropped unrun,
                // and with it the stream (the client sees the close) and the count.
                if let Err(e) = spawned {
                    tracing::warn!(
                        "cannot spawn a thread for connection {next_id}, closing it: {e}"
                    );
                }
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    common::shutdown::finish_connections(&config.shutdown);
    Ok(())
}
