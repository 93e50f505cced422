//! One ring's loop: a thread, its io_uring, its listener, its buffers and its connections.
//!
//! Who owns what, which is the whole difficulty of completion I/O:
//!
//! * an operation in flight is the kernel's until its last completion (for a multishot
//!   operation, the first completion without `IORING_CQE_F_MORE`);
//! * the bytes a send points into (`Conn::outgoing`) are the kernel's until that send
//!   completes: they are never touched, moved or freed before;
//! * a receive points into nothing of the connection: it takes a buffer of the ring's
//!   `BufRing` when bytes arrive, and the buffer is ours from its completion until we
//!   recycle it, which is at once, after copying the bytes into the session's inbox;
//! * a connection (its socket, its outgoing bytes) is freed only when its count of
//!   operations in flight is back to zero: closing it first cancels them.
//!
//! `user_data` names an operation: `slot << 32 | generation << 8 | kind`. A slot freed and
//! reused gets a new generation, so a completion that outlives its connection (there should
//! be none: see above) would be recognised and ignored rather than given to the newcomer.

use std::io;
use std::mem::ManuallyDrop;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Dispatcher;
use common::evented::{READ_BATCH, SWEEP_EVERY, Timeouts};
use common::limit::{LimitLatch, Permit};
use common::server::{ACCEPT_BACKOFF, is_exhaustion};
use common::session::{Closed, LINGER, Session};
use common::shutdown::DEADLINE;
use common::stats::{ConnectionGuard, Counter, Level};
use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::buffers::BufRing;

/// The buffer group every receive of a ring takes from (one group per ring).
const BGID: u16 = 0;
/// Entries of the submission queue; the completion queue has [`CQ_ENTRIES`].
const SQ_ENTRIES: u32 = 1024;
/// Room for a burst of multishot completions (the kernel keeps any overflow, but
/// terminates the multishot operations that overflowed).
const CQ_ENTRIES: u32 = 8192;
/// How many completions a wait asks for before its batch wait is up.
const WANT: usize = 64;
/// How long the kernel is given to complete what is cancelled as the loop ends.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// What an operation is, in the low byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Accept = 1,
    Wake = 2,
    Recv = 3,
    Send = 4,
    Cancel = 5,
}

/// The slot of the ring's own operations (accept, wake-up, their cancels).
const RING: u32 = u32::MAX;
const GENERATIONS: u32 = 1 << 24;

// ANCHOR: user_data
fn tag(slot: u32, generation: u32, op: Op) -> u64 {
    (u64::from(slot) << 32) | (u64::from(generation % GENERATIONS) << 8) | op as u64
}

fn untag(user_data: u64) -> (u32, u32, Option<Op>) {
    let op = match user_data & 0xff {
        1 => Some(Op::Accept),
        2 => Some(Op::Wake),
        3 => Some(Op::Recv),
        4 => Some(Op::Send),
        5 => Some(Op::Cancel),
        _ => None,
    };
    ((user_data >> 32) as u32, ((user_data >> 8) as u32) % GENERATIONS, op)
}
// ANCHOR_END: user_data

/// One ring's figures, listed under `/stats`'s `model.rings`.
#[derive(Debug, Default)]
pub struct RingCounters {
    pub connections: Level,
    pub accepted: Counter,
    pub requests: Counter,
    /// `io_uring_enter` calls: the waits, and the rare submit of a full queue.
    pub enters: Counter,
    /// Entries the kernel took from the submission queue.
    pub submissions: Counter,
    /// Completions reaped.
    pub completions: Counter,
    /// Send operations submitted (a short send's rest counts again).
    pub sends: Counter,
    /// Buffers out of the buf ring: handed to us by a completion or taken by the kernel
    /// for one not yet reaped, as the kernel's head says at the last sweep.
    pub buffers_in_use: Level,
    pub buffers: Level,
    /// 1 when `buffers_in_use` is the kernel's figure (its head, Linux 6.8), 0 when it is
    /// our own count of the buffers completions gave us.
    pub buffers_seen_by_kernel: Level,
    /// Multishot receives that ended because the buf ring was empty (then re-armed).
    pub enobufs: Counter,
    /// Multishot receives re-armed after the kernel ended them with no error.
    pub recv_rearms: Counter,
    /// Accepted past the cap, waiting (unread) for a permit.
    pub parked: Level,
    /// Sweeps done (each samples `buffers_in_use`).
    pub sweeps: Counter,
}

