//! The readiness loop: one thread waits for its sockets, accepts, serves each ready
//! connection right there with [`Connection::serve_turn`], and closes the overdue. What it
//! waits *with* is a [`Waiter`], which knows only descriptors and tokens: v4-syscalls
//! implements it on `select`, `poll` and `epoll` directly, v5 on `mio`, and the loop is
//! the same for all of them. `diff` between those two versions shows the waiter and the
//! listener policy (one socket, or a socket per loop), not two loops.
//!
//! A connection is watched for reading for its whole life, and for writing too only while
//! a reply waits for room. A turn that used its whole read budget is served again next
//! round without waiting: an edge-triggered wait would not report those bytes again, and
//! a level-triggered one loses nothing by it.
//!
//! For the recorder ([`crate::trace`], on with `--trace`): each wait is a span named by the
//! call it blocks in, with the descriptors it was given and the number it found ready;
//! each connection is numbered when accepted, and what the loop does for it (its reads,
//! requests and writes, in [`Connection::serve_turn`], and its close) is recorded as that
//! connection's, on the loop's own lane: a connection never leaves its loop.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::evented::{Connection, Next, Overdue, SWEEP_EVERY, Slots, Timeouts};
use crate::limit::LimitLatch;
use crate::overload::{Admission, Shedding};
use crate::server::{ACCEPT_BACKOFF, is_exhaustion};
use crate::shutdown::DEADLINE;
use crate::stats::{Counter, Level};
use crate::trace::{self, Cat};
use crate::{Dispatcher, Shutdown};

/// Readiness of one descriptor, as a loop asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Read,
    ReadWrite,
}

// ANCHOR: waiter
/// A kernel interface that waits for readiness, and all the loop knows of it.
pub trait Waiter {
    /// The system call a wait blocks in, as a timeline names it (`select`, `epoll_wait`).
    const CALL: &'static str;
    /// Watches `fd` (as `token`) for `interest`, or changes what it is watched for.
    fn watch(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()>;
    /// Stops watching `fd`, before it is closed.
    fn forget(&mut self, fd: RawFd);
    /// Waits at most `timeout` and appends the ready descriptors.
    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()>;
}
// ANCHOR_END: waiter

/// A descriptor a wait found ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub token: usize,
    /// The wait said the client may have closed its side (`EPOLLRDHUP`, `EPOLLHUP`): the
    /// turn must read to the end, not stop at a short read. A level-triggered wait may
    /// leave it false: it reports a pending end of input again at its next call.
    pub read_closed: bool,
}

impl Ready {
    /// Ready, from a level-triggered wait that does not say more.
    pub fn level(token: usize) -> Self {
        Self { token, read_closed: false }
    }
}

/// The listening socket's token; connections count up from 1 ([`Slots`]).
const LISTENER: usize = 0;
/// The shutdown's eventfd, far above any connection's token.
const WAKE: usize = usize::MAX;

/// One loop's figures. Each version shows the ones it teaches: v4-syscalls registers
/// some in `/stats` under their own names, v5 lists every loop's.
#[derive(Debug, Default)]
pub struct LoopCounters {
    /// Connections this loop holds now.
    pub connections: Level,
    /// Descriptors watched for clients: the connections and the listener. (The
    /// shutdown's eventfd is watched too, and not counted.)
    pub watched: Level,
    /// Connections this loop has accepted.
    pub accepted: Counter,
    /// Requests answered on this loop.
    pub requests: Counter,
    /// Calls to the wait (select, poll, epoll_wait, io_uring_enter): the loop woke up.
    pub waits: Counter,
    /// Readiness events (or completions) those waits returned.
    pub events: Counter,
    /// Nanoseconds spent inside the wait calls, sleeping included.
    pub wait_nanos: Counter,
    /// Connections refused because their descriptor cannot be watched (select's limit).
    pub refused: Counter,
}

impl LoopCounters {
    /// Counts one wait that took `took` and returned `events`.
    pub fn waited(&self, took: Duration, events: usize) {
        self.waits.bump();
        self.events.add(events as u64);
        self.wait_nanos.add(took.as_nanos() as u64);
    }
}

