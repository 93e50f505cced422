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
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use common::blocking::incoming;
use common::overload::shedder::Shedder;
use common::{Dispatcher, accept_failed, handle_connection, trace};
use threadpool::ThreadPool;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V3_THREAD_POOL.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V3_THREAD_POOL.addr;
/// The pool size when none is given: the fixed pool of 10 of the Java article
/// (「스프링 직접 구현하기 #5」), whose v3 this is.
pub const DEFAULT_THREADS: usize = 10;

/// What v3 adds to the shared settings and its command line: the pool size.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// Worker threads in the pool: the most connections served at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS,
          value_parser = common::cli::thread_count())]
    pub threads: usize,

    /// Answer a newcomer 503 (with Retry-After) at once when this many accepted
    /// connections already wait for a worker, instead of queueing it too. Unbounded by
    /// default, to show what an unbounded queue does
    #[arg(long, value_name = "N")]
    pub max_queue: Option<usize>,
}

impl Default for Model {
    fn default() -> Self {
        Self { threads: DEFAULT_THREADS, max_queue: None }
    }
}

/// Its settings: the shared ones, and [`Model`]'s in `model`.
pub type Config = common::Config<Model>;

/// Its command line: the shared options and [`Model`]'s.
pub type Args = common::cli::Args<Model>;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    common::cli::serve(SERVER, args, run)
}

/// Accepts until `config.shutdown` is triggered; the pool serves the connections.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    // Every worker is named `pool`, so a log line or `top -H` shows which did the work.
    let pool = threadpool::Builder::new()
        .num_threads(config.model.threads)
        .thread_name("pool".into())
        .build();
    dispatcher.stats().gauges(
        &pool,
        &[
            ("pool_size", ThreadPool::max_count),
            ("busy_workers", ThreadPool::active_count),
            ("queued_connections", ThreadPool::queued_count),
            // The threadpool crate replaces a worker that panics; this counts them.
            ("worker_panics", ThreadPool::panic_count),
        ],
    );
    dispatcher.stats().describe("A fixed pool of threads, each serving one whole connection: idle clients can hold every thread.");
    dispatcher.stats().shedding().settings(config.shedding, config.model.max_queue);
    let shedder =
        config.model.max_queue.map(|_| Shedder::start(Arc::clone(&dispatcher))).transpose()?;
    tracing::info!(threads = pool.max_count(), "a fixed pool serves whole connections");
    // ANCHOR: accept_loop
    for accepted in incoming(&listener) {
        if config.shutdown.is_triggered() {
            break;
        }
        match accepted {
            Ok((stream, conn)) => {
                // When it started waiting, for `--max-queue-wait`: taken here, not by the
                // worker, which would see no wait at all.
                let accepted = Instant::now();
                let Some(stream) = admit(stream, &pool, config.model.max_queue, shedder.as_ref())
                else {
                    continue;
                };
                let (dispatcher, server) = (Arc::clone(&dispatcher), config.shared());
                // Queued until a worker is free, then served by it to the end.
                let handoff = trace::handoff(conn);
                pool.execute(move || {
                    let _job = trace::job(handoff);
                    handle_connection(stream, &dispatcher, &server, accepted);
                });
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    common::shutdown::finish_connections(&config.shutdown);
    Ok(())
}

// ANCHOR: bounded_queue
/// The pool's queue, bounded: past `max_queue` connections waiting for a worker, a
/// newcomer goes to the `shedder` to be answered 503 at once (counted `shed`) instead of
/// waiting for a worker it would not get in time; `None` when it was refused. Without a
/// bound (the default) every connection queues, however long the queue.
fn admit(
    stream: TcpStream,
    pool: &ThreadPool,
    max_queue: Option<usize>,
    shedder: Option<&Shedder>,
) -> Option<TcpStream> {
    match (max_queue, shedder) {
        (Some(max), Some(shedder)) if pool.queued_count() >= max => {
            shedder.refuse(stream);
            None
        }
        _ => Some(stream),
    }
}
// ANCHOR_END: bounded_queue
