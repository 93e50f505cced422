//! One ring's loop: a thread, its io_uring, its listener, its buffers and its connections.
//!
//! Who owns what, which is the whole difficulty of completion I/O:
//!
//! * an operation in flight is the kernel's until its last completion (for a multishot
//!   operation, the first completion without `IORING_CQE_F_MORE`);
//! * the bytes a send points into (the connection's outgoing bytes) are the kernel's until
//!   that send completes: they are never touched, moved or freed before;
//! * a receive points into nothing of the connection: it takes a buffer of the ring's
//!   `BufRing` when bytes arrive, and the buffer is ours from its completion until we give
//!   it back, which is at once, after copying the bytes into the session's inbox;
//! * a connection (its socket, its outgoing bytes) is freed only when nothing of it is in
//!   flight, cancels included: closing it first cancels the rest.
//!
//! The connection itself, its session, what is in flight and the rules every loop applies
//! to it, is [`common::completion::Connection`], which `v4-syscalls --api io-uring` holds
//! too. What is v7's: the operations ([`ops`]: multishot accept and receive, provided
//! buffers), a receive armed beside a send ([`conn`]), and here the batched wait and the
//! teardown.

mod conn;
mod ops;
mod register;
mod socket;

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Dispatcher;
use common::completion::EagerSends;
use common::event_loop::Shared;
use common::evented::{Overdue, SWEEP_EVERY, Slots, Timeouts};
use common::limit::LimitLatch;
use common::overload::Shedding;
use common::shutdown::DEADLINE;
use common::stats::{Counter, Level};
use common::trace::{self, Cat};
use io_uring::IoUring;
use io_uring::types::{SubmitArgs, Timespec};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::buffers::{BufRing, Consumption, Registration};
use conn::Conn;
use ops::{Op, RING, tag};
use socket::Sock;

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
    /// Bytes in each buffer (larger when consumed incrementally).
    pub buffer_size: Level,
    /// 1 when `buffers_in_use` is the kernel's figure (its head, Linux 6.8), 0 when it is
    /// our own count of the buffers completions gave us.
    pub buffers_seen_by_kernel: Level,
    /// Multishot receives that ended because the buf ring was empty (then re-armed).
    pub enobufs: Counter,
    /// Receive completions that covered more than one buffer (bundles).
    pub bundles: Counter,
    /// Multishot receives re-armed after the kernel ended them with no error.
    pub recv_rearms: Counter,
    /// Accepted past the cap, waiting (unread) for a permit.
    pub parked: Level,
    /// Sweeps done (each samples `buffers_in_use`).
    pub sweeps: Counter,
    /// Submits without a wait, so answers went out before the turn's later handlers ran
    /// (see [`EagerSends`]); counted in `enters` too.
    pub early_submits: Counter,
    /// Features asked for that this kernel refused (then skipped), each with its error.
    refused: std::sync::Mutex<Vec<String>>,
}

impl RingCounters {
    /// What the kernel refused, for `/stats`.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Notes a feature the kernel refused, in `/stats` and the log.
    fn refuse(&self, feature: &str, e: &io::Error) {
        tracing::warn!("{feature} refused by this kernel ({e}): skipped");
        if let Ok(mut refused) = self.refused.lock() {
            refused.push(format!("{feature}: {e}"));
        }
    }
}

/// What every ring of one server is set with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub buffers: u16,
    pub buffer_size: usize,
    /// How long a wait that has some completions may wait for more (0: return at the first).
    pub batch_wait: Duration,
    pub max_connections: usize,
    /// How long queued answers may wait for later handlers (see [`EagerSends`]); `None`:
    /// until the turn's wait.
    pub send_budget: Option<Duration>,
    /// Whether an early submit also takes in what completed (see [`Uring::submit_early`]).
    pub reap_early: bool,
    pub features: crate::Features,
}