/// What every ring of one server is set with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub buffers: u16,
    pub buffer_size: usize,
    /// How long a wait that has some completions may wait for more (0: return at the first).
    pub batch_wait: Duration,
    pub max_connections: usize,
}

/// One client connection, as the ring holds it.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    generation: u32,
    session: Session,
    /// The bytes being sent: the kernel's while `send_in_flight`.
    outgoing: Vec<u8>,
    sent: usize,
    /// A multishot receive is armed (until its completion without F_MORE).
    recv_armed: bool,
    /// Its cancel is submitted (backpressure or close).
    recv_cancelling: bool,
    send_in_flight: bool,
    /// Operations in flight, cancels included: the connection may be freed only at zero.
    ops: u16,
    close_after: Option<Closed>,
    peer_closed: bool,
    draining_since: Option<Instant>,
    /// Decided to close: freed once `ops` is zero.
    closing: bool,
    cancelled: bool,
    /// Queued for [`Uring::advance`] at the end of this turn.
    dirty: bool,
    since: Instant,
    _open: ConnectionGuard,
    _permit: Permit,
}

impl Conn {
    /// Whether arriving bytes are still for the session, not dropped (draining, closing).
    fn listening(&self) -> bool {
        self.close_after.is_none() && self.draining_since.is_none() && !self.closing
    }

    fn at_rest(&self) -> bool {
        !self.send_in_flight
            && self.sent == self.outgoing.len()
            && self.draining_since.is_none()
            && self.session.is_at_rest()
    }
}

/// Slots with generations: a reused slot's operations carry a new generation.
#[derive(Debug, Default)]
struct Conns {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    len: usize,
}

impl Conns {
    fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[index as usize];
        slot.0 = (slot.0 + 1) % GENERATIONS;
        slot.1 = Some(make(slot.0));
        self.len += 1;
        index
    }

    fn get(&mut self, index: u32) -> Option<&mut Conn> {
        self.slots.get_mut(index as usize)?.1.as_mut()
    }

    fn get_current(&mut self, index: u32, generation: u32) -> Option<&mut Conn> {
        self.get(index).filter(|c| c.generation == generation)
    }

    fn remove(&mut self, index: u32) -> Option<Conn> {
        let taken = self.slots.get_mut(index as usize)?.1.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(taken)
    }

    fn indices(&self) -> Vec<u32> {
        (0..self.slots.len() as u32).filter(|&i| self.slots[i as usize].1.is_some()).collect()
    }
}

struct Uring {
    ring: IoUring,
    /// Freed by hand in `Drop for Uring`, once the kernel is done with it, or leaked.
    bufs: ManuallyDrop<BufRing>,
    /// The kernel's head of the buf ring can be read (`IORING_REGISTER_PBUF_STATUS`, 6.8).
    pbuf_status: bool,
    min_wait: bool,
    settings: Settings,
    conns: Conns,
    dirty: Vec<u32>,
    listener: Option<TcpListener>,
    accept_armed: bool,
    accept_cancelling: bool,
    accept_paused_until: Option<Instant>,
    /// Accepted while at the cap: held, unread, until a permit is free.
    parked: Vec<TcpStream>,
    /// Written by the shutdown's trigger (which keeps it open as long as it may write).
    wake: Arc<EventFd>,
    wake_armed: bool,
    latch: Arc<LimitLatch>,
    dispatcher: Arc<Dispatcher>,
    timeouts: Timeouts,
    shutdown: common::Shutdown,
    counters: Arc<RingCounters>,
    closing_by: Option<Instant>,
    last_sweep: Instant,
    /// Completions the last wait returned: a batch wait is worth it only under load.
    last_batch: usize,
}

