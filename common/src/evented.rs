//! A connection as the event loops hold it (v4's poller and workers, v5's loops): the
//! non-blocking socket, its [`Session`] (the bytes read but not answered, the replies not
//! yet written, the decoder's state) and its flags, all in one value, and the turn that
//! serves it when it is ready.
//!
//! In v4 that value has exactly one owner at a time: the poller while the connection
//! waits for readiness, one worker while it is served. It moves into the worker's job and
//! back in the re-arm event, so in this design "two workers on one socket" cannot be
//! written, let alone happen. In v5 it never leaves the loop that accepted it.
//!
//! A turn records each `read` and `write` call as a span with its bytes ([`crate::trace`]),
//! for the connection the calling thread says it serves ([`trace::serving`]): the loop's or
//! the worker's business, since only it knows the connection's number.

use std::io::{self, Read, Write};
use std::net::Shutdown as Direction;
use std::time::{Duration, Instant};

use std::net::TcpStream;
use std::os::fd::AsFd;

use crate::dispatcher::Dispatcher;
use crate::limit::Permit;
use crate::overload::Admission;
use crate::session::{Closed, LINGER, READ_CHUNK, Session};
use crate::stats::ConnectionGuard;
use crate::trace::{self, Cat};

/// Read at most this much in one go before answering what has arrived; a client
/// streaming requests faster than they are answered cannot grow the inbox without bound.
pub const READ_BATCH: usize = 64 * 1024;

thread_local! {
    /// The buffer a loop's thread reads into, one per thread and reused by every read: the
    /// bytes are copied into the session's inbox at once. A fresh `[0u8; READ_CHUNK]` per
    /// turn zeroed 16 KiB for every request, about 3% of v5's CPU (`scripts/v7-profile.sh`).
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// The longest an event loop sleeps in its wait, so idle connections' timeouts are checked
/// and a shutdown noticed at least this often.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Read batches one turn may take before yielding the worker to other connections. The
/// re-arm reports whatever is still unread, so yielding loses nothing.
const BATCHES_PER_TURN: usize = 16;

/// What a turn leaves the connection waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Readable,
    /// The turn used its whole budget with input perhaps still unread: serve it again
    /// soon, without waiting for an event (an edge-triggered poll will not report bytes
    /// that were already there). v4's re-arm re-checks readiness, so there it is the same
    /// as `Readable`; v5's loop, which never re-arms, queues the connection itself.
    Yielded,
    Writable,
    Close(Closed),
}

/// What one turn did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// What the connection waits for now.
    pub next: Next,
    /// The turn found nothing to read and nothing to write: a wasted hand-off, the
    /// symptom of the Java article's level-triggered bug.
    pub empty: bool,
}

/// How long a connection may wait for its next request, and for a request to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Duration,
    pub request: Duration,
}

/// Why an event loop should close a connection, if it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    No,
    /// Nothing arrived for the idle timeout, or a linger has run its course.
    Idle,
    /// A request was not whole in time.
    Request,
}

/// What one fill of the inbox ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filled {
    /// Read until `WouldBlock`, or until a read that did not fill its buffer: the socket
    /// is drained, and edge-triggered readiness will report the next bytes.
    Drained { bytes: usize },
    /// Stopped at [`READ_BATCH`] with more perhaps waiting.
    Batch,
    /// The client closed its side; everything it sent has been read.
    PeerClosed,
}

/// Bits of a [`Slots`] key: the rest of a `usize` (its top byte) is left free, so a ring
/// can put an operation's kind beside the key in a 64-bit `user_data`.
pub const KEY_BITS: u32 = usize::BITS - 8;
/// A key's low half is its slot's index, the rest (up to [`KEY_BITS`]) its generation.
const INDEX_BITS: u32 = usize::BITS / 2;
const GENERATIONS: usize = 1 << (KEY_BITS - INDEX_BITS);

#[derive(Debug)]
struct Slot<T> {
    /// Bumped by every insert: 1 and up, never 0, so no key is 0 (a listener's token).
    generation: usize,
    value: Option<T>,
}