struct Uring {
    ring: IoUring,
    /// Unregistered in `Drop for Uring` once the kernel is done with it, or else leaked.
    bufs: Registration,
    /// The kernel's head of the buf ring can be read (`IORING_REGISTER_PBUF_STATUS`, 6.8).
    pbuf_status: bool,
    min_wait: bool,
    settings: Settings,
    conns: Slots<Conn>,
    /// Connections with completions this turn, for [`Uring::advance`].
    dirty: Vec<usize>,
    listener: Option<TcpListener>,
    accept_armed: bool,
    accept_cancelling: bool,
    accept_paused_until: Option<Instant>,
    /// Accepted while at the cap: held, unread, until a permit is free.
    parked: Vec<Sock>,
    /// Accepts put sockets in the ring's file table (`--direct-descriptors`).
    direct: bool,
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
    /// What the ring refuses past its capacity (see `common::overload`).
    shedding: Shedding,
    /// When the last wait returned: when this turn's requests started waiting for the
    /// ring's thread, as far as it can tell. A lower bound: the time a completion waited
    /// in the queue while the thread ran handlers is invisible to it.
    woke: Instant,
    /// When this turn's queued sends go to the kernel before its wait.
    eager: EagerSends,
    /// The completions being taken in, kept to reuse its allocation.
    reaped: Vec<(u64, i32, u32)>,
    /// The ring's descriptor's index among this thread's registered rings, if registered.
    ring_index: Option<u32>,
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

/// How long SQPOLL's kernel thread polls an empty queue before it sleeps.
const SQPOLL_IDLE_MS: u32 = 1000;

/// A ring with the setup `features` ask for: v7's ([`new_ring`]), SQPOLL's, or a plain one
/// (the naive rung). A setup the kernel refuses is noted in `counters` and a plain ring
/// built instead.
fn build_ring(features: &crate::Features, counters: &RingCounters) -> io::Result<IoUring> {
    let asked = if features.sqpoll {
        IoUring::builder().setup_cqsize(CQ_ENTRIES).setup_sqpoll(SQPOLL_IDLE_MS).build(SQ_ENTRIES)
    } else if features.defer_taskrun {
        new_ring()
    } else {
        return plain_ring();
    };
    asked.or_else(|e| {
        counters.refuse(if features.sqpoll { "SQPOLL" } else { "DEFER_TASKRUN" }, &e);
        plain_ring()
    })
}

fn plain_ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .map_err(|e| refused("io_uring_setup", &e))
}

/// The ring's buf ring, registered as [`BGID`], consumed as `settings.features` ask: in
/// bundles if the kernel has them (`IORING_FEAT_RECVSEND_BUNDLE`), incrementally in
/// buffers of [`crate::INC_BUFFER_SIZE`] (the same memory: `--buffers` / 16) if it takes
/// the registration. What it refuses is noted in `counters` and left out.
fn buffer_ring(
    ring: &IoUring,
    settings: &Settings,
    counters: &RingCounters,
) -> io::Result<Registration> {
    let mut bundle = settings.features.recv_bundle;
    if bundle && !ring.params().is_feature_recvsend_bundle() {
        counters.refuse("receive bundles", &io::Error::from(io::ErrorKind::Unsupported));
        bundle = false;
    }
    if settings.features.buffer_inc {
        let count = (settings.buffers / 16).max(1);
        let inc = Consumption { bundle, incremental: true };
        let bufs = BufRing::new(count, crate::INC_BUFFER_SIZE, inc)?;
        match Registration::register(bufs, ring, BGID) {
            Ok(registered) => return Ok(registered),
            Err(e) => counters.refuse("incremental buffer consumption", &e),
        }
    }
    let bufs = BufRing::new(
        settings.buffers,
        settings.buffer_size,
        Consumption { bundle, incremental: false },
    )?;
    Registration::register(bufs, ring, BGID)
        .map_err(|e| refused("registering a provided-buffer ring (Linux 5.19)", &e))
}

/// Room in the file table for the connections and the parked beyond them (a multishot
/// accept may bring several more before its cancel takes effect).
const TABLE_SLACK: usize = 256;

