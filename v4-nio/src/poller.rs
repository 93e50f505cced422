//! The Poller: one thread, one `mio::Poll`, every connection that is waiting for input.
//!
//! Each turn it takes the events other threads queued for it ([`PollerEvent`]: new
//! sockets from the acceptor, connections coming back from workers), waits in `poll`,
//! hands each ready connection to a worker, and closes connections idle too long.
//!
//! **Why the article's bug cannot happen here.** Java's Selector is level-triggered: as
//! long as a socket has unread bytes, every `select` reports it again, so the article's
//! poller kept handing the same socket to new workers until it masked `OP_READ` with
//! `interestOps`. mio is edge-triggered (EPOLLET): a socket is reported once per arrival
//! of new data, so there is no storm, but also no second chance, which is why a worker
//! reads until `WouldBlock`. And the connection itself moves to the worker: while it is
//! away its slot here is [`Slot::Away`], and an event for it is only counted. When it comes
//! back, `reregister` re-arms it, and epoll checks readiness afresh at that moment, so
//! bytes that arrived while the worker held it are reported then, not lost.

use std::collections::HashMap;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use common::shutdown::DEADLINE;

use crate::Counters;
use crate::worker::{Dispatched, Verdict, Workers};
use common::Stats;
use common::evented::{Connection, Overdue, SWEEP_EVERY, Timeouts};
use common::limit::Permit;
use common::trace::{self, Cat, Handoff};

/// The waker's token; connections count up from 1.
const WAKER: Token = Token(0);

/// What other threads ask of the poller. A connection travels boxed: handing it over
/// moves a pointer, not the few hundred bytes of its state.
#[derive(Debug)]
pub enum PollerEvent {
    /// From the acceptor: a new non-blocking socket to watch, the `conn`th accepted (its
    /// token). The hand-off is the timeline's arrow from the acceptor.
    Register { stream: TcpStream, permit: Permit, conn: usize, handoff: Handoff },
    /// From a worker: the connection is back; watch it for this readiness. The hand-off
    /// is the timeline's arrow back from the worker.
    Rearm(Box<Connection>, Interest, Handoff),
    /// From a worker: the connection was closed (the worker dropped it).
    Closed(usize),
    /// From `run`: close idle connections now, the others once their answers are
    /// written, and return (at the latest after the shutdown deadline).
    Shutdown,
}

impl From<Verdict> for PollerEvent {
    /// A verdict reached on the poller's own thread (no workers): no hand-off.
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Rearm(conn, interest) => {
                PollerEvent::Rearm(conn, interest, Handoff::default())
            }
            Verdict::Closed(token) => PollerEvent::Closed(token),
        }
    }
}

impl PollerEvent {
    /// A worker's verdict, queued back to the poller: a connection coming back is a
    /// hand-off on the timeline.
    pub fn from_worker(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Rearm(conn, interest) => {
                let back = trace::handoff(conn.token as u64);
                PollerEvent::Rearm(conn, interest, back)
            }
            Verdict::Closed(token) => PollerEvent::Closed(token),
        }
    }
}

/// Where a connection is: here waiting for readiness, or away at a worker.
#[derive(Debug)]
enum Slot {
    Home { conn: Box<Connection>, since: Instant },
    Away,
}

/// The article's wake-up counter, guarding `Waker::wake` (a write to an eventfd) so that
/// only an event that finds the poller asleep, or about to sleep, pays for a wake-up.
///
/// The counter is -1 while the poller is in (or entering) `poll`. Whoever queues an event
/// adds one; the one who moves it from -1 to 0 wakes the poller. Before sleeping, the
/// poller swaps in -1: if the old value was above 0, events came in since the queue was
/// drained, so it polls without sleeping.
// ANCHOR: wakeup
#[derive(Debug)]
struct Wakeup {
    counter: AtomicI64,
    waker: Waker,
    counters: Arc<Counters>,
}

impl Wakeup {
    fn event_queued(&self) {
        if self.counter.fetch_add(1, Ordering::AcqRel) == -1 {
            self.counters.wakeups.bump();
            if let Err(e) = self.waker.wake() {
                tracing::error!("cannot wake the poller: {e}");
            }
        }
    }

