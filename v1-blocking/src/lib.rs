//! v1-blocking: the iterative server, where the series starts.
//!
//! One thread does everything: `accept` a client, serve it until it leaves, and only then
//! `accept` the next. Both `accept` and `read` block, so while one client is connected
//! (even an idle one) every other client waits in the kernel's listen backlog: its
//! connection is established, its request sits unread. Version 2 removes that limit.
//!
//! Run it with `cargo run -p v1-blocking` (port 8081), then `curl -v
//! http://127.0.0.1:8081/hello`, or `nc 127.0.0.1 8081` and type `GET /hello`.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use common::blocking::incoming;
use common::{Dispatcher, accept_failed, handle_connection, trace};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V1_BLOCKING.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V1_BLOCKING.addr;

/// Its settings: only the shared ones.
pub type Config = common::Config;

/// Its command line: only the options every version shares.
pub type Args = common::cli::Args;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    common::cli::serve(SERVER, args, run)
}

/// Serves clients one after another until `config.shutdown` is triggered. A shutdown
/// ends the connection being served once its request in flight is answered.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    dispatcher.stats().describe("One thread serves one client at a time; the next waits in the listen backlog until it leaves.");
    dispatcher.stats().shedding().settings(config.shedding, None);
    tracing::info!("one client at a time: the next waits in the backlog until this one leaves");
    // ANCHOR: accept_loop
    for accepted in incoming(&listener) {
        if config.shutdown.is_triggered() {
            break;
        }
        match accepted {
            // Serving happens right here, on the accepting thread: no other client is
            // accepted until this call returns. v1's queue is the kernel's backlog, which
            // it cannot see into: timed from the accept, no request waits, and
            // `--max-queue-wait` refuses none (`--skip-departed` still looks).
            Ok((stream, conn)) => {
                let _serving = trace::serving(conn);
                handle_connection(stream, &dispatcher, &config, Instant::now());
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    Ok(())
}
