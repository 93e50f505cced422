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
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use common::stats::Level;
use common::{Dispatcher, accept_failed, handle_connection};

pub use common::Config;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V2_THREAD_PER_CONN.name;
/// Where `cargo run -p v2-thread-per-conn` listens.
pub const DEFAULT_ADDR: &str = registry::V2_THREAD_PER_CONN.addr;

/// v2's command line: only the options every version shares.
pub use common::cli::ServerArgs as Args;

/// Starts v2 from its command line and serves until stopped: what its `main` and
/// `loadgen serve v2-thread-per-conn` both run.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    common::cli::serve(SERVER, args, run)
}

/// Accepts until `config.shutdown` is triggered, one new thread per connection.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let live = dispatcher.stats().level("connection_threads");
    dispatcher.stats().describe("A new thread for every connection: nobody waits, and threads grow with connections, idle or not.");
    tracing::info!("a thread per connection: threads grow with connections");
    let mut next_id: u64 = 0;
    // ANCHOR: accept_loop
    for stream in listener.incoming() {
        if config.shutdown.is_triggered() {
            break;
        }
        match stream {
            Ok(stream) => {
                next_id += 1;
                spawn_connection_thread(next_id, stream, &dispatcher, &config, &live);
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    common::shutdown::finish_connections(&config.shutdown);
    Ok(())
}

// ANCHOR: spawn
/// Serves `stream` on a new thread `conn-<id>`. If the system refuses another thread, the
/// connection is closed and the server goes on accepting.
fn spawn_connection_thread(
    id: u64,
    stream: TcpStream,
    dispatcher: &Arc<Dispatcher>,
    config: &Config,
    live: &Level,
) {
    let (dispatcher, config) = (Arc::clone(dispatcher), config.clone());
    let counted = LiveThread::new(live);
    let spawned = std::thread::Builder::new().name(format!("conn-{id}")).spawn(move || {
        let _counted = counted;
        handle_connection(stream, &dispatcher, &config);
    });
    if let Err(e) = spawned {
        // The closure was dropped unrun, and with it the stream (the client sees the
        // close) and the count.
        tracing::warn!("cannot spawn a thread for connection {id}, closing it: {e}");
    }
}
// ANCHOR_END: spawn

/// One live connection thread in the `connection_threads` level, until dropped: when the
/// thread ends, even by a panic, or when it never started.
struct LiveThread(Level);

impl LiveThread {
    fn new(live: &Level) -> Self {
        live.up();
        Self(live.clone())
    }
}

impl Drop for LiveThread {
    fn drop(&mut self) {
        self.0.down();
    }
}
