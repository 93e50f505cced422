//! The ring's operations: how each is named in `user_data`, submitted, and taken in when it
//! completes. Multishot accept and receive, and receives into the provided buffers, are
//! what v7 adds to `v4-syscalls --api io-uring`'s single-shot operations.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use common::completion::Connection;
use common::evented::KEY_BITS;
use common::limit::Permit;
use common::server::{ACCEPT_BACKOFF, is_exhaustion};
use io_uring::types::{DestinationSlot, Fd, Fixed};
use io_uring::{cqueue, opcode, squeue};

use super::conn::Conn;
use super::socket::{Sock, Target, on_target};
use super::{BGID, Uring};

/// What an operation is, in the low byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Op {
    Accept = 1,
    Wake = 2,
    Recv = 3,
    Send = 4,
    Cancel = 5,
    /// A zero-copy send: its bytes are the kernel's until its notification.
    SendZc = 6,
    /// A direct descriptor's write side shut, for the lingering close.
    Shutdown = 7,
    /// A direct descriptor's index closed (the ring's own: nothing waits for it).
    Close = 8,
}

/// The key of the ring's own operations (accept, wake-up, their cancels): no connection's
/// key is 0.
pub(super) const RING: usize = 0;

// ANCHOR: user_data
/// `user_data` names an operation: `key << 8 | kind`, the key a connection's in the slot
/// table (its slot and that slot's generation), so a completion that outlives its
/// connection is recognised rather than given to the slot's next occupant.
pub(super) fn tag(key: usize, op: Op) -> u64 {
    const _: () = assert!(KEY_BITS + 8 <= u64::BITS, "a key and a kind fit in user_data");
    ((key as u64) << 8) | op as u64
}

pub(super) fn untag(user_data: u64) -> (usize, Option<Op>) {
    let op = match user_data & 0xff {
        1 => Some(Op::Accept),
        2 => Some(Op::Wake),
        3 => Some(Op::Recv),
        4 => Some(Op::Send),
        5 => Some(Op::Cancel),
        6 => Some(Op::SendZc),
        7 => Some(Op::Shutdown),
        8 => Some(Op::Close),
        _ => None,
    };
    ((user_data >> 8) as usize, op)
}
// ANCHOR_END: user_data

