//! What the server says of itself during a sweep: its queues, read while a step runs, its
//! CPU time and shedding counters before and after, and whether it has drained between
//! steps. From `/stats` where the server answers it (any server of this workspace does),
//! and from the kernel by port where it runs on this machine.
//!
//! `/stats` is not free: a server lists its port's sockets in TIME_WAIT for it, and the
//! kernel walks every such socket of the machine to find them. After a few
//! connection-per-request runs there are tens of thousands, and one `/stats` was measured
//! at 48 ms of the server's CPU. So the kernel's accept queue, asked of the kernel by this
//! process (listeners only, cheap), is read every 200 ms, and `/stats` once a second.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kernel;
use common::testkit::Client;
use serde_json::Value;

/// How long a reading of `/stats` may take: a server past its knee may not answer it in
/// time (v3's pool serves it in turn, after the connections queued before it), and then
/// that reading has no `/stats` part. Waiting costs only the reading thread.
const STATS_PATIENCE: Duration = Duration::from_secs(1);
/// How often the accept queue is read during a step, and between steps whether the
/// server has drained.
const EVERY: Duration = Duration::from_millis(200);
/// Every how many readings of the accept queue `/stats` is read too.
const STATS_EVERY: u32 = 5;

/// The server being swept.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    addr: SocketAddr,
    /// The port, where the server is on this machine, so its kernel can be asked.
    local_port: Option<u16>,
    /// It answered `/stats` when the sweep began.
    speaks_stats: bool,
    /// The process listening, where it is on this machine: from `/stats`'s `pid`, or
    /// found by the kernel's sockets.
    pid: Option<u32>,
}

/// What a reading before and after a step finds: counters whose difference is the step's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub cpu_us: Option<u64>,
    pub shed: Option<u64>,
    pub expired: Option<u64>,
    pub departed: Option<u64>,
    /// `/stats` has a `model` gauge whose name says queued: worth asking during a step.
    /// (A server without one, v1 say, is spared the readings: one serves them between
    /// requests, at the cost of a request's time each.)
    pub queue_gauges: bool,
}

impl Server {
    pub fn new(addr: SocketAddr) -> Self {
        let local = addr.ip().is_loopback() || addr.ip().is_unspecified();
        let mut server =
            Self { addr, local_port: local.then_some(addr.port()), speaks_stats: false, pid: None };
        let stats = server.stats();
        server.speaks_stats = stats.is_some();
        server.pid = server.local_port.and_then(|port| {
            match stats.as_ref().and_then(|s| s["pid"].as_u64()) {
                Some(pid) => u32::try_from(pid).ok(),
                None => crate::census::listener_pid(port).ok().flatten(),
            }
        });
        server
    }

    /// The server's `/stats`, if it answers it within [`STATS_PATIENCE`].
    pub fn stats(&self) -> Option<Value> {
        let stream = std::net::TcpStream::connect_timeout(&self.addr, STATS_PATIENCE).ok()?;
        let mut client = Client::from_stream(stream);
        client.set_timeout(STATS_PATIENCE).ok()?;
        client.send(b"GET /stats HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n").ok()?;
        let answer = client.read_response().ok()?;
        serde_json::from_slice(&answer.body).ok()
    }

    /// The counters now. CPU from `/proc` where the server is on this machine, read once
    /// `/stats` has answered (so the step is not charged for the `/stats` before it), and
    /// with its children (a process per connection works in them); from `/stats`'s
    /// `cpu_us` otherwise. `/proc` counts in clock ticks, 10 ms: a step's hundreds of
    /// requests keep the error per request small.
    pub fn counters(&self) -> Counters {
        let stats = self.stats();
        let field = |path: &[&str]| {
            let value = path.iter().try_fold(stats.as_ref()?, |v, key| v.get(key))?;
            value.as_u64()
        };
        let cpu_us = match self.pid {
            Some(pid) => Some(crate::sample::cpu_ms(pid, true) * 1000),
            None => field(&["cpu_us"]),
        };
        let model = stats.as_ref().and_then(|s| s["model"].as_object());
        Counters {
            queue_gauges: model.is_some_and(|m| m.keys().any(|name| name.contains("queued"))),
            cpu_us,
            shed: field(&["shedding", "shed"]),
            expired: field(&["shedding", "expired"]),
            departed: field(&["shedding", "departed"]),
        }
    }

