//! A cap on open connections, shared by every thread that accepts: Tomcat's
//! `maxConnections` and its `LimitLatch`. Better a queue in the kernel's backlog than a
//! process out of file descriptors.
//!
//! A thread that waits at the cap records the wait ([`crate::trace`], `max_connections`), so
//! a timeline shows v4-nio's acceptor idle because the cap is reached, not because nobody
//! connects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::Shutdown;
use crate::stats::Counter;
use crate::trace::{self, Cat};

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
    /// Whether a shutdown has been asked to wake the waiters (once, at the first acquire).
    woken_by_shutdown: AtomicBool,
}

impl LimitLatch {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            count: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
            woken_by_shutdown: AtomicBool::new(false),
        }
    }

    /// Connections open (permits held).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// [`acquire_or_wait`](Self::acquire_or_wait), counting a wait in `waits`: the call
    /// v4-nio's acceptor makes. A convenience only; the latch itself keeps no statistics.
    pub fn acquire(self: &Arc<Self>, shutdown: &Shutdown, waits: &Counter) -> Option<Permit> {
        self.acquire_or_wait(shutdown, || waits.bump())
    }

    /// Takes a permit, waiting while `max` are out. `on_wait` runs once, when the wait
    /// begins: a caller that counts the waits shows one as soon as it starts, not only
    /// once a close ends it (which may be never, if shutdown comes first). None once
    /// shutdown is triggered.
    pub fn acquire_or_wait(
        self: &Arc<Self>,
        shutdown: &Shutdown,
        on_wait: impl FnOnce(),
    ) -> Option<Permit> {
        // Before the lock: a shutdown already triggered calls the waker at once, and the
        // waker takes the lock.
        self.wake_on(shutdown);
        // The lock only pairs the condition variable with the count; it guards no data,
        // so a poisoned lock is as good as a clean one.
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut on_wait = Some(on_wait);
        // Recorded as it drops: when a permit is taken, or the shutdown ends the wait.
        let mut _waiting = None;
        while self.count() >= self.max {
            if shutdown.is_triggered() {
                return None;
            }
            if let Some(on_wait) = on_wait.take() {
                on_wait();
                tracing::info!(max = self.max, "connection cap reached; waiting for a close");
                _waiting = Some(trace::span(Cat::Wait, "max_connections"));
            }
            // Woken by a close (`release`) or by the shutdown, which sets its flag first.
            guard = self.room.wait(guard).unwrap_or_else(|e| e.into_inner());
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

    /// Has `shutdown` wake every waiter when it is triggered, once per latch. The waker
    /// takes the lock before notifying, so a waiter that saw the flag clear is already
    /// waiting when it comes.
    fn wake_on(self: &Arc<Self>, shutdown: &Shutdown) {
        if self.woken_by_shutdown.load(Ordering::Acquire)
            || self.woken_by_shutdown.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let latch = Arc::clone(self);
        shutdown.on_trigger(move || {
            let _guard = latch.lock.lock().unwrap_or_else(|e| e.into_inner());
            latch.room.notify_all();
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Starts a thread that waits for a permit of `latch`, and says what it got.
    fn waiter(latch: &Arc<LimitLatch>, shutdown: &Shutdown) -> mpsc::Receiver<bool> {
        waiter_counting(latch, shutdown, &Counter::default())
    }

    /// The same, counting its waits in `waits`.
    fn waiter_counting(
        latch: &Arc<LimitLatch>,
        shutdown: &Shutdown,
        waits: &Counter,
    ) -> mpsc::Receiver<bool> {
        let (latch, shutdown, waits) = (Arc::clone(latch), shutdown.clone(), waits.clone());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(latch.acquire(&shutdown, &waits).is_some());
        });
        rx
    }

    #[test]
    fn a_waiter_at_the_cap_gets_the_permit_a_close_frees() {
        let latch = Arc::new(LimitLatch::new(1));
        let shutdown = Shutdown::new();
        let held = latch.try_acquire().expect("a free permit");
        let waits = Counter::default();
        let got = waiter_counting(&latch, &shutdown, &waits);
        // The wait is counted as it begins, while the permit is still out.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while waits.get() == 0 {
            assert!(std::time::Instant::now() < deadline, "the wait was never counted");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(got.try_recv().is_err(), "no permit while one is out");
        drop(held);
        assert_eq!(got.recv_timeout(Duration::from_secs(10)), Ok(true));
        assert_eq!(waits.get(), 1, "one wait, counted once");
    }

    #[test]
    fn a_waiter_at_the_cap_is_released_by_the_shutdown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let latch = Arc::new(LimitLatch::new(1));
        let shutdown = Shutdown::new();
        let _held = latch.try_acquire().expect("a free permit");
        let got = waiter(&latch, &shutdown);
        shutdown.trigger(listener.local_addr().expect("an address"));
        assert_eq!(got.recv_timeout(Duration::from_secs(10)), Ok(false));
        // And one that comes after the trigger does not wait at all.
        assert_eq!(waiter(&latch, &shutdown).recv_timeout(Duration::from_secs(10)), Ok(false));
    }
}