/// A loop's connections, in slots indexed by their keys: a lookup per event or completion
/// is an index, not a hash. A freed slot is reused by the next connection under a new
/// generation, which is part of the key, so an event or a completion still in flight for
/// the closed connection names a key that no longer matches and finds nothing: it never
/// reaches the newcomer.
#[derive(Debug)]
pub struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slots<T> {
    /// Stores what `make` builds for the key it is given. Keys are never 0 (left for a
    /// listening socket) and fit in [`KEY_BITS`].
    pub fn insert(&mut self, make: impl FnOnce(usize) -> T) -> usize {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot { generation: 0, value: None });
            self.slots.len() - 1
        });
        let slot = &mut self.slots[index];
        // 1, 2, …, GENERATIONS - 1, then 1 again: a key repeats only after that many
        // connections have used the slot.
        slot.generation = slot.generation % (GENERATIONS - 1) + 1;
        let key = slot.generation << INDEX_BITS | index;
        slot.value = Some(make(key));
        self.len += 1;
        key
    }

    /// The slot `key` names, if it still holds that key's value.
    fn slot(&self, key: usize) -> Option<&Slot<T>> {
        let slot = self.slots.get(key & ((1 << INDEX_BITS) - 1))?;
        (slot.generation == key >> INDEX_BITS && slot.value.is_some()).then_some(slot)
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        self.slot(key)?.value.as_ref()
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slot(key)?;
        self.slots[key & ((1 << INDEX_BITS) - 1)].value.as_mut()
    }

    /// Takes the value out, if the slot still holds the one `key` names.
    pub fn remove(&mut self, key: usize) -> Option<T> {
        self.slot(key)?;
        let index = key & ((1 << INDEX_BITS) - 1);
        let taken = self.slots[index].value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(taken)
    }

    /// Keeps the values for which `keep` is true and drops the others (closing a
    /// connection).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for key in self.tokens().collect::<Vec<_>>() {
            if self.get(key).is_some_and(|value| !keep(value)) {
                self.remove(key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The values, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|slot| slot.value.as_ref())
    }

    /// The keys in use, in slot order.
    pub fn tokens(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| slot.generation << INDEX_BITS | index)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether a loop should close a connection that has rested since `since`: idle past the
/// idle timeout, a request arriving too slowly (see [`crate::Phase`]), or, once it lingers
/// in a staged close (since `lingering_since`), a linger that has lasted long enough. The
/// one rule of every event loop and every ring.
pub fn overdue(
    session: &Session,
    lingering_since: Option<Instant>,
    now: Instant,
    since: Instant,
    timeouts: Timeouts,
) -> Overdue {
    let Timeouts { idle: idle_timeout, request: request_timeout } = timeouts;
    if let Some(lingering_since) = lingering_since {
        return if now >= lingering_since + LINGER.min(idle_timeout) {
            Overdue::Idle
        } else {
            Overdue::No
        };
    }
    if session.is_overdue(now, request_timeout) {
        Overdue::Request
    } else if now >= since + idle_timeout {
        Overdue::Idle
    } else {
        Overdue::No
    }
}

/// The word a timeline gives a connection that failed with `error`: `reset` when the
/// client reset it, `error` for anything else (a broken pipe, a refused watch).
pub fn failed_why(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionReset => "reset",
        _ => "error",
    }
}

/// The staged close's first stage (nginx's lingering close), once every reply is written:
/// FIN, so the client reads its last reply and then the end, and whatever it still sends
/// is dropped rather than answered. Closing outright instead could turn what it sends
/// next into a reset that destroys the reply in its receive queue. The caller then reads
/// and drops until the client closes, or [`LINGER`] is up (see [`overdue`]).
pub fn start_lingering_close(stream: &TcpStream, session: &mut Session) {
    // If the shutdown fails the peer is already gone; the next read will say so.
    let _ = stream.shutdown(Direction::Write);
    session.drop_input();
}

