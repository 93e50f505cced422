//! v6-async: the same server on tokio, a task per connection.
//!
//! Changed from v5: the event loop is no longer ours. tokio's multi-thread runtime has a
//! run queue per worker thread, with work stealing between them, over one I/O driver (a
//! `mio::Poll`, epoll underneath) that whichever worker has nothing to do waits on. Each
//! connection is a task running [`connection::handle_connection`], an `async fn`
//! that reads as straight as v2's blocking loop: read, answer, write, again. The compiler
//! turns it into the state machine that v4 and v5 keep by hand in `Connection`: where the
//! code says `.await` on a read that would block, the task returns `Pending`, the worker
//! thread runs another task, and the reactor wakes this one when epoll reports its socket.
//!
//! Handlers stay synchronous (`Fn(&Request) -> Response`). With `--blocking inline` (the
//! default, and what most people write first) they run on the runtime's worker threads,
//! so a blocking or CPU-heavy handler holds a worker, and `--workers` of them stall every
//! task, as idle clients stalled v3's pool. With `--blocking spawn` each answer runs on
//! tokio's blocking pool (`spawn_blocking`): v4's worker pool, reborn, hand-off included.
//!
//! With `--trace`, each poll of a connection's task is a span on the worker thread that
//! polled it ([`polled`]), with the reads, handlers and writes it ran inside, and a worker's
//! idle time is a `park` wait: a task that moves between workers shows on both lanes.
//!
//! `/stats` shows `model.tasks`, `model.runtime_workers` and `model.blocking_in_use`.
//! Run it with `cargo run -p v6-async` (port 8088; `--workers N`, `--blocking spawn`).

pub mod connection;

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use common::server::{ACCEPT_BACKOFF, is_exhaustion};
use common::shutdown::DEADLINE;
use common::stats::Level;
use common::trace::{self, Cat, Span};
use common::{Dispatcher, Stats};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V6_ASYNC.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V6_ASYNC.addr;
pub use common::limit::DEFAULT_MAX_CONNECTIONS;

/// Where handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Blocking {
    /// On the runtime's worker threads, inside the connection's task.
    Inline,
    /// On tokio's blocking pool, through `spawn_blocking`: a hand-off per answer.
    Spawn,
}

/// What v6 adds to the shared settings and its command line: the runtime's size, where
/// handlers run, the cap.
#[derive(Debug, Clone, clap::Args)]
pub struct Model {
    /// Runtime worker threads, one per core by default
    #[arg(long, value_name = "N", default_value_t = common::server::cores(),
          value_parser = common::cli::thread_count())]
    pub workers: usize,

    /// Where handlers run: inline on the runtime's workers, or spawned on its blocking
    /// pool (spawn_blocking)
    #[arg(long, value_enum, default_value_t = Blocking::Inline)]
    pub blocking: Blocking,

    /// Most connections open at once; at the cap, newcomers wait in the kernel's backlog
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = common::cli::at_least_one)]
    pub max_connections: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            workers: common::server::cores(),
            blocking: Blocking::Inline,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
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

/// Tasks alive and blocking-pool threads at work, shared with `/stats`.
#[derive(Debug)]
pub struct Counters {
    pub tasks: Level,
    pub blocking_in_use: Level,
    /// Rung when the last task ends, for the shutdown to wait on.
    all_done: Notify,
}

/// Serves until `config.shutdown` is triggered: builds the runtime, then accepts
/// on this thread and spawns a task per connection.
pub fn run(listener: StdListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let runtime = runtime(config.model.workers)?;
    let counters = register_figures(dispatcher.stats(), &config);
    dispatcher.stats().describe("tokio: a task per connection, written like v2, run by a few worker threads with work stealing.");
    dispatcher.stats().shedding().settings(config.shedding, None);
    tracing::info!(workers = config.model.workers, blocking = ?config.model.blocking, "tokio: a task per connection");
    listener.set_nonblocking(true)?;
    runtime.block_on(accept_loop(listener, dispatcher, config, counters))
}

/// The runtime: `workers` threads named `tokio-worker-0`, `tokio-worker-1`, …, and a
/// blocking pool whose threads are `blocking-N`, so a timeline's lanes and `/proc`
/// say which is which (`/proc` keeps 15 bytes of a name: `tokio-blocking-N` would lose
/// its number). Returns once every worker has started.
pub fn runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    // tokio names every thread it starts with one function, workers and blocking pool
    // alike, and says nothing of which is which. A worker is itself a job on the blocking
    // pool: building the runtime queues one per worker and starts a thread for each, so
    // the first `workers` names go to the threads started for them. But any pool thread
    // takes the queue's front job: were a `spawn_blocking` queued before a slow-starting
    // worker thread had taken its job, the pool's new thread could take the worker's job
    // and the thread named `tokio-worker-1` the handler (seen once in CI: every handler
    // on `tokio-worker-1`). So the build waits until each worker has parked once (a
    // worker with nothing to do parks at once); until then nothing else is queued.
    let started = AtomicUsize::new(0);
    let workers_up = Arc::new((Mutex::new(0usize), Condvar::new()));
    let counting = Arc::clone(&workers_up);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name_fn(move || match started.fetch_add(1, Ordering::Relaxed) {
            n if n < workers => format!("tokio-worker-{n}"),
            n => format!("blocking-{}", n - workers),
        })
        // A worker parks when it has no task to run: in the I/O driver's epoll_wait, or
        // asleep until another worker wakes it. Recorded as a wait, so a busy lane and an
        // idle one look different.
        .on_thread_park(move || {
            parked(true);
            count_worker_once(&counting);
        })
        .on_thread_unpark(|| parked(false))
        .enable_all()
        .build()?;
    let (count, all_up) = &*workers_up;
    let count = count.lock().unwrap_or_else(|e| e.into_inner());
    let (count, waited) = all_up
        .wait_timeout_while(count, WORKERS_START, |count| *count < workers)
        .unwrap_or_else(|e| e.into_inner());
    if waited.timed_out() {
        tracing::warn!(
            started = *count,
            workers,
            "not every tokio worker started within {WORKERS_START:?}: thread names may not say \
             which thread is a worker"
        );
    }
    Ok(runtime)
}