/// Why v7 cannot run here, in one line that says what to do instead.
fn refused(what: &str, e: &io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "io_uring is not available here ({what}: {e}): run v5-reactor-per-core instead, \
             or allow io_uring (Docker: --security-opt seccomp=unconfined; sysctl \
             kernel.io_uring_disabled=0); v7 needs Linux 6.1 or later"
        ),
    )
}

/// A ring as v7 sets it up: one thread submits to it (`SINGLE_ISSUER`, 6.0), and the
/// kernel runs its completions' work only when that thread waits (`DEFER_TASKRUN`, 6.1),
/// so completions pile up between waits and are reaped in batches.
pub fn new_ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(SQ_ENTRIES)
        .map_err(|e| refused("io_uring_setup with SINGLE_ISSUER and DEFER_TASKRUN", &e))
}

/// Serves `listener` on this thread until a shutdown has closed every connection or its
/// deadline has passed.
pub fn run(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    latch: Arc<LimitLatch>,
    timeouts: Timeouts,
    shutdown: common::Shutdown,
    settings: Settings,
    counters: Arc<RingCounters>,
) -> io::Result<()> {
    // Everything that can fail before the registration does, so a failure never drops a
    // registered buf ring.
    let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
    let ring = new_ring()?;
    let bufs = BufRing::new(settings.buffers, settings.buffer_size)?;
    let (addr, entries) = bufs.registration();
    // SAFETY: the entries (and the buffers they point to) belong to `bufs`, which lives in
    // the same `Uring` as the ring, and `Drop for Uring` unregisters the ring before
    // either is freed (or leaks them, if the kernel may still write into them).
    unsafe { ring.submitter().register_buf_ring_with_flags(addr, entries, BGID, 0) }
        .map_err(|e| refused("registering a provided-buffer ring (Linux 5.19)", &e))?;
    counters.buffers.set(u64::from(bufs.count()));
    let min_wait = ring.params().is_feature_min_timeout();
    let signal = Arc::clone(&wake);
    let mut this = Uring {
        ring,
        bufs: ManuallyDrop::new(bufs),
        pbuf_status: true,
        min_wait,
        settings,
        conns: Conns::default(),
        dirty: Vec::new(),
        listener: Some(listener),
        accept_armed: false,
        accept_cancelling: false,
        accept_paused_until: None,
        parked: Vec::new(),
        wake,
        wake_armed: false,
        latch,
        dispatcher,
        timeouts,
        shutdown: shutdown.clone(),
        counters,
        closing_by: None,
        last_sweep: Instant::now(),
        last_batch: 0,
    };
    this.arm_wake()?;
    shutdown.on_trigger(move || {
        // Fails only if the counter would overflow: then it is readable already.
        let _ = signal.write(1);
    });
    this.run()
}

impl Uring {
    fn run(&mut self) -> io::Result<()> {
        let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
        while self.keep_going() {
            self.arm_accept()?;
            self.enter()?;
            done.clear();
            done.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            self.counters.completions.add(done.len() as u64);
            self.last_batch = done.len();
            for &(user_data, result, flags) in &done {
                self.complete(user_data, result, flags)?;
            }
            // The buffers consumed this turn go back to the kernel in one store.
            self.bufs.publish();
            self.advance_dirty()?;
            self.housekeeping()?;
        }
        if self.conns.len > 0 {
            tracing::warn!(open = self.conns.len, "closing connections at the shutdown deadline");
        }
        Ok(())
    }

    fn keep_going(&self) -> bool {
        match self.closing_by {
            Some(deadline) => self.conns.len > 0 && Instant::now() < deadline,
            None => true,
        }
    }

