//! v5-reactor-per-core: an event loop per core, as nginx's workers do it (Netty's event
//! loop group is the same design, by default with two loops per core).
//!
//! Changed from v4: no acceptor thread, no poller handing connections to a pool. `--loops`
//! threads (one per core by default) each own a `mio::Poll`, a listening socket of their
//! own on the same address (`SO_REUSEPORT`: the kernel spreads new connections among the
//! sockets by a hash of their addresses), and every connection they accept, for its whole
//! life. A ready connection is served right there, by the same turn v4's workers run
//! ([`common::evented::Connection::serve_turn`]): no channel send, no wake-up, no
//! `epoll_ctl` re-arm per request, and no lock on the request path. What the loops still
//! share per request is one atomic add, the process-wide request count in [`Stats`]. The
//! loop is [`common::event_loop`], the one v4-syscalls runs on a single thread; what is
//! v5's own is a loop per core, a socket per loop, and [`waiter::Mio`], what the loop
//! waits with.
//!
//! What it gives up: handlers run on the loop, so a blocking (`/sleep`) or CPU-heavy
//! (`/cpu`) request stalls every connection of its loop, and only those; and connections
//! are spread by a hash, not by load, so a busy loop keeps receiving its share of
//! newcomers while another idles. Version 6 writes a connection as straight-line async
//! code on tokio, whose worker threads share one I/O driver instead of a loop each.
//!
//! `/stats` shows each loop under `model.loops`. Run it with
//! `cargo run -p v5-reactor-per-core` (port 8087; `--loops N`, `--max-connections N`).

pub mod waiter;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use common::cli::{Sharing, Start};
use common::event_loop::{self, LoopCounters, Shared};
use common::{Dispatcher, Stats};
use serde_json::json;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V5_REACTOR_PER_CORE.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V5_REACTOR_PER_CORE.addr;
pub use common::limit::DEFAULT_MAX_CONNECTIONS;

/// What v5 adds to the shared settings and its command line: the loops and the cap.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// Event loops (threads), one per core by default, each with its own listening socket
    /// and connections
    #[arg(long, value_name = "N", default_value_t = common::server::cores(),
          value_parser = common::cli::thread_count())]
    pub loops: usize,

    /// Most connections open at once, across all loops; at the cap, newcomers wait in the
    /// kernel's backlog
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = common::cli::at_least_one)]
    pub max_connections: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self { loops: common::server::cores(), max_connections: DEFAULT_MAX_CONNECTIONS }
    }
}

/// Its settings: the shared ones, and [`Model`]'s in `model`.
pub type Config = common::Config<Model>;

/// Its command line: the shared options and [`Model`]'s.
pub type Args = common::cli::Args<Model>;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    let start = Start { sharing: Sharing::ReusePort, ..Start::default() };
    let (listener, dispatcher, config) = common::cli::start(SERVER, args, start)?;
    // Announced only once every socket listens: a client that connects the moment it
    // reads the address is then spread over all of them, not queued on the first.
    let listeners = loop_sockets(listener, &config)?;
    common::cli::announce(SERVER, &listeners[0])?;
    let served = run_loops(listeners, dispatcher, config);
    // `cli::serve` writes the `--trace` file after its run; this start is v5's own. Written
    // however the loops ended: a trace of a failure is wanted too.
    common::trace::finish();
    Ok(served?)
}

/// One loop's entry in `/stats`'s `model.loops`.
fn snapshot(counters: &LoopCounters) -> serde_json::Value {
    let (wakeups, events) = (counters.waits.get(), counters.events.get());
    json!({
        "connections": counters.connections.get(),
        "accepted": counters.accepted.get(),
        "requests": counters.requests.get(),
        "wakeups": wakeups,
        "events_per_wakeup": if wakeups == 0 { 0.0 } else { events as f64 / wakeups as f64 },
    })
}

/// Serves until `config.shutdown` is triggered: one thread per loop, named
/// `loop-0`, `loop-1`, …, each with its own socket on `listener`'s address.
///
/// `listener` must have been bound with `SO_REUSEPORT` ([`Sharing::ReusePort`]): loop 0
/// takes it, and every other loop binds a socket of its own next to it.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    run_loops(loop_sockets(listener, &config)?, dispatcher, config)
}

// ANCHOR: run
/// `listener` and a socket of its own for every other loop, all listening on its address.
pub fn loop_sockets(listener: TcpListener, config: &Config) -> io::Result<Vec<TcpListener>> {
    common::cli::reuse_port_group(listener, config.model.loops, config.backlog, SERVER)
}

/// Serves on `listeners`, a loop each (see [`loop_sockets`]), until the shutdown.
pub fn run_loops(
    listeners: Vec<TcpListener>,
    dispatcher: Arc<Dispatcher>,
    config: Config,
) -> io::Result<()> {
    let loops = listeners.len();
    let shared = Shared::new(dispatcher, &config, config.model.max_connections);
    shared.dispatcher.stats().shedding().settings(config.shedding, None);
    let counters: Vec<Arc<LoopCounters>> = (0..loops).map(|_| Arc::default()).collect();
    register_loop_figures(shared.dispatcher.stats(), &counters);
    shared.dispatcher.stats().describe(
        "An event loop per core, each with its own listening socket and connections: no hand-off.",
    );
    tracing::info!(
        loops,
        max_connections = config.model.max_connections,
        "a loop per core, SO_REUSEPORT"
    );

    let mut threads = Vec::with_capacity(loops);
    for (id, (listener, counters)) in listeners.into_iter().zip(&counters).enumerate() {
        let (waiter, shared, counters) =
            (waiter::Mio::new()?, shared.clone(), Arc::clone(counters));
        let thread = std::thread::Builder::new().name(format!("loop-{id}"));
        threads.push(thread.spawn(move || event_loop::run(waiter, listener, shared, counters))?);
    }
    for thread in threads {
        thread.join().map_err(|_| io::Error::other("a v5 loop panicked"))??;
    }
    Ok(())
}
// ANCHOR_END: run

fn register_loop_figures(stats: &Stats, counters: &[Arc<LoopCounters>]) {
    let loops: Vec<Arc<LoopCounters>> = counters.to_vec();
    stats.gauge("loops", move || loops.iter().map(|c| snapshot(c)).collect::<Vec<_>>());
}
