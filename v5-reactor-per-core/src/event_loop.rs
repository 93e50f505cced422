//! One event loop: a thread, a `mio::Poll`, a listening socket of its own, and every
//! connection that socket accepted, for their whole lives.
//!
//! Each turn it waits in `poll`, accepts what its socket has queued, and serves each ready
//! connection right here with the turn v4's workers run. A connection is registered once,
//! edge-triggered: readable for its whole life, writable too only while a reply waits for
//! room. Nothing crosses to another thread, so nothing is queued, woken or re-armed per
//! request. A turn that used its whole read budget is served again on the next round
//! instead of waiting for an event that an edge-triggered poll would never send.

use common::evented::SWEEP_EVERY;
use std::io;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::evented::{Connection, Next, Overdue, Slots, Timeouts};
use common::limit::LimitLatch;
use common::server::{ACCEPT_BACKOFF, is_exhaustion};
use common::shutdown::DEADLINE;
use common::{Dispatcher, Shutdown};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::LoopCounters;

/// The listening socket's token; connections count up from 1.
const LISTENER: Token = Token(0);
/// The waker's token, far above any connection's.
const WAKE: Token = Token(usize::MAX);

/// A connection and what the loop knows about it besides.
#[derive(Debug)]
struct Entry {
    conn: Connection,
    /// When its last turn ended: the idle timeout counts from here.
    since: Instant,
    /// Registered for WRITABLE too, because a reply waits for room.
    writable: bool,
}

/// One loop's state; [`EventLoop::run`] is its thread.
#[derive(Debug)]
pub struct EventLoop {
    id: usize,
    poll: Poll,
    /// None once a shutdown has begun.
    listener: Option<TcpListener>,
    connections: Slots<Entry>,
    /// Connections whose last turn stopped at its budget, to serve again next round.
    again: Vec<Token>,
    dispatcher: Arc<Dispatcher>,
    latch: Arc<LimitLatch>,
    timeouts: Timeouts,
    counters: Arc<LoopCounters>,
    shutdown: Shutdown,
    /// Connections may be waiting in the socket's queue that were not accepted (at the
    /// cap, or out of descriptors): no new event will announce them, so look again.
    backlogged: bool,
    /// After `accept` failed for want of descriptors: not before then.
    accept_paused_until: Option<Instant>,
    last_sweep: Instant,
    /// Set when a shutdown begins: when the remaining connections must be gone.
    closing_by: Option<Instant>,
}

impl EventLoop {
    pub fn new(
        id: usize,
        listener: StdListener,
        dispatcher: Arc<Dispatcher>,
        latch: Arc<LimitLatch>,
        timeouts: Timeouts,
        counters: Arc<LoopCounters>,
        shutdown: Shutdown,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        // The shutdown wakes every loop: its connect reaches only one of the sockets.
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        shutdown.on_trigger(move || {
            let _ = waker.wake();
        });
        Ok(Self {
            id,
            poll,
            listener: Some(listener),
            connections: Slots::default(),
            again: Vec::new(),
            dispatcher,
            latch,
            timeouts,
            counters,
            shutdown,
            backlogged: false,
            accept_paused_until: None,
            last_sweep: Instant::now(),
            closing_by: None,
        })
    }

