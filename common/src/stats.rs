//! Server statistics: the counters every version keeps, room for a version's own, the
//! kernel's side of the server, and the JSON that `/stats` answers with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::kernel::{self, ListenCounters};
use crate::overload::ShedStats;
use crate::procfs;

type Metric = Box<dyn Fn() -> Value + Send + Sync>;

/// One of a version's own figures: its name, how to read it, and whether it only ever
/// counts up (so a reader can chart it per second).
struct Registered {
    name: &'static str,
    read: Metric,
    counts_up: bool,
}

/// Counters shared by every thread of a server. One per process: the fork version's
/// children each carry their own copy, which is the point its chapter makes.
pub struct Stats {
    server: &'static str,
    started: Instant,
    accepted: AtomicU64,
    active: AtomicU64,
    requests: AtomicU64,
    /// The version's own figures, in the order they were registered. A lock, not a
    /// `OnceLock`: a version registers them one call at a time, from its `run` and the
    /// loops it starts, after the `Stats` is already shared; after start-up every access
    /// is a read, which an uncontended read lock makes one atomic operation.
    model: RwLock<Vec<Registered>>,
    /// The version's model in one sentence, for people reading `/stats` and the live page.
    about: OnceLock<&'static str>,
    /// The port the server listens on, for the kernel's figures, once it is bound.
    port: OnceLock<u16>,
    /// The namespace's listen counters when the server started, so `/stats` shows what
    /// happened since (`None` without `/proc/net/netstat`).
    listen_at_start: Option<ListenCounters>,
    /// Requests refused or not served for overload, and the settings that decide it.
    shedding: ShedStats,
    /// The last TIME_WAIT reading and when it was taken: see [`TIME_WAIT_EVERY`].
    time_wait: Mutex<Option<(Instant, Option<kernel::TimeWait>)>>,
}

/// How often `/stats` walks the kernel's connections for TIME_WAIT, at most. The kernel
/// finds them by walking its table of every connection on the machine, port filter or
/// not: measured after a sweep left 42,839 in TIME_WAIT, one `/stats` cost its server
/// 48 ms of CPU, which a serial server (v1, a loop running handlers inline) pays before
/// serving anyone else. A reading a second old is fresh enough for a count that changes
/// over the minute a socket spends in TIME_WAIT.
pub const TIME_WAIT_EVERY: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").field("server", &self.server).finish_non_exhaustive()
    }
}

impl Stats {
    /// `server` is the crate name, shown in `/stats` and the `Server` header.
    pub fn new(server: &'static str) -> Arc<Self> {
        Arc::new(Self {
            server,
            started: Instant::now(),
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            model: RwLock::new(Vec::new()),
            about: OnceLock::new(),
            port: OnceLock::new(),
            listen_at_start: kernel::listen_counters().ok(),
            shedding: ShedStats::default(),
            time_wait: Mutex::new(None),
        })
    }

    /// Says which port the server listens on, so `/stats` can show the kernel's side of
    /// it: the accept queue, TIME_WAIT. The start-up code calls it once the socket is bound;
    /// a second call (another socket on the same port) changes nothing.
    pub fn listening_on(&self, port: u16) {
        let _ = self.port.set(port);
    }

    /// What the kernel holds for this server now: read by port and from `/proc`, so it is
    /// the same whoever answers (the fork version's child too) and needs no request.
    pub fn kernel(&self) -> Kernel {
        let port = self.port.get().copied();
        Kernel {
            accept_queue: port.and_then(|p| kernel::accept_queue(p).ok()),
            listen: match (kernel::listen_counters(), self.listen_at_start) {
                (Ok(now), Some(start)) => Some(now.since(start)),
                _ => None,
            },
            time_wait: port.and_then(|p| self.time_wait(p)),
            context_switches: kernel::context_switches().ok(),
        }
    }

    /// TIME_WAIT on `port`, read again only if the last reading is older than
    /// [`TIME_WAIT_EVERY`].
    fn time_wait(&self, port: u16) -> Option<kernel::TimeWait> {
        // A poisoned lock only means a reader panicked mid-update of a cache: read afresh.
        let mut cached = self.time_wait.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *cached {
            Some((at, reading)) if at.elapsed() < TIME_WAIT_EVERY => reading,
            _ => {
                let reading = kernel::time_wait(port).ok();
                *cached = Some((Instant::now(), reading));
                reading
            }
        }
    }

