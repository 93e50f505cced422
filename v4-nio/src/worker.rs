//! The Worker: serves one ready connection for one turn, then gives it back.
//!
//! A turn reads until `WouldBlock` (mio is edge-triggered: bytes left unread would never
//! be reported again), answers every complete request in order through the shared
//! [`Session`](common::Session), keeps a partial request for the next turn, and writes.
//! A write the socket cannot take whole is not waited for: the connection goes back to
//! the poller asking for WRITABLE, and the worker is free for someone else.

use std::io;
use std::sync::Arc;

use common::{Closed, Dispatcher, Stats};
use mio::Interest;
use threadpool::ThreadPool;

use crate::connection::{Connection, Filled};
use crate::poller::{PollerEvent, PollerHandle};
use crate::{Counters, bump};

/// Read batches one turn may take before yielding the worker to other connections. The
/// re-arm reports whatever is still unread, so yielding loses nothing.
const BATCHES_PER_TURN: usize = 16;

/// What a turn leaves the connection waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Readable,
    Writable,
    Close(Closed),
}

/// Serves connections; cheap to clone into each pool job.
#[derive(Debug, Clone)]
pub struct Worker {
    dispatcher: Arc<Dispatcher>,
    counters: Arc<Counters>,
}

impl Worker {
    /// Serves `conn` for one turn and says what becomes of it: re-armed for the next
    /// readiness, or closed (dropped here, which closes the socket).
    // ANCHOR: worker_serve
    pub fn serve(&self, mut conn: Box<Connection>) -> PollerEvent {
        match self.turn(&mut conn) {
            Ok(Next::Readable) => PollerEvent::Rearm(conn, Interest::READABLE),
            Ok(Next::Writable) => PollerEvent::Rearm(conn, Interest::WRITABLE),
            Ok(Next::Close(why)) => {
                tracing::debug!(token = conn.token.0, ?why, "closing");
                PollerEvent::Closed(conn.token)
            }
            // A reset or a broken pipe: this client is gone, nobody else is affected.
            Err(e) => {
                tracing::debug!(token = conn.token.0, "connection failed: {e}");
                PollerEvent::Closed(conn.token)
            }
        }
    }
    // ANCHOR_END: worker_serve

    // ANCHOR: worker_turn
    fn turn(&self, conn: &mut Connection) -> io::Result<Next> {
        if conn.draining_since.is_some() {
            let closed = conn.discard_input();
            return Ok(if closed { Next::Close(Closed::ByPeer) } else { Next::Readable });
        }
        let had_output = !conn.session.outbox.is_empty();
        for batch in 0..BATCHES_PER_TURN {
            // Replies still owed are written before more requests are read: a client that
            // sends without reading is slowed down, not buffered without end.
            if !conn.flush()? {
                bump(&self.counters.write_waits);
                return Ok(Next::Writable);
            }
            let filled = conn.fill_inbox()?;
            if batch == 0 && filled == (Filled::Drained { bytes: 0 }) && !had_output {
                bump(&self.counters.empty_dispatches);
            }
            let closing = conn.session.answer(&self.dispatcher);
            if !conn.flush()? {
                bump(&self.counters.write_waits);
                return Ok(Next::Writable);
            }
            match (closing, filled) {
                // The client has closed its side: nothing more can arrive to cause a reset.
                (Some(why), Filled::PeerClosed) => return Ok(Next::Close(why)),
                // Replies written, but the client may still be sending: close in stages.
                (Some(why), _) if why.owes_a_lingering_close() => {
                    conn.start_draining();
                    return Ok(Next::Readable);
                }
                (Some(why), _) => return Ok(Next::Close(why)),
                // Half-close: everything the client sent has been answered and written.
                (None, Filled::PeerClosed) => return Ok(Next::Close(Closed::ByPeer)),
                (None, Filled::Drained { .. }) => {
                    conn.session.release_spare_capacity();
                    return Ok(Next::Readable);
                }
                (None, Filled::Batch) => {}
            }
        }
        Ok(Next::Readable)
    }
    // ANCHOR_END: worker_turn
}

/// What became of a connection handed to [`Workers::dispatch`].
#[derive(Debug)]
pub enum Dispatched {
    /// Queued for a worker; its verdict will reach the poller through the poller's queue.
    Queued,
    /// Served on the calling thread (no pool), with this verdict.
    Served(PollerEvent),
}

/// The worker pool, or none: with zero workers the poller serves connections itself.
#[derive(Debug)]
pub struct Workers {
    worker: Worker,
    pool: Option<ThreadPool>,
}

impl Workers {
    pub fn new(workers: usize, dispatcher: Arc<Dispatcher>, counters: Arc<Counters>) -> Self {
        let pool = (workers > 0).then(|| {
            threadpool::Builder::new().num_threads(workers).thread_name("worker".into()).build()
        });
        if let Some(pool) = &pool {
            dispatcher.stats().gauges(
                pool,
                &[
                    ("workers", ThreadPool::max_count),
                    ("busy_workers", ThreadPool::active_count),
                    // A job is one turn of one ready connection, not a whole connection.
                    ("queued_jobs", ThreadPool::queued_count),
                ],
            );
        }
        Self { worker: Worker { dispatcher, counters }, pool }
    }

    pub fn stats(&self) -> &Arc<Stats> {
        self.worker.dispatcher.stats()
    }

    /// Hands `conn` to a worker, whose verdict reaches the poller through its queue; or,
    /// with no pool, serves it right here.
    // ANCHOR: dispatch
    pub fn dispatch(&self, conn: Box<Connection>, poller: &PollerHandle) -> Dispatched {
        bump(&self.worker.counters.dispatches);
        let Some(pool) = &self.pool else {
            return Dispatched::Served(self.worker.serve(conn));
        };
        let (worker, poller) = (self.worker.clone(), poller.clone());
        pool.execute(move || {
            poller.send(worker.serve(conn));
        });
        Dispatched::Queued
    }
    // ANCHOR_END: dispatch
}
