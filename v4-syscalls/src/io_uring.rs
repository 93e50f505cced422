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
//!
//! The connection (its session, its outgoing bytes, what is in flight, the staged close,
//! the overdue rule) is [`common::completion::Connection`], which v7 holds too: what is
//! written here is only this loop's own, the operations and their `user_data`, one
//! single-shot operation at a time, and the teardown.
//!
//! A round's answers do not wait for its later handlers: the sends queued so far go to the
//! kernel without waiting once they have waited [`SEND_BUDGET`], or after a slow handler
//! ([`EagerSends`], v7's rule), as the readiness loops write each answer as soon as its
//! handler returns. Only the first slow handler after a calm stretch still holds back the
//! answers queued just before it: no loop knows a handler is slow before it has run, and
//! a submit before every handler would cost a system call per request. Of v7's two
//! switches this loop keeps neither. `--send-budget-us off`
//! is there to measure what the rule costs, which v7's ladder does from its naive rung;
//! here `--api` compares ways of waiting, and an io_uring loop holding its answers to the
//! round's end would differ from epoll's in more than the wait. `--reap-early` would have
//! nothing to take in: one operation at a time, a connection whose request waits behind a
//! slow handler has nothing in flight, so its client's reset reaches the loop only when
//! the answer's send fails, just as epoll's loop has read the request before the reset
//! came (`--skip-departed`, a `poll` before each handler, skips it in both).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::io;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use common::Dispatcher;
use common::completion::{Connection, EagerSends, Life, Receiving, SEND_BUDGET, Sending, Step};
use common::event_loop::{LoopCounters, Shared};
use common::evented::{Overdue, SWEEP_EVERY, Slots, Timeouts};
use common::limit::{LimitLatch, Permit};
use common::overload::{Admission, Shedding};
use common::server::ACCEPT_BACKOFF;
use common::shutdown::DEADLINE;
use common::trace::{self, Cat};
use io_uring::{IoUring, opcode, squeue, types};

/// Bytes one receive may bring. Every idle connection holds one such buffer.
const RECV_BUFFER: usize = 4096;
/// `user_data` of the accept; a connection's operations carry its key and the kind.
const ACCEPT: u64 = u64::MAX;
const CANCEL: u64 = u64::MAX - 1;
const RECV: u64 = 1;
const SEND: u64 = 2;

fn user_data(key: usize, kind: u64) -> u64 {
    (key as u64) << 2 | kind
}

/// A connection's receive buffer: raw memory, as v7's provided buffers are, not a
/// `Box<[u8]>`. The kernel writes into it behind Rust's back while a receive is armed,
/// and a `Box` is a promise that nobody else touches its bytes, one that moving it by
/// value (into `mem::forget`, when the teardown leaks a connection whose receive the
/// kernel never completed) would restate. A pointer promises nothing, and a slice is made
/// only of the bytes a completed receive says it wrote.
#[derive(Debug)]
struct RecvBuffer(NonNull<u8>);

const RECV_LAYOUT: Layout = Layout::new::<[u8; RECV_BUFFER]>();

impl RecvBuffer {
    fn new() -> Self {
        // Not zeroed: nothing reads a byte the kernel has not written.
        // SAFETY: the layout's size is RECV_BUFFER, not zero.
        let memory = unsafe { alloc(RECV_LAYOUT) };
        Self(NonNull::new(memory).unwrap_or_else(|| handle_alloc_error(RECV_LAYOUT)))
    }

    /// The first `len` bytes, which a receive has written.
    ///
    /// # Safety
    ///
    /// A receive into this buffer has completed with `len`, and no other is in flight.
    unsafe fn filled(&self, len: usize) -> &[u8] {
        // SAFETY: inside the allocation (`min`); the caller's promise: the kernel wrote
        // these bytes and is not writing now.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), len.min(RECV_BUFFER)) }
    }
}

impl Drop for RecvBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. A connection, and so its buffer, is
        // dropped only with no receive in flight (`Ring::close`, `Drop for Ring`, which
        // leaks it otherwise).
        unsafe { dealloc(self.0.as_ptr(), RECV_LAYOUT) };
    }
}

/// A connection and the one buffer its receives are written into.
#[derive(Debug)]
struct Conn {
    conn: Connection,
    buffer: RecvBuffer,
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
    /// What the loop refuses past its capacity (see `common::overload`).
    shedding: Shedding,
    /// When the last wait returned: when this round's requests started waiting for the
    /// loop, as far as it can tell (a lower bound, as in `common::event_loop`).
    woke: Instant,
    /// When the answers queued this round go to the kernel before its wait.
    eager: EagerSends,
}

