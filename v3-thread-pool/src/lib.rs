//! v3-thread-pool: a fixed pool of threads serving whole connections.
//!
//! Changed from v2: the accepting thread hands each connection to a pool of `--threads`
//! workers (the `threadpool` crate) instead of spawning a thread for it. Threads no longer
//! grow with connections, and no connection pays for a thread's creation. But a worker
//! still owns its connection until the client leaves, blocked in `read` while the client
//! is idle: `--threads` idle clients take every worker, and the next client waits in the
//! pool's queue, accepted but unanswered. Version 4 frees the workers from idle clients.
//!
//! `/stats` shows `model.pool_size`, `model.busy_workers` and `model.queued_connections`.
//! Run it with `cargo run -p v3-thread-pool` (port 8084; `--threads N`).

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use common::{Dispatcher, accept_failed, handle_connection};
use threadpool::ThreadPool;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = "v3-thread-pool";
/// Where `cargo run -p v3-thread-pool` listens.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8084";
/// The pool size when none is given: the article's fixed pool of 10.
pub const DEFAULT_THREADS: usize = 10;

/// v3's settings: the shared ones and the pool size.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: common::Config,
    /// Worker threads in the pool; at least 1.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { server: common::Config::default(), threads: DEFAULT_THREADS }
    }
}

impl AsRef<common::Config> for Config {
    fn as_ref(&self) -> &common::Config {
        &self.server
    }
}

/// Accepts until `config.server.shutdown` is triggered; the pool serves the connections.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    // Every worker is named `pool`, so a log line or `top -H` shows which did the work.
    let pool = threadpool::Builder::new()
        .num_threads(config.threads.max(1))
        .thread_name("pool".into())
        .build();
    register_pool_gauges(&dispatcher, &pool);
    tracing::info!(threads = pool.max_count(), "a fixed pool serves whole connections");
    // ANCHOR: accept_loop
    for stream in listener.incoming() {
        if config.server.shutdown.is_triggered() {
            break;
        }
        match stream {
            Ok(stream) => {
                let (dispatcher, server) = (Arc::clone(&dispatcher), config.server.clone());
                // Queued until a worker is free, then served by it to the end.
                pool.execute(move || handle_connection(stream, &dispatcher, &server));
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    common::shutdown::finish_connections(&config.server.shutdown);
    Ok(())
}

fn register_pool_gauges(dispatcher: &Dispatcher, pool: &ThreadPool) {
    let stats = dispatcher.stats();
    let p = pool.clone();
    stats.gauge("pool_size", move || p.max_count() as u64);
    let p = pool.clone();
    stats.gauge("busy_workers", move || p.active_count() as u64);
    let p = pool.clone();
    stats.gauge("queued_connections", move || p.queued_count() as u64);
    let p = pool.clone();
    // The threadpool crate replaces a worker that panics; this counts those replacements.
    stats.gauge("worker_panics", move || p.panic_count() as u64);
}
