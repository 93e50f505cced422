//! Refusing connections without blocking the thread that accepts them: a thread of its
//! own that answers each refused client `503` and closes it in stages.
//!
//! Why a thread, and why evented. The accepting thread of a blocking server (v3) must
//! never wait on a client it refuses: the queue it bounds would fill behind that wait.
//! Closing the socket at once would not wait, but would lose the refusal: a client whose
//! request is already in (the usual case under overload, it waited in the backlog) would
//! get a reset, since a close with unread input sends RST, and a reset destroys the 503 in
//! its receive queue (see [`crate::blocking::linger_close`]). And a client whose request
//! is not in yet must be read before it can be answered in its protocol. So refused
//! sockets go to this thread, which holds them all at once, waits for them with one
//! `poll(2)`, answers each request with a 503 (the same [`Connection`] turn the event
//! loops run, with an admission that refuses everything), and closes in stages: FIN,
//! then read and drop until the client closes. A blocking thread per refusal would
//! itself be the growth shedding is meant to stop. Each refused client is held at most
//! [`REFUSING_FOR`] for its request and as long again for its linger, and at most
//! [`MAX_REFUSING`] at once; past that a newcomer is closed outright, and may see a reset.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::dispatcher::Dispatcher;
use crate::evented::{Connection, Next, Overdue, Timeouts};
use crate::limit::LimitLatch;
use crate::overload::Admission;

/// How long a refused client may take to send its request, and then to close after its
/// 503: short, since it is held for nothing but its refusal.
pub const REFUSING_FOR: Duration = Duration::from_secs(1);
/// Refused clients held at once, at most.
pub const MAX_REFUSING: usize = 1024;

/// A refused client, until it has its 503 and has closed.
struct Refusing {
    conn: Connection,
    /// When its last turn ended: its deadlines run from here.
    since: Instant,
    /// A short write left part of the 503 to send.
    writable: bool,
}

/// The refusing thread's door: cheap to call from the accepting thread, never blocks.
#[derive(Debug)]
pub struct Shedder {
    queue: Sender<TcpStream>,
    wake: Arc<EventFd>,
}

impl Shedder {
    /// Starts the thread (named `shedder`), which answers with `dispatcher`'s server name
    /// and counts in its stats. It ends once this door is dropped and its last refused
    /// client is gone.
    pub fn start(dispatcher: Arc<Dispatcher>) -> io::Result<Self> {
        let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
        let (queue, newcomers) = mpsc::channel();
        let woken = Arc::clone(&wake);
        std::thread::Builder::new()
            .name("shedder".into())
            .spawn(move || refuse_until_done(&dispatcher, &newcomers, &woken))?;
        Ok(Self { queue, wake })
    }

    /// Hands `stream` over to be refused.
    pub fn refuse(&self, stream: TcpStream) {
        // If the thread is gone the stream is dropped (closed) with the error.
        if self.queue.send(stream).is_ok() {
            // Fails only if the counter would overflow: then it is readable already.
            let _ = self.wake.write(1);
        }
    }
}

impl Drop for Shedder {
    fn drop(&mut self) {
        // The thread hears the channel close on its next turn: wake it for it.
        let _ = self.wake.write(1);
    }
}

/// The refusing thread's loop.
fn refuse_until_done(
    dispatcher: &Arc<Dispatcher>,
    newcomers: &Receiver<TcpStream>,
    wake: &EventFd,
) {
    let latch = Arc::new(LimitLatch::new(MAX_REFUSING));
    let timeouts = Timeouts { idle: REFUSING_FOR, request: REFUSING_FOR };
    let mut held: Vec<Refusing> = Vec::new();
    let mut open = true;
    while open || !held.is_empty() {
        loop {
            match newcomers.try_recv() {
                Ok(stream) => {
                    // Past the cap, closed outright: still a newcomer refused.
                    let Some(permit) = latch.try_acquire() else {
                        dispatcher.stats().shedding().shed.bump();
                        continue;
                    };
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let guard = dispatcher.stats().connection_opened();
                    let conn = Connection::new(0, stream, guard, permit);
                    held.push(Refusing { conn, since: Instant::now(), writable: false });
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let ready = match wait(wake, &held, timeouts) {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!("shedder: poll failed, closing the refused: {e}");
                return;
            }
        };
        let now = Instant::now();
        let mut index = 0;
        held.retain_mut(|refusing| {
            let is_ready = ready.get(index).copied().unwrap_or(false);
            index += 1;
            keep(refusing, is_ready, dispatcher, now, timeouts)
        });
    }
}

/// Waits for any held client to be ready, a newcomer, or the next deadline; says which
/// held clients are ready, in order.
fn wait(wake: &EventFd, held: &[Refusing], timeouts: Timeouts) -> nix::Result<Vec<bool>> {
    let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    for refusing in held {
        let mut interest = PollFlags::POLLIN;
        if refusing.writable {
            interest |= PollFlags::POLLOUT;
        }
        fds.push(PollFd::new(refusing.conn.stream.as_fd(), interest));
    }
    // The earliest deadline of any held client: it is closed then, ready or not.
    let next = held.iter().map(|r| r.since + timeouts.idle).min();
    let timeout = match next {
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
        }
        None => PollTimeout::NONE,
    };
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(vec![false; held.len()]),
        Err(e) => return Err(e),
    }
    if fds[0].any().unwrap_or(false) {
        // Only wakes the loop: the newcomers are in the channel.
        let _ = wake.read();
    }
    Ok(fds[1..].iter().map(|fd| fd.any().unwrap_or(false)).collect())
}

/// Serves `refusing` a turn if it is ready; false once it is to be closed.
fn keep(
    refusing: &mut Refusing,
    ready: bool,
    dispatcher: &Dispatcher,
    now: Instant,
    timeouts: Timeouts,
) -> bool {
    if ready {
        let turn =
            refusing.conn.serve_turn_admitting(dispatcher, true, &mut Admission::refuse_all());
        match turn.map(|turn| turn.next) {
            Ok(Next::Readable | Next::Yielded) => refusing.writable = false,
            Ok(Next::Writable) => refusing.writable = true,
            Ok(Next::Close(_)) | Err(_) => return false,
        }
        refusing.since = now;
    }
    refusing.conn.is_overdue(now, refusing.since, timeouts) == Overdue::No
}