    /// How long the next `poll` may sleep.
    fn before_poll(&self) -> Duration {
        if self.counter.swap(-1, Ordering::AcqRel) > 0 { Duration::ZERO } else { SWEEP_EVERY }
    }

    fn after_poll(&self) {
        self.counter.store(0, Ordering::Release);
    }
}
// ANCHOR_END: wakeup

/// How other threads reach the poller: its queue and its wake-up. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PollerHandle {
    queue: Sender<PollerEvent>,
    wakeup: Arc<Wakeup>,
}

impl PollerHandle {
    /// Queues `event` and wakes the poller if it sleeps. False if the poller is gone, in
    /// which case the event (and any connection in it) is dropped.
    pub fn send(&self, event: PollerEvent) -> bool {
        let sent = self.queue.send(event).is_ok();
        if sent {
            self.wakeup.event_queued();
        }
        sent
    }
}

/// The poller thread's state.
#[derive(Debug)]
pub struct Poller {
    poll: Poll,
    queue: Receiver<PollerEvent>,
    handle: PollerHandle,
    connections: HashMap<usize, Slot>,
    stats: Arc<Stats>,
    timeouts: Timeouts,
    last_sweep: Instant,
    /// Set by [`PollerEvent::Shutdown`]: when the remaining connections must be gone.
    closing_by: Option<Instant>,
    counters: Arc<Counters>,
}

impl Poller {
    pub fn new(stats: Arc<Stats>, timeouts: Timeouts, counters: Arc<Counters>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (tx, queue) = mpsc::channel();
        let wakeup =
            Arc::new(Wakeup { counter: AtomicI64::new(0), waker, counters: Arc::clone(&counters) });
        Ok(Self {
            poll,
            queue,
            handle: PollerHandle { queue: tx, wakeup },
            connections: HashMap::new(),
            stats,
            timeouts,
            last_sweep: Instant::now(),
            closing_by: None,
            counters,
        })
    }

    pub fn handle(&self) -> PollerHandle {
        self.handle.clone()
    }

