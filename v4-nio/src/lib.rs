//! v4-nio: I/O multiplexing, built like Tomcat's NIO connector on `mio`.
//!
//! Changed from v3: a worker no longer owns a connection for its whole life. Three kinds
//! of thread share the work:
//!
//! * the [`Acceptor`](acceptor::Acceptor) accepts, makes the socket non-blocking and
//!   queues it for the poller, waiting at `--max-connections` (Tomcat's `maxConnections`);
//! * the [`Poller`](poller::Poller) owns a `mio::Poll` (epoll) watching every idle
//!   connection at once, and hands a connection to a worker only when it is ready;
//! * a [`Worker`](worker::Worker) from a pool of `--workers` reads what is there, answers
//!   every complete request, writes, and gives the connection back to the poller.
//!
//! An idle connection costs no thread: about 380 bytes of this process's memory and the
//! kernel's socket (about 4 KB, measured by `scripts/idle-cost.sh`), so thousands of idle
//! clients no longer starve anyone and the thread count stays flat. What remains:
//! one poller thread and a hand-off per request, and with `--workers 0` (handlers run on
//! the poller thread, the single-threaded event loop) one CPU-heavy request stalls every
//! connection.
//!
//! The design and its names come from the Java article this workspace follows,
//! 「스프링 직접 구현하기 #5: 톰캣 - I/O Multiplexing 구현」, which builds the same connector
//! on a `java.nio` Selector; "the article" in this crate means it. mio is edge-triggered,
//! where Java's Selector is level-triggered; how this design avoids the article's "one
//! ready socket handed to many workers" bug is told in
//! [`poller`] and [`worker`]. `/stats` shows the machinery under `model`.
//!
//! Run it with `cargo run -p v4-nio` (port 8085; `--workers N`, `--max-connections N`).

pub mod acceptor;
pub mod poller;
pub mod worker;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use common::stats::Counter;
use common::{Dispatcher, Stats};

use common::limit::LimitLatch;

use crate::acceptor::Acceptor;
use crate::poller::{Poller, PollerEvent};
use crate::worker::{Bounds, Verdict, Workers};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V4_NIO.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V4_NIO.addr;
/// Workers when none is given: the same 10 as v3's pool, for a fair comparison.
pub const DEFAULT_WORKERS: usize = 10;
pub use common::limit::DEFAULT_MAX_CONNECTIONS;

/// What v4 adds to the shared settings and its command line: the pool size and the
/// connection cap.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// Worker threads; 0 runs every handler on the poller thread (a single-threaded
    /// event loop, where one slow handler stalls every connection)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WORKERS)]
    pub workers: usize,

    /// Most connections open at once; at the cap the acceptor waits for one to close
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = common::cli::at_least_one)]
    pub max_connections: usize,

    /// Answer a ready connection 503 (with Retry-After) on the poller, without running a
    /// handler, when this many jobs already wait for a worker. Unbounded by default
    #[arg(long, value_name = "N")]
    pub max_queue: Option<usize>,
}

impl Default for Model {
    fn default() -> Self {
        Self { workers: DEFAULT_WORKERS, max_connections: DEFAULT_MAX_CONNECTIONS, max_queue: None }
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

/// The counters `/stats` shows under `model`, to watch the machinery work.
#[derive(Debug)]
pub struct Counters {
    /// Times a thread woke the sleeping poller to take an event from its queue.
    pub wakeups: Counter,
    /// Connections handed to a worker (or, with no workers, served on the poller).
    pub dispatches: Counter,
    /// Dispatches that found nothing to read and nothing to write: wasted hand-offs, the
    /// symptom of the article's level-triggered bug.
    pub empty_dispatches: Counter,
    /// Connections a worker gave back to the poller to watch again.
    pub rearms: Counter,
    /// Writes the socket could not take whole: the connection went back to the poller to
    /// wait for WRITABLE instead of holding a worker.
    pub write_waits: Counter,
    /// Readiness reported for a connection that a worker holds; the worker reads until
    /// `WouldBlock`, and the re-arm reports anything left, so these are safely ignored.
    pub events_while_busy: Counter,
    /// Connections closed by the poller for idling past the timeout.
    pub idle_closed: Counter,
    /// Connections closed because a request took longer than the request timeout to
    /// arrive whole (a slowloris client trickling its headers).
    pub request_timeouts: Counter,
    /// Times the acceptor waited because `max_connections` were open.
    pub accept_waits: Counter,
}

impl Counters {
    fn register(stats: &Stats) -> Self {
        Self {
            wakeups: stats.counter("wakeups"),
            dispatches: stats.counter("dispatches"),
            empty_dispatches: stats.counter("empty_dispatches"),
            rearms: stats.counter("rearms"),
            write_waits: stats.counter("write_waits"),
            events_while_busy: stats.counter("events_while_busy"),
            idle_closed: stats.counter("idle_closed"),
            request_timeouts: stats.counter("request_timeouts"),
            accept_waits: stats.counter("accept_waits"),
        }
    }
}

/// Serves until `config.shutdown` is triggered: starts the acceptor and poller
/// threads (the poller hands ready connections to the worker pool, whose verdicts come
/// back through the poller's queue) and waits for them.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let stats = Arc::clone(dispatcher.stats());
    stats.describe("An acceptor, a poller watching every connection with epoll, and a pool of workers serving the ready ones.");
    let counters = Arc::new(Counters::register(&stats));
    let latch = Arc::new(LimitLatch::new(config.model.max_connections));

    let poller = Poller::new(Arc::clone(&stats), config.timeouts(), Arc::clone(&counters))?;
    let handle = poller.handle();
    // A worker reports its verdict to the poller's queue, which wakes the poller.
    let report = handle.clone();
    let report = Arc::new(move |verdict: Verdict| {
        report.send(PollerEvent::from_worker(verdict));
    });
    let bounds = Bounds { shedding: config.shedding, max_queue: config.model.max_queue };
    stats.shedding().settings(config.shedding, config.model.max_queue);
    let workers =
        Workers::new(config.model.workers, dispatcher, Arc::clone(&counters), report, bounds);
    tracing::info!(
        workers = config.model.workers,
        max_connections = config.model.max_connections,
        "acceptor -> poller -> {}",
        if config.model.workers == 0 { "handlers on the poller thread" } else { "worker pool" }
    );
    let poller_thread = spawn("poller", move || poller.run(workers))?;
    let acceptor = Acceptor::new(listener, handle.clone(), latch, counters, config.shutdown);
    let acceptor_result = spawn("acceptor", move || acceptor.run())?.join();

    // The acceptor returns on shutdown (or on a fatal error); the poller follows.
    handle.send(PollerEvent::Shutdown);
    let poller_result = poller_thread.join();
    for result in [acceptor_result, poller_result] {
        result.map_err(|_| io::Error::other("a v4 thread panicked"))??;
    }
    Ok(())
}

fn spawn(
    name: &str,
    body: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(body)
}