// ANCHOR: connection
/// One client connection and everything an event loop knows about it.
#[derive(Debug)]
pub struct Connection {
    /// The loop's name for it: what its readiness events carry.
    pub token: usize,
    /// Non-blocking, and watched by the loop through its descriptor: the loop's own
    /// business, whether it waits with `mio`, `epoll` or `select`.
    pub stream: TcpStream,
    pub session: Session,
    /// Set when the server decided to close with input perhaps still coming (an error
    /// reply, `Connection: close`, `exit`): since then the write side is shut and input is
    /// read and dropped until the client closes, so it reads its last reply instead of a
    /// reset. The linger is timed from here, however often the client sends.
    pub draining_since: Option<Instant>,
    /// Counts this connection in `/stats` until dropped.
    _open: ConnectionGuard,
    /// Holds this connection's place under `max_connections` until dropped.
    _permit: Permit,
}
// ANCHOR_END: connection

impl Connection {
    pub fn new(token: usize, stream: TcpStream, open: ConnectionGuard, permit: Permit) -> Self {
        Self {
            token,
            stream,
            session: Session::new(),
            draining_since: None,
            _open: open,
            _permit: permit,
        }
    }

    /// Whether closing now loses nothing: no reply owed, no request half read.
    pub fn is_at_rest(&self) -> bool {
        self.draining_since.is_none() && self.session.is_at_rest()
    }

    /// Whether the event loop should close this connection, resting since `since`: idle past
    /// the idle timeout, a request arriving too slowly (see [`crate::Phase`]), or a linger
    /// after a close decision that has lasted long enough.
    pub fn is_overdue(&self, now: Instant, since: Instant, timeouts: Timeouts) -> Overdue {
        overdue(&self.session, self.draining_since, now, since, timeouts)
    }

    /// Serves this connection for one turn, now that it is ready, and says what it waits
    /// for next. `read_closed` is what the readiness event said of the client's side
    /// (mio's `is_read_closed`, `EPOLLRDHUP`): when it may have closed, or the caller
    /// cannot tell, the turn reads until `WouldBlock` or the end, never stopping at a
    /// short read (see `fill_inbox`, below).
    pub fn serve_turn(&mut self, dispatcher: &Dispatcher, read_closed: bool) -> io::Result<Turn> {
        self.serve_turn_admitting(dispatcher, read_closed, &mut Admission::open())
    }

    /// [`Connection::serve_turn`], each handler run only if `admission` decides so (see
    /// [`crate::overload`]).
    pub fn serve_turn_admitting(
        &mut self,
        dispatcher: &Dispatcher,
        read_closed: bool,
        admission: &mut Admission,
    ) -> io::Result<Turn> {
        let mut empty = false;
        let next = self.turn(dispatcher, read_closed, admission, &mut empty)?;
        Ok(Turn { next, empty })
    }

    /// One turn: reads until `WouldBlock` (mio is edge-triggered: bytes left unread would
    /// never be reported again) or until [`BATCHES_PER_TURN`] batches, so one busy client
    /// cannot keep the thread from everyone else (re-arming reports what is left);
    /// answers every complete request in order; writes, stopping at a short write rather
    /// than waiting; and, when the answers say so, starts the staged close.
    // ANCHOR: turn
    fn turn(
        &mut self,
        dispatcher: &Dispatcher,
        read_closed: bool,
        admission: &mut Admission,
        empty: &mut bool,
    ) -> io::Result<Next> {
        if self.draining_since.is_some() {
            let closed = self.discard_input();
            return Ok(if closed { Next::Close(Closed::ByPeer) } else { Next::Readable });
        }
        let had_output = !self.session.output().is_empty();
        for batch in 0..BATCHES_PER_TURN {
            // Replies still owed are written before more requests are read: a client that
            // sends without reading is slowed down, not buffered without end.
            if !self.flush()? {
                return Ok(Next::Writable);
            }
            let filled = self.fill_inbox(read_closed)?;
            if batch == 0 {
                *empty = filled == (Filled::Drained { bytes: 0 }) && !had_output;
            }
            let client = Some(self.stream.as_fd());
            let closing = self.session.answer_admitting(dispatcher, admission, client);
            if !self.flush()? {
                return Ok(Next::Writable);
            }
            match (closing, filled) {
                // The client has closed its side: nothing more can arrive to cause a reset.
                (Some(why), Filled::PeerClosed) => return Ok(Next::Close(why)),
                // Replies written, but the client may still be sending: close in stages.
                (Some(why), _)
                    if self.session.owes_a_lingering_close(why, Some(self.stream.as_fd())) =>
                {
                    self.start_draining();
                    return Ok(Next::Readable);
                }
                (Some(why), _) => return Ok(Next::Close(why)),
                // Half-close: everything the client sent has been answered and written.
                (None, Filled::PeerClosed) => return Ok(Next::Close(Closed::ByPeer)),
                (None, Filled::Drained { .. }) => {
                    self.session.release_spare_capacity();
                    return Ok(Next::Readable);
                }
                (None, Filled::Batch) => {}
            }
        }
        Ok(Next::Yielded)
    }
    // ANCHOR_END: turn