/// Serves `listener` on this thread through an io_uring until a shutdown has closed every
/// connection or its deadline has passed. Fails at once, saying so, if the kernel refuses
/// io_uring (too old, or disabled by `kernel.io_uring_disabled` or a seccomp filter).
pub fn run(listener: TcpListener, shared: Shared, counters: Arc<LoopCounters>) -> io::Result<()> {
    let Shared { dispatcher, latch, timeouts, shutdown, shedding } = shared;
    let refused = |why: String| {
        format!(
            "this kernel refuses io_uring ({why}); it may be disabled (sysctl kernel.io_uring_disabled) or too old (5.11 is needed): use another --api"
        )
    };
    let ring = IoUring::new(1024).map_err(|e| io::Error::new(e.kind(), refused(e.to_string())))?;
    // A kernel from 5.1 to 5.10 makes the ring but refuses the wait with a timeout the loop
    // makes every round (IORING_ENTER_EXT_ARG, 5.11): found here, not at the first wait as
    // a bare EINVAL.
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            refused("no IORING_FEAT_EXT_ARG: older than 5.11".into()),
        ));
    }
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
        shedding,
        woke: Instant::now(),
        // Always on, with v7's default budget (see the module's comment on switches).
        eager: EagerSends::new(Some(SEND_BUDGET)),
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
            let submitted = if trace::on() { self.ring.submission().len() } else { 0 };
            let mut waiting = trace::span(Cat::Wait, "io_uring_enter").with("submitted", submitted);
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
            self.woke = Instant::now();
            self.eager.submitted(self.woke);
            let done: Vec<(u64, i32)> =
                self.ring.completion().map(|c| (c.user_data(), c.result())).collect();
            waiting.set("ready", done.len());
            drop(waiting);
            self.counters.waited(self.woke - started, done.len());
            // Each completion taken in, and the handlers and sends it leads to.
            let reaping = trace::span(Cat::Reap, "reap").with("count", done.len());
            for (user_data, result) in done {
                self.completed(user_data, result)?;
            }
            drop(reaping);
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
            self.eager.submitted(Instant::now());
        }
        Ok(())
    }

    /// Hands the answers queued so far to the kernel without waiting, so they need not
    /// wait for the handlers still to run this round (see [`EagerSends`]).
    fn submit_early(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => self.eager.submitted(Instant::now()),
            // Left queued: the wait that ends the round submits them.
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
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
        let key = (user_data >> 2) as usize;
        let Some(Conn { conn, buffer }) = self.connections.get_mut(key) else { return Ok(()) };
        let now = Instant::now();
        match user_data & 3 {
            RECV => {
                conn.receive_ended();
                match usize::try_from(result) {
                    // A request left half sent is answered with a 400 before closing.
                    Ok(0) => conn.end_of_input(),
                    // SAFETY: this receive, the buffer's only one, has just completed with
                    // `n` bytes written.
                    Ok(n) => conn.received(unsafe { buffer.filled(n) }, now),
                    Err(_) => conn.start_closing(),
                }
            }
            _ => conn.sent(usize::try_from(result).map_err(|_| result), now),
        }
        self.advance(key)
    }
    // ANCHOR_END: completed

    fn accepted(&mut self, fd: i32, permit: Permit) -> io::Result<()> {
        // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
        let stream = unsafe { TcpStream::from_raw_fd(fd) };
        let _ = stream.set_nodelay(true);
        let open = self.dispatcher.stats().connection_opened();
        let key = self.connections.insert(|_| Conn {
            conn: Connection::new(stream, open, permit),
            buffer: RecvBuffer::new(),
        });
        self.advance(key)
    }

    /// Submits a connection's next operation: the rest of a send, the next replies, or
    /// another receive (to serve, or to drop while lingering); or closes it. One
    /// operation at a time per connection: this loop's simplification, which v7 drops.
    // ANCHOR: advance
    fn advance(&mut self, key: usize) -> io::Result<()> {
        let Some(Conn { conn, .. }) = self.connections.get_mut(key) else { return Ok(()) };
        if conn.is_closing() {
            return self.close(key);
        }
        if conn.in_flight() {
            return Ok(());
        }
        // Its handlers may run: the answers queued so far go first if they have waited
        // long enough, or if handlers have been slow lately.
        if conn.session().unanswered_input() > 0 && self.eager.submit_now(Instant::now()) {
            self.submit_early()?;
        }
        let Some(Conn { conn, buffer }) = self.connections.get_mut(key) else { return Ok(()) };
        let fd = types::Fd(conn.fd());
        let mut admission = Admission::new(self.shedding, Some(self.woke));
        let (answered, started) = (conn.session().answered(), Instant::now());
        let entry = match conn.next_admitting(&self.dispatcher, &mut admission) {
            Step::Close => return self.close(key),
            Step::Wait => return Ok(()),
            Step::Send(rest) => {
                let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
                opcode::Send::new(fd, rest.as_ptr(), len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(key, SEND))
            }
            Step::Receive => {
                conn.receive_armed();
                opcode::Recv::new(fd, buffer.0.as_ptr(), RECV_BUFFER as u32)
                    .build()
                    .user_data(user_data(key, RECV))
            }
        };
        let sending = conn.sending() == Sending::InFlight;
        let ran = conn.session().answered() > answered;
        // SAFETY: a send points into the connection's outgoing bytes, which are not
        // touched while it is in flight (`Sending::InFlight`); a receive into its buffer,
        // whose heap memory stays put when the connection moves. The connection is freed
        // only once nothing of it is in flight (`close`, `Drop for Ring`).
        unsafe { self.push(entry)? };
        if sending {
            self.eager.queued();
        }
        if ran {
            let now = Instant::now();
            self.eager.handlers_ran(started, now);
            // A slow handler's answer does not wait for the rest of the round either.
            if self.eager.submit_now(now) {
                self.submit_early()?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: advance

    /// Closes a connection as soon as nothing of it is in flight; until then, shuts the
    /// socket down (once) so a pending receive completes.
    fn close(&mut self, key: usize) -> io::Result<()> {
        let Some(Conn { conn, .. }) = self.connections.get_mut(key) else { return Ok(()) };
        conn.start_closing();
        if !conn.in_flight() {
            self.connections.remove(key);
        } else if conn.cancel_once() {
            let _ = conn.stream().shutdown(Direction::Both);
        }
        Ok(())
    }

    /// Cancels every operation still in flight and reaps its completion, so that no
    /// buffer the kernel may still write into or read from is freed (see [`Ring`]'s
    /// `Drop`); returns how many the kernel did not complete within [`DRAIN_PATIENCE`].
    fn drain(&mut self) -> usize {
        let keys: Vec<usize> = self.connections.tokens().collect();
        for &key in &keys {
            let Some(Conn { conn, .. }) = self.connections.get_mut(key) else { continue };
            if !conn.in_flight() {
                continue;
            }
            // A receive on a socket shut down completes at once; the cancels cover an
            // operation the shutdown does not end.
            let _ = conn.stream().shutdown(Direction::Both);
            let kinds = [
                (conn.receiving() != Receiving::Idle, RECV),
                (conn.sending() == Sending::InFlight, SEND),
            ];
            for kind in kinds.into_iter().filter(|(busy, _)| *busy).map(|(_, kind)| kind) {
                let cancel =
                    opcode::AsyncCancel::new(user_data(key, kind)).build().user_data(CANCEL);
                // SAFETY: a cancel points into nothing of ours.
                let _ = unsafe { self.push(cancel) };
            }
        }
        let busy = |ring: &Ring| ring.connections.iter().filter(|c| c.conn.in_flight()).count();
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
            let done: Vec<(u64, i32)> =
                self.ring.completion().map(|c| (c.user_data(), c.result())).collect();
            for (user_data, result) in done.into_iter().filter(|&(u, _)| u != ACCEPT && u != CANCEL)
            {
                if let Some(Conn { conn, .. }) = self.connections.get_mut((user_data >> 2) as usize)
                {
                    match user_data & 3 {
                        RECV => conn.receive_ended(),
                        _ => conn.sent(usize::try_from(result).map_err(|_| result), Instant::now()),
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
        for key in self.connections.tokens().collect::<Vec<_>>() {
            let Some(Conn { conn, .. }) = self.connections.get_mut(key) else { continue };
            let why = match conn.is_overdue(now, self.timeouts) {
                Overdue::Idle if matches!(conn.life(), Life::Lingering { .. }) => "lingered",
                Overdue::Idle => "idle-timeout",
                Overdue::Request => "request-timeout",
                Overdue::No if self.closing_by.is_some() && conn.is_at_rest() => "shutdown",
                Overdue::No => continue,
            };
            // Said here, where the reason is known; `close` then finds it closing.
            conn.start_closing_because(why);
            overdue.push(key);
        }
        for key in overdue {
            self.close(key)?;
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
        for key in self.connections.tokens().collect::<Vec<_>>() {
            if self.connections.get_mut(key).is_some_and(|c| c.conn.in_flight())
                && let Some(conn) = self.connections.remove(key)
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