    /// The loop; returns once a shutdown has closed every connection, or its deadline
    /// has passed.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // ANCHOR: loop
        while self.keep_going() {
            // Connections that yielded are served again at once, without sleeping.
            let timeout = if self.again.is_empty() { SWEEP_EVERY } else { Duration::ZERO };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                // A signal arrived while sleeping; nothing happened to any socket.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.counters.wakeups.bump();
            self.counters.events.add(events.iter().count() as u64);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    // The shutdown: the housekeeping below notices it.
                    WAKE => {}
                    token => self.serve(token, event.is_read_closed()),
                }
            }
            // No event to say whether the client closed: read until the socket says.
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true);
            }
            self.housekeeping();
        }
        // ANCHOR_END: loop
        if !self.connections.is_empty() {
            tracing::warn!(
                open = self.connections.len(),
                "closing connections at the shutdown deadline"
            );
        }
        Ok(())
    }

    fn keep_going(&self) -> bool {
        match self.closing_by {
            Some(deadline) => !self.connections.is_empty() && Instant::now() < deadline,
            None => true,
        }
    }

    /// Accepts everything this loop's socket has queued, while the cap allows.
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some_and(|until| Instant::now() < until) {
            return;
        }
        self.accept_paused_until = None;
        while let Some(listener) = &self.listener {
            // At the cap, newcomers stay in this socket's backlog until a permit is free.
            let Some(permit) = self.latch.try_acquire() else {
                self.backlogged = true;
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let open = self.dispatcher.stats().connection_opened();
                    let token = self.connections.insert(|token| {
                        let conn = Connection::new(token, stream, open, permit);
                        Entry { conn, since: Instant::now(), writable: false }
                    });
                    let Some(entry) = self.connections.get_mut(token) else { continue };
                    let stream = &mut entry.conn.stream;
                    let registered = stream.set_nodelay(true).and_then(|()| {
                        self.poll.registry().register(stream, token, Interest::READABLE)
                    });
                    if let Err(e) = registered {
                        tracing::warn!("cannot watch a new connection, closing it: {e}");
                        self.connections.remove(token);
                        continue;
                    }
                    self.counters.accepted.bump();
                }
                // The queue is empty: the next arrival will be announced.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.backlogged = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors: a loop must not sleep (its connections would stall)
                // nor retry at once (it would spin), so it tries again after a pause.
                Err(e) if is_exhaustion(&e) => {
                    tracing::warn!("accept failed: {e}; trying again in {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    self.backlogged = true;
                    return;
                }
                // The client gave up before we accepted it: on to the next one.
                Err(e) => tracing::debug!("accept: {e}"),
            }
        }
    }

    /// Serves a ready connection for one turn, right here on the loop.
    // ANCHOR: serve
    fn serve(&mut self, token: Token, read_closed: bool) {
        let Some(entry) = self.connections.get_mut(token) else {
            return; // closed earlier in this round
        };
        let answered = entry.conn.session.answered();
        let turn = entry.conn.serve_turn(&self.dispatcher, read_closed);
        let served = entry.conn.session.answered() - answered;
        self.counters.requests.add(served);
        let writable = match turn.map(|turn| turn.next) {
            Ok(Next::Readable) => false,
            Ok(Next::Yielded) => {
                self.again.push(token);
                false
            }
            Ok(Next::Writable) => true,
            Ok(Next::Close(why)) => {
                tracing::debug!(token = token.0, ?why, "closing");
                self.connections.remove(token);
                return;
            }
            // A reset or a broken pipe: this client is gone, nobody else is affected.
            Err(e) => {
                tracing::debug!(token = token.0, "connection failed: {e}");
                self.connections.remove(token);
                return;
            }
        };
        entry.since = Instant::now();
        // Registered once; WRITABLE is added only while a reply waits for room, so a
        // connection with nothing to write does not wake the loop each time it could.
        if entry.writable != writable {
            let interest =
                if writable { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if let Err(e) = self.poll.registry().reregister(&mut entry.conn.stream, token, interest)
            {
                tracing::debug!(token = token.0, "cannot change interest, closing: {e}");
                self.connections.remove(token);
                return;
            }
            entry.writable = writable;
        }
    }
    // ANCHOR_END: serve

    /// After each round: notice a shutdown, accept what the cap held back, and, every
    /// [`SWEEP_EVERY`], close the connections that are overdue.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        if self.shutdown.is_triggered() && self.closing_by.is_none() {
            // Stop accepting; close the idle now and the others once they are at rest.
            if let Some(mut listener) = self.listener.take() {
                let _ = self.poll.registry().deregister(&mut listener);
            }
            self.closing_by = Some(now + DEADLINE);
            tracing::info!(
                open = self.connections.len(),
                "loop {}: finishing the connections in flight",
                self.id
            );
        }
        if self.closing_by.is_some() {
            self.connections.retain(|entry| !entry.conn.is_at_rest());
        } else if self.backlogged {
            self.accept_all();
        }
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            self.connections.retain(|entry| {
                entry.conn.is_overdue(now, entry.since, self.timeouts) == Overdue::No
            });
        }
        self.counters.connections.set(self.connections.len() as u64);
    }
}
