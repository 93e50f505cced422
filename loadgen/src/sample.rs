//! Watching a server from outside while load runs: its threads, processes, memory and CPU
//! time, read from /proc.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::procfs;
use serde::Serialize;

/// One reading of a server: the process, plus its children for the fork version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub processes: u64,
    pub threads: u64,
    /// Resident memory summed over the processes. For the fork version this counts the
    /// pages the children share with the parent once per child, so it overstates.
    pub rss_bytes: u64,
}

/// Reads the server `pid` (and its children, if `with_children`) now.
pub fn read(pid: u32, with_children: bool) -> Reading {
    let mut reading = Reading::default();
    let mut add = |pid: u32| {
        if let Ok(status) = procfs::status(Some(pid)) {
            reading.processes += 1;
            reading.threads += status.threads;
            reading.rss_bytes += status.rss_bytes;
        }
    };
    add(pid);
    if with_children {
        procfs::children(pid).unwrap_or_default().into_iter().for_each(&mut add);
    }
    reading
}

/// CPU time the server has used, its reaped children's included, in milliseconds.
pub fn cpu_ms(pid: u32) -> u64 {
    let ticks = procfs::cpu_ticks(Some(pid)).unwrap_or_default();
    let hz =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100).max(1)
            as u64;
    (ticks.own + ticks.reaped_children) * 1000 / hz
}

/// The highest readings seen while the sampler ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peak {
    pub before: Reading,
    pub max_processes: u64,
    pub max_threads: u64,
    pub max_rss_bytes: u64,
}

impl Peak {
    /// Counts one more reading in the peaks.
    pub fn include(&mut self, reading: Reading) {
        self.max_processes = self.max_processes.max(reading.processes);
        self.max_threads = self.max_threads.max(reading.threads);
        self.max_rss_bytes = self.max_rss_bytes.max(reading.rss_bytes);
    }
}

/// Samples a server on a thread of its own until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Peak>,
}

impl Sampler {
    pub fn start(pid: u32, with_children: bool, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // Read here, not on the thread: the load may begin before the thread runs.
        let before = read(pid, with_children);
        let thread = std::thread::spawn(move || {
            let mut peak = Peak { before, ..Peak::default() };
            peak.include(before);
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                peak.include(read(pid, with_children));
            }
            peak
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