    // ANCHOR: submit_and_wait
    /// Submits everything this turn queued (sends, re-armed receives, cancels) and waits
    /// for completions, in one `io_uring_enter`: at most until the next sweep is due. Under
    /// load (the last wait returned several) it asks for [`WANT`] completions with the
    /// kernel's `min_wait` (Linux 6.12) set to `batch_wait`: the wait returns once `WANT`
    /// are in, or `batch_wait` after it began if any have come, or else at the first one;
    /// so the completions of the sends just submitted and the next requests come back
    /// together.
    fn enter(&mut self) -> io::Result<()> {
        let until_sweep = SWEEP_EVERY.saturating_sub(self.last_sweep.elapsed());
        let timeout = Timespec::from(until_sweep.max(self.settings.batch_wait).max(MIN_WAIT));
        let mut args = SubmitArgs::new().timespec(&timeout);
        let mut want = 1;
        // Only when the last wait brought several completions: a lone client's request
        // would wait the whole batch wait for company that never comes. Measured, this
        // is not enough for a few clients (four: a p50 20-40 µs above v5's, see the
        // chapter); the threshold wants to be larger.
        if self.min_wait && !self.settings.batch_wait.is_zero() && self.last_batch > 1 {
            args = args.min_wait_usec(self.settings.batch_wait.as_micros() as u32);
            want = WANT;
        }
        let queued = self.ring.submission().len();
        self.counters.enters.bump();
        let result = self.ring.submitter().submit_with_args(want, &args);
        self.counters.submissions.add((queued - self.ring.submission().len()) as u64);
        match result {
            Ok(_) => Ok(()),
            // The timeout (time to sweep), a signal, or completions to reap first.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: submit_and_wait

    /// Queues an entry, submitting what is queued first if the queue is full.
    ///
    /// # Safety
    ///
    /// Whatever memory the entry points into must stay valid, unmoved and untouched until
    /// its last completion is reaped.
    unsafe fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: the caller's promise.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            let queued = self.ring.submission().len();
            self.counters.enters.bump();
            self.ring.submit()?;
            self.counters.submissions.add((queued - self.ring.submission().len()) as u64);
        }
        Ok(())
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let poll = opcode::PollAdd::new(Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(tag(RING, 0, Op::Wake));
        // SAFETY: a poll points into no memory; the eventfd lives as long as the ring.
        unsafe { self.push(poll)? };
        self.wake_armed = true;
        Ok(())
    }

    // ANCHOR: accept
    /// Keeps one multishot accept armed on the listener while the ring may take
    /// connections: one submission, then a completion per connection, for as long as the
    /// kernel keeps it (`IORING_CQE_F_MORE`).
    fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        let paused = self.accept_paused_until.is_some_and(|until| Instant::now() < until);
        let full = self.latch.count() >= self.settings.max_connections;
        if self.accept_armed || paused || full || !self.parked.is_empty() {
            return Ok(());
        }
        self.accept_paused_until = None;
        let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(tag(RING, 0, Op::Accept));
        // SAFETY: no address buffers; the listener is closed only after the accept's last
        // completion (or after the drain, when the loop ends).
        unsafe { self.push(accept)? };
        self.accept_armed = true;
        Ok(())
    }
    // ANCHOR_END: accept

    fn accepted(&mut self, result: i32, flags: u32) -> io::Result<()> {
        if !cqueue::more(flags) {
            // Ended (cancelled, an error, or the kernel's choice): re-armed next turn.
            self.accept_armed = false;
            self.accept_cancelling = false;
        }
        if result >= 0 {
            // SAFETY: the kernel just made this descriptor for us; nothing else owns it.
            let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
            return match self.latch.try_acquire() {
                _ if self.closing_by.is_some() => Ok(()), // stopping: closed at once
                Some(permit) => self.open(stream, permit),
                // At the cap: hold it unread and stop accepting, so the next ones wait in
                // the kernel's backlog as in every capped version.
                None => {
                    self.parked.push(stream);
                    self.counters.parked.set(self.parked.len() as u64);
                    self.cancel_accept()
                }
            };
        }
        let error = io::Error::from_raw_os_error(-result);
        if is_exhaustion(&error) {
            // Trying again at once would fail again; a pause, not a sleep: the ring's
            // connections are served meanwhile.
            tracing::warn!("accept failed: {error}; trying again in {ACCEPT_BACKOFF:?}");
            self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
            self.cancel_accept()?;
        } else if -result != libc::ECANCELED {
            tracing::debug!("accept: {error}");
        }
        Ok(())
    }