    /// The queues now: the kernel's accept queue, and with `ask_stats` each `model` gauge
    /// of `/stats` whose name says queued. (Not the connections the server's side holds,
    /// `ss`'s ESTAB: asking the kernel for them walks every connection of the machine,
    /// tens of thousands in TIME_WAIT after a few runs, and measured, that walk on the
    /// generator's machine put the generator tens of ms behind its schedule.)
    fn queues(&self, ask_stats: bool) -> Vec<(String, u64)> {
        let stats = if ask_stats { self.stats() } else { None };
        let mut queues = Vec::new();
        let accept = match self.local_port {
            Some(port) => kernel::accept_queue(port).ok().map(|q| u64::from(q.queued)),
            None => stats.as_ref().and_then(|s| s["kernel"]["accept_queue"]["queued"].as_u64()),
        };
        queues.extend(accept.map(|n| ("accept_queue".to_owned(), n)));
        if let Some(model) = stats.as_ref().and_then(|s| s["model"].as_object()) {
            for (name, value) in model {
                if name.contains("queued")
                    && let Some(n) = value.as_u64()
                {
                    queues.push((name.clone(), n));
                }
            }
        }
        queues
    }

    /// Reads the queues every [`EVERY`] on a thread of its own until [`Watcher::stop`];
    /// `/stats` too, every [`STATS_EVERY`] readings, if `queue_gauges`.
    pub fn watch(self, queue_gauges: bool) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("sweep-stats".into()).spawn(move || {
            let mut seen = Seen::default();
            let mut readings = 0;
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                readings += 1;
                // A server elsewhere has its accept queue read from /stats too.
                let ask =
                    (queue_gauges || self.local_port.is_none()) && readings % STATS_EVERY == 1;
                let cpu_before =
                    self.pid.filter(|_| ask).map(|pid| crate::sample::cpu_ms(pid, true));
                for (name, n) in self.queues(ask) {
                    let max = seen.queues_max.entry(name).or_default();
                    *max = (*max).max(n);
                }
                if let Some((before, pid)) = cpu_before.zip(self.pid) {
                    let spent = crate::sample::cpu_ms(pid, true).saturating_sub(before);
                    seen.stats_cpu_us += spent * 1000;
                }
                std::thread::sleep(EVERY.saturating_sub(started.elapsed()));
            }
            seen
        })?;
        Ok(Watcher { stop, handle })
    }

    /// Waits up to `bound` for the last step's work to leave the server: where `/stats`
    /// answers, until the accept queue is empty and the server holds no connection but
    /// the one asking; where it does not, the whole `bound` (nothing tells it is done).
    /// The kernel's queue is asked first, and `/stats` only once it is empty: a `/stats`
    /// costs a busy server time.
    pub fn drain(&self, bound: Duration) {
        if !self.speaks_stats {
            std::thread::sleep(bound);
            return;
        }
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            let queued = match self.local_port {
                Some(port) => kernel::accept_queue(port).map_or(0, |q| q.queued),
                None => 0,
            };
            // The connection asking for /stats is one of the active. No answer: busy.
            if queued == 0
                && self
                    .stats()
                    .is_some_and(|s| s["connections"]["active"].as_u64().is_some_and(|n| n <= 1))
            {
                return;
            }
            std::thread::sleep(EVERY.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// The thread reading the queues during a step.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Seen>,
}

/// What the readings of a step saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The most each queue held at one of them.
    pub queues_max: BTreeMap<String, u64>,
    /// The server's CPU time while it answered them (its requests' too, for the few ms
    /// each takes), to be taken off the step's: what the sweep cost, not its requests.
    pub stats_cpu_us: u64,
}

impl Watcher {
    /// Stops the readings.
    pub fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
