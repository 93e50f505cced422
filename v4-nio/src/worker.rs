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
use std::time::Instant;

use common::Dispatcher;
use common::evented::{Connection, Next, Turn};
use common::overload::{Admission, Shedding};
use common::trace;
use mio::Interest;
use threadpool::ThreadPool;

use crate::Counters;

/// What a worker's turn made of a connection, for whoever watches the connections.
#[derive(Debug)]
pub enum Verdict {
    /// Watch it again, for this readiness.
    Rearm(Box<Connection>, Interest),
    /// It was closed (the worker dropped it).
    Closed(usize),
}

/// Serves connections; cheap to clone into each pool job.
#[derive(Debug, Clone)]
pub struct Worker {
    dispatcher: Arc<Dispatcher>,
    counters: Arc<Counters>,
}

/// What the pool refuses past its capacity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// The shared settings: the deadline on a job's wait, and clients that have gone.
    pub shedding: Shedding,
    /// Jobs waiting for a worker, at most (`--max-queue`).
    pub max_queue: Option<usize>,
}

impl Worker {
    /// Serves `conn` for one turn and says what becomes of it: re-armed for the next
    /// readiness, or closed (dropped here, which closes the socket).
    // ANCHOR: worker_serve
    pub fn serve(&self, mut conn: Box<Connection>, mut admission: Admission) -> Verdict {
        // A short read may end the turn even if the client's FIN came with it: the re-arm
        // (`EPOLL_CTL_MOD`) re-checks readiness, and a pending end of input is reported.
        let turn = conn.serve_turn_admitting(&self.dispatcher, false, &mut admission);
        if let Ok(Turn { empty: true, .. }) = turn {
            self.counters.empty_dispatches.bump();
        }
        match turn.map(|turn| turn.next) {
            // Re-arming re-checks readiness, so input left after a yield is reported.
            Ok(Next::Readable | Next::Yielded) => Verdict::Rearm(conn, Interest::READABLE),
            Ok(Next::Writable) => {
                // The socket could not take every reply: wait for WRITABLE, not here.
                self.counters.write_waits.bump();
                Verdict::Rearm(conn, Interest::WRITABLE)
            }
            Ok(Next::Close(why)) => {
                tracing::debug!(token = conn.token, ?why, "closing");
                Verdict::Closed(conn.token)
            }
            // A reset or a broken pipe: this client is gone, nobody else is affected.
            Err(e) => {
                tracing::debug!(token = conn.token, "connection failed: {e}");
                Verdict::Closed(conn.token)
            }
        }
    }
    // ANCHOR_END: worker_serve
}

/// What became of a connection handed to [`Workers::dispatch`].
#[derive(Debug)]
pub enum Dispatched {
    /// Queued for a worker; its verdict will be reported when the turn is over.
    Queued,
    /// Served on the calling thread (no pool), with this verdict.
    Served(Verdict),
}

/// Where a worker reports its verdicts: the poller's queue.
pub type Report = Arc<dyn Fn(Verdict) + Send + Sync>;

/// The worker pool, or none: with zero workers the poller serves connections itself.
pub struct Workers {
    worker: Worker,
    pool: Option<ThreadPool>,
    report: Report,
    bounds: Bounds,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl Workers {
    /// `workers` threads (none: the caller serves), each verdict reported through
    /// `report`.
    pub fn new(
        workers: usize,
        dispatcher: Arc<Dispatcher>,
        counters: Arc<Counters>,
        report: Report,
        bounds: Bounds,
    ) -> Self {
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
        Self { worker: Worker { dispatcher, counters }, pool, report, bounds }
    }

    /// Hands `conn` to a worker, whose verdict is reported when its turn is over; or,
    /// with no pool, serves it right here.
    // ANCHOR: dispatch
    pub fn dispatch(&self, conn: Box<Connection>) -> Dispatched {
        self.worker.counters.dispatches.bump();
        let _serving = trace::serving(conn.token as u64);
        // With no pool the handler runs now: nothing waited for it.
        let Some(pool) = &self.pool else {
            let admission = Admission::new(self.bounds.shedding, None);
            return Dispatched::Served(self.worker.serve(conn, admission));
        };
        if let Some(refused) = self.shed_when_full(pool, &conn) {
            return Dispatched::Served(self.worker.serve(conn, refused));
        }
        // The job's wait for a worker starts now, for `--max-queue-wait`.
        let admission = Admission::new(self.bounds.shedding, Some(Instant::now()));
        let (worker, report) = (self.worker.clone(), Arc::clone(&self.report));
        let handoff = trace::handoff(conn.token as u64);
        pool.execute(move || {
            let _job = trace::job(handoff);
            report(worker.serve(conn, admission));
        });
        Dispatched::Queued
    }
    // ANCHOR_END: dispatch

    // ANCHOR: shed_when_full
    /// With `--max-queue` jobs already waiting, the ready connection is not queued: the
    /// poller serves it itself, with an admission that refuses every request (read,
    /// answer 503, no handler), which never blocks the poller: the turn reads what is
    /// there, writes what the socket takes, and a partial request or a 503 not yet sent
    /// comes back on its next readiness like any other. The client is not dropped: it
    /// hears that the server is full, at once.
    fn shed_when_full(&self, pool: &ThreadPool, conn: &Connection) -> Option<Admission> {
        let max = self.bounds.max_queue?;
        // Its linger, after an earlier refusal, is no job either: let it go on draining.
        (pool.queued_count() >= max && conn.draining_since.is_none()).then(Admission::refuse_all)
    }
    // ANCHOR_END: shed_when_full
}