    fn cancel_accept(&mut self) -> io::Result<()> {
        if !self.accept_armed || self.accept_cancelling {
            return Ok(());
        }
        let cancel = opcode::AsyncCancel::new(tag(RING, 0, Op::Accept)).build().user_data(tag(
            RING,
            0,
            Op::Cancel,
        ));
        // SAFETY: a cancel points into no memory.
        unsafe { self.push(cancel)? };
        self.accept_cancelling = true;
        Ok(())
    }

    fn open(&mut self, stream: TcpStream, permit: Permit) -> io::Result<()> {
        let _ = stream.set_nodelay(true);
        let open = self.dispatcher.stats().connection_opened();
        let index = self.conns.insert(|generation| Conn {
            stream,
            generation,
            session: Session::new(),
            outgoing: Vec::new(),
            sent: 0,
            recv_armed: false,
            recv_cancelling: false,
            send_in_flight: false,
            ops: 0,
            close_after: None,
            peer_closed: false,
            draining_since: None,
            closing: false,
            cancelled: false,
            dirty: false,
            since: Instant::now(),
            _open: open,
            _permit: permit,
        });
        self.counters.accepted.bump();
        self.arm_recv(index)
    }

    // ANCHOR: recv
    /// Arms the connection's multishot receive: it names a buffer group, not a buffer,
    /// so while the client is silent it holds nothing, and each arrival takes a buffer
    /// of the kernel's choosing.
    fn arm_recv(&mut self, index: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get(index) else { return Ok(()) };
        let recv = opcode::RecvMulti::new(Fd(conn.stream.as_raw_fd()), BGID)
            .build()
            .user_data(tag(index, conn.generation, Op::Recv));
        conn.recv_armed = true;
        conn.ops += 1;
        // SAFETY: the receive writes only into buffers of the buf ring, which outlives
        // every operation of this ring (`Drop for Uring`), and the socket stays open until
        // the connection is freed, which waits for this operation's last completion.
        unsafe { self.push(recv) }
    }

    // ANCHOR_END: recv