    /// The event loop, handing ready connections to `workers`; returns once a shutdown
    /// has closed every connection, or its deadline has passed.
    pub fn run(mut self, workers: Workers) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // ANCHOR: poller_loop
        while self.drain_queue() {
            let timeout = self.handle.wakeup.before_poll();
            let polled = self.wait(&mut events, timeout);
            self.handle.wakeup.after_poll();
            match polled {
                Ok(()) => {}
                // A signal arrived while sleeping; nothing happened to any socket.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                // The waker's event only ends the sleep; the queue is drained next turn.
                if event.token() != WAKER {
                    self.ready(event.token().0, &workers);
                }
            }
            self.close_overdue();
        }
        // ANCHOR_END: poller_loop
        common::shutdown::closing_at_deadline(self.connections.len());
        Ok(())
    }

    /// `poll`, its wait and how many it found ready recorded for the timeline.
    fn wait(&mut self, events: &mut Events, timeout: Duration) -> io::Result<()> {
        let mut waiting = trace::span(Cat::Wait, "epoll_wait");
        let polled = self.poll.poll(events, Some(timeout));
        // Counted only when recorded: a walk over the events is not free.
        if trace::on() {
            waiting.set("ready", events.iter().count());
        }
        polled
    }

    /// Applies every queued event. False when the poller should stop: shutting down and
    /// either every connection is closed or the deadline has passed.
    fn drain_queue(&mut self) -> bool {
        loop {
            match self.queue.try_recv() {
                Ok(event) => self.apply(event),
                Err(TryRecvError::Empty) => break,
                // Nobody can send any more: the same as a shutdown.
                Err(TryRecvError::Disconnected) => {
                    self.apply(PollerEvent::Shutdown);
                    break;
                }
            }
        }
        match self.closing_by {
            Some(deadline) => !self.connections.is_empty() && Instant::now() < deadline,
            None => true,
        }
    }

    fn apply(&mut self, event: PollerEvent) {
        match event {
            PollerEvent::Register { stream, permit, conn: token, handoff } => {
                trace::taken(handoff);
                let fd = stream.as_raw_fd();
                let registered = self.poll.registry().register(
                    &mut SourceFd(&fd),
                    Token(token),
                    Interest::READABLE,
                );
                if let Err(e) = registered {
                    tracing::warn!("cannot watch a new connection, closing it: {e}");
                    return;
                }
                let open = self.stats.connection_opened();
                let conn = Box::new(Connection::new(token, stream, open, permit));
                self.connections.insert(token, Slot::Home { conn, since: Instant::now() });
            }
            // ANCHOR: rearm
            // Shutting down: a connection at rest is closed instead of re-armed.
            PollerEvent::Rearm(conn, _, back) if self.closing_by.is_some() && conn.is_at_rest() => {
                trace::taken(back);
                self.connections.remove(&conn.token);
            }
            PollerEvent::Rearm(conn, interest, back) => {
                trace::taken(back);
                // A request past its deadline, or a linger that has lasted long enough, is
                // not re-armed: a client that trickles bytes would otherwise be back here,
                // fresh, every few hundred ms, and the sweep would never see it overdue.
                let overdue = self.overdue(&conn, Instant::now());
                if overdue != Overdue::No {
                    self.count_closed(overdue);
                    self.connections.remove(&conn.token);
                    return;
                }
                self.counters.rearms.bump();
                // Re-arming re-checks readiness: bytes that came while a worker held the
                // connection produce an event now.
                let fd = conn.stream.as_raw_fd();
                match self.poll.registry().reregister(
                    &mut SourceFd(&fd),
                    Token(conn.token),
                    interest,
                ) {
                    Ok(()) => {
                        self.connections
                            .insert(conn.token, Slot::Home { conn, since: Instant::now() });
                    }
                    Err(e) => {
                        tracing::debug!(token = conn.token, "cannot re-arm, closing: {e}");
                        self.connections.remove(&conn.token);
                    }
                }
            }
            // ANCHOR_END: rearm
            PollerEvent::Closed(token) => {
                self.connections.remove(&token);
            }
            PollerEvent::Shutdown => {
                if self.closing_by.is_none() {
                    self.closing_by = Some(Instant::now() + DEADLINE);
                    // Idle connections go now; those owed an answer, or at a worker, as
                    // soon as they are at rest.
                    self.connections.retain(|_, slot| match slot {
                        Slot::Home { conn, .. } => !conn.is_at_rest(),
                        Slot::Away => true,
                    });
                    tracing::info!(
                        open = self.connections.len(),
                        "poller: finishing the connections in flight"
                    );
                }
            }
        }
    }

    /// A connection is ready: hand it over, unless a worker already holds it.
    fn ready(&mut self, token: usize, workers: &Workers) {
        let Some(slot) = self.connections.get_mut(&token) else {
            return; // closed earlier in this turn
        };
        match std::mem::replace(slot, Slot::Away) {
            Slot::Home { conn, .. } => match workers.dispatch(conn) {
                Dispatched::Queued => {}
                // No pool: the connection was served on this thread just now.
                Dispatched::Served(verdict) => self.apply(verdict.into()),
            },
            Slot::Away => self.counters.events_while_busy.bump(),
        }
    }

    /// Whether `conn`, just back from a worker, is already due to be closed.
    fn overdue(&self, conn: &Connection, now: Instant) -> Overdue {
        // Back this instant: it has not idled, but its request or linger may be late.
        conn.is_overdue(now, now, self.timeouts)
    }

    fn count_closed(&self, why: Overdue) {
        match why {
            Overdue::Idle => self.counters.idle_closed.bump(),
            Overdue::Request => self.counters.request_timeouts.bump(),
            Overdue::No => {}
        }
    }

    /// Closes the connections resting here that are overdue: idle past the idle timeout,
    /// lingering past the linger time, or with a request arriving too slowly.
    fn close_overdue(&mut self) {
        let now = Instant::now();
        // A busy poller turns thousands of times a second; a sweep over every connection
        // on each turn would cost more than the serving.
        if now.duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        let mut closed = Vec::new();
        self.connections.retain(|_, slot| match slot {
            Slot::Home { conn, since } => {
                let why = conn.is_overdue(now, *since, self.timeouts);
                if why != Overdue::No {
                    closed.push(why);
                }
                why == Overdue::No
            }
            Slot::Away => true,
        });
        if !closed.is_empty() {
            tracing::debug!(closed = closed.len(), "closed idle connections and slow requests");
        }
        for why in closed {
            self.count_closed(why);
        }
    }
}
