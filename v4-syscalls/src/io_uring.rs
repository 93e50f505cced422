//! Completion instead of readiness: `io_uring(7)` (Linux 5.1, 2019).
//!
//! The loop never asks "which socket is ready?". It asks the kernel to *do* the work,
//! accept, receive into this buffer, send these bytes, by writing entries into a
//! submission ring shared with the kernel, and reads the results from a completion ring,
//! also shared. One `io_uring_enter` call submits everything queued since the last one
//! and waits for completions, so a round that serves many connections costs one system
//! call instead of a `read` and a `write` each. Cost per wait: O(completions).
//!
//! The price is ownership. While a receive is in flight the kernel may write into its
//! buffer at any moment, and while a send is in flight it reads from its bytes: neither
//! may be freed, moved or reused until its completion arrives. Each connection owns its
//! buffers, and a connection that must close is shut down (so its receive completes) and
//! dropped only once nothing of it is in flight; when the loop ends, whatever is still in
//! flight is cancelled and its completion awaited before anything is freed (`Drop for
//! Ring`). Every idle connection holds a receive,
//! and so a buffer, the whole time; provided-buffer rings, which let the kernel pick a
//! buffer only when data arrives, would fix that and are left out to keep this short.

use common::evented::SWEEP_EVERY;
use std::io;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Instant;

use common::Dispatcher;
use common::evented::{Slots, Timeouts};
use common::limit::{LimitLatch, Permit};
use common::server::ACCEPT_BACKOFF;
use common::session::{Closed, LINGER, Session};
use common::shutdown::DEADLINE;
use common::stats::ConnectionGuard;
use io_uring::{IoUring, opcode, squeue, types};

use common::event_loop::{LoopCounters, Shared};

/// Bytes one receive may bring. Every idle connection holds one such buffer.
const RECV_BUFFER: usize = 4096;
/// `user_data` of the accept; a connection's operations carry its token and the kind.
const ACCEPT: u64 = u64::MAX;
const CANCEL: u64 = u64::MAX - 1;
const RECV: u64 = 1;
const SEND: u64 = 2;

struct Conn {
    stream: TcpStream,
    session: Session,
    /// The kernel writes here while `receiving`.
    buffer: Box<[u8]>,
    /// The kernel reads `sending[sent..]` while `in_send`.
    sending: Vec<u8>,
    sent: usize,
    receiving: bool,
    in_send: bool,
    /// Why the connection will close once its replies are written, if it will.
    close_after: Option<Closed>,
    peer_closed: bool,
    draining_since: Option<Instant>,
    /// Decided to close: dropped as soon as nothing of it is in flight.
    closing: bool,
    since: Instant,
    _open: ConnectionGuard,
    _permit: Permit,
}

struct Ring {
    ring: IoUring,
    connections: Slots<Conn>,
    listener: Option<TcpListener>,
    accepting: Option<Permit>,
    accept_paused_until: Option<Instant>,
    latch: Arc<LimitLatch>,
    dispatcher: Arc<Dispatcher>,
    timeouts: Timeouts,
    counters: Arc<LoopCounters>,
    closing_by: Option<Instant>,
}

/// Serves `listener` on this thread through an io_uring until a shutdown has closed every
/// connection or its deadline has passed. Fails at once, saying so, if the kernel refuses
/// io_uring (too old, or disabled by `kernel.io_uring_disabled` or a seccomp filter).
pub fn run(listener: TcpListener, shared: Shared, counters: Arc<LoopCounters>) -> io::Result<()> {
    let Shared { dispatcher, latch, timeouts, shutdown } = shared;
    let ring = IoUring::new(1024).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("this kernel refuses io_uring ({e}); it may be disabled (sysctl kernel.io_uring_disabled) or too old (5.11 is needed): use another --api"),
        )
    })?;
    let mut this = Ring {
        ring,
        connections: Slots::default(),
        listener: Some(listener),
        accepting: None,
        accept_paused_until: None,
        latch,
        dispatcher,
        timeouts,
        counters,
        closing_by: None,
    };
    this.run(&shutdown)
}

