//! v7-uring-per-core: v5's shape (a thread per core, each with its own `SO_REUSEPORT`
//! listener and its own connections, handlers inline) with completion instead of
//! readiness: each thread owns an io_uring.
//!
//! Changed from v5: a loop no longer asks the kernel "which sockets are ready?" and then
//! reads and writes them itself; it hands the kernel the work (accept, receive, send) and
//! reads back what was done. That moves ownership: a send's bytes are the kernel's from
//! its submission until its completion, so they are neither touched nor freed before
//! (`ring/mod.rs` says who owns what, and every `unsafe` why it holds). Three io_uring
//! features make it pay where v4-syscalls' naive io_uring loop (one single-shot operation
//! at a time, a 4 KiB buffer held by every idle connection) did not:
//!
//! * **multishot accept** (Linux 5.19): one submission per ring accepts every connection
//!   until the kernel ends it; re-armed then;
//! * **multishot receive into a provided-buffer ring** (5.19 and 6.0): one submission per
//!   connection, naming a buffer *group*; the kernel takes a buffer only when bytes
//!   arrive, and the ring gives it back as soon as the session has copied them. Idle
//!   connections hold no buffer at all: 256 buffers of 4 KiB per ring serve a thousand
//!   of them (`tests/v7_uring.rs`), where v4-syscalls' io_uring holds 4 KiB for each;
//! * **batching**: every send and re-arm a turn produces goes to the kernel in the one
//!   `io_uring_enter` that also waits for the next completions (with `--batch-wait-us`,
//!   that wait lingers a little for more of them), so under load one system call carries
//!   many requests' I/O: `/stats` shows `enters`, `submissions` and `completions` per ring.
//!   Not at any price: answers queued for a while (`--send-budget-us`, 200 µs), and after
//!   a slow handler each answer, go to the kernel before the next handler runs, so an
//!   answer does not wait for the slow handlers behind it in its turn (`early_submits`).
//!
//! Every feature it can use is a switch (see [`Features`] and the v7 chapter's ladder for
//! each default): receive bundles are on (`buffers.rs`: one completion for as many
//! buffers as the bytes fill); a registered ring descriptor, direct descriptors
//! (`ring/socket.rs`), incremental buffer consumption (`buffers.rs`), zero-copy sends and
//! SQPOLL are off.
//!
//! What it keeps of v5's limits: handlers still run on the ring's thread, so a blocking
//! or CPU-heavy handler stalls every connection of its ring; connections are still spread
//! by a hash. And what it adds: it runs only where io_uring is allowed (Linux 6.1 or
//! later, not under Docker's default seccomp profile); it says so and exits otherwise.
//!
//! Run it with `cargo run -p v7-uring-per-core` (port 8089; `--rings N`,
//! `--max-connections N`, `--buffers N`, `--batch-wait-us N`, `--send-budget-us N|off`).

mod buffers;
pub mod ring;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use common::cli::{Sharing, Start};
use common::event_loop::Shared;
use common::{Dispatcher, Stats};
use serde_json::json;

use ring::{RingCounters, Settings};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V7_URING_PER_CORE.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V7_URING_PER_CORE.addr;
pub use common::limit::DEFAULT_MAX_CONNECTIONS;

/// Buffers in each ring's provided-buffer ring, and their size.
pub const DEFAULT_BUFFERS: u16 = 256;
pub const BUFFER_SIZE: usize = 4096;
/// The buffers' size when they are consumed incrementally (`--buffer-inc`): the same
/// memory in fewer, larger buffers. 64 KiB: a buffer is then given back only after
/// sixteen 4 KiB receives' worth of requests, whoever sent them (a `/hello` request is
/// some 40 bytes, so over a thousand of them share a buffer), and a 64 KiB body can
/// arrive in one receive; larger would leave fewer buffers than a ring's busiest moments
/// have receives completing with bytes not yet copied (16 of them at the default 256).
pub const INC_BUFFER_SIZE: usize = 64 * 1024;
/// How long a wait that has completions waits for more, by default.
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_micros(50);

