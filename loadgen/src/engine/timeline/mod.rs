//! Timelines: what each thread of a server did, over time. A server that records writes a
//! trace in the Chrome trace event format (`--trace FILE`, or its `/trace` route);
//! [`trace::read`] turns one into a [`Timeline`] (a lane per thread, a span per thing a
//! thread did, an arrow per hand-off between threads), [`draw::svg`] draws it, and for a
//! server that records nothing [`sampled`] reads each thread's state and CPU time from
//! /proc every few milliseconds into the same [`Timeline`]. [`workload`] is the small
//! fixed load a timeline is taken under, so that pictures of two servers compare.
//!
//! Nothing here knows a version: the sentence under a picture is the caller's.

pub mod draw;
pub mod sampled;
pub mod summary;
pub mod trace;
pub mod workload;

use serde::Serialize;

/// What a span was, the fixed set of the trace format (the drawing colours by it), and
/// `Running`, which only the /proc sampler draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Wait,
    Accept,
    Read,
    Decode,
    Handle,
    Write,
    Handoff,
    Spawn,
    Poll,
    Reap,
    Close,
    /// On a CPU, as /proc saw it (a sampled timeline).
    Running,
    /// A category the format does not name: drawn, in grey, rather than refused, so a
    /// server that adds its own still draws.
    Other,
}

impl Category {
    /// Every category, in the legend's order.
    pub const ALL: [Category; 13] = [
        Category::Wait,
        Category::Accept,
        Category::Read,
        Category::Decode,
        Category::Handle,
        Category::Write,
        Category::Handoff,
        Category::Spawn,
        Category::Poll,
        Category::Reap,
        Category::Close,
        Category::Running,
        Category::Other,
    ];

    /// The category a trace calls `cat`.
    pub fn named(cat: &str) -> Category {
        Category::ALL
            .into_iter()
            .find(|c| c.name() == cat && *c != Category::Other)
            .unwrap_or(Category::Other)
    }

    /// Its name in a trace.
    pub fn name(self) -> &'static str {
        match self {
            Category::Wait => "wait",
            Category::Accept => "accept",
            Category::Read => "read",
            Category::Decode => "decode",
            Category::Handle => "handle",
            Category::Write => "write",
            Category::Handoff => "handoff",
            Category::Spawn => "spawn",
            Category::Poll => "poll",
            Category::Reap => "reap",
            Category::Close => "close",
            Category::Running => "running",
            Category::Other => "other",
        }
    }

    /// What the legend says of it.
    pub fn meaning(self) -> &'static str {
        match self {
            Category::Wait => "blocked, waiting",
            Category::Accept => "accepting a connection",
            Category::Read => "reading",
            Category::Decode => "parsing a request",
            Category::Handle => "running the handler",
            Category::Write => "writing",
            Category::Handoff => "queueing or taking work",
            Category::Spawn => "starting a thread or process",
            Category::Poll => "polling a task",
            Category::Reap => "reaping completions",
            Category::Close => "closing",
            Category::Running => "on a CPU (sampled)",
            Category::Other => "other",
        }
    }
}

/// A thread, drawn as a lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lane {
    pub pid: u32,
    pub tid: u32,
    /// The thread's name as the server names it (`worker-3`, `loop-0`), or `tid N`.
    pub name: String,
}

/// Something one thread did, from `start_us` for `dur_us` (0 for an instant).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// Index into [`Timeline::lanes`].
    pub lane: usize,
    pub cat: Category,
    pub name: String,
    /// Microseconds since the timeline's start.
    pub start_us: f64,
    pub dur_us: f64,
    /// The server's connection number, when the span served one.
    pub conn: Option<u64>,
    /// `args.count` of a reap (completions taken in one go), `args.ready` of a wait.
    pub count: Option<u64>,
}

impl Span {
    pub fn end_us(&self) -> f64 {
        self.start_us + self.dur_us
    }
}

/// A hand-off: work queued on one lane and taken on another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub from: usize,
    pub from_us: f64,
    pub to: usize,
    pub to_us: f64,
}

/// A moment the caller knows of (the newcomer connecting), drawn as a dashed line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub at_us: f64,
    pub label: String,
}

/// Where a timeline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The server's own trace.
    Trace,
    /// Threads' states and CPU time, sampled from /proc.
    Sampled,
}

/// A server's threads over a window of time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub source: Source,
    /// The process's name (`v3-thread-pool`), or empty when the trace gives none.
    pub process: String,
    pub lanes: Vec<Lane>,
    /// In order of start.
    pub spans: Vec<Span>,
    pub flows: Vec<Flow>,
    pub marks: Vec<Mark>,
    /// When the window starts, in microseconds on CLOCK_MONOTONIC (the clock of the
    /// trace format, and of `Instant` on Linux): where to cut the timeline to a moment
    /// the caller timed itself.
    pub origin_us: f64,
    /// How long the window is, in microseconds from its start.
    pub length_us: f64,
    /// Events the server could not record (its buffers were full), as it says.
    pub dropped: u64,
    /// Why the server stopped recording, if it stopped before the end.
    pub limit: Option<String>,
}

impl Timeline {
    /// The part from `from_us` to `to_us` (microseconds from the start), starting at zero:
    /// spans cut at its edges, hand-offs wholly inside it kept.
    pub fn window(&self, from_us: f64, to_us: f64) -> Timeline {
        let spans = self
            .spans
            .iter()
            .filter(|s| s.end_us() >= from_us && s.start_us <= to_us)
            .map(|s| {
                let start = s.start_us.max(from_us);
                let end = s.end_us().min(to_us);
                Span { start_us: start - from_us, dur_us: end - start, ..s.clone() }
            })
            .collect();
        let flows = self
            .flows
            .iter()
            .filter(|f| f.from_us >= from_us && f.to_us <= to_us)
            .map(|f| Flow { from_us: f.from_us - from_us, to_us: f.to_us - from_us, ..f.clone() })
            .collect();
        let marks = self
            .marks
            .iter()
            .filter(|m| (from_us..=to_us).contains(&m.at_us))
            .map(|m| Mark { at_us: m.at_us - from_us, label: m.label.clone() })
            .collect();
        Timeline {
            spans,
            flows,
            marks,
            origin_us: self.origin_us + from_us,
            length_us: (to_us - from_us).max(0.0),
            ..self.clone()
        }
    }
}

impl Timeline {
    /// Marks the moment `at` (microseconds on CLOCK_MONOTONIC, as [`monotonic_us`] reads
    /// it), if it falls within the window.
    pub fn mark(&mut self, at: f64, label: &str) {
        let at_us = at - self.origin_us;
        if (0.0..=self.length_us).contains(&at_us) {
            self.marks.push(Mark { at_us, label: label.to_owned() });
        }
    }

    /// An empty timeline of `source`.
    pub fn empty(source: Source) -> Timeline {
        Timeline {
            source,
            process: String::new(),
            lanes: vec![],
            spans: vec![],
            flows: vec![],
            marks: vec![],
            origin_us: 0.0,
            length_us: 0.0,
            dropped: 0,
            limit: None,
        }
    }
}

/// Now, in microseconds on CLOCK_MONOTONIC: the clock the traces are stamped with.
pub fn monotonic_us() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_MONOTONIC exists on every Linux; were it refused, zero.
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map_or(0.0, |t| t.tv_sec() as f64 * 1e6 + t.tv_nsec() as f64 / 1e3)
}
