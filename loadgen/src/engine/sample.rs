//! Watching a server from outside while load runs: its threads, processes, memory and CPU
//! time, read from /proc, and its accept queue, read from the kernel by its port.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::procfs;
use serde::Serialize;

/// One reading of a server: the process, plus its children for the fork version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub processes: u64,
    pub threads: u64,
    /// Resident memory: the process's RSS; for the fork version, the sum of every
    /// process's PSS, so that the pages the children share with the parent (copy on
    /// write: untouched since the fork) are counted once, not once per child.
    pub rss_bytes: u64,
    /// Connections the kernel has completed on the server's port and no `accept` has
    /// taken yet, over all its listening sockets.
    pub accept_queue: u32,
}

/// Reads the server `pid` (and its children, if `with_children`), listening on `port`, now.
pub fn read(pid: u32, port: u16, with_children: bool) -> Reading {
    let mut reading = Reading {
        accept_queue: common::kernel::accept_queue(port).map_or(0, |q| q.queued),
        ..Reading::default()
    };
    let mut add = |pid: u32| {
        if let Ok(status) = procfs::status(Some(pid)) {
            reading.processes += 1;
            reading.threads += status.threads;
            reading.rss_bytes += if with_children {
                procfs::pss_bytes(pid).unwrap_or(status.rss_bytes)
            } else {
                status.rss_bytes
            };
        }
    };
    add(pid);
    if with_children {
        procfs::children(pid).unwrap_or_default().into_iter().for_each(&mut add);
    }
    reading
}

/// Context switches of the server's live threads (and its live children's, for the fork
/// version); those of threads and processes that have exited are lost.
pub fn context_switches(pid: u32, with_children: bool) -> u64 {
    let switches = |pid| procfs::context_switches(pid).map_or(0, |c| c.voluntary + c.involuntary);
    let mut total = switches(pid);
    if with_children {
        total += procfs::children(pid).unwrap_or_default().into_iter().map(switches).sum::<u64>();
    }
    total
}

/// CPU time the server has used, in milliseconds: its own and its reaped children's, and
/// with `with_children` its live children's too (the fork version's children live as long
/// as their connections, so at the end of a run most are not reaped yet; left out, their
/// work would read as none).
pub fn cpu_ms(pid: u32, with_children: bool) -> u64 {
    let own = |pid| procfs::cpu_ticks(Some(pid)).unwrap_or_default();
    let ticks = own(pid);
    let mut total = ticks.own + ticks.reaped_children;
    if with_children {
        // A child reaped between the two readings is counted twice or not at all: an
        // error of one connection's CPU at most.
        let children = procfs::children(pid).unwrap_or_default();
        total += children.into_iter().map(|c| own(c).own).sum::<u64>();
    }
    let hz =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100).max(1)
            as u64;
    total * 1000 / hz
}

/// The highest readings seen while the sampler ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peak {
    pub before: Reading,
    pub max_processes: u64,
    pub max_threads: u64,
    pub max_rss_bytes: u64,
    pub max_accept_queue: u32,
}

impl Peak {
    /// Counts one more reading in the peaks.
    pub fn include(&mut self, reading: Reading) {
        self.max_processes = self.max_processes.max(reading.processes);
        self.max_threads = self.max_threads.max(reading.threads);
        self.max_rss_bytes = self.max_rss_bytes.max(reading.rss_bytes);
        self.max_accept_queue = self.max_accept_queue.max(reading.accept_queue);
    }
}

/// A reading and when it was taken, in seconds since the sampler started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timed {
    pub secs: f64,
    #[serde(flatten)]
    pub reading: Reading,
}

/// What a sampler saw: the peaks, and every reading in order (for charts over time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    pub peak: Peak,
    pub series: Vec<Timed>,
}

/// Samples a server on a thread of its own until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Watched>,
}

impl Sampler {
    pub fn start(pid: u32, port: u16, with_children: bool, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // Read here, not on the thread: the load may begin before the thread runs.
        let (started, before) = (Instant::now(), read(pid, port, with_children));
        let thread = std::thread::spawn(move || {
            let mut watched = Watched { peak: Peak { before, ..Peak::default() }, series: vec![] };
            let mut include = |reading| {
                watched.peak.include(reading);
                watched.series.push(Timed { secs: started.elapsed().as_secs_f64(), reading });
            };
            include(before);
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                include(read(pid, port, with_children));
            }
            watched
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The kernel's side of a run: what the server's accept queues could hold, and the
/// handshakes the network namespace's listeners refused meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Listen {
    /// What the server's accept queues can hold, summed over its listening sockets.
    pub cap: u32,
    /// Handshakes dropped because an accept queue was full (`TcpExtListenOverflows`),
    /// counted for the whole namespace: on this machine, the server under load and nothing
    /// else that listens.
    pub overflows: u64,
    /// Every SYN or ACK a listener dropped, overflows included (`TcpExtListenDrops`).
    pub drops: u64,
}

/// Counts what [`Listen`] holds from now until [`ListenWatch::stop`].
#[derive(Debug)]
pub struct ListenWatch {
    cap: u32,
    before: Option<common::kernel::ListenCounters>,
}

impl ListenWatch {
    pub fn start(port: u16) -> Self {
        let cap = common::kernel::accept_queue(port).map_or(0, |q| q.cap);
        Self { cap, before: common::kernel::listen_counters().ok() }
    }

    /// `None` where `/proc/net/netstat` cannot be read.
    pub fn stop(self) -> Option<Listen> {
        let now = common::kernel::listen_counters().ok()?;
        let during = now.since(self.before?);
        Some(Listen { cap: self.cap, overflows: during.overflows, drops: during.drops })
    }
}