    fn received(&mut self, index: u32, generation: u32, result: i32, flags: u32) {
        // ANCHOR: recycle
        if let Some(bid) = cqueue::buffer_select(flags) {
            // The kernel chose buffer `bid` and filled `result` bytes of it: copied into
            // the session's inbox, it goes back to the buf ring at once (published at the
            // end of the turn), so buffers are held only while bytes are in flight.
            self.bufs.taken();
            let bytes = self.bufs.bytes(bid, usize::try_from(result).unwrap_or(0));
            if let (Some(bytes), Some(conn)) = (bytes, self.conns.get_current(index, generation))
                && conn.listening()
            {
                conn.session.receive(bytes);
            }
            self.bufs.recycle(bid);
        }
        // ANCHOR_END: recycle
        let Some(conn) = self.conns.get_current(index, generation) else { return };
        if !cqueue::more(flags) {
            // The multishot receive has ended; `advance` re-arms it unless closing.
            conn.recv_armed = false;
            conn.recv_cancelling = false;
            conn.ops -= 1;
            if result > 0 && !conn.closing {
                self.counters.recv_rearms.bump();
            }
        }
        match result {
            // A send stuck behind a client that stops reading must not be kept alive by
            // that client's uploads: only bytes that arrive while no send waits count.
            n if n > 0 => {
                if !conn.send_in_flight {
                    conn.since = Instant::now();
                }
            }
            0 => {
                conn.peer_closed = true;
                conn.session.end_of_input();
            }
            // The buf ring was empty: the receive ended, and is re-armed after this
            // turn's buffers have gone back.
            e if -e == libc::ENOBUFS => self.counters.enobufs.bump(),
            e if -e == libc::ECANCELED => {}
            e => {
                tracing::debug!(index, "receive: {}", io::Error::from_raw_os_error(-e));
                conn.closing = true;
            }
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    fn send(&mut self, index: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get(index) else { return Ok(()) };
        let rest = &conn.outgoing[conn.sent..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let send = opcode::Send::new(Fd(conn.stream.as_raw_fd()), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(tag(index, conn.generation, Op::Send));
        conn.send_in_flight = true;
        conn.ops += 1;
        self.counters.sends.bump();
        // SAFETY: `outgoing`'s bytes live on the heap, so they stay put when the connection
        // moves within `conns`; they are not touched while `send_in_flight`, and the
        // connection is not freed before this send's completion (`ops`).
        unsafe { self.push(send) }
    }

    fn sent(&mut self, index: u32, generation: u32, result: i32) {
        let Some(conn) = self.conns.get_current(index, generation) else { return };
        conn.send_in_flight = false;
        conn.ops -= 1;
        match usize::try_from(result) {
            Ok(n) if n > 0 => {
                conn.sent += n;
                conn.since = Instant::now();
            }
            // Nothing taken of a non-empty send would be sent again and again: give up.
            Ok(_) => conn.closing = true,
            // A reset or a broken pipe: this client is gone.
            Err(_) => conn.closing = true,
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> io::Result<()> {
        let (slot, generation, op) = untag(user_data);
        match op {
            Some(Op::Accept) => self.accepted(result, flags)?,
            Some(Op::Wake) => self.wake_armed = false,
            Some(Op::Recv) => self.received(slot, generation, result, flags),
            Some(Op::Send) => self.sent(slot, generation, result),
            // A connection's cancel names its socket, so the socket stays open (the
            // connection counts the cancel among its operations) until the cancel is done:
            // closed earlier, its number could go to a newcomer whose operations the
            // cancel would then end. What it cancelled completes separately.
            Some(Op::Cancel) if slot != RING => {
                if let Some(conn) = self.conns.get_current(slot, generation) {
                    conn.ops -= 1;
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(slot);
                    }
                }
            }
            Some(Op::Cancel) | None => {}
        }
        Ok(())
    }

    fn advance_dirty(&mut self) -> io::Result<()> {
        for index in std::mem::take(&mut self.dirty) {
            if let Some(conn) = self.conns.get(index) {
                conn.dirty = false;
            }
            self.advance(index)?;
        }
        Ok(())
    }

    /// A connection's next step, once per turn whatever completed for it: answer what
    /// arrived (all of it, so pipelined requests go out as one send), send, close in
    /// stages, keep receiving. One send in flight at a time; requests that arrive during
    /// it are answered when it completes, in the next send.
    fn advance(&mut self, index: u32) -> io::Result<()> {
        let dispatcher = Arc::clone(&self.dispatcher);
        let Some(conn) = self.conns.get(index) else { return Ok(()) };
        if conn.closing {
            return self.close(index);
        }
        if !conn.send_in_flight {
            if conn.sent < conn.outgoing.len() {
                // A short send: the rest, from where the kernel stopped.
                self.send(index)?;
            } else {
                conn.outgoing.clear();
                conn.sent = 0;
                if conn.close_after.is_none() && conn.draining_since.is_none() {
                    let answered = conn.session.answered();
                    conn.close_after = conn.session.answer(&dispatcher);
                    self.counters.requests.add(conn.session.answered() - answered);
                }
                if !conn.session.outbox.is_empty() {
                    std::mem::swap(&mut conn.outgoing, &mut conn.session.outbox);
                    self.send(index)?;
                } else if conn.draining_since.is_some() {
                    if conn.peer_closed {
                        return self.close(index);
                    }
                } else {
                    match conn.close_after {
                        Some(why) if why.owes_a_lingering_close() && !conn.peer_closed => {
                            // Every reply is written: FIN, then read and drop until the
                            // client closes, so it reads its last reply, not a reset.
                            let _ = conn.stream.shutdown(Direction::Write);
                            conn.session.inbox.clear();
                            conn.draining_since = Some(Instant::now());
                        }
                        Some(_) => return self.close(index),
                        None if conn.peer_closed => return self.close(index),
                        None => conn.session.release_spare_capacity(),
                    }
                }
            }
        }
        let Some(conn) = self.conns.get(index) else { return Ok(()) };
        // A client that sends faster than it reads its answers: stop receiving until the
        // send in flight is done, so its inbox cannot grow without bound.
        let flooding = conn.send_in_flight && conn.session.inbox.len() > READ_BATCH;
        if conn.recv_armed {
            if flooding && !conn.recv_cancelling {
                let cancel = opcode::AsyncCancel::new(tag(index, conn.generation, Op::Recv))
                    .build()
                    .user_data(tag(index, conn.generation, Op::Cancel));
                conn.recv_cancelling = true;
                conn.ops += 1;
                // SAFETY: a cancel points into no memory.
                unsafe { self.push(cancel)? };
            }
        } else if !conn.peer_closed && !flooding {
            // Not armed: new, ended by the kernel (ENOBUFS, or no F_MORE), or paused.
            self.arm_recv(index)?;
        }
        Ok(())
    }

    // ANCHOR: close
    /// Closes a connection: at once if nothing of it is in flight; otherwise cancels every
    /// operation on its socket and frees it only when the last one's completion is in
    /// (each completion comes back here through `advance`).
    fn close(&mut self, index: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get(index) else { return Ok(()) };
        conn.closing = true;
        if conn.ops == 0 {
            self.conns.remove(index);
            return Ok(());
        }
        if !conn.cancelled {
            conn.cancelled = true;
            conn.ops += 1;
            let fd = Fd(conn.stream.as_raw_fd());
            let cancel = opcode::AsyncCancel2::new(CancelBuilder::fd(fd).all())
                .build()
                .user_data(tag(index, conn.generation, Op::Cancel));
            // SAFETY: a cancel points into no memory; the descriptor it names stays open
            // until the connection is freed, after the cancelled operations complete.
            unsafe { self.push(cancel)? };
        }
        Ok(())
    }
    // ANCHOR_END: close

    /// Every turn: notice a shutdown, serve connections parked at the cap once permits are
    /// free; every [`SWEEP_EVERY`]: close the overdue, and read the buf ring's figures.
    fn housekeeping(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.shutdown.is_triggered() && self.closing_by.is_none() {
            self.closing_by = Some(now + DEADLINE);
            self.parked.clear();
            self.cancel_accept()?;
            tracing::info!(open = self.conns.len, "finishing the connections in flight");
            // Not this turn: requests already in the sockets reach their sessions only with
            // the next wait (the kernel runs the receives' work then), and a connection
            // whose request is on its way is not at rest.
            return Ok(());
        }
        if self.closing_by.is_some() {
            if !self.accept_armed {
                // Its last completion is in: the listener can go.
                self.listener = None;
            }
            for index in self.conns.indices() {
                if self.conns.get(index).is_some_and(|c| c.at_rest() && !c.closing) {
                    self.close(index)?;
                }
            }
        }
        while !self.parked.is_empty() {
            let Some(permit) = self.latch.try_acquire() else { break };
            let stream = self.parked.remove(0);
            self.open(stream, permit)?;
        }
        self.counters.parked.set(self.parked.len() as u64);
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            self.sweep(now)?;
        }
        self.counters.connections.set(self.conns.len as u64);
        Ok(())
    }

    fn sweep(&mut self, now: Instant) -> io::Result<()> {
        let Timeouts { idle, request } = self.timeouts;
        for index in self.conns.indices() {
            let Some(conn) = self.conns.get(index) else { continue };
            let overdue = match conn.draining_since {
                Some(since) => now >= since + LINGER.min(idle),
                None => conn.session.is_overdue(now, request) || now >= conn.since + idle,
            };
            if overdue && !conn.closing {
                tracing::debug!(index, "closing an overdue connection");
                self.close(index)?;
            }
        }
        let head = self.kernel_head();
        self.counters.buffers_seen_by_kernel.set(u64::from(head.is_some()));
        let in_use = match head {
            // Published but not yet taken by the kernel: tail - head; the rest are out.
            Some(head) => self.bufs.count().saturating_sub(self.bufs.tail().wrapping_sub(head)),
            None => self.bufs.held(),
        };
        self.counters.buffers_in_use.set(u64::from(in_use));
        self.counters.sweeps.bump();
        Ok(())
    }

    /// The kernel's head of the buf ring (`IORING_REGISTER_PBUF_STATUS`, Linux 6.8), if
    /// this kernel says.
    fn kernel_head(&mut self) -> Option<u16> {
        if !self.pbuf_status {
            return None;
        }
        let mut status = BufStatus { buf_group: u32::from(BGID), head: 0, resv: [0; 8] };
        // SAFETY: `status` is a valid io_uring_buf_status the kernel fills in; the call
        // touches nothing else.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring.as_raw_fd(),
                PBUF_STATUS,
                (&raw mut status).cast::<libc::c_void>(),
                1,
            )
        };
        if r < 0 {
            self.pbuf_status = false;
            return None;
        }
        Some(status.head as u16)
    }

    /// Cancels every operation in flight and reaps the completions, so nothing the kernel
    /// may still read or write is freed. Returns how many connections still have
    /// operations in flight after [`DRAIN_PATIENCE`].
    fn drain(&mut self) -> usize {
        let _ = self.cancel_accept();
        if self.wake_armed {
            let cancel = opcode::AsyncCancel::new(tag(RING, 0, Op::Wake)).build().user_data(tag(
                RING,
                0,
                Op::Cancel,
            ));
            // SAFETY: a cancel points into no memory.
            let _ = unsafe { self.push(cancel) };
        }
        for index in self.conns.indices() {
            let _ = self.close(index);
        }
        let deadline = Instant::now() + DRAIN_PATIENCE;
        let busy = |this: &Self| this.conns.len > 0 || this.accept_armed || this.wake_armed;
        while busy(self) && Instant::now() < deadline {
            let timeout = Timespec::from(Duration::from_millis(100));
            let args = SubmitArgs::new().timespec(&timeout);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args)
                && !matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY))
            {
                tracing::warn!("reaping the operations in flight: {e}");
                break;
            }
            let done: Vec<(u64, i32, u32)> =
                self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect();
            for (user_data, result, flags) in done {
                let _ = self.complete(user_data, result, flags);
            }
            self.bufs.publish();
            for index in std::mem::take(&mut self.dirty) {
                if let Some(conn) = self.conns.get(index) {
                    conn.dirty = false;
                }
                let _ = self.close(index);
            }
        }
        self.conns.len
    }
}

