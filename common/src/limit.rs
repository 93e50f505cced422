//! A cap on open connections, shared by every thread that accepts: Tomcat's
//! `maxConnections` and its `LimitLatch`. Better a queue in the kernel's backlog than a
//! process out of file descriptors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::Shutdown;
use crate::stats::Counter;

/// Open connections allowed when no cap is given, by every version that has a cap: far
/// below `ulimit -n` of 20,000, so the cap, not the descriptor table, is what a flood meets.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

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

    /// Takes a permit, waiting while `max` are out (counting the wait in `waits`, once).
    /// None once shutdown is triggered.
    pub fn acquire(self: &Arc<Self>, shutdown: &Shutdown, waits: &Counter) -> Option<Permit> {
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
                waits.bump();
                tracing::info!(max = self.max, "connection cap reached; waiting for a close");
            }
            // Timed, so a shutdown is noticed even when nothing closes.
            let wait = self.room.wait_timeout(guard, Duration::from_millis(100));
            guard = wait.unwrap_or_else(|e| e.into_inner()).0;
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        Some(Permit(Arc::clone(self)))
    }

    /// Takes a permit if one is free, without waiting: for an event loop, which must not
    /// block. At the cap, newcomers stay in the kernel's backlog until a permit is free.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let taken = self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
            (count < self.max).then_some(count + 1)
        });
        taken.ok().map(|_| Permit(Arc::clone(self)))
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
