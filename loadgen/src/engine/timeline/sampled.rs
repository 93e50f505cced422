//! A timeline for a server that records nothing: every few milliseconds, each of its
//! threads' state (`/proc/PID/task/TID/stat`) and the CPU time it has had
//! (`/proc/PID/task/TID/schedstat`, nanoseconds, where `stat` counts only 10 ms ticks),
//! the fork version's children and their threads included. An interval in which a thread
//! had CPU time is drawn as running, any other as waiting (asleep, or runnable but given
//! no CPU, which on a busy machine is most of a busy thread's time): coarser than a
//! trace (no connections, no hand-offs), but it shows which threads work, which wait, and
//! when threads appear and end, for a server in any language.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Category, Lane, Source, Span, Timeline};

/// What one reading found of one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    state: char,
    cpu_ns: u64,
}

/// Reads one thread: its state letter and CPU time, or `None` if it is gone.
fn read_thread(pid: u32, tid: u32) -> Option<Seen> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The name in parentheses may hold spaces; the state follows its closing one.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()?;
    let schedstat = std::fs::read_to_string(format!("{dir}/schedstat")).unwrap_or_default();
    let cpu_ns = schedstat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    Some(Seen { state, cpu_ns })
}

/// The threads of `pid` and of its children, as (pid, tid).
fn threads(pid: u32) -> Vec<(u32, u32)> {
    let tasks = |pid: u32| -> Vec<(u32, u32)> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .map(|tid| (pid, tid))
            .collect()
    };
    let mut all = tasks(pid);
    let children = common::procfs::children(pid).unwrap_or_default();
    all.extend(children.into_iter().flat_map(tasks));
    all
}

fn comm(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_else(|_| format!("tid {tid}"))
}

/// What the sampler builds as it reads.
struct Building {
    started: Instant,
    /// `started` on CLOCK_MONOTONIC, in microseconds.
    origin_us: f64,
    root: u32,
    lanes: Vec<Lane>,
    index: HashMap<(u32, u32), usize>,
    last: HashMap<usize, (f64, Seen)>,
    spans: Vec<Span>,
}

impl Building {
    fn reading(&mut self) {
        let now = self.started.elapsed().as_secs_f64() * 1e6;
        for (pid, tid) in threads(self.root) {
            let Some(seen) = read_thread(pid, tid) else { continue };
            let lane = match self.index.get(&(pid, tid)) {
                Some(&lane) => lane,
                None => {
                    self.lanes.push(Lane { pid, tid, name: self.name(pid, tid) });
                    self.index.insert((pid, tid), self.lanes.len() - 1);
                    self.lanes.len() - 1
                }
            };
            if let Some((since, before)) = self.last.insert(lane, (now, seen)) {
                if self.spans.iter().all(|s| s.lane != lane) {
                    // A thread names itself once it runs: the first reading may have
                    // caught the name it inherited.
                    self.lanes[lane].name = self.name(pid, tid);
                }
                self.interval(lane, since, now, before, seen);
            }
        }
    }

    /// A thread's name; a child process's threads say whose they are.
    fn name(&self, pid: u32, tid: u32) -> String {
        let name = comm(pid, tid);
        if pid == self.root { name } else { format!("{name} ({pid})") }
    }

    /// Draws `lane` from `since` to `now`: running if it had CPU time meanwhile, else
    /// waiting (for a CPU, if the kernel had it runnable: on a busy machine that is a wait
    /// too); extends the lane's last span when it is the same.
    fn interval(&mut self, lane: usize, since: f64, now: f64, before: Seen, seen: Seen) {
        let (cat, name) = if seen.cpu_ns > before.cpu_ns {
            (Category::Running, "running")
        } else if seen.state == 'R' {
            (Category::Wait, "runnable, waiting for a CPU")
        } else if seen.state == 'D' {
            (Category::Wait, "in the kernel, uninterruptible")
        } else {
            (Category::Wait, "sleeping")
        };
        let previous = self.spans.iter_mut().rev().find(|s| s.lane == lane);
        let same =
            |s: &&mut Span| s.cat == cat && s.name == name && (s.end_us() - since).abs() < 1.0;
        if let Some(span) = previous.filter(same) {
            span.dur_us = now - span.start_us;
            return;
        }
        let name = name.to_owned();
        self.spans.push(Span {
            lane,
            cat,
            name,
            start_us: since,
            dur_us: now - since,
            conn: None,
            count: None,
        });
    }

    fn finish(mut self) -> Timeline {
        // Names can change while a thread runs; the latest is the one it chose.
        for i in 0..self.lanes.len() {
            let (pid, tid) = (self.lanes[i].pid, self.lanes[i].tid);
            if std::fs::metadata(format!("/proc/{pid}/task/{tid}")).is_ok() {
                self.lanes[i].name = self.name(pid, tid);
            }
        }
        let process = std::fs::read_to_string(format!("/proc/{}/comm", self.root))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_else(|_| format!("pid {}", self.root));
        let mut spans = self.spans;
        spans.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
        let length_us = spans.iter().map(Span::end_us).fold(0.0, f64::max);
        Timeline {
            source: Source::Sampled,
            process,
            lanes: self.lanes,
            spans,
            flows: vec![],
            marks: vec![],
            origin_us: self.origin_us,
            length_us,
            dropped: 0,
            limit: None,
        }
    }
}

/// Samples a process's threads on a thread of its own until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Timeline>,
}

impl Sampler {
    /// Starts reading `pid` (and its children) every `every`; the first reading is taken
    /// before this returns, so load that starts next is seen from its start.
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut building = Building {
            started: Instant::now(),
            origin_us: super::monotonic_us(),
            root: pid,
            lanes: vec![],
            index: HashMap::new(),
            last: HashMap::new(),
            spans: vec![],
        };
        building.reading();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                building.reading();
            }
            building.finish()
        });
        Self { stop, thread }
    }

    /// Stops and returns what it saw (an empty timeline if the sampling thread panicked).
    pub fn stop(self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| Timeline::empty(Source::Sampled))
    }
}

/// How often [`under_workload`] reads the threads: often enough that a 50 ms handler is
/// many readings, rarely enough that the reading (a few files per thread) stays a small
/// part of a core.
pub const EVERY: Duration = Duration::from_millis(2);

/// Samples `pid` while `workload` runs against it: its threads over the workload's
/// moments, and what the clients saw.
pub fn under_workload(
    pid: u32,
    workload: &super::workload::Workload,
) -> std::io::Result<(Timeline, super::workload::Ran)> {
    let sampler = Sampler::start(pid, EVERY);
    let began = super::monotonic_us();
    let ran = super::workload::run(workload);
    let ended = super::monotonic_us();
    let whole = sampler.stop();
    let ran = ran?;
    let mut whole = whole;
    workload.mark(&mut whole, began);
    let from = (began - whole.origin_us - 2_000.0).max(0.0);
    let to = (ended - whole.origin_us + 2_000.0).min(whole.length_us);
    Ok((whole.window(from, to), ran))
}

/// The sentence under a sampled picture of `process`.
pub fn caption(process: &str) -> String {
    format!(
        "{process} records no trace, so this is what /proc shows of it, read every {} ms: a \
         lane per thread (the names are the threads' own), gold while the thread had a CPU, \
         grey while it waited (asleep, or runnable with no CPU free: hover a bar to see which); \
         a thread that appears or ends mid-way was started or ended for a connection, and \
         threads asleep while clients wait are the ones the model leaves idle.",
        EVERY.as_millis()
    )
}
