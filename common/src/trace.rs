//! The recorder: what every thread of a server did, and when, written as a timeline
//! (`--trace FILE`, in the Chrome trace event format that Perfetto, `chrome://tracing` and
//! speedscope open; `loadgen timeline` draws it).
//!
//! At a call site, one line:
//!
//! ```ignore
//! let _wait = trace::span(Cat::Wait, "read");              // blocked in read, until dropped
//! let _handle = trace::span(Cat::Handle, ("GET", "/hello")); // a handler, named by request
//! let _serving = trace::serving(conn);                     // the thread's spans are for conn
//! trace::instant(Cat::Read, "read", &[("bytes", n.into())]);
//! let handoff = trace::handoff(conn);   // queued for another thread: an arrow starts here
//! let _job = trace::job(handoff);       // ... and ends on the thread that took it
//! ```
//!
//! **Off** (the default), a span costs one relaxed atomic load ([`on`]) and a `None`; no
//! clock is read, nothing is copied. **On**, each thread appends fixed-size events to a
//! lane of its own (a buffer registered globally so the file and the live window can
//! collect every lane), stamped on CLOCK_MONOTONIC, so the fork version's children, each a
//! process, share the parent's time axis; a lane carries the kernel thread id (`gettid`)
//! so `/proc/PID/task/TID` samples line up with it. The recording is bounded in time
//! (`--trace-for`) and in events (`--trace-events`, hence in memory); the file is written
//! when a bound is reached or when the server stops, whichever comes first, and says why
//! recording stopped and how many events were dropped (those that found it full; once it
//! has stopped, spans cost the one load again and are not counted). `--trace-live` keeps
//! the last seconds in memory for `GET /trace?ms=N`, the live page's timeline.
//!
//! The fork version: each child starts a lane of its own ([`forked`]) and writes it, as it
//! exits, to `FILE.child-PID` ([`finish`]); the parent, which must stay single-threaded and
//! so has no writer thread, writes `FILE` from its accept loop once a bound is reached
//! ([`flush_if_due`]) and again at shutdown, merging (and deleting) the children's pieces.
//! Each process counts its own events against `--trace-events`.
//!
//! **Why not `tracing-chrome`.** The workspace already logs through `tracing`, and
//! `tracing-chrome` is a `tracing-subscriber` layer writing this very format. What it does
//! not do is what this module is for: it sends every event through a channel to one
//! writer thread as it happens, unbounded (here: a per-thread bounded buffer, and a file
//! written once); it numbers threads itself (here: kernel tids, to line up with `/proc`);
//! it has no window of recent events to answer the live page from; and it cannot work in
//! the fork version, whose parent must stay single-threaded (no writer thread) and whose
//! children, one process each, write pieces that the parent merges. Its spans would also
//! go through `tracing`'s registry (an allocation and a lookup per span) where a span here
//! is a copy into an array. Hence our own, small, recorder.

mod event;
mod lanes;
mod output;
mod recorder;

use std::sync::atomic::{AtomicU64, Ordering};

use event::{Event, NO_ARG, Ph};

pub use event::{ArgValue, Cat, EVENT_BYTES, LABEL_BYTES, Label, Name};
pub use recorder::{LIVE_KEEP, Settings, finish, flush_if_due, forked, start, window};

/// Whether the recorder is recording: one relaxed load, all a span costs when it is not.
#[inline]
pub fn on() -> bool {
    recorder::ON.load(Ordering::Relaxed)
}

/// Nanoseconds on CLOCK_MONOTONIC, the clock every process of a server shares.
pub(crate) fn now() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_MONOTONIC exists on every Linux; were it refused, a zero stamps the event.
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
}

/// A span being timed; recorded when dropped. Holds nothing when the recorder is off.
#[must_use = "a span is recorded when dropped: bind it, `let _span = trace::span(..)`"]
#[derive(Debug)]
pub struct Span(Option<Event>);

/// Starts a span of `cat` named `name`, for the connection the thread is serving (see
/// [`serving`]). A [`Cat::Wait`] span also shows as going on until it ends, in a trace
/// or window taken meanwhile.
pub fn span(cat: Cat, name: impl Name) -> Span {
    if !on() {
        return Span(None);
    }
    let event = Event {
        ph: Ph::Complete,
        cat,
        name: name.label(),
        ts: now(),
        dur: 0,
        conn: lanes::conn(),
        id: 0,
        args: [NO_ARG; 2],
    };
    if cat == Cat::Wait {
        lanes::open(event);
    }
    Span(Some(event))
}