/// Registers a sparse file table on `ring` for direct descriptors (Linux 5.19), with room
/// for `max_connections` and [`TABLE_SLACK`] (at most the descriptor limit, which the
/// kernel holds a table to); a full table fails an accept with ENFILE, which pauses
/// accepting as running out of descriptors does. And sets TCP_NODELAY on `listener`:
/// accepted sockets inherit it, and a direct descriptor has no descriptor to set it on.
fn direct_table(ring: &IoUring, listener: &TcpListener, max_connections: usize) -> io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit};
    let (limit, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let size = (max_connections.saturating_add(TABLE_SLACK) as u64).min(limit);
    ring.submitter().register_files_sparse(u32::try_from(size).unwrap_or(u32::MAX))?;
    nix::sys::socket::setsockopt(listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
        .map_err(io::Error::from)
}

/// Serves `listener` on this thread until a shutdown has closed every connection or its
/// deadline has passed.
pub fn run(
    listener: TcpListener,
    shared: Shared,
    settings: Settings,
    counters: Arc<RingCounters>,
) -> io::Result<()> {
    let Shared { dispatcher, latch, timeouts, shutdown, shedding } = shared;
    let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
    let ring = build_ring(&settings.features, &counters)?;
    let ring_index = if settings.features.register_ring_fd {
        register::ring_fd(&ring, settings.features.sqpoll)
            .map_err(|e| counters.refuse("a registered ring descriptor", &e))
            .ok()
    } else {
        None
    };
    let direct = settings.features.direct_descriptors
        && direct_table(&ring, &listener, settings.max_connections)
            .map_err(|e| counters.refuse("direct descriptors", &e))
            .is_ok();
    let bufs = buffer_ring(&ring, &settings, &counters)?;
    counters.buffers.set(u64::from(bufs.count()));
    counters.buffer_size.set(bufs.size() as u64);
    let min_wait = ring.params().is_feature_min_timeout();
    let signal = Arc::clone(&wake);
    let mut this = Uring {
        ring,
        bufs,
        pbuf_status: true,
        min_wait,
        settings,
        conns: Slots::default(),
        dirty: Vec::new(),
        listener: Some(listener),
        accept_armed: false,
        accept_cancelling: false,
        accept_paused_until: None,
        parked: Vec::new(),
        direct,
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
        shedding,
        woke: Instant::now(),
        eager: EagerSends::new(settings.send_budget),
        reaped: Vec::with_capacity(CQ_ENTRIES as usize),
        ring_index,
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
        while self.keep_going() {
            self.arm_accept()?;
            self.enter()?;
            self.woke = Instant::now();
            self.eager.submitted(self.woke);
            self.last_batch = self.reap()?;
            self.advance_dirty()?;
            self.housekeeping()?;
        }
        if !self.conns.is_empty() {
            tracing::warn!(open = self.conns.len(), "closing connections at the shutdown deadline");
        }
        Ok(())
    }

    /// Takes in every completion the kernel has posted, and returns how many: each given
    /// to its connection (which is marked for [`Uring::advance`]), then the buffers they
    /// consumed given back to the kernel in one store.
    fn reap(&mut self) -> io::Result<usize> {
        let mut done = std::mem::take(&mut self.reaped);
        done.clear();
        done.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        self.counters.completions.add(done.len() as u64);
        let reaping = trace::span(Cat::Reap, "reap").with("count", done.len());
        let taken = done
            .iter()
            .try_for_each(|&(user_data, result, flags)| self.complete(user_data, result, flags));
        drop(reaping);
        self.bufs.publish();
        let count = done.len();
        self.reaped = done;
        taken.map(|()| count)
    }

    fn keep_going(&self) -> bool {
        match self.closing_by {
            Some(deadline) => !self.conns.is_empty() && Instant::now() < deadline,
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
        let wait = until_sweep.max(self.settings.batch_wait).max(MIN_WAIT);
        let mut want = 1;
        // Connections an early submit took completions in for are still to be advanced
        // (their requests may be waiting): this enter submits and returns at once.
        let wait = if self.dirty.is_empty() { wait } else { Duration::ZERO };
        let timeout = Timespec::from(wait);
        let mut args = SubmitArgs::new().timespec(&timeout);
        // Only when the last wait brought several completions: a lone client's request
        // would wait the whole batch wait for company that never comes. Measured, this
        // is not enough for a few clients (four: a p50 20-40 µs above v5's, see the
        // chapter); the threshold wants to be larger.
        if self.min_wait
            && !self.settings.batch_wait.is_zero()
            && self.last_batch > 1
            && !wait.is_zero()
        {
            args = args.min_wait_usec(self.settings.batch_wait.as_micros() as u32);
            want = WANT;
        }
        let queued = self.ring.submission().len();
        self.counters.enters.bump();
        let _waiting = trace::span(Cat::Wait, "io_uring_enter").with("submitted", queued);
        let result = match self.ring_index {
            Some(index) => {
                let min_wait = if want > 1 { self.settings.batch_wait } else { Duration::ZERO };
                register::enter(index, queued, want, Some(wait), min_wait, true)
            }
            None => self.ring.submitter().submit_with_args(want, &args),
        };
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

    // ANCHOR: submit_early
    /// Hands what is queued (the answers so far) to the kernel without waiting, and takes
    /// in what completed meanwhile: one `io_uring_enter` with `GETEVENTS` and no
    /// completion asked for, so the kernel runs the completions' deferred work and returns
    /// (a send that fits the socket's buffer completes in it).
    ///
    /// Taking in is what a readiness loop gets for free by reading a connection just
    /// before running its handlers. Without it, the requests a turn reaped wait through
    /// every slow handler before them with nothing new heard from their clients: a client
    /// that gave up meanwhile (a reset, its bytes still in the session) still has its
    /// handler run, and every answer behind it is that much later. With it, the
    /// connection is closed before its turn comes; and a newcomer's connection or
    /// request is taken in at once, to be served after this turn's.
    fn submit_early(&mut self) -> io::Result<()> {
        let queued = self.ring.submission().len();
        self.counters.enters.bump();
        self.counters.early_submits.bump();
        let result = match self.ring_index {
            Some(index) => {
                let take_in = self.settings.reap_early;
                register::enter(index, queued, 0, None, Duration::ZERO, take_in)
            }
            // SQPOLL's kernel thread submits: the crate's call wakes it when it sleeps.
            None if self.settings.features.sqpoll || !self.settings.reap_early => {
                self.ring.submit()
            }
            // SAFETY: no argument is passed (the null pointer the crate gives for `None`),
            // and the entries submitted were queued under `push`'s contract.
            None => unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    queued as u32,
                    0,
                    io_uring::EnterFlags::GETEVENTS.bits(),
                    None,
                )
            },
        };
        match result {
            Ok(_) => self.eager.submitted(Instant::now()),
            // Left queued: the wait that ends the turn submits them.
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
        self.counters.submissions.add((queued - self.ring.submission().len()) as u64);
        if self.settings.reap_early {
            self.reap()?;
        }
        Ok(())
    }
    // ANCHOR_END: submit_early

    /// Every turn: notice a shutdown, serve connections parked at the cap once permits are
    /// free; every [`SWEEP_EVERY`]: close the overdue, and read the buf ring's figures.
    fn housekeeping(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.shutdown.is_triggered() && self.closing_by.is_none() {
            self.closing_by = Some(now + DEADLINE);
            for sock in std::mem::take(&mut self.parked) {
                self.discard(sock)?;
            }
            self.cancel_accept()?;
            tracing::info!(open = self.conns.len(), "finishing the connections in flight");
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
            for key in self.conns.tokens().collect::<Vec<_>>() {
                if self.conns.get(key).is_some_and(|c| c.conn.is_at_rest()) {
                    self.close(key)?;
                }
            }
        }
        while !self.parked.is_empty() {
            let Some(permit) = self.latch.try_acquire() else { break };
            let sock = self.parked.remove(0);
            self.open(sock, permit)?;
        }
        self.counters.parked.set(self.parked.len() as u64);
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = now;
            self.sweep(now)?;
        }
        self.counters.connections.set(self.conns.len() as u64);
        Ok(())
    }

    fn sweep(&mut self, now: Instant) -> io::Result<()> {
        for key in self.conns.tokens().collect::<Vec<_>>() {
            let Some(Conn { conn, .. }) = self.conns.get(key) else { continue };
            if conn.is_overdue(now, self.timeouts) != Overdue::No && !conn.is_closing() {
                tracing::debug!(key, "closing an overdue connection");
                self.close(key)?;
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
            let _ = self.cancel(tag(RING, Op::Wake), RING);
        }
        for key in self.conns.tokens().collect::<Vec<_>>() {
            let _ = self.close(key);
        }
        let deadline = Instant::now() + DRAIN_PATIENCE;
        let busy = |this: &Self| !this.conns.is_empty() || this.accept_armed || this.wake_armed;
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
            for key in self.take_dirty() {
                let _ = self.close(key);
            }
        }
        self.conns.len()
    }
}

/// `struct io_uring_buf_status`, what `IORING_REGISTER_PBUF_STATUS` fills in, as
/// `include/uapi/linux/io_uring.h` (Linux 6.8) declares it: copied because the io-uring
/// crate has no call for it yet.
#[repr(C)]
struct BufStatus {
    buf_group: u32,
    head: u32,
    resv: [u32; 8],
}

/// `IORING_REGISTER_PBUF_STATUS`, in the same header's `enum io_uring_register_op`.
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
        // SAFETY: `left == 0` and no accept armed: no operation of this ring is in flight,
        // so none can still write into a buffer of the group.
        if left == 0 && !self.accept_armed && unsafe { self.bufs.unregister(&self.ring) }.is_ok() {
            // The buf ring is freed with `bufs`, the connections with `conns`.
            return;
        }
        tracing::warn!(
            connections = left,
            "the kernel did not complete every operation in {DRAIN_PATIENCE:?}: their \
             memory and the buffers are leaked, not freed"
        );
        for key in self.conns.tokens().collect::<Vec<_>>() {
            if let Some(conn) = self.conns.remove(key) {
                std::mem::forget(conn);
            }
        }
        // `bufs`, still registered, leaks itself as it drops.
    }
}
