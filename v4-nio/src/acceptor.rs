//! The Acceptor: one thread that accepts connections and queues them for the poller.
//!
//! It blocks in `accept` like every earlier version, but serves nothing: each accepted
//! socket is made non-blocking and handed over as [`PollerEvent::Register`]. Before each
//! `accept` it takes a permit from the [`LimitLatch`], so at `max_connections` open
//! connections it waits (new clients queue in the kernel's backlog) instead of running the
//! process out of descriptors: Tomcat's `maxConnections` and its `LimitLatch`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Shutdown, accept_failed};

use crate::poller::{PollerEvent, PollerHandle};
use crate::{Counters, bump};

/// Accepts connections and queues them for the poller.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    poller: PollerHandle,
    latch: Arc<LimitLatch>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
}

impl Acceptor {
    pub fn new(
        listener: TcpListener,
        poller: PollerHandle,
        latch: Arc<LimitLatch>,
        counters: Arc<Counters>,
        shutdown: Shutdown,
    ) -> Self {
        Self { listener, poller, latch, counters, shutdown }
    }

    /// Accepts until shutdown, or until the poller has gone away.
    pub fn run(self) -> io::Result<()> {
        // ANCHOR: acceptor_loop
        loop {
            // At the cap, wait here for a connection to close; the kernel queues newcomers.
            let Some(permit) = self.latch.acquire(&self.shutdown, &self.counters) else {
                break;
            };
            let accepted = self.listener.accept();
            if self.shutdown.is_triggered() {
                break;
            }
            match accepted {
                Ok((stream, _)) => {
                    if !self.hand_over(stream, permit) {
                        break;
                    }
                }
                // EMFILE and friends: the permit goes back, accept_failed pauses.
                Err(e) => accept_failed(&e),
            }
        }
        // ANCHOR_END: acceptor_loop
        Ok(())
    }

    /// Queues the connection for the poller. False if the poller is gone.
    fn hand_over(&self, stream: TcpStream, permit: Permit) -> bool {
        // The poller and workers must never block on this socket.
        if let Err(e) = stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true)) {
            tracing::warn!("cannot set up an accepted socket, closing it: {e}");
            return true;
        }
        let stream = mio::net::TcpStream::from_std(stream);
        self.poller.send(PollerEvent::Register(stream, permit))
    }
}

/// Counts open connections against a cap. A [`Permit`] is one open connection; dropping
/// it (when the connection closes, wherever that happens) makes room for the next.
#[derive(Debug)]
pub struct LimitLatch {
    max: usize,
    count: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl LimitLatch {
    pub fn new(max: usize) -> Self {
        Self { max, count: AtomicUsize::new(0), lock: Mutex::new(()), room: Condvar::new() }
    }

    /// Connections open (permits held).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Takes a permit, waiting while `max` are out. None once shutdown is triggered.
    pub fn acquire(self: &Arc<Self>, shutdown: &Shutdown, counters: &Counters) -> Option<Permit> {
        // The lock only pairs the condition variable with the count; it guards no data,
        // so a poisoned lock is as good as a clean one.
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut waited = false;
        while self.count() >= self.max {
            if shutdown.is_triggered() {
                return None;
            }
            if !waited {
                waited = true;
                bump(&counters.accept_waits);
                tracing::info!(max = self.max, "connection cap reached; waiting for a close");
            }
            // Timed, so a shutdown is noticed even when nothing closes.
            let wait = self.room.wait_timeout(guard, Duration::from_millis(100));
            guard = wait.unwrap_or_else(|e| e.into_inner()).0;
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        Some(Permit(Arc::clone(self)))
    }

    fn release(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.room.notify_one();
    }
}

/// One open connection counted by a [`LimitLatch`]; released when dropped.
#[derive(Debug)]
pub struct Permit(Arc<LimitLatch>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}