    pub fn server(&self) -> &'static str {
        self.server
    }

    /// Counts an accepted connection as open until the returned guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    pub fn request_served(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Load shedding's counters and settings (see [`crate::overload`]).
    pub fn shedding(&self) -> &ShedStats {
        &self.shedding
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Registers a counter of the version's own under `name` and returns it to be bumped.
    pub fn counter(&self, name: &'static str) -> Counter {
        let counter = Counter::default();
        let read = counter.clone();
        self.register(name, Box::new(move || read.get().into()), true);
        counter
    }

    /// Registers under `name` a counter kept elsewhere, read by `read`: a static that a
    /// signal handler bumps, which can reach nothing else. Shown and drawn as a counter.
    pub fn counter_from(&self, name: &'static str, read: impl Fn() -> u64 + Send + Sync + 'static) {
        self.register(name, Box::new(move || read().into()), true);
    }

    /// Registers a level of the version's own under `name` (threads alive, say): a figure
    /// that goes up and down, drawn as it is, where a counter is drawn per second.
    pub fn level(&self, name: &'static str) -> Level {
        let level = Level::default();
        let read = level.clone();
        self.gauge(name, move || read.get());
        level
    }

    /// Registers a figure computed when `/stats` is read (a pool's queue length, say).
    pub fn gauge<T: Into<Value>>(
        &self,
        name: &'static str,
        read: impl Fn() -> T + Send + Sync + 'static,
    ) {
        self.register(name, Box::new(move || read().into()), false);
    }

    fn register(&self, name: &'static str, read: Metric, counts_up: bool) {
        // A poisoned lock means a thread panicked while registering; the list itself is
        // still whole, so keep using it.
        self.model.write().unwrap_or_else(|e| e.into_inner()).push(Registered {
            name,
            read,
            counts_up,
        });
    }

    /// Registers one figure per `(name, read)` pair, all read from one `source` (a thread
    /// pool's handle, say), each through a clone of its own.
    pub fn gauges<S>(&self, source: &S, figures: &[Figure<S>])
    where
        S: Clone + Send + Sync + 'static,
    {
        for &(name, read) in figures {
            let source = source.clone();
            self.gauge(name, move || read(&source) as u64);
        }
    }

    /// Says in one sentence what the version's model is (shown by `/stats` and the live
    /// page at `/`). Once: a version says it as it starts, and a second call changes
    /// nothing.
    pub fn describe(&self, about: &'static str) {
        let _ = self.about.set(about);
    }

    /// The current value of the version's own figure `name`, if it registered one.
    pub fn model(&self, name: &str) -> Option<Value> {
        let model = self.model.read().unwrap_or_else(|e| e.into_inner());
        model.iter().find(|figure| figure.name == name).map(|figure| (figure.read)())
    }

    /// The `/stats` document: who answers, its threads and memory from /proc, the shared
    /// counters, and under `model` the version's own. `cpu_us` is this process's CPU
    /// time so far, user and system, every thread's (`getrusage(RUSAGE_SELF)`), in
    /// microseconds, for CPU per request: the fork version's children are not in it,
    /// each of them counting its own.
    pub fn snapshot(&self) -> Value {
        let proc = procfs::status(None).ok();
        let figures = self.model.read().unwrap_or_else(|e| e.into_inner());
        let model: Map<String, Value> =
            figures.iter().map(|figure| (figure.name.to_owned(), (figure.read)())).collect();
        let counters: Vec<&str> =
            figures.iter().filter(|figure| figure.counts_up).map(|figure| figure.name).collect();
        drop(figures);
        json!({
            "server": self.server,
            "about": self.about.get().copied().unwrap_or(""),
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "threads": proc.map(|p| p.threads),
            "rss_bytes": proc.map(|p| p.rss_bytes),
            "connections": { "accepted": self.accepted(), "active": self.active() },
            "requests": self.requests(),
            "cpu_us": kernel::cpu_time().ok().map(|cpu| cpu.as_micros() as u64),
            "shedding": self.shedding.to_json(),
            "model": model,
            "counters": counters,
            "kernel": self.kernel().to_json(),
        })
    }
}

/// The kernel's side of a server (see [`crate::kernel`]); a figure this machine cannot
/// give (no `/proc`, no `sock_diag`) is `None`, shown as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    pub accept_queue: Option<kernel::AcceptQueue>,
    /// Since the server started, and for the whole network namespace.
    pub listen: Option<ListenCounters>,
    pub time_wait: Option<kernel::TimeWait>,
    pub context_switches: Option<kernel::ContextSwitches>,
}