impl Span {
    /// The span with argument `key` (a count, or a fixed word); at most two per span.
    pub fn with(mut self, key: &'static str, value: impl Into<ArgValue>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets argument `key`, once known (the bytes a read returned).
    pub fn set(&mut self, key: &'static str, value: impl Into<ArgValue>) {
        if let Some(event) = &mut self.0 {
            put_arg(event, key, value.into());
        }
    }

    /// The span is for connection `conn`, not the thread's current one.
    pub fn conn(mut self, conn: u64) -> Self {
        self.set_conn(conn);
        self
    }

    pub fn set_conn(&mut self, conn: u64) {
        if let Some(event) = &mut self.0 {
            event.conn = conn;
        }
    }

    /// Starts a hand-off's arrow inside this span (a spawn handing its connection to the
    /// new thread), to be ended by [`taken`] on the thread that takes it.
    pub fn hand_off(&self) -> Handoff {
        match &self.0 {
            Some(event) => flow_out(event.conn),
            None => Handoff::default(),
        }
    }

    /// Drops the span unrecorded: it turned out to be nothing (a decode that found no
    /// whole request).
    pub fn cancel(mut self) {
        if let Some(event) = self.0.take()
            && event.cat == Cat::Wait
        {
            lanes::open_ended();
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut event) = self.0.take() {
            event.dur = now().saturating_sub(event.ts);
            lanes::append(event, event.cat == Cat::Wait);
        }
    }
}

/// Puts `key = value` in a free slot (or the one already holding `key`); a third
/// argument is left out.
fn put_arg(event: &mut Event, key: &'static str, value: ArgValue) {
    if let Some(slot) = event.args.iter_mut().find(|(k, _)| *k == key || k.is_empty()) {
        *slot = (key, value);
    }
}

/// Records a moment of `cat` named `name` with `args`, for the thread's connection.
pub fn instant(cat: Cat, name: impl Name, args: &[(&'static str, ArgValue)]) {
    if on() {
        record_instant(cat, name.label(), lanes::conn(), args);
    }
}

fn record_instant(cat: Cat, name: Label, conn: u64, args: &[(&'static str, ArgValue)]) {
    let mut event =
        Event { ph: Ph::Instant, cat, name, ts: now(), dur: 0, conn, id: 0, args: [NO_ARG; 2] };
    for (key, value) in args {
        put_arg(&mut event, key, *value);
    }
    lanes::append(event, false);
}

/// Connection `conn` was accepted (an instant on the accepting thread).
pub fn accepted(conn: u64) {
    if on() {
        record_instant(Cat::Accept, "accept".label(), conn, &[]);
    }
}

/// The thread's connection closed, `why` (`eof`, `reset`, `error`, `timeout`, `shed`...).
pub fn closed(why: &'static str) {
    instant(Cat::Close, "close", &[("why", why.into())]);
}

/// The word a close instant gives for `closed`.
pub fn closed_why(closed: crate::session::Closed) -> &'static str {
    use crate::session::Closed;
    match closed {
        Closed::ByPeer => "eof",
        Closed::Exit => "exit",
        Closed::NotKeepAlive => "not-keep-alive",
        Closed::IdleTimeout => "idle-timeout",
        Closed::RequestTimeout => "request-timeout",
        Closed::ProtocolError(_) => "protocol-error",
        Closed::Refused => "shed",
        Closed::Departed => "departed",
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The next connection's number, in accept order from 1, for a version that does not
/// number its connections itself; 0 (no number) when the recorder is off, so that nothing
/// is counted then.
pub fn next_conn() -> u64 {
    if on() { NEXT_CONN.fetch_add(1, Ordering::Relaxed) } else { 0 }
}

/// While held, the calling thread's spans are for connection `conn`.
#[must_use = "the connection is the thread's only while the guard is held"]
#[derive(Debug)]
pub struct Serving(Option<u64>);

/// Makes `conn` the calling thread's connection until the guard drops (then the previous
/// one again). Nothing when the recorder is off.
pub fn serving(conn: u64) -> Serving {
    if on() { Serving(Some(lanes::set_conn(conn))) } else { Serving(None) }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(previous) = self.0 {
            lanes::set_conn(previous);
        }
    }
}

/// A hand-off in flight: the arrow's id and the connection it carries (both 0 when the
/// recorder is off). Cheap to move into the job that takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handoff {
    id: u64,
    conn: u64,
}

fn flow_out(conn: u64) -> Handoff {
    let id = recorder::next_flow();
    let ts = now();
    let out = Event {
        ph: Ph::FlowOut,
        cat: Cat::Handoff,
        name: "handoff".label(),
        ts,
        dur: 0,
        conn,
        id,
        args: [NO_ARG; 2],
    };
    lanes::append(out, false);
    Handoff { id, conn }
}

/// `conn` (or one of its requests) is queued for another thread: a `queued` instant and
/// the start of an arrow, which [`job`] or [`taken`] ends.
pub fn handoff(conn: u64) -> Handoff {
    if !on() {
        return Handoff::default();
    }
    record_instant(Cat::Handoff, "queued".label(), conn, &[]);
    flow_out(conn)
}

/// The calling thread took `handoff`: a `taken` instant and the arrow's end.
pub fn taken(handoff: Handoff) {
    if handoff.id == 0 || !on() {
        return;
    }
    record_instant(Cat::Handoff, "taken".label(), handoff.conn, &[]);
    let arrival = Event {
        ph: Ph::FlowIn,
        cat: Cat::Handoff,
        name: "handoff".label(),
        ts: now(),
        dur: 0,
        conn: handoff.conn,
        id: handoff.id,
        args: [NO_ARG; 2],
    };
    lanes::append(arrival, false);
}

/// A pool thread's job, from the moment it took `handoff` until dropped: records the wait
/// for the queue that ended now (since its previous job, or since recording began), the
/// taking, and makes the hand-off's connection the thread's while held.
#[must_use = "the job lasts while the guard is held"]
#[derive(Debug)]
pub struct Job(Option<Serving>);

pub fn job(handoff: Handoff) -> Job {
    if !on() {
        return Job(None);
    }
    let since = match lanes::idle_since() {
        0 => recorder::setup().map_or(0, |setup| setup.start),
        since => since,
    };
    let waited = Event {
        ph: Ph::Complete,
        cat: Cat::Wait,
        name: "queue".label(),
        ts: since,
        dur: now().saturating_sub(since),
        conn: 0,
        id: 0,
        args: [NO_ARG; 2],
    };
    lanes::append(waited, false);
    taken(handoff);
    Job(Some(serving(handoff.conn)))
}

impl Drop for Job {
    fn drop(&mut self) {
        if self.0.is_some() {
            lanes::set_idle_since(now());
        }
    }
}

#[cfg(test)]
mod tests;
