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
/// time, and then that reading has no `/stats` part.
const STATS_PATIENCE: Duration = Duration::from_millis(500);
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
}

/// What a reading before and after a step finds: counters whose difference is the step's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub cpu_us: Option<u64>,
    pub shed: Option<u64>,
    pub expired: Option<u64>,
    pub departed: Option<u64>,
}

impl Server {
    pub fn new(addr: SocketAddr) -> Self {
        let local = addr.ip().is_loopback() || addr.ip().is_unspecified();
        Self { addr, local_port: local.then_some(addr.port()) }
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

    /// The counters now: CPU from `/stats`'s `cpu_us`, else from `/proc` for the process
    /// listening on the port (found through `/stats`'s `pid`, or the kernel's sockets).
    pub fn counters(&self) -> Counters {
        let stats = self.stats();
        let field = |path: &[&str]| {
            let value = path.iter().try_fold(stats.as_ref()?, |v, key| v.get(key))?;
            value.as_u64()
        };
        let cpu_us = field(&["cpu_us"]).or_else(|| {
            let port = self.local_port?;
            let pid = match field(&["pid"]) {
                Some(pid) => u32::try_from(pid).ok(),
                None => crate::census::listener_pid(port).ok().flatten(),
            }?;
            // Its children too: a process per connection does the work in them.
            Some(crate::sample::cpu_ms(pid, true) * 1000)
        });
        Counters {
            cpu_us,
            shed: field(&["shedding", "shed"]),
            expired: field(&["shedding", "expired"]),
            departed: field(&["shedding", "departed"]),
        }
    }

    /// The queues now: the kernel's accept queue, and with `ask_stats` each `model` gauge
    /// of `/stats` whose name says queued.
    fn queues(&self, ask_stats: bool) -> Vec<(String, u64)> {
        let stats = if ask_stats || self.local_port.is_none() { self.stats() } else { None };
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

    /// Reads the queues every [`EVERY`] on a thread of its own until [`Watcher::stop`].
    pub fn watch(self) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("sweep-stats".into()).spawn(move || {
            let mut most: BTreeMap<String, u64> = BTreeMap::new();
            let mut readings = 0;
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                readings += 1;
                for (name, n) in self.queues(readings % STATS_EVERY == 1) {
                    let max = most.entry(name).or_default();
                    *max = (*max).max(n);
                }
                std::thread::sleep(EVERY.saturating_sub(started.elapsed()));
            }
            most
        })?;
        Ok(Watcher { stop, handle })
    }

    /// Waits up to `pause` for the last step's work to leave the server: where `/stats`
    /// answers, until it holds no connection but the one asking and the accept queue is
    /// empty; where it does not, the whole pause.
    pub fn drain(&self, pause: Duration) {
        let deadline = Instant::now() + pause;
        while Instant::now() < deadline {
            let Some(stats) = self.stats() else {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return;
            };
            // The connection asking for /stats is one of the active.
            let idle = stats["connections"]["active"].as_u64().is_some_and(|n| n <= 1);
            let queued = match self.local_port {
                Some(port) => kernel::accept_queue(port).map_or(0, |q| q.queued),
                None => 0,
            };
            if idle && queued == 0 {
                return;
            }
            std::thread::sleep(EVERY.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// The thread reading the queues during a step.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<BTreeMap<String, u64>>,
}

impl Watcher {
    /// Stops the readings; the most each queue held at one of them.
    pub fn stop(self) -> Vec<(String, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().map(|most| most.into_iter().collect()).unwrap_or_default()
    }
}