/// `struct io_uring_buf_status`, what `IORING_REGISTER_PBUF_STATUS` fills in.
#[repr(C)]
struct BufStatus {
    buf_group: u32,
    head: u32,
    resv: [u32; 8],
}

/// `IORING_REGISTER_PBUF_STATUS`.
const PBUF_STATUS: libc::c_uint = 26;
/// The shortest wait: a zero timeout with a batch wait is refused.
const MIN_WAIT: Duration = Duration::from_millis(1);

impl Drop for Uring {
    /// The kernel may read or write an operation's memory until its completion, and
    /// closing a ring does not wait for that (its requests are cancelled in the
    /// background after `close` returns). So whatever ends the loop, every operation is
    /// cancelled and its completion awaited here, then the buf ring is unregistered, and
    /// only then are the connections and buffers freed; what the kernel has not given
    /// back after [`DRAIN_PATIENCE`] is leaked, never freed.
    fn drop(&mut self) {
        let left = self.drain();
        let unregistered = self.ring.submitter().unregister_buf_ring(BGID).is_ok();
        if left == 0 && !self.accept_armed && unregistered {
            // SAFETY: no operation is in flight and the buf ring is unregistered: the kernel
            // holds no pointer into it any more, and it is dropped only here, once.
            unsafe { ManuallyDrop::drop(&mut self.bufs) };
            return;
        }
        tracing::warn!(
            connections = left,
            "the kernel did not complete every operation in {DRAIN_PATIENCE:?}: their \
             memory and the buffers are leaked, not freed"
        );
        for index in self.conns.indices() {
            if let Some(conn) = self.conns.remove(index) {
                std::mem::forget(conn);
            }
        }
        // `bufs` is left in its ManuallyDrop: leaked.
    }
}