impl Ring {
    fn run(&mut self, shutdown: &common::Shutdown) -> io::Result<()> {
        let mut last_sweep = Instant::now();
        // ANCHOR: loop
        while self.keep_going() {
            self.accept_next()?;
            let started = Instant::now();
            // Submits every entry queued this round and sleeps until one completes.
            let timeout = types::Timespec::from(SWEEP_EVERY);
            match self
                .ring
                .submitter()
                .submit_with_args(1, &types::SubmitArgs::new().timespec(&timeout))
            {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
            let done: Vec<(u64, i32)> =
                self.ring.completion().map(|c| (c.user_data(), c.result())).collect();
            self.counters.waited(started.elapsed(), done.len());
            for (user_data, result) in done {
                self.completed(user_data, result)?;
            }
            // The shutdown's connect completes an accept: hear of it now, not at the sweep.
            let stopping = shutdown.is_triggered() && self.closing_by.is_none();
            if stopping || last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                self.housekeeping(shutdown)?;
            }
        }
        // ANCHOR_END: loop
        Ok(())
    }

    fn keep_going(&self) -> bool {
        match self.closing_by {
            Some(deadline) => !self.connections.is_empty() && Instant::now() < deadline,
            None => true,
        }
    }

    /// Queues an entry, first submitting what is queued if the ring is full.
    ///
    /// # Safety
    ///
    /// Every buffer the entry points into must stay valid and unmoved until its
    /// completion has been reaped: the kernel may read or write it until then. (`Drop for
    /// Ring` keeps that promise when the loop ends with operations in flight.)
    unsafe fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: the caller promises the entry's buffers outlive the operation.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
        }
        Ok(())
    }

    /// Keeps one accept in flight while there is a listener and room under the cap.
    fn accept_next(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        if self.accepting.is_some() || self.accept_paused_until.is_some_and(|t| Instant::now() < t)
        {
            return Ok(());
        }
        let Some(permit) = self.latch.try_acquire() else { return Ok(()) };
        let fd = types::Fd(listener.as_raw_fd());
        let accept = opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT);
        // SAFETY: an accept with no address buffers points into nothing of ours.
        unsafe { self.push(accept)? };
        self.accepting = Some(permit);
        Ok(())
    }

    // ANCHOR: completed
    fn completed(&mut self, user_data: u64, result: i32) -> io::Result<()> {
        if user_data == CANCEL {
            return Ok(());
        }
        if user_data == ACCEPT {
            let permit = self.accepting.take();
            match (result, permit) {
                (fd, Some(permit)) if fd >= 0 => self.accepted(fd, permit)?,
                (e, _) if -e == libc::EMFILE || -e == libc::ENFILE => {
                    tracing::warn!(
                        "accept failed: {}; trying again in {ACCEPT_BACKOFF:?}",
                        io::Error::from_raw_os_error(-e)
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                }
                (e, _) => tracing::debug!("accept: {}", io::Error::from_raw_os_error(-e)),
            }
            return Ok(());
        }
        let token = (user_data >> 2) as usize;
        let Some(conn) = self.connections.get_mut(token) else { return Ok(()) };
        match user_data & 3 {
            RECV => {
                conn.receiving = false;
                let serving = conn.draining_since.is_none() && !conn.closing;
                match usize::try_from(result) {
                    Ok(0) => {
                        conn.peer_closed = true;
                        // A request left half sent is answered with a 400 before closing.
                        conn.session.end_of_input();
                        if serving && conn.close_after.is_none() {
                            conn.close_after = conn.session.answer(&self.dispatcher);
                        }
                    }
                    Ok(n) if serving => {
                        conn.session.receive(&conn.buffer[..n]);
                        if conn.close_after.is_none() {
                            conn.close_after = conn.session.answer(&self.dispatcher);
                        }
                    }
                    Ok(_) => {} // draining (or closing): the bytes are dropped
                    Err(_) => conn.closing = true,
                }
            }
            _ => {
                conn.in_send = false;
                match usize::try_from(result) {
                    Ok(n) => conn.sent += n,
                    Err(_) => conn.closing = true,
                }
            }
        }
        self.advance(token)
    }
    // ANCHOR_END: completed

    fn accepted(&mut self, fd: i32, permit: Permit) -> io::Result<()> {
        // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
        let stream = unsafe { TcpStream::from_raw_fd(fd) };
        let _ = stream.set_nodelay(true);
        let open = self.dispatcher.stats().connection_opened();
        let token = self.connections.insert(|_| Conn {
            stream,
            session: Session::new(),
            buffer: vec![0; RECV_BUFFER].into_boxed_slice(),
            sending: Vec::new(),
            sent: 0,
            receiving: false,
            in_send: false,
            close_after: None,
            peer_closed: false,
            draining_since: None,
            closing: false,
            since: Instant::now(),
            _open: open,
            _permit: permit,
        });
        self.advance(token)
    }

    /// Decides a connection's next operation: the rest of a send, the next replies, the
    /// staged close, or another receive. One operation at a time per connection, and
    /// replies are written before more requests are read, as in every other version.
    // ANCHOR: advance
    fn advance(&mut self, token: usize) -> io::Result<()> {
        let Some(conn) = self.connections.get_mut(token) else { return Ok(()) };
        conn.since = Instant::now();
        if conn.closing || (conn.peer_closed && conn.draining_since.is_some()) {
            return self.close(token);
        }
        if conn.receiving || conn.in_send {
            return Ok(());
        }
        if conn.sent == conn.sending.len() && !conn.session.outbox.is_empty() {
            conn.sending.clear();
            conn.sent = 0;
            std::mem::swap(&mut conn.sending, &mut conn.session.outbox);
        }
        if conn.sent < conn.sending.len() {
            let rest = &conn.sending[conn.sent..];
            let send = opcode::Send::new(
                types::Fd(conn.stream.as_raw_fd()),
                rest.as_ptr(),
                rest.len() as u32,
            )
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data((token as u64) << 2 | SEND);
            conn.in_send = true;
            // SAFETY: `sending` belongs to the connection, which is not dropped while
            // `in_send`, and is not touched until the send completes.
            return unsafe { self.push(send) };
        }
        match conn.close_after {
            Some(why)
                if !conn.peer_closed
                    && why.owes_a_lingering_close()
                    && conn.draining_since.is_none() =>
            {
                // Every reply is written: FIN, then read and drop until the client closes.
                let _ = conn.stream.shutdown(Direction::Write);
                conn.draining_since = Some(Instant::now());
            }
            Some(_) if conn.draining_since.is_none() => return self.close(token),
            _ if conn.peer_closed => return self.close(token),
            _ => {}
        }
        let recv = opcode::Recv::new(
            types::Fd(conn.stream.as_raw_fd()),
            conn.buffer.as_mut_ptr(),
            RECV_BUFFER as u32,
        )
        .build()
        .user_data((token as u64) << 2 | RECV);
        conn.receiving = true;
        // SAFETY: `buffer` is a boxed slice owned by the connection: it does not move when
        // the connection does, and the connection is not dropped while `receiving`.
        unsafe { self.push(recv) }
    }
    // ANCHOR_END: advance

    /// Closes a connection as soon as nothing of it is in flight; until then, shuts the
    /// socket down so a pending receive completes.
    fn close(&mut self, token: usize) -> io::Result<()> {
        let Some(conn) = self.connections.get_mut(token) else { return Ok(()) };
        conn.closing = true;
        if conn.receiving || conn.in_send {
            let _ = conn.stream.shutdown(Direction::Both);
        } else {
            self.connections.remove(token);
        }
        Ok(())
    }

    /// Cancels every operation still in flight and reaps its completion, so that no
    /// buffer the kernel may still write into or read from is freed (see [`Ring`]'s
    /// `Drop`); returns how many the kernel did not complete within [`DRAIN_PATIENCE`].
    fn drain(&mut self) -> usize {
        let in_flight = |c: &Conn| c.receiving || c.in_send;
        let tokens: Vec<usize> = self.connections.tokens().collect();
        for &token in &tokens {
            let Some(conn) = self.connections.get_mut(token) else { continue };
            if !in_flight(conn) {
                continue;
            }
            // A receive on a socket shut down completes at once; the cancels cover an
            // operation the shutdown does not end.
            let _ = conn.stream.shutdown(Direction::Both);
            let kinds = [(conn.receiving, RECV), (conn.in_send, SEND)];
            for kind in kinds.into_iter().filter(|(busy, _)| *busy).map(|(_, kind)| kind) {
                let target = (token as u64) << 2 | kind;
                let cancel = opcode::AsyncCancel::new(target).build().user_data(CANCEL);
                // SAFETY: a cancel points into nothing of ours.
                let _ = unsafe { self.push(cancel) };
            }
        }
        let busy = |ring: &Ring| ring.connections.iter().filter(|c| in_flight(c)).count();
        let deadline = Instant::now() + DRAIN_PATIENCE;
        while busy(self) > 0 && Instant::now() < deadline {
            let timeout = types::Timespec::from(SWEEP_EVERY);
            let args = types::SubmitArgs::new().timespec(&timeout);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args)
                && !matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY))
            {
                tracing::warn!("reaping the operations in flight: {e}");
                break;
            }
            let done: Vec<u64> = self.ring.completion().map(|c| c.user_data()).collect();
            for user_data in done.into_iter().filter(|&u| u != ACCEPT && u != CANCEL) {
                let token = (user_data >> 2) as usize;
                if let Some(conn) = self.connections.get_mut(token) {
                    match user_data & 3 {
                        RECV => conn.receiving = false,
                        _ => conn.in_send = false,
                    }
                }
            }
        }
        busy(self)
    }

    fn housekeeping(&mut self, shutdown: &common::Shutdown) -> io::Result<()> {
        let now = Instant::now();
        if shutdown.is_triggered() && self.closing_by.is_none() {
            self.closing_by = Some(now + DEADLINE);
            // Stop listening; a pending accept is cancelled (it completes with ECANCELED).
            if self.listener.take().is_some() && self.accepting.is_some() {
                let cancel = opcode::AsyncCancel::new(ACCEPT).build().user_data(CANCEL);
                // SAFETY: a cancel points into nothing of ours.
                unsafe { self.push(cancel)? };
            }
            tracing::info!(open = self.connections.len(), "finishing the connections in flight");
        }
        let mut overdue = Vec::new();
        for token in self.connections.tokens().collect::<Vec<_>>() {
            let Some(conn) = self.connections.get_mut(token) else { continue };
            let at_rest = conn.draining_since.is_none()
                && conn.session.is_at_rest()
                && conn.sent == conn.sending.len();
            let lingered = conn
                .draining_since
                .is_some_and(|since| now >= since + LINGER.min(self.timeouts.idle));
            let late = conn.session.is_overdue(now, self.timeouts.request)
                || (conn.draining_since.is_none() && now >= conn.since + self.timeouts.idle);
            if lingered || late || (self.closing_by.is_some() && at_rest) {
                overdue.push(token);
            }
        }
        for token in overdue {
            self.close(token)?;
        }
        let listening = u64::from(self.listener.is_some());
        self.counters.watched.set(self.connections.len() as u64 + listening);
        Ok(())
    }
}