impl Kernel {
    // ANCHOR: kernel_json
    /// `/stats`'s `kernel`: what the live page draws.
    pub fn to_json(self) -> Value {
        json!({
            "accept_queue": self.accept_queue.map(|q| json!({
                "queued": q.queued, "cap": q.cap, "listeners": q.listeners,
            })),
            "listen_overflows": self.listen.map(|l| l.overflows),
            "listen_drops": self.listen.map(|l| l.drops),
            "time_wait": self.time_wait.map(|t| json!({
                "server_side": t.local, "client_side": t.remote,
            })),
            "context_switches": self.context_switches.map(|c| json!({
                "voluntary": c.voluntary, "involuntary": c.involuntary,
            })),
            "scope": "accept_queue and time_wait: the sockets of this server's port, as \
                      `ss -tan` shows them (time_wait read at most once a second). \
                      listen_overflows and listen_drops: every listener of this network \
                      namespace (nstat's TcpExtListenOverflows, TcpExtListenDrops), since \
                      this server started. context_switches: this process's threads, since \
                      it started.",
        })
    }
    // ANCHOR_END: kernel_json
}

/// A figure of a version's own that only grows (wake-ups, dispatches), from
/// [`Stats::counter`]: `/stats` shows its total, the live page its rate. Clones count
/// together. Every version counts with these, so one name means one thing.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn bump(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        // A count read by /stats orders nothing else: relaxed.
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A figure of a version's own that goes up and down (threads alive, connections held),
/// from [`Stats::level`]: shown as it is. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Level(Arc<AtomicU64>);

impl Level {
    pub fn up(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes one away and returns what is left: a shutdown that waits for the last task
    /// to end learns from the one that takes it to zero.
    pub fn down(&self) -> u64 {
        self.0.fetch_sub(1, Ordering::AcqRel).saturating_sub(1)
    }

    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Counts one up until the returned guard is dropped: a thread's life, even one that
    /// ends in a panic or never starts.
    pub fn hold(&self) -> Held {
        self.up();
        Held(self.clone())
    }
}

/// One counted in a [`Level`] until dropped (see [`Level::hold`]).
#[derive(Debug)]
pub struct Held(Level);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.down();
    }
}

/// A figure read from a shared source: its name under `model`, and how to read it.
pub type Figure<S> = (&'static str, fn(&S) -> usize);

/// An open connection, as counted by [`Stats`]; dropping it counts the close.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Stats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_connections_requests_and_model_figures() {
        let stats = Stats::new("test");
        let wakeups = stats.counter("wakeups");
        stats.gauge("pool_size", || 4u64);
        let live = stats.level("live");
        live.set(2);
        let guard = stats.connection_opened();
        let _second = stats.connection_opened();
        drop(guard);
        stats.request_served();
        wakeups.add(3);

        let snap = stats.snapshot();
        assert_eq!(snap["server"], "test");
        assert_eq!(snap["connections"]["accepted"], 2);
        assert_eq!(snap["connections"]["active"], 1);
        assert_eq!(snap["requests"], 1);
        assert_eq!(snap["model"]["wakeups"], 3);
        assert_eq!(snap["model"]["pool_size"], 4);
        assert_eq!(snap["model"]["live"], 2);
        // Only what counts up is drawn per second; a level is drawn as it is.
        assert_eq!(snap["counters"], json!(["wakeups"]));
        assert!(snap["threads"].as_u64().unwrap() >= 1);
        assert!(snap["cpu_us"].as_u64().is_some(), "{snap}");
    }

    #[test]
    fn shedding_shows_its_counters_and_settings() {
        use crate::overload::{Refused, Shedding};
        let stats = Stats::new("test");
        let off = stats.snapshot()["shedding"].clone();
        assert_eq!(
            off,
            json!({"shed": 0, "expired": 0, "departed": 0, "max_queue": null,
                   "max_queue_wait_ms": null, "skip_departed": false})
        );
        let shedding = Shedding {
            max_queue_wait: Some(std::time::Duration::from_millis(50)),
            skip_departed: true,
        };
        stats.shedding().settings(shedding, Some(8));
        stats.shedding().refused(Refused::Shed);
        stats.shedding().refused(Refused::Expired);
        stats.shedding().refused(Refused::Expired);
        stats.shedding().departed.bump();
        assert_eq!(
            stats.snapshot()["shedding"],
            json!({"shed": 1, "expired": 2, "departed": 1, "max_queue": 8,
                   "max_queue_wait_ms": 50, "skip_departed": true})
        );
    }
}