/// What every loop of one server shares: the handlers, the connection cap, the timeouts
/// and the stop switch.
#[derive(Debug, Clone)]
pub struct Shared {
    pub dispatcher: Arc<Dispatcher>,
    pub latch: Arc<LimitLatch>,
    pub timeouts: Timeouts,
    /// What the loops refuse past their capacity (see [`crate::overload`]).
    pub shedding: Shedding,
    pub shutdown: Shutdown,
}

impl Shared {
    /// For a server with `config`'s timeouts and shutdown, at most `max_connections` open
    /// across all its loops. Taken as it is, like v4-nio's cap: every version's settings
    /// refuse 0 on the command line (`cli::at_least_one`), and a 0 written in code admits
    /// no connection, as it says.
    pub fn new<M>(
        dispatcher: Arc<Dispatcher>,
        config: &crate::Config<M>,
        max_connections: usize,
    ) -> Self {
        Self {
            dispatcher,
            latch: Arc::new(LimitLatch::new(max_connections)),
            timeouts: config.timeouts(),
            shedding: config.shedding,
            shutdown: config.shutdown.clone(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    conn: Connection,
    /// Its number for the recorder, in accept order (0 while the recorder is off).
    number: u64,
    /// When its last turn ended: the idle timeout counts from here.
    since: Instant,
    /// Watched for writing too, because a reply waits for room.
    writable: bool,
}

struct EventLoop<W> {
    waiter: W,
    /// None once a shutdown has begun.
    listener: Option<TcpListener>,
    connections: Slots<Entry>,
    /// Connections whose last turn stopped at its budget, to serve again next round.
    again: Vec<usize>,
    shared: Shared,
    counters: Arc<LoopCounters>,
    /// Written by the shutdown's trigger, so a loop asleep in its wait hears of it at
    /// once, whichever socket (if any) the trigger's connect reaches.
    wake: Arc<EventFd>,
    /// Newcomers may be queued that the cap or a full descriptor table held back: no new
    /// event will announce them, so look again after each round.
    backlogged: bool,
    /// Whether the waiter watches the listener. Not while the loop cannot accept: a
    /// level-triggered wait would report the queued newcomers at every call, a busy loop.
    listening: bool,
    /// After `accept` failed for want of descriptors: not before then.
    accept_paused_until: Option<Instant>,
    last_sweep: Instant,
    /// Set when a shutdown begins: when the remaining connections must be gone.
    closing_by: Option<Instant>,
}

/// Serves `listener` on this thread, waiting with `waiter`, until a shutdown has closed
/// every connection or its deadline has passed.
pub fn run<W: Waiter>(
    mut waiter: W,
    listener: TcpListener,
    shared: Shared,
    counters: Arc<LoopCounters>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    waiter.watch(listener.as_raw_fd(), LISTENER, Interest::Read)?;
    counters.watched.set(1);
    let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
    waiter.watch(wake.as_raw_fd(), WAKE, Interest::Read)?;
    let signal = Arc::clone(&wake);
    shared.shutdown.on_trigger(move || {
        // Fails only if the counter would overflow: then it is readable already.
        let _ = signal.write(1);
    });
    let mut event_loop = EventLoop {
        waiter,
        listener: Some(listener),
        connections: Slots::default(),
        again: Vec::new(),
        shared,
        counters,
        wake,
        backlogged: false,
        listening: true,
        accept_paused_until: None,
        last_sweep: Instant::now(),
        closing_by: None,
    };
    event_loop.run()
}

impl<W: Waiter> EventLoop<W> {
    fn run(&mut self) -> io::Result<()> {
        let mut ready = Vec::new();
        // ANCHOR: loop
        while self.keep_going() {
            // Connections that yielded are served again at once, without sleeping.
            let timeout = if self.again.is_empty() { SWEEP_EVERY } else { Duration::ZERO };
            ready.clear();
            let started = Instant::now();
            match self.wait(timeout, &mut ready) {
                Ok(()) => {}
                // A signal arrived while sleeping; nothing happened to any socket.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // When these requests started waiting for the loop, as far as it can tell: a
            // lower bound, since the time they waited in the kernel while the loop ran
            // other handlers is invisible to it (`SO_TIMESTAMPNS` would stamp each
            // arrival).
            let woke = Instant::now();
            self.counters.waited(woke - started, ready.len());
            for &Ready { token, read_closed } in &ready {
                match token {
                    LISTENER => self.accept_all(),
                    // The shutdown: heard once, and the housekeeping below acts on it.
                    WAKE => self.waiter.forget(self.wake.as_raw_fd()),
                    token => self.serve(token, read_closed, woke),
                }
            }
            // No event to say whether the client closed: read until the socket says.
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true, woke);
            }
            self.housekeeping();
        }
        // ANCHOR_END: loop
        crate::shutdown::closing_at_deadline(self.connections.len());
        Ok(())
    }

    /// The waiter's wait, recorded as a span named by its call, with the descriptors it
    /// was given (select's and poll's cost) and how many it found ready.
    // ANCHOR: recorded_wait
    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()> {
        let mut waiting = trace::span(Cat::Wait, W::CALL);
        if trace::on() {
            waiting.set("watched", self.counters.watched.get());
        }
        let waited = self.waiter.wait(timeout, ready);
        waiting.set("ready", ready.len());
        waited
    }
    // ANCHOR_END: recorded_wait

    fn keep_going(&self) -> bool {
        match self.closing_by {
            Some(deadline) => !self.connections.is_empty() && Instant::now() < deadline,
            None => true,
        }
    }

    /// Accepts everything the listener has queued, while the cap allows.
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some_and(|until| Instant::now() < until) {
            return self.listen(false);
        }
        self.accept_paused_until = None;
        while let Some(listener) = &self.listener {
            // At the cap, newcomers stay in the kernel's backlog until a permit is free.
            let Some(permit) = self.shared.latch.try_acquire() else {
                self.backlogged = true;
                return self.listen(false);
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let prepared =
                        stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true));
                    if let Err(e) = prepared {
                        tracing::debug!("cannot prepare a new connection: {e}");
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    let open = self.shared.dispatcher.stats().connection_opened();
                    let number = trace::next_conn();
                    trace::accepted(number);
                    let token = self.connections.insert(|token| Entry {
                        conn: Connection::new(token, stream, open, permit),
                        number,
                        since: Instant::now(),
                        writable: false,
                    });
                    match self.waiter.watch(fd, token, Interest::Read) {
                        Ok(()) => self.counters.accepted.bump(),
                        Err(e) => self.refuse(token, &e),
                    }
                }
                // The queue is empty: the next arrival will be announced.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.backlogged = false;
                    return self.listen(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors: a loop must not sleep (its connections would stall)
                // nor retry at once (it would spin), so it tries again after a pause.
                Err(e) if is_exhaustion(&e) => {
                    tracing::warn!("accept failed: {e}; trying again in {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    self.backlogged = true;
                    return self.listen(false);
                }
                // The client gave up before we accepted it: on to the next one.
                Err(e) => tracing::debug!("accept: {e}"),
            }
        }
    }

    /// Watches the listener, or stops watching it while the loop cannot accept.
    fn listen(&mut self, watch: bool) {
        let Some(listener) = &self.listener else { return };
        if watch == self.listening {
            return;
        }
        let fd = listener.as_raw_fd();
        if watch {
            if let Err(e) = self.waiter.watch(fd, LISTENER, Interest::Read) {
                tracing::warn!("cannot watch the listener again: {e}; trying each round");
                self.backlogged = true;
                return;
            }
        } else {
            self.waiter.forget(fd);
        }
        self.listening = watch;
    }

    /// A connection the waiter cannot watch (select: a descriptor past `FD_SETSIZE`) is
    /// closed at once, counted, and the reason logged the first time.
    fn refuse(&mut self, token: usize, why: &io::Error) {
        if self.counters.refused.get() == 0 {
            tracing::warn!("refusing connections that cannot be watched: {why}");
        }
        self.counters.refused.bump();
        if let Some(entry) = self.connections.remove(token) {
            let _serving = trace::serving(entry.number);
            trace::closed("refused");
        }
    }

    /// Serves a ready connection for one turn, right here on the loop.
    // ANCHOR: serve
    fn serve(&mut self, token: usize, read_closed: bool, ready_since: Instant) {
        let Some(entry) = self.connections.get_mut(token) else {
            return; // closed earlier in this round
        };
        let _serving = trace::serving(entry.number);
        let answered = entry.conn.session.answered();
        let mut admission = Admission::new(self.shared.shedding, Some(ready_since));
        let dispatcher = &self.shared.dispatcher;
        let turn = entry.conn.serve_turn_admitting(dispatcher, read_closed, &mut admission);
        self.counters.requests.add(entry.conn.session.answered() - answered);
        let writable = match turn.map(|turn| turn.next) {
            Ok(Next::Readable) => false,
            Ok(Next::Yielded) => {
                self.again.push(token);
                false
            }
            Ok(Next::Writable) => true,
            Ok(Next::Close(why)) => {
                tracing::debug!(token, ?why, "closing");
                trace::closed(trace::closed_why(why));
                return self.close(token);
            }
            // A reset or a broken pipe: this client is gone, nobody else is affected.
            Err(e) => {
                tracing::debug!(token, "connection failed: {e}");
                trace::closed(crate::evented::failed_why(&e));
                return self.close(token);
            }
        };
        entry.since = Instant::now();
        // Watched for writing only while a reply waits for room, so a connection with
        // nothing to write does not wake the loop each time it could.
        if entry.writable != writable {
            let interest = if writable { Interest::ReadWrite } else { Interest::Read };
            let fd = entry.conn.stream.as_raw_fd();
            entry.writable = writable;
            if let Err(e) = self.waiter.watch(fd, token, interest) {
                tracing::debug!(token, "cannot change interest, closing: {e}");
                self.close(token);
            }
        }
    }
    // ANCHOR_END: serve

    fn close(&mut self, token: usize) {
        if let Some(entry) = self.connections.remove(token) {
            self.waiter.forget(entry.conn.stream.as_raw_fd());
        }
    }

    /// After each round: notice a shutdown, accept what the cap held back, and, every
    /// [`SWEEP_EVERY`], close the connections that are overdue.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        if self.shared.shutdown.is_triggered() && self.closing_by.is_none() {
            // Stop accepting; close the idle now and the others once they are at rest.
            if let Some(listener) = self.listener.take()
                && self.listening
            {
                self.waiter.forget(listener.as_raw_fd());
            }
            self.closing_by = Some(now + DEADLINE);
            tracing::info!(open = self.connections.len(), "finishing the connections in flight");
        }
        if self.closing_by.is_some() {
            self.close_where(|entry| entry.conn.is_at_rest().then_some("shutdown"));
        } else if self.backlogged {
            self.accept_all();
        }
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            let timeouts = self.shared.timeouts;
            self.close_where(|entry| match entry.conn.is_overdue(now, entry.since, timeouts) {
                Overdue::No => None,
                // Idle, or done lingering after a close decided earlier.
                Overdue::Idle if entry.conn.draining_since.is_some() => Some("lingered"),
                Overdue::Idle => Some("idle-timeout"),
                Overdue::Request => Some("request-timeout"),
            });
        }
        let open = self.connections.len() as u64;
        self.counters.connections.set(open);
        self.counters.watched.set(open + u64::from(self.listener.is_some()));
    }

    /// Closes every connection `close` gives a reason to close (the word a timeline
    /// shows), telling the waiter first.
    fn close_where(&mut self, mut close: impl FnMut(&Entry) -> Option<&'static str>) {
        let waiter = &mut self.waiter;
        self.connections.retain(|entry| {
            let Some(why) = close(entry) else { return true };
            let _serving = trace::serving(entry.number);
            trace::closed(why);
            waiter.forget(entry.conn.stream.as_raw_fd());
            false
        });
    }
}
