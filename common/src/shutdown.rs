//! Stopping a server gracefully: stop accepting, let requests in flight finish, close
//! idle connections, and give up after a deadline.
//!
//! A [`Shutdown`] is shared by a server's threads. The blocking versions register each
//! connection they serve ([`Shutdown::track`]); triggering the shutdown wakes the accept
//! loop and shuts the read side of every tracked connection. A thread waiting in `read`
//! for an idle client then sees end-of-file and finishes; a thread running a handler
//! finishes it, writes the answer, and finds end-of-file on its next read.
//! [`on_signals`] triggers it on SIGINT or SIGTERM, and exits at once on a second one.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a graceful shutdown may take before the process exits anyway.
pub const DEADLINE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    next_id: AtomicU64,
    /// A clone of every connection being served, to shut its read side on shutdown.
    open: Mutex<HashMap<u64, TcpStream>>,
    closed: Condvar,
    /// Called once the flag is set: an event loop's waker, so it hears of the shutdown
    /// at once instead of at its next sweep.
    wakers: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown").field("triggered", &self.triggered).finish_non_exhaustive()
    }
}

/// A server's stop switch, shared by its threads (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<Inner>);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::Acquire)
    }

    fn open(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        // The map is whole even if a thread panicked holding the lock.
        self.0.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection until the returned guard is dropped. None if the shutdown
    /// has begun (the connection should be closed, not served) or the socket cannot be
    /// cloned.
    pub fn track(&self, stream: &TcpStream) -> Option<Tracked> {
        let clone = stream.try_clone().ok()?;
        let mut open = self.open();
        // Checked under the lock, so `trigger` cannot miss a connection registered now.
        if self.is_triggered() {
            return None;
        }
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, clone);
        Some(Tracked { shutdown: self.clone(), id })
    }

    /// Has `wake` called when the shutdown is triggered (at once, if it already has been):
    /// how an event loop asleep in its wait, on a socket the trigger's connect may not reach
    /// (one of v5's `SO_REUSEPORT` sockets), hears of it.
    pub fn on_trigger(&self, wake: impl Fn() + Send + Sync + 'static) {
        let mut wakers = self.0.wakers.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock, which `trigger` takes after setting the flag.
        if self.is_triggered() {
            wake();
        } else {
            wakers.push(Box::new(wake));
        }
    }

    // ANCHOR: trigger
    /// Begins the shutdown: sets the flag, shuts the read side of every tracked
    /// connection, wakes the event loops that asked ([`Shutdown::on_trigger`]), and
    /// connects once to `listening_on`, because a thread blocked in `accept` sees the flag
    /// only when `accept` returns.
    pub fn trigger(&self, listening_on: SocketAddr) {
        {
            let open = self.open();
            self.0.triggered.store(true, Ordering::Release);
            for stream in open.values() {
                // Already closed by the client: nothing to do.
                let _ = stream.shutdown(Direction::Read);
            }
        }
        for wake in self.0.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            wake();
        }
        // If the connect fails the listener is gone or full, and the loop is not blocked
        // on an empty queue anyway.
        let _ = TcpStream::connect_timeout(&listening_on, Duration::from_secs(1));
    }
    // ANCHOR_END: trigger

    /// Waits until every tracked connection has been closed, or `deadline` has passed.
    /// Returns how many are still open.
    pub fn wait_for_connections(&self, deadline: Instant) -> usize {
        let mut open = self.open();
        while !open.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            open = self.0.closed.wait_timeout(open, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        open.len()
    }
}

/// What a blocking server does once its accept loop has stopped: give the connections
/// still being served until the [`DEADLINE`] to finish, and say if some did not.
pub fn finish_connections(shutdown: &Shutdown) {
    let left = shutdown.wait_for_connections(Instant::now() + DEADLINE);
    if left > 0 {
        tracing::warn!(left, "connections still open at the shutdown deadline");
    }
}

/// What an event loop says as it stops at the [`DEADLINE`] with `open` connections still
/// unfinished, which it closes as it returns; nothing if there are none.
pub fn closing_at_deadline(open: usize) {
    if open > 0 {
        tracing::warn!(open, "closing connections at the shutdown deadline");
    }
}

/// A connection counted by a [`Shutdown`] until dropped.
#[derive(Debug)]
pub struct Tracked {
    shutdown: Shutdown,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.shutdown.open().remove(&self.id);
        self.shutdown.0.closed.notify_all();
    }
}

/// Triggers `shutdown` on the first SIGINT or SIGTERM, from a thread named `signals`; on
/// a second signal, or if the process is still running [`DEADLINE`] after the first, it
/// exits at once.
///
/// Not for the fork version, whose parent must stay single-threaded.
pub fn on_signals(shutdown: &Shutdown, listening_on: SocketAddr) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let shutdown = shutdown.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut signals = signals.forever();
        if signals.next().is_none() {
            return;
        }
        tracing::info!(
            "shutting down: no new connections; requests in flight get {DEADLINE:?} to finish \
             (signal again to exit at once)"
        );
        std::thread::spawn(|| {
            std::thread::sleep(DEADLINE);
            tracing::warn!("still busy {DEADLINE:?} after the signal; exiting anyway");
            // A recording is written even so: the trace of what kept the server busy.
            crate::trace::finish();
            std::process::exit(1);
        });
        shutdown.trigger(listening_on);
        if signals.next().is_some() {
            tracing::warn!("second signal: exiting now");
            crate::trace::finish();
            std::process::exit(130);
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn trigger_wakes_those_who_asked_and_a_late_asker_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shutdown = Shutdown::new();
        let woken = Arc::new(AtomicU64::new(0));
        let count = |woken: &Arc<AtomicU64>| {
            let woken = Arc::clone(woken);
            move || {
                woken.fetch_add(1, Ordering::Relaxed);
            }
        };
        shutdown.on_trigger(count(&woken));
        shutdown.on_trigger(count(&woken));
        assert_eq!(woken.load(Ordering::Relaxed), 0, "not before the trigger");
        shutdown.trigger(listener.local_addr().unwrap());
        assert_eq!(woken.load(Ordering::Relaxed), 2);
        shutdown.on_trigger(count(&woken));
        assert_eq!(woken.load(Ordering::Relaxed), 3, "one that asks too late is woken at once");
    }

    #[test]
    fn trigger_ends_reads_on_tracked_connections_and_refuses_new_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        let shutdown = Shutdown::new();
        let tracked = shutdown.track(&served).unwrap();
        let reader = std::thread::spawn(move || served.read(&mut [0u8; 16]).unwrap());

        shutdown.trigger(addr);
        assert_eq!(reader.join().unwrap(), 0, "the blocked read saw end-of-file");
        assert!(shutdown.is_triggered());
        let (late, _) = listener.accept().unwrap(); // the wake-up connection
        assert!(shutdown.track(&late).is_none());

        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(shutdown.wait_for_connections(deadline), 1);
        drop(tracked);
        assert_eq!(shutdown.wait_for_connections(Instant::now() + Duration::from_secs(5)), 0);
    }
}