/// How long the kernel is given to complete the operations cancelled as the loop ends.
const DRAIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Ring {
    /// The kernel owns a buffer from the submission of an operation that points into it
    /// until that operation's completion is reaped (io_uring(7): the buffers of a
    /// submitted request "must remain valid until the request completes"). Closing the
    /// ring does not wait for that: the kernel cancels the ring's requests in the
    /// background after `close` returns. So whatever ends the loop (the shutdown's
    /// deadline with connections still open, or an error), every operation in flight is
    /// cancelled and its completion awaited here, before the connections and their
    /// buffers are freed; a connection whose operation the kernel has not completed
    /// within [`DRAIN_PATIENCE`] is leaked, never freed.
    fn drop(&mut self) {
        if self.drain() == 0 {
            return;
        }
        let mut leaked = 0;
        for token in self.connections.tokens().collect::<Vec<_>>() {
            if self.connections.get_mut(token).is_some_and(|c| c.receiving || c.in_send)
                && let Some(conn) = self.connections.remove(token)
            {
                std::mem::forget(conn);
                leaked += 1;
            }
        }
        tracing::warn!(
            connections = leaked,
            "the kernel did not complete their operations in {DRAIN_PATIENCE:?}: their \
             buffers are leaked, not freed"
        );
    }
}