/// What v7 adds to the shared settings and its command line: the rings, the cap, the
/// buffers and the batching.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// Rings (threads), one per core by default, each with its own io_uring, listening
    /// socket and connections
    #[arg(long, value_name = "N", default_value_t = common::server::cores(),
          value_parser = common::cli::thread_count())]
    pub rings: usize,

    /// Most connections open at once, across all rings; at the cap, newcomers wait in the
    /// kernel's backlog
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = common::cli::at_least_one)]
    pub max_connections: usize,

    /// Receive buffers of 4 KiB in each ring's provided-buffer ring (a power of two)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BUFFERS, value_parser = power_of_two)]
    pub buffers: u16,

    /// Microseconds a wait that has completions lingers for more, to batch them
    #[arg(long, value_name = "US", default_value_t = DEFAULT_BATCH_WAIT.as_micros() as u64)]
    pub batch_wait_us: u64,

    /// Microseconds this turn's answers may wait for the handlers after them before they
    /// are submitted without waiting (and, after a handler that took longer, each answer
    /// before the next handler, until 16 in a row have not); `off`: only with the turn's
    /// wait
    #[arg(long, value_name = "US|off", default_value = "200", value_parser = send_budget)]
    pub send_budget_us: SendBudget,

    /// With each early submit, also take in what completed meanwhile (a client's reset, a
    /// newcomer, a request), as a readiness loop reads just before a handler; false: an
    /// early submit only submits, and completions wait for the turn's wait
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub reap_early: bool,

    #[command(flatten)]
    pub features: Features,
}

// ANCHOR: features
/// Each io_uring feature v7 can use, as a switch, so that one binary is every rung of the
/// ablation ladder (`scripts/v7-ladder.py`). `/stats` reports them under `features`, with
/// any the kernel refused (then skipped, and said in the log): never faked.
///
/// The defaults follow the ladder (the v7 chapter; `results/v7-ladder.md`, and six more
/// rounds of the last rungs in `results/v7-ladder-rungs.md`). On: deferred task work,
/// multishot accept and multishot receive (what the naive loop lacks, though in the last
/// run each alone was within the noise); batching (`--batch-wait-us`), which took the
/// enters per request from 0.135 to 0.032 and the CPU to 0.96 of the rung below; receive
/// bundles, with which a 64 KiB echo takes 3 completions instead of 18 and 0.93 of the
/// CPU pinned (0.88 to 0.99, below 1 in all nine rounds), while a small request never
/// fills two buffers, so they cost it nothing. Off: the registered ring descriptor (0.82
/// in the last run, nothing in the one before: not settled); direct descriptors (no
/// saving: 0.95 on `/hello` and 1.07 on the echo, with rounds on both sides of 1, and the
/// fault matrix's over-cap probe cannot see sockets held that way); incremental buffers
/// (0.89 of the bundles' CPU on the echo, but 1.02 and 1.09 on `/hello`); zero-copy sends
/// (1.24 times the CPU per 64 KiB echo on loopback); SQPOLL (2.4 times the CPU pinned,
/// 0.63 times the requests shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Features {
    /// One thread submits (SINGLE_ISSUER) and the kernel runs completion work only when it
    /// waits (DEFER_TASKRUN); false: a plain ring, its task work run at any return to
    /// user space
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub defer_taskrun: bool,

    /// One accept armed for every connection (multishot); false: one accept per connection
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub multishot_accept: bool,

    /// One receive armed per connection for all its requests (multishot); false: one
    /// receive submitted per request, as the naive loop does (still from the buffer ring)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub multishot_recv: bool,

    /// Register the ring's descriptor, so each io_uring_enter skips the file lookup
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub register_ring_fd: bool,

    /// Send answers of at least this many bytes with zero-copy sends (SEND_ZC): the kernel
    /// pins the pages instead of copying, and says when it is done with them
    #[arg(long, value_name = "BYTES")]
    pub zero_copy_over: Option<usize>,

    /// A kernel thread polls the submission queue (SQPOLL), so submitting needs no system
    /// call; it replaces deferred task work (the two do not go together)
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub sqpoll: bool,

    /// Receive bundles (Linux 6.10): one receive completion may fill several buffers of the
    /// buf ring, so a request larger than a buffer comes in one completion, not one per
    /// buffer
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub recv_bundle: bool,

    /// Direct descriptors (Linux 5.19): each accepted socket goes into the ring's own file
    /// table, not the process's, and every operation names it by its index, so none looks
    /// a descriptor up or counts references to its file
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub direct_descriptors: bool,

    /// Incremental buffer consumption (Linux 6.12): the buf ring holds the same memory in
    /// buffers of 64 KiB (`--buffers` / 16), each filled a receive at a time, by whatever
    /// connection, and given back only once full, so a small request uses its own size of
    /// a buffer, not a whole one
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub buffer_inc: bool,
}
// ANCHOR_END: features

impl Default for Features {
    fn default() -> Self {
        Self {
            defer_taskrun: true,
            multishot_accept: true,
            multishot_recv: true,
            register_ring_fd: false,
            zero_copy_over: None,
            sqpoll: false,
            direct_descriptors: false,
            recv_bundle: true,
            buffer_inc: false,
        }
    }
}

/// `--send-budget-us`: microseconds, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendBudget(pub Option<Duration>);