    /// Reads into the inbox until the socket has nothing more, the client closes, or a
    /// batch is full. `read_closed`: the event said the client may have closed its side.
    // ANCHOR: fill_inbox
    fn fill_inbox(&mut self, read_closed: bool) -> io::Result<Filled> {
        READ_BUFFER.with_borrow_mut(|chunk| self.fill_inbox_with(chunk, read_closed))
    }

    fn fill_inbox_with(&mut self, chunk: &mut [u8], read_closed: bool) -> io::Result<Filled> {
        let mut bytes = 0;
        while bytes < READ_BATCH {
            let mut reading = trace::span(Cat::Read, "read");
            let read = self.stream.read(chunk);
            reading.set("bytes", *read.as_ref().unwrap_or(&0));
            drop(reading);
            match read {
                Ok(0) => {
                    self.session.end_of_input();
                    return Ok(Filled::PeerClosed);
                }
                Ok(n) => {
                    self.session.receive(&chunk[..n]);
                    bytes += n;
                    // A read that did not fill the buffer emptied the socket's queue, and
                    // edge-triggered readiness reports whatever arrives after it: the
                    // read that would only say `WouldBlock` can be skipped, one system
                    // call in three per small request. Not when the event said the client
                    // closed: its FIN arrived with these bytes, no later edge will
                    // announce it, and only one more read (returning 0) can see it. nginx
                    // skips that read only when `EPOLLRDHUP` is clear, for the same reason.
                    if n < chunk.len() && !read_closed {
                        return Ok(Filled::Drained { bytes });
                    }
                }
                // Nothing more for now; the poller will say when there is.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Filled::Drained { bytes });
                }
                // A signal interrupted the read; the data is still there.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Filled::Batch)
    }
    // ANCHOR_END: fill_inbox

    /// Writes as much of the outbox as the socket takes. True when it is all written;
    /// false on a short write, when the rest waits for the socket to become writable.
    fn flush(&mut self) -> io::Result<bool> {
        let mut written = 0;
        let outbox = self.session.output();
        let result = loop {
            if written == outbox.len() {
                break Ok(true);
            }
            let mut writing = trace::span(Cat::Write, "write");
            let wrote = self.stream.write(&outbox[written..]);
            writing.set("bytes", *wrote.as_ref().unwrap_or(&0));
            drop(writing);
            match wrote {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                // The socket buffer is full: the client reads slower than we write.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.session.output_written(written);
        result
    }

    /// Sends FIN once every reply is written, and switches to dropping input until the
    /// client closes (or the linger's time is up): nginx's lingering close.
    fn start_draining(&mut self) {
        start_lingering_close(&self.stream, &mut self.session);
        self.draining_since = Some(Instant::now());
    }

    /// Reads and drops input. True once the client has closed (or the socket failed).
    fn discard_input(&mut self) -> bool {
        let mut sink = [0u8; READ_CHUNK];
        loop {
            let mut reading = trace::span(Cat::Read, "discard");
            let read = self.stream.read(&mut sink);
            reading.set("bytes", *read.as_ref().unwrap_or(&0));
            drop(reading);
            match read {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}