/// How long building the runtime waits for its workers to start: far longer than a
/// thread takes to start, even on a machine loaded many times over.
const WORKERS_START: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts the calling worker thread the first time it parks.
fn count_worker_once(workers_up: &(Mutex<usize>, Condvar)) {
    thread_local! {
        static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if COUNTED.try_with(|counted| counted.replace(true)) == Ok(false) {
        let (count, all_up) = workers_up;
        *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        all_up.notify_all();
    }
}

thread_local! {
    /// The wait of a parked worker, recorded when it wakes.
    static PARKED: std::cell::RefCell<Option<Span>> = const { std::cell::RefCell::new(None) };
}

/// Starts the parked worker's wait, or records it as the worker wakes (a span records as
/// it drops). Nothing on a thread that is ending, whose thread-locals are gone.
fn parked(parking: bool) {
    let _ = PARKED.try_with(|parked| {
        if let Ok(mut parked) = parked.try_borrow_mut() {
            *parked = parking.then(|| trace::span(Cat::Wait, "park"));
        }
    });
}

/// `task`, each of its polls recorded as a span for connection `conn` on the thread that
/// polls it, with what the task does inside (its reads, handlers, writes) as `conn`'s. A
/// wrapper because tokio's own poll hooks (`on_before_task_poll`) need `tokio_unstable`.
pub async fn polled<F: Future>(conn: u64, task: F) -> F::Output {
    let mut task = std::pin::pin!(task);
    std::future::poll_fn(move |cx| {
        let _serving = trace::serving(conn);
        let _poll = trace::span(Cat::Poll, "poll");
        task.as_mut().poll(cx)
    })
    .await
}

// ANCHOR: accept_loop
async fn accept_loop(
    listener: StdListener,
    dispatcher: Arc<Dispatcher>,
    config: Config,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let permits = Arc::new(Semaphore::new(config.model.max_connections));
    // The shutdown's trigger tells this loop and every connection's task at once: no one
    // checks a flag, and no connection is needed to wake the accept.
    let (closing, mut stopped) = watch::channel(false);
    config.shutdown.on_trigger(move || {
        closing.send_replace(true);
    });
    let config = Arc::new(config);
    loop {
        // At the cap, wait for a connection to close; newcomers queue in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit,
            _ = stopped.wait_for(|&stop| stop) => break,
        };
        // Never closed, so never an error; but no unwrap on the way to serving.
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|&stop| stop) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let number = trace::next_conn();
                trace::accepted(number);
                let task = connection::handle_connection(
                    stream,
                    Arc::clone(&dispatcher),
                    Arc::clone(&config),
                    stopped.clone(),
                    Arc::clone(&counters),
                );
                counters.tasks.up();
                let counters = Arc::clone(&counters);
                tokio::spawn(polled(number, async move {
                    task.await;
                    drop(permit);
                    if counters.tasks.down() == 0 {
                        counters.all_done.notify_waiters();
                    }
                }));
            }
            // Out of descriptors: pause (without blocking a thread), then try again.
            Err(e) if is_exhaustion(&e) => {
                tracing::warn!("accept failed: {e}; pausing {ACCEPT_BACKOFF:?}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            Err(e) => tracing::debug!("accept: {e}"),
        }
    }
    // ANCHOR_END: accept_loop
    // Idle connections have closed; the others close once their request is answered.
    let all_done = async {
        loop {
            let done = counters.all_done.notified();
            if counters.tasks.get() == 0 {
                return;
            }
            done.await;
        }
    };
    if tokio::time::timeout(DEADLINE, all_done).await.is_err() {
        let left = counters.tasks.get();
        tracing::warn!(left, "connections still open at the shutdown deadline");
    }
    Ok(())
}

fn register_figures(stats: &Stats, config: &Config) -> Arc<Counters> {
    let tasks = stats.level("tasks");
    let workers = config.model.workers as u64;
    stats.gauge("runtime_workers", move || workers);
    let blocking_in_use = stats.level("blocking_in_use");
    let blocking = common::cli::value_name(&config.model.blocking);
    stats.gauge("blocking", move || blocking.clone());
    Arc::new(Counters { tasks, blocking_in_use, all_done: Notify::new() })
}