impl Default for SendBudget {
    fn default() -> Self {
        Self(Some(common::completion::SEND_BUDGET))
    }
}

fn send_budget(text: &str) -> Result<SendBudget, String> {
    if text == "off" {
        return Ok(SendBudget(None));
    }
    let us: u64 = text.parse().map_err(|e| format!("{e} (microseconds, or off)"))?;
    Ok(SendBudget(Some(Duration::from_micros(us))))
}

impl Default for Model {
    fn default() -> Self {
        Self {
            rings: common::server::cores(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            buffers: DEFAULT_BUFFERS,
            batch_wait_us: DEFAULT_BATCH_WAIT.as_micros() as u64,
            send_budget_us: SendBudget::default(),
            reap_early: true,
            features: Features::default(),
        }
    }
}

/// `--buffers`: the kernel indexes a buf ring by a mask, so its size is a power of two.
fn power_of_two(text: &str) -> Result<u16, String> {
    let count: u16 = text.parse().map_err(|e| format!("{e}"))?;
    if count.is_power_of_two() { Ok(count) } else { Err(format!("{count} is not a power of two")) }
}

/// Its settings: the shared ones, and [`Model`]'s in `model`.
pub type Config = common::Config<Model>;

/// Its command line: the shared options and [`Model`]'s.
pub type Args = common::cli::Args<Model>;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run. Where the kernel refuses io_uring it prints one line saying
/// so and what to do, and exits with 1.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    let start = Start { sharing: Sharing::ReusePort, ..Start::default() };
    let (listener, dispatcher, config) = common::cli::start(SERVER, args, start)?;
    // Before the announcement, so a script that waits for it hears the refusal instead.
    if let Err(e) = check_kernel(&config) {
        // One line, not an error chain: the message says everything.
        eprintln!("{SERVER}: {e}");
        std::process::exit(1);
    }
    // Announced only once every socket listens: a client that connects the moment it
    // reads the address is then spread over all of them, not queued on the first.
    let listeners = ring_sockets(listener, &config)?;
    common::cli::announce(SERVER, &listeners[0])?;
    let served = run_rings(listeners, dispatcher, config);
    // `cli::serve` writes the `--trace` file after its run; this start is v7's own.
    common::trace::finish();
    Ok(served?)
}

/// Whether this kernel gives v7 what it needs: an io_uring as v7 sets it up, and a
/// provided-buffer ring registered on it.
pub fn check_kernel(config: &Config) -> io::Result<()> {
    let ring = ring::new_ring()?;
    let bufs = buffers::BufRing::new(config.model.buffers, BUFFER_SIZE, Default::default())?;
    let mut registration = buffers::Registration::register(bufs, &ring, 0).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "io_uring is not available here (no provided-buffer ring: {e}; Linux 5.19 \
                     is needed): run v5-reactor-per-core instead"
            ),
        )
    })?;
    // SAFETY: no operation was ever submitted to this ring. (If the kernel refuses, the
    // registration leaks the buffers as it drops: never freed while the kernel may hold it.)
    unsafe { registration.unregister(&ring) }
}

/// One ring's entry in `/stats`'s `model.rings`.
fn snapshot(c: &RingCounters) -> serde_json::Value {
    let (enters, completions) = (c.enters.get(), c.completions.get());
    let per_enter = |n: u64| if enters == 0 { 0.0 } else { n as f64 / enters as f64 };
    json!({
        "connections": c.connections.get(),
        "accepted": c.accepted.get(),
        "requests": c.requests.get(),
        "enters": enters,
        "submissions": c.submissions.get(),
        "completions": completions,
        "submissions_per_enter": per_enter(c.submissions.get()),
        "completions_per_enter": per_enter(completions),
        "sends": c.sends.get(),
        "buffers": c.buffers.get(),
        "buffer_size": c.buffer_size.get(),
        "buffers_in_use": c.buffers_in_use.get(),
        "buffers_in_use_from": if c.buffers_seen_by_kernel.get() == 1 {
            "the kernel's head of the buf ring, at the last sweep"
        } else {
            "the buffers completions gave the ring and it has not yet given back"
        },
        "enobufs": c.enobufs.get(),
        "recv_rearms": c.recv_rearms.get(),
        "bundles": c.bundles.get(),
        "parked": c.parked.get(),
        "early_submits": c.early_submits.get(),
        "refused": c.refused(),
    })
}

/// Serves until `config.shutdown` is triggered: one thread per ring, named `ring-0`,
/// `ring-1`, …, each with its own socket on `listener`'s address.
///
/// `listener` must have been bound with `SO_REUSEPORT` ([`Sharing::ReusePort`]): ring 0
/// takes it, and every other ring binds a socket of its own next to it.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    check_kernel(&config)?;
    run_rings(ring_sockets(listener, &config)?, dispatcher, config)
}

