//! v4-syscalls: the event loop of v4, underneath `mio`, written on each of the kernel's
//! ways of waiting for many sockets at once.
//!
//! Changed from v4-nio: no acceptor thread, no worker pool, no `mio`. One thread runs one
//! loop (as `v4-nio --workers 0`, handlers inline), and `--api` chooses how it waits:
//!
//! * [`select`](mod@select): a bitmap of descriptors, copied to the kernel and scanned on
//!   every call; nothing at or above `FD_SETSIZE` (1,024) fits in it;
//! * [`poll`](mod@poll): an array instead of a bitmap, so no fixed limit, but still copied
//!   and scanned whole on every call;
//! * [`epoll`](mod@epoll): the interest list lives in the kernel, and a wait returns only
//!   the ready descriptors; level-triggered (`epoll`) or edge-triggered (`epoll-et`);
//! * [`io_uring`](mod@io_uring): no readiness at all. The loop submits the reads, writes
//!   and accepts themselves, and the kernel reports them done.
//!
//! The first four run one loop, `common`'s [`event_loop`], and differ only in the
//! [`Waiter`](event_loop::Waiter) it calls: the loop v5 runs on `mio`, once per core, and
//! the turn that serves a ready connection is the one v4's workers run. `/stats` shows under `model` the API, the descriptors watched,
//! the waits, events per wait and the time spent inside the wait call.
//!
//! Beside the server, [`storm`] reproduces the Java article's bug: a level-triggered
//! epoll loop handing a ready socket to a worker pool without masking it.
//!
//! Run it with `cargo run -p v4-syscalls -- --api poll` (port 8086).

pub mod epoll;
pub mod io_uring;
pub mod poll;
pub mod select;
pub mod storm;

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use clap::ValueEnum as _;
use common::event_loop::{self, LoopCounters, Shared};
use common::{Dispatcher, Stats};

use crate::epoll::Trigger;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V4_SYSCALLS.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V4_SYSCALLS.addr;
pub use common::limit::DEFAULT_MAX_CONNECTIONS;

/// The kernel interface the loop waits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Api {
    /// select(2): a bitmap copied and scanned on every wait; descriptors below 1,024 only
    Select,
    /// poll(2): an array copied and scanned on every wait; no fixed limit
    Poll,
    /// epoll, level-triggered: a ready descriptor is reported at every wait until drained.
    Epoll,
    /// epoll, edge-triggered: reported once per change; the loop must drain it.
    EpollEt,
    /// io_uring(7): reads, writes and accepts submitted to a ring, completions reaped
    IoUring,
}

impl Api {
    /// Every API, in `--api`'s order. A test checks it is clap's list (`value_variants`).
    pub const ALL: [Api; 5] = [Api::Select, Api::Poll, Api::Epoll, Api::EpollEt, Api::IoUring];

    /// The name `--api` takes and `/stats` shows: clap's, derived from the variant's.
    pub fn name(self) -> &'static str {
        // clap builds a name anew on each call; kept here once, so that it lives as long
        // as the program (the load generator's tables hold names).
        static NAMES: OnceLock<Vec<(Api, String)>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            Api::value_variants().iter().map(|api| (*api, common::cli::value_name(api))).collect()
        });
        names.iter().find(|(api, _)| *api == self).map_or("", |(_, name)| name)
    }
}

/// What v4-syscalls adds to the shared settings and its command line: the API and the
/// connection cap.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// How the loop waits for its sockets
    #[arg(long, value_enum, default_value_t = Api::Epoll)]
    pub api: Api,

    /// Most connections open at once; at the cap, newcomers wait in the kernel's backlog
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = common::cli::at_least_one)]
    pub max_connections: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self { api: Api::Epoll, max_connections: DEFAULT_MAX_CONNECTIONS }
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

/// Registers the loop's figures in `stats` (as the loop waits with `api`): the ones the
/// chapter on kernel waits reads, under their own names.
fn register_figures(stats: &Stats, api: Api) -> Arc<LoopCounters> {
    stats.gauge("api", move || api.name());
    let counters = Arc::new(LoopCounters {
        watched: stats.level("watched"),
        waits: stats.counter("waits"),
        events: stats.counter("events"),
        ..LoopCounters::default()
    });
    let c = Arc::clone(&counters);
    stats.gauge("events_per_wait", move || c.events.get() as f64 / c.waits.get().max(1) as f64);
    let c = Arc::clone(&counters);
    stats.gauge("wait_secs", move || c.wait_nanos.get() as f64 / 1e9);
    let c = Arc::clone(&counters);
    stats.gauge("refused", move || c.refused.get());
    counters
}

/// Serves on this thread until `config.shutdown` is triggered, waiting with
/// `config.model.api`.
// ANCHOR: run
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let counters = register_figures(dispatcher.stats(), config.model.api);
    dispatcher.stats().describe(match config.model.api {
        Api::Select => "One thread, one event loop, handlers inline, waiting with select: a bitmap copied and scanned on every wait.",
        Api::Poll => "One thread, one event loop, handlers inline, waiting with poll: an array copied and scanned on every wait.",
        Api::Epoll => "One thread, one event loop, handlers inline, waiting with epoll (level-triggered): only the ready sockets come back.",
        Api::EpollEt => "One thread, one event loop, handlers inline, waiting with epoll (edge-triggered): only the ready sockets come back.",
        Api::IoUring => "One thread, one event loop, handlers inline, on io_uring: reads and writes submitted, completions reaped.",
    });
    tracing::info!(
        api = config.model.api.name(),
        "one event loop, written on {}",
        config.model.api.name()
    );
    let shared = Shared::new(dispatcher, &config, config.model.max_connections);
    shared.dispatcher.stats().shedding().settings(config.shedding, None);
    match config.model.api {
        Api::Select => event_loop::run(select::Select::default(), listener, shared, counters),
        Api::Poll => event_loop::run(poll::Poll::default(), listener, shared, counters),
        Api::Epoll => {
            event_loop::run(epoll::Epoll::new(Trigger::Level)?, listener, shared, counters)
        }
        Api::EpollEt => {
            event_loop::run(epoll::Epoll::new(Trigger::Edge)?, listener, shared, counters)
        }
        Api::IoUring => io_uring::run(listener, shared, counters),
    }
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` is clap's list, and each name is the one `--api` takes.
    #[test]
    fn every_api_is_listed_under_the_name_clap_takes() {
        assert_eq!(Api::ALL.as_slice(), Api::value_variants());
        for api in Api::ALL {
            assert_eq!(Api::from_str(api.name(), false), Ok(api));
        }
        assert_eq!(Api::EpollEt.name(), "epoll-et");
    }

    /// The registry cannot read clap's names (it is below this crate), so its variants
    /// are checked against them: one per API, run with `--api` and the API's name.
    #[test]
    fn the_registry_s_variants_are_the_apis() {
        let variants = registry::V4_SYSCALLS.variants;
        let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
        let apis: Vec<&str> = Api::ALL.iter().map(|api| api.name()).collect();
        assert_eq!(names, apis);
        for variant in variants {
            assert_eq!(variant.args, ["--api", variant.name], "{}", variant.name);
        }
    }
}
