//! The Worker: serves one ready connection for one turn, then gives it back.
//!
//! The turn itself ([`Connection::serve_turn`], in `common`, the same one v5's loops run)
//! reads until `WouldBlock` (mio is edge-triggered: bytes left unread would never be
//! reported again), answers every complete request in order, keeps a partial request for
//! the next turn, and writes. A write the socket cannot take whole is not waited for: the
//! connection goes back to the poller asking for WRITABLE, and the worker is free for
//! someone else. What is v4's own is the hand-off: the connection travels from the poller
//! to a worker and back.

use std::sync::Arc;

use common::evented::{Connection, Next, Turn};
use common::{Dispatcher, Stats};
use mio::Interest;
use threadpool::ThreadPool;

use crate::Counters;
use crate::poller::{PollerEvent, PollerHandle};

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
        // A short read may end the turn even if the client's FIN came with it: the re-arm
        // (`EPOLL_CTL_MOD`) re-checks readiness, and a pending end of input is reported.
        let turn = conn.serve_turn(&self.dispatcher, false);
        if let Ok(Turn { empty: true, .. }) = turn {
            self.counters.empty_dispatches.bump();
        }
        match turn.map(|turn| turn.next) {
            // Re-arming re-checks readiness, so input left after a yield is reported.
            Ok(Next::Readable | Next::Yielded) => PollerEvent::Rearm(conn, Interest::READABLE),
            Ok(Next::Writable) => {
                // The socket could not take every reply: wait for WRITABLE, not here.
                self.counters.write_waits.bump();
                PollerEvent::Rearm(conn, Interest::WRITABLE)
            }
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
        self.worker.counters.dispatches.bump();
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
