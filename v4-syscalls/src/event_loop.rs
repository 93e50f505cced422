//! The readiness loop `select`, `poll` and both `epoll`s share: wait, accept, serve each
//! ready connection inline with `common`'s turn, close the overdue. It is v5's loop on one
//! thread, with the kernel call behind the [`Waiter`] trait instead of inside `mio`.
//!
//! A connection is watched for reading for its whole life, and for writing too only while
//! a reply waits for room. A turn that used its whole read budget is served again next
//! round without waiting: an edge-triggered wait would not report those bytes again.

use common::evented::SWEEP_EVERY;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Dispatcher;
use common::evented::{Connection, Next, Overdue, Slots, Timeouts};
use common::limit::LimitLatch;
use common::server::{ACCEPT_BACKOFF, is_exhaustion};
use common::shutdown::DEADLINE;
use mio::Token;

use crate::{Config, Interest, LoopCounters, Ready, Waiter};

/// The listening socket's token; connections count up from 1.
const LISTENER: usize = 0;

#[derive(Debug)]
struct Entry {
    conn: Connection,
    /// When its last turn ended: the idle timeout counts from here.
    since: Instant,
    /// Watched for writing too, because a reply waits for room.
    writable: bool,
}

struct EventLoop<W> {
    waiter: W,
    listener: Option<TcpListener>,
    connections: Slots<Entry>,
    /// Connections whose last turn stopped at its budget, to serve again next round.
    again: Vec<Token>,
    dispatcher: Arc<Dispatcher>,
    latch: Arc<LimitLatch>,
    timeouts: Timeouts,
    counters: Arc<LoopCounters>,
    /// Newcomers may be queued that the cap or a full descriptor table held back.
    backlogged: bool,
    /// Whether the waiter watches the listener. Not while the loop cannot accept: a
    /// level-triggered wait would report the queued newcomers at every call, a busy loop.
    listening: bool,
    accept_paused_until: Option<Instant>,
    last_sweep: Instant,
    closing_by: Option<Instant>,
}

/// Serves `listener` on this thread, waiting with `waiter`, until a shutdown has closed
/// every connection or its deadline has passed.
pub fn run<W: Waiter>(
    mut waiter: W,
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    config: &Config,
    counters: Arc<LoopCounters>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    waiter.watch(listener.as_raw_fd(), LISTENER, Interest::Read)?;
    counters.watched.set(1);
    let mut event_loop = EventLoop {
        waiter,
        listener: Some(listener),
        connections: Slots::default(),
        again: Vec::new(),
        dispatcher,
        latch: Arc::new(LimitLatch::new(config.model.max_connections.max(1))),
        timeouts: config.timeouts(),
        counters,
        backlogged: false,
        listening: true,
        accept_paused_until: None,
        last_sweep: Instant::now(),
        closing_by: None,
    };
    event_loop.run(&config.shutdown)
}

impl<W: Waiter> EventLoop<W> {
    fn run(&mut self, shutdown: &common::Shutdown) -> io::Result<()> {
        let mut ready = Vec::new();
        // ANCHOR: loop
        while self.keep_going() {
            let timeout = if self.again.is_empty() { SWEEP_EVERY } else { Duration::ZERO };
            ready.clear();
            let started = Instant::now();
            match self.waiter.wait(timeout, &mut ready) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.counters.waited(started.elapsed(), ready.len());
            for &Ready { token, read_closed } in &ready {
                match token {
                    LISTENER => self.accept_all(),
                    token => self.serve(Token(token), read_closed),
                }
            }
            // No event to say whether the client closed: read until the socket says.
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true);
            }
            self.housekeeping(shutdown);
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

    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some_and(|until| Instant::now() < until) {
            return self.listen(false);
        }
        self.accept_paused_until = None;
        while let Some(listener) = &self.listener {
            let Some(permit) = self.latch.try_acquire() else {
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
                    let open = self.dispatcher.stats().connection_opened();
                    let stream = mio::net::TcpStream::from_std(stream);
                    let token = self.connections.insert(|token| Entry {
                        conn: Connection::new(token, stream, open, permit),
                        since: Instant::now(),
                        writable: false,
                    });
                    if let Err(e) = self.waiter.watch(fd, token.0, Interest::Read) {
                        self.refuse(token, &e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.backlogged = false;
                    return self.listen(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_exhaustion(&e) => {
                    tracing::warn!("accept failed: {e}; trying again in {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    self.backlogged = true;
                    return self.listen(false);
                }
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
    fn refuse(&mut self, token: Token, why: &io::Error) {
        if self.counters.refused.get() == 0 {
            tracing::warn!("refusing connections that cannot be watched: {why}");
        }
        self.counters.refused.bump();
        self.connections.remove(token);
    }

    /// Serves a ready connection for one turn, right here on the loop.
    // ANCHOR: serve
    fn serve(&mut self, token: Token, read_closed: bool) {
        let Some(entry) = self.connections.get_mut(token) else {
            return; // closed earlier in this round
        };
        let turn = entry.conn.serve_turn(&self.dispatcher, read_closed);
        let writable = match turn.map(|turn| turn.next) {
            Ok(Next::Readable) => false,
            Ok(Next::Yielded) => {
                self.again.push(token);
                false
            }
            Ok(Next::Writable) => true,
            Ok(Next::Close(why)) => {
                tracing::debug!(token = token.0, ?why, "closing");
                return self.close(token);
            }
            Err(e) => {
                tracing::debug!(token = token.0, "connection failed: {e}");
                return self.close(token);
            }
        };
        entry.since = Instant::now();
        if entry.writable != writable {
            let interest = if writable { Interest::ReadWrite } else { Interest::Read };
            let fd = entry.conn.stream.as_raw_fd();
            entry.writable = writable;
            if let Err(e) = self.waiter.watch(fd, token.0, interest) {
                tracing::debug!(token = token.0, "cannot change interest, closing: {e}");
                self.close(token);
            }
        }
    }
    // ANCHOR_END: serve

    fn close(&mut self, token: Token) {
        if let Some(entry) = self.connections.remove(token) {
            self.waiter.forget(entry.conn.stream.as_raw_fd());
        }
    }

    fn housekeeping(&mut self, shutdown: &common::Shutdown) {
        let now = Instant::now();
        if shutdown.is_triggered() && self.closing_by.is_none() {
            if let Some(listener) = self.listener.take()
                && self.listening
            {
                self.waiter.forget(listener.as_raw_fd());
            }
            self.closing_by = Some(now + DEADLINE);
            tracing::info!(open = self.connections.len(), "finishing the connections in flight");
        }
        if self.closing_by.is_some() {
            self.close_where(|entry| entry.conn.is_at_rest());
        } else if self.backlogged {
            self.accept_all();
        }
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            let timeouts = self.timeouts;
            self.close_where(|entry| {
                entry.conn.is_overdue(now, entry.since, timeouts) != Overdue::No
            });
        }
        let listening = usize::from(self.listener.is_some());
        self.counters.watched.set((self.connections.len() + listening) as u64);
    }

    /// Closes every connection `close` picks, telling the waiter first.
    fn close_where(&mut self, mut close: impl FnMut(&Entry) -> bool) {
        let waiter = &mut self.waiter;
        self.connections.retain(|entry| {
            let closing = close(entry);
            if closing {
                waiter.forget(entry.conn.stream.as_raw_fd());
            }
            !closing
        });
    }
}