/// A send of `rest` on `target`, as `key`'s. Submitting it is the caller's `unsafe`: `rest`
/// must stay put and untouched until the send completes.
/// `zero_copy_over`: from this many bytes on, a zero-copy send, whose bytes the kernel
/// reads until its notification completion rather than until its first.
pub(super) fn send_entry(
    key: usize,
    target: Target,
    rest: &[u8],
    zero_copy_over: Option<usize>,
) -> squeue::Entry {
    let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
    if zero_copy_over.is_some_and(|over| rest.len() >= over) {
        return on_target!(target, |fd| opcode::SendZc::new(fd, rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build())
        .user_data(tag(key, Op::SendZc));
    }
    on_target!(target, |fd| opcode::Send::new(fd, rest.as_ptr(), len)
        .flags(libc::MSG_NOSIGNAL)
        .build())
    .user_data(tag(key, Op::Send))
}

impl Uring {
    /// Queues an entry, submitting what is queued first if the queue is full.
    ///
    /// # Safety
    ///
    /// Whatever memory the entry points into must stay valid, unmoved and untouched until
    /// its last completion is reaped.
    pub(super) unsafe fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: the caller's promise.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            let queued = self.ring.submission().len();
            self.counters.enters.bump();
            self.ring.submit()?;
            self.counters.submissions.add((queued - self.ring.submission().len()) as u64);
            self.eager.submitted(Instant::now());
        }
        Ok(())
    }

    /// Queues the cancel of the operation `target` names, as `key`'s.
    pub(super) fn cancel(&mut self, target: u64, key: usize) -> io::Result<()> {
        let cancel = opcode::AsyncCancel::new(target).build().user_data(tag(key, Op::Cancel));
        // SAFETY: a cancel points into no memory.
        unsafe { self.push(cancel) }
    }

    pub(super) fn arm_wake(&mut self) -> io::Result<()> {
        let poll = opcode::PollAdd::new(Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(tag(RING, Op::Wake));
        // SAFETY: a poll points into no memory; the eventfd lives as long as the ring.
        unsafe { self.push(poll)? };
        self.wake_armed = true;
        Ok(())
    }

    // ANCHOR: accept
    /// Keeps one multishot accept armed on the listener while the ring may take
    /// connections: one submission, then a completion per connection, for as long as the
    /// kernel keeps it (`IORING_CQE_F_MORE`).
    pub(super) fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        let paused = self.accept_paused_until.is_some_and(|until| Instant::now() < until);
        let full = self.latch.count() >= self.settings.max_connections;
        if self.accept_armed || paused || full || !self.parked.is_empty() {
            return Ok(());
        }
        self.accept_paused_until = None;
        let fd = Fd(listener.as_raw_fd());
        // Direct descriptors: the kernel puts each socket in a free slot of the ring's
        // table and completes with its index, not a descriptor; no descriptor, so no
        // close-on-exec either (the kernel refuses the flag with a slot).
        let flags = if self.direct { 0 } else { libc::SOCK_CLOEXEC };
        let accept = if self.settings.features.multishot_accept {
            opcode::AcceptMulti::new(fd).allocate_file_index(self.direct).flags(flags).build()
        } else {
            // One connection, then no F_MORE: re-armed at the next turn.
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .file_index(self.direct.then(DestinationSlot::auto_target))
                .flags(flags)
                .build()
        }
        .user_data(tag(RING, Op::Accept));
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
            let sock = if self.direct {
                Sock::Direct(result as u32)
            } else {
                // SAFETY: the kernel just made this descriptor for us; nothing else owns it.
                Sock::Stream(TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) }))
            };
            return match self.latch.try_acquire() {
                _ if self.closing_by.is_some() => self.discard(sock), // stopping: closed at once
                Some(permit) => self.open(sock, permit),
                // At the cap: hold it unread and stop accepting, so the next ones wait in
                // the kernel's backlog as in every capped version.
                None => {
                    self.parked.push(sock);
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
        } else if -result != libc::ECANCELED && !cqueue::more(flags) {
            // Ended by an error that re-arming at once could meet again at once (the
            // listener itself in trouble): the same pause, so that it cannot become a
            // busy loop of accepts that fail.
            tracing::warn!("accept ended: {error}; trying again in {ACCEPT_BACKOFF:?}");
            self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
        } else if -result != libc::ECANCELED {
            tracing::debug!("accept: {error}");
        }
        Ok(())
    }

    pub(super) fn cancel_accept(&mut self) -> io::Result<()> {
        if !self.accept_armed || self.accept_cancelling {
            return Ok(());
        }
        self.cancel(tag(RING, Op::Accept), RING)?;
        self.accept_cancelling = true;
        Ok(())
    }

    pub(super) fn open(&mut self, sock: Sock, permit: Permit) -> io::Result<()> {
        // A direct descriptor has it from its listener (see `socket`).
        if let Sock::Stream(stream) = &sock {
            let _ = stream.set_nodelay(true);
        }
        let open = self.dispatcher.stats().connection_opened();
        let key = self.conns.insert(|_| Conn::new(Connection::new(sock, open, permit)));
        self.counters.accepted.bump();
        self.arm_recv(key)
    }

    // ANCHOR: recv
    /// Arms the connection's multishot receive: it names a buffer group, not a buffer,
    /// so while the client is silent it holds nothing, and each arrival takes a buffer
    /// of the kernel's choosing.
    pub(super) fn arm_recv(&mut self, key: usize) -> io::Result<()> {
        let Some(Conn { conn, .. }) = self.conns.get_mut(key) else { return Ok(()) };
        let target = conn.socket().target();
        let bundle = self.bufs.consumption().bundle;
        let recv = if self.settings.features.multishot_recv && bundle {
            on_target!(target, |fd| opcode::RecvMultiBundle::new(fd, BGID).build())
        } else if self.settings.features.multishot_recv {
            on_target!(target, |fd| opcode::RecvMulti::new(fd, BGID).build())
        } else if bundle {
            on_target!(target, |fd| opcode::RecvBundle::new(fd, BGID).build())
        } else {
            // The naive shape: one receive per request, ended by its completion (no F_MORE)
            // and re-armed by `advance`; its buffer still comes from the group.
            let len = u32::try_from(self.settings.buffer_size).unwrap_or(u32::MAX);
            on_target!(target, |fd| opcode::Recv::new(fd, std::ptr::null_mut(), len)
                .buf_group(BGID)
                .build())
            .flags(squeue::Flags::BUFFER_SELECT)
        }
        .user_data(tag(key, Op::Recv));
        conn.receive_armed();
        // SAFETY: the receive writes only into buffers of the buf ring, which outlives
        // every operation of this ring (`Drop for Uring`), and the socket stays open until
        // the connection is freed, which waits for this operation's last completion.
        unsafe { self.push(recv) }
    }
    // ANCHOR_END: recv

    fn received(&mut self, key: usize, result: i32, flags: u32) {
        let now = Instant::now();
        // ANCHOR: recycle
        // SAFETY: every receive of this ring selects from its buffer group, and each
        // completion reaches this function once.
        if let Some(taken) = unsafe { self.bufs.take(result, flags) } {
            // The kernel chose a buffer and filled `result` bytes of it: copied into the
            // session's inbox, it goes back to the buf ring as `taken` drops (published at
            // the end of the turn), so buffers are held only while bytes are in flight.
            if let Some(Conn { conn, .. }) = self.conns.get_mut(key) {
                // One piece, or (a bundle) one per buffer it filled.
                for bytes in taken.pieces() {
                    conn.received(bytes, now);
                }
            }
            if taken.pieces().nth(1).is_some() {
                self.counters.bundles.bump();
            }
        }
        // ANCHOR_END: recycle
        let Some(Conn { conn, .. }) = self.conns.get_mut(key) else { return };
        if !cqueue::more(flags) {
            // The multishot receive has ended; `advance` re-arms it unless closing.
            conn.receive_ended();
            if result > 0 && !conn.is_closing() {
                self.counters.recv_rearms.bump();
            }
        }
        match result {
            n if n > 0 => {}
            0 => conn.end_of_input(),
            // The buf ring was empty: the receive ended, and is re-armed after this
            // turn's buffers have gone back.
            e if -e == libc::ENOBUFS => self.counters.enobufs.bump(),
            e if -e == libc::ECANCELED => {}
            e => {
                tracing::debug!(key, "receive: {}", io::Error::from_raw_os_error(-e));
                conn.start_closing();
            }
        }
        self.mark(key);
    }

    /// A zero-copy send completes twice: first its result (with `F_MORE` if a notification
    /// follows), then the notification (`F_NOTIF`) that the kernel no longer reads its
    /// pages. Only then is the send over for the connection: its bytes stay untouched
    /// (`Sending::InFlight`) and it is not freed (`Conn::busy`) until that second one.
    fn sent_zero_copy(&mut self, key: usize, result: i32, flags: u32) {
        let Some(Conn { conn, zero_copy_result, .. }) = self.conns.get_mut(key) else { return };
        let outcome = if cqueue::notif(flags) {
            zero_copy_result.take().unwrap_or(Err(-libc::EIO))
        } else {
            let outcome = usize::try_from(result).map_err(|_| result);
            if cqueue::more(flags) {
                *zero_copy_result = Some(outcome);
                return;
            }
            outcome
        };
        conn.sent(outcome, Instant::now());
        self.mark(key);
    }

    pub(super) fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> io::Result<()> {
        let (key, op) = untag(user_data);
        match op {
            Some(Op::Accept) => self.accepted(result, flags)?,
            Some(Op::Wake) => self.wake_armed = false,
            Some(Op::Recv) => self.received(key, result, flags),
            Some(Op::Send) => {
                if let Some(Conn { conn, .. }) = self.conns.get_mut(key) {
                    conn.sent(usize::try_from(result).map_err(|_| result), Instant::now());
                    self.mark(key);
                }
            }
            Some(Op::SendZc) => self.sent_zero_copy(key, result, flags),
            // A connection's cancel names its socket, so the socket stays open (the
            // connection counts the cancel among its operations) until the cancel is done:
            // closed earlier, its number could go to a newcomer whose operations the
            // cancel would then end. What it cancelled completes separately. A direct
            // descriptor's shutdown is counted the same way.
            Some(Op::Cancel | Op::Shutdown) if key != RING => {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.cancels -= 1;
                    self.mark(key);
                }
            }
            Some(Op::Close) if result < 0 => {
                tracing::debug!(
                    "close of a direct descriptor: {}",
                    io::Error::from_raw_os_error(-result)
                );
            }
            Some(Op::Cancel | Op::Shutdown | Op::Close) | None => {}
        }
        Ok(())
    }

    /// Closes a socket no connection holds: a descriptor by dropping it, a direct one with
    /// a close of its index (free for the next accept once that completes).
    pub(super) fn discard(&mut self, sock: Sock) -> io::Result<()> {
        match sock {
            Sock::Stream(stream) => {
                drop(stream);
                Ok(())
            }
            Sock::Direct(index) => {
                let close =
                    opcode::Close::new(Fixed(index)).build().user_data(tag(RING, Op::Close));
                // SAFETY: a close points into no memory.
                unsafe { self.push(close) }
            }
        }
    }

    /// Shuts a direct descriptor's write side (the lingering close's FIN), as `key`'s: the
    /// connection counts it among its operations until it completes.
    pub(super) fn shut_write(&mut self, key: usize, index: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        conn.cancels += 1;
        let shutdown = opcode::Shutdown::new(Fixed(index), libc::SHUT_WR)
            .build()
            .user_data(tag(key, Op::Shutdown));
        // SAFETY: a shutdown points into no memory; the index stays in the table until the
        // connection is freed, after this completes.
        unsafe { self.push(shutdown) }
    }
}
