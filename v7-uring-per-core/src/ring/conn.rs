//! A connection as v7's ring holds it: the shared [`Connection`] (session, outgoing bytes,
//! what is in flight, the staged close), plus what a multishot receive and cancels by
//! descriptor add, and its step after each turn's completions.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use common::completion::{Connection, Receiving, Sending, Step};
use common::evented::READ_BATCH;
use common::overload::Admission;
use io_uring::opcode;
use io_uring::types::CancelBuilder;

use super::Uring;
use super::ops::{Op, send_entry, tag};
use super::socket::{Sock, on_target};

/// One client connection, as the ring holds it.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) conn: Connection<Sock>,
    /// Cancels in flight that name this connection's socket or its receive (and a direct
    /// descriptor's shutdown): it may be freed only when these, as well as its send and
    /// receive, are done.
    pub(super) cancels: u8,
    /// Queued for [`Uring::advance`]: from its first completion since it was last advanced
    /// until it is advanced again.
    dirty: bool,
    /// A zero-copy send's result, held until its notification says the kernel is done
    /// with the bytes.
    pub(super) zero_copy_result: Option<Result<usize, i32>>,
}

impl Conn {
    pub(super) fn new(conn: Connection<Sock>) -> Self {
        Self { conn, cancels: 0, dirty: false, zero_copy_result: None }
    }

    /// Whether the kernel holds any operation of it: then it may not be freed.
    pub(super) fn busy(&self) -> bool {
        self.conn.in_flight() || self.cancels > 0
    }
}

impl Uring {
    /// Queues a connection for [`Uring::advance`], once however many of its completions
    /// came in before it is advanced: at the end of this turn, or later in this turn's own
    /// round if it is queued there and not yet advanced.
    pub(super) fn mark(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// The connections marked this turn, unmarked again (the drain's way: it only closes).
    pub(super) fn take_dirty(&mut self) -> Vec<usize> {
        let dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            self.unmark(key);
        }
        dirty
    }

    // ANCHOR: advance_dirty
    /// Advances the connections queued by the last turn's completions, in the order they
    /// were queued. Each is unmarked only as its own turn comes, not as the round begins:
    /// what comes in for it meanwhile (an early reap's request) is taken in by that one
    /// advance. Unmarked earlier, it would be queued again for the next round, at the
    /// place its request came in, and be served twice within one round of the others,
    /// its next request ahead of older ones.
    pub(super) fn advance_dirty(&mut self) -> io::Result<()> {
        let mut queued = std::mem::take(&mut self.dirty).into_iter();
        while let Some(key) = queued.next() {
            self.unmark(key);
            if let Err(e) = self.advance(key) {
                // Left marked, they could not be queued again (the drain needs them to be).
                queued.for_each(|key| self.unmark(key));
                return Err(e);
            }
        }
        Ok(())
    }
    // ANCHOR_END: advance_dirty

    fn unmark(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.dirty = false;
        }
    }

    /// A connection's next step, once per turn whatever completed for it: the shared
    /// [`Connection::next`] decides what to send or whether to close; what is v7's own is
    /// that the receive stays armed meanwhile, paused only while a client that sends
    /// faster than it reads has a send waiting.
    pub(super) fn advance(&mut self, key: usize) -> io::Result<()> {
        let dispatcher = Arc::clone(&self.dispatcher);
        let Some(Conn { conn, .. }) = self.conns.get_mut(key) else { return Ok(()) };
        // Its handlers may run: the answers queued so far go first if they have waited
        // long enough, or if handlers have been slow lately (see `EagerSends`).
        if conn.session().unanswered_input() > 0 && self.eager.submit_now(Instant::now()) {
            self.submit_early()?;
        }
        let Some(Conn { conn, .. }) = self.conns.get_mut(key) else { return Ok(()) };
        let answered = conn.session().answered();
        let target = conn.socket().target();
        let mut admission = Admission::new(self.shedding, Some(self.woke));
        let started = Instant::now();
        let send = match conn.next_admitting(&dispatcher, &mut admission) {
            Step::Close => return self.close(key),
            Step::Send(rest) => {
                Some(send_entry(key, target, rest, self.settings.features.zero_copy_over))
            }
            Step::Wait | Step::Receive => None,
        };
        let ran = conn.session().answered() - answered;
        let shut_write = conn.take_write_shutdown();
        self.counters.requests.add(ran);
        if let (true, Sock::Direct(index)) = (shut_write, conn.socket()) {
            let index = *index;
            self.shut_write(key, index)?;
        }
        if let Some(send) = send {
            self.counters.sends.bump();
            // SAFETY: the send points into the connection's outgoing bytes, on the heap,
            // so they stay put when the connection moves within `conns`; they are not
            // touched while it is in flight (`Sending::InFlight`), and the connection is
            // not freed before its completion (`Conn::busy`).
            unsafe { self.push(send)? };
            self.eager.queued();
        }
        if ran > 0 {
            let now = Instant::now();
            self.eager.handlers_ran(started, now);
            // A slow handler's answer does not wait for the rest of the turn either.
            if self.eager.submit_now(now) {
                self.submit_early()?;
            }
        }
        let Some(Conn { conn, cancels, .. }) = self.conns.get_mut(key) else { return Ok(()) };
        // A client that sends faster than it reads its answers: stop receiving until the
        // send in flight is done, so its inbox cannot grow without bound.
        let flooding =
            conn.sending() == Sending::InFlight && conn.session().unanswered_input() > READ_BATCH;
        match conn.receiving() {
            Receiving::Armed if flooding => {
                conn.cancel_receive();
                *cancels += 1;
                self.cancel(tag(key, Op::Recv), key)
            }
            // Not armed: new, ended by the kernel (ENOBUFS, or no F_MORE), or paused.
            Receiving::Idle if !conn.session().input_ended() && !flooding => self.arm_recv(key),
            Receiving::Idle | Receiving::Armed | Receiving::Cancelling => Ok(()),
        }
    }

    // ANCHOR: close
    /// Closes a connection: at once if nothing of it is in flight; otherwise cancels every
    /// operation on its socket and frees it only when the last one's completion is in
    /// (each completion comes back here through `advance`).
    pub(super) fn close(&mut self, key: usize) -> io::Result<()> {
        let Some(entry) = self.conns.get_mut(key) else { return Ok(()) };
        entry.conn.start_closing();
        if !entry.busy() {
            if let Some(Conn { conn, .. }) = self.conns.remove(key)
                && let Sock::Direct(index) = conn.socket()
            {
                // Its place in the table, freed for the next accept once this completes.
                return self.discard(Sock::Direct(*index));
            }
            return Ok(());
        }
        if entry.conn.cancel_once() {
            entry.cancels += 1;
            let target = entry.conn.socket().target();
            let cancel =
                on_target!(target, |fd| opcode::AsyncCancel2::new(CancelBuilder::fd(fd).all())
                    .build())
                .user_data(tag(key, Op::Cancel));
            // SAFETY: a cancel points into no memory; the descriptor it names stays open
            // until the connection is freed, after the cancelled operations complete.
            unsafe { self.push(cancel)? };
        }
        Ok(())
    }
    // ANCHOR_END: close
}