/// `listener` and a socket of its own for every other ring, all listening on its address.
pub fn ring_sockets(listener: TcpListener, config: &Config) -> io::Result<Vec<TcpListener>> {
    common::cli::reuse_port_group(listener, config.model.rings, config.backlog, SERVER)
}

// ANCHOR: run
/// Serves on `listeners`, a ring each (see [`ring_sockets`]), until the shutdown.
pub fn run_rings(
    listeners: Vec<TcpListener>,
    dispatcher: Arc<Dispatcher>,
    config: Config,
) -> io::Result<()> {
    let rings = listeners.len();
    let shared = Shared::new(Arc::clone(&dispatcher), &config, config.model.max_connections);
    dispatcher.stats().shedding().settings(config.shedding, None);
    let counters: Vec<Arc<RingCounters>> = (0..rings).map(|_| Arc::default()).collect();
    register_ring_figures(dispatcher.stats(), &counters);
    dispatcher.stats().describe(
        "An io_uring per core, each with its own listening socket and connections: \
         multishot accept and receive, provided buffers, batched submissions.",
    );
    let settings = Settings {
        buffers: config.model.buffers,
        buffer_size: BUFFER_SIZE,
        batch_wait: Duration::from_micros(config.model.batch_wait_us),
        max_connections: config.model.max_connections,
        send_budget: config.model.send_budget_us.0,
        reap_early: config.model.reap_early,
        features: config.model.features,
    };
    let features = settings.features;
    dispatcher.stats().gauge("features", move || {
        json!({
            "defer_taskrun": features.defer_taskrun && !features.sqpoll,
            "multishot_accept": features.multishot_accept,
            "multishot_recv": features.multishot_recv,
            "batch_wait_us": settings.batch_wait.as_micros() as u64,
            "register_ring_fd": features.register_ring_fd,
            "zero_copy_over": features.zero_copy_over,
            "sqpoll": features.sqpoll,
            "direct_descriptors": features.direct_descriptors,
            "recv_bundle": features.recv_bundle,
            "buffer_inc": features.buffer_inc,
            "asked_for": "as the command line asked; what a ring's kernel refused is in rings[].refused",
        })
    });
    let budget_us = settings.send_budget.map(|b| b.as_micros() as u64);
    dispatcher.stats().gauge("send_budget_us", move || budget_us);
    let reap_early = settings.reap_early;
    dispatcher.stats().gauge("reap_early", move || reap_early);
    tracing::info!(rings, max_connections = settings.max_connections, "an io_uring per core");

    let mut threads = Vec::with_capacity(rings);
    for (id, (listener, counters)) in listeners.into_iter().zip(&counters).enumerate() {
        let (shared, counters) = (shared.clone(), Arc::clone(counters));
        let thread = std::thread::Builder::new().name(format!("ring-{id}"));
        threads.push(thread.spawn(move || ring::run(listener, shared, settings, counters))?);
    }
    for thread in threads {
        thread.join().map_err(|_| io::Error::other("a v7 ring panicked"))??;
    }
    Ok(())
}
// ANCHOR_END: run

/// `/stats`'s figures: each ring under `rings`, and their sums under their own names.
fn register_ring_figures(stats: &Stats, counters: &[Arc<RingCounters>]) {
    let all: Vec<Arc<RingCounters>> = counters.to_vec();
    let rings = all.clone();
    stats.gauge("rings", move || rings.iter().map(|c| snapshot(c)).collect::<Vec<_>>());
    type Read = fn(&RingCounters) -> u64;
    let counted: [(&'static str, Read); 8] = [
        ("enters", |c| c.enters.get()),
        ("submissions", |c| c.submissions.get()),
        ("completions", |c| c.completions.get()),
        ("sends", |c| c.sends.get()),
        ("enobufs", |c| c.enobufs.get()),
        ("sweeps", |c| c.sweeps.get()),
        ("early_submits", |c| c.early_submits.get()),
        ("bundles", |c| c.bundles.get()),
    ];
    for (name, read) in counted {
        let rings = all.clone();
        stats.counter_from(name, move || rings.iter().map(|c| read(c)).sum());
    }
    let levels: [(&'static str, Read); 3] = [
        ("connections", |c| c.connections.get()),
        ("buffers_in_use", |c| c.buffers_in_use.get()),
        ("parked", |c| c.parked.get()),
    ];
    for (name, read) in levels {
        let rings = all.clone();
        stats.gauge(name, move || rings.iter().map(|c| read(c)).sum::<u64>());
    }
}
