//! A connection as the completion loops hold it (io_uring: `v4-syscalls --api io-uring`
//! and v7): its [`Session`], the bytes handed to the kernel to send, what is in flight,
//! and where it is in its life, with the rules every loop applies to it (the next step
//! after a completion, the staged close, the overdue rule) written once.
//!
//! What stays in each ring is what is its own: the operations and their `user_data`, the
//! receive's buffer (v4's own, v7's provided buffers), single-shot or multishot, batching,
//! and the teardown. The readiness side's counterpart is [`crate::evented::Connection`],
//! and the two share the overdue rule ([`crate::evented::overdue`]), the first stage of the
//! staged close ([`crate::evented::start_lingering_close`]) and the slot table
//! ([`crate::evented::Slots`]), whose keys carry a generation so that a completion that
//! outlives its connection is recognised rather than given to the slot's next occupant.
//!
//! The socket is a [`Socket`]: a `TcpStream` (the default, and all `v4-syscalls` uses), or
//! something only the ring's operations can name (v7's direct descriptors), for which the
//! ring does with an operation what a descriptor's owner does with a system call.
//!
//! The kernel's rule shapes the state: while a send is in flight the kernel reads its
//! bytes, so they are neither touched nor freed until its completion ([`Sending`]); a
//! connection is freed only when nothing of it is in flight ([`Connection::in_flight`]).
//!
//! For the recorder ([`crate::trace`]): a connection is numbered, and its accept recorded,
//! as it is made (on the ring's thread, right after the accept's completion); what it
//! receives and sends, the requests it decodes and handles, and why it closes are recorded
//! here as its own, so a ring records only its waits and reaps.

use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::dispatcher::Dispatcher;
use crate::evented::{Overdue, Timeouts, overdue, start_lingering_close};
use crate::limit::Permit;
use crate::overload::Admission;
use crate::session::Session;
use crate::stats::ConnectionGuard;
use crate::trace::{self, Cat};

/// The connection's receive, as far as its ring has told the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiving {
    /// None in flight: not yet armed, ended by the kernel, or paused (a client sending
    /// faster than it reads its answers). The ring arms one when it may.
    Idle,
    /// In flight (single-shot until its completion; multishot until one without
    /// `IORING_CQE_F_MORE`).
    Armed,
    /// In flight, its cancel submitted: it ends with its next completion without `F_MORE`.
    Cancelling,
}

/// The connection's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    Idle,
    /// The kernel is reading the bytes [`Step::Send`] gave out: they stay put until
    /// [`Connection::sent`].
    InFlight,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Serving requests; a reply may already say the connection must close once it is
    /// written ([`Session::closed`]).
    Open,
    /// Every reply written and the write side shut: input is dropped until the client
    /// closes or the linger is up.
    Lingering { since: Instant },
    /// Decided to close: freed as soon as nothing of it is in flight. `cancelled`: the
    /// ring has done what ends its operations in flight (a cancel, a shutdown).
    Closing { cancelled: bool },
}

/// What a ring does next for a connection (see [`Connection::next`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Submit a send of these bytes: the kernel's until [`Connection::sent`].
    Send(&'a [u8]),
    /// A send is in flight: its completion comes first.
    Wait,
    /// Nothing to send: keep (or start) receiving, requests while open, bytes to drop
    /// while lingering.
    Receive,
    /// Close it (see [`Connection::start_closing`]).
    Close,
}

// ANCHOR: socket
/// What a completion loop reaches a connection by.
pub trait Socket: std::fmt::Debug {
    /// The process's descriptor for it, if it has one: to peek at for bytes waiting (the
    /// lingering close's decision) and to ask whether the client has gone (admission).
    fn descriptor(&self) -> Option<BorrowedFd<'_>>;

    /// The lingering close's first stage: the write side shut (the client hears a FIN
    /// after its last reply) and the session's input dropped. False if this side cannot
    /// shut it: then the ring does, with an operation ([`Connection::take_write_shutdown`]).
    fn start_lingering_close(&self, session: &mut Session) -> bool;
}

impl Socket for TcpStream {
    fn descriptor(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn start_lingering_close(&self, session: &mut Session) -> bool {
        start_lingering_close(self, session);
        true
    }
}
// ANCHOR_END: socket

/// One client connection and everything a completion loop knows about it.
#[derive(Debug)]
pub struct Connection<S: Socket = TcpStream> {
    socket: S,
    session: Session,
    /// The bytes being sent: the kernel's while [`Sending::InFlight`], from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    receiving: Receiving,
    sending: Sending,
    life: Life,
    /// When it last made progress: the idle timeout counts from here.
    since: Instant,
    /// Counts this connection in `/stats` until dropped.
    _open: ConnectionGuard,
    /// Holds this connection's place under `max_connections` until dropped.
    _permit: Permit,
    /// Its number for the recorder, in accept order (0 while the recorder is off).
    number: u64,
    /// Bytes arrived after a reply decided to close, before the lingering close: what a
    /// peek at the socket would have found, for a socket without a descriptor to peek at
    /// (the bytes were taken by the receive armed meanwhile, and dropped).
    heard_after_close: bool,
    /// The write side is to be shut by the ring (see [`Socket::start_lingering_close`]).
    write_shutdown_owed: bool,
}

impl Connection<TcpStream> {
    /// The descriptor its operations name.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    pub fn stream(&self) -> &TcpStream {
        &self.socket
    }
}

impl<S: Socket> Connection<S> {
    pub fn new(socket: S, open: ConnectionGuard, permit: Permit) -> Self {
        Self {
            socket,
            session: Session::new(),
            outgoing: Vec::new(),
            sent: 0,
            receiving: Receiving::Idle,
            sending: Sending::Idle,
            life: Life::Open,
            since: Instant::now(),
            _open: open,
            _permit: permit,
            number: accepted(),
            heard_after_close: false,
            write_shutdown_owed: false,
        }
    }

    /// What its operations name it by.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// True once after a lingering close whose write side the socket could not shut
    /// itself: the ring then submits the shutdown.
    pub fn take_write_shutdown(&mut self) -> bool {
        std::mem::take(&mut self.write_shutdown_owed)
    }

    /// Its number for the recorder (0 while the recorder is off).
    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn receiving(&self) -> Receiving {
        self.receiving
    }

    pub fn sending(&self) -> Sending {
        self.sending
    }

    pub fn life(&self) -> Life {
        self.life
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.life, Life::Closing { .. })
    }

    /// Whether the kernel holds an operation of this connection (a send or a receive):
    /// until it does not, the connection may not be freed.
    pub fn in_flight(&self) -> bool {
        self.receiving != Receiving::Idle || self.sending == Sending::InFlight
    }

    /// Whether arriving bytes are for the session, not dropped (lingering, closing, or a
    /// reply already decided to close).
    pub fn is_listening(&self) -> bool {
        self.life == Life::Open && self.session.closed().is_none()
    }

    /// Whether closing now loses nothing: no reply owed or being sent, no request half
    /// read.
    pub fn is_at_rest(&self) -> bool {
        self.life == Life::Open
            && self.sending == Sending::Idle
            && self.sent == self.outgoing.len()
            && self.session.is_at_rest()
    }

    /// Whether the loop should close it now: the readiness loops' rule, applied to when
    /// this connection last made progress and to its linger.
    pub fn is_overdue(&self, now: Instant, timeouts: Timeouts) -> Overdue {
        let lingering_since = match self.life {
            Life::Lingering { since } => Some(since),
            Life::Open | Life::Closing { .. } => None,
        };
        overdue(&self.session, lingering_since, now, self.since, timeouts)
    }

    /// A receive was submitted.
    pub fn receive_armed(&mut self) {
        debug_assert_eq!(self.receiving, Receiving::Idle, "one receive at a time");
        self.receiving = Receiving::Armed;
    }

    /// Marks the receive as being cancelled. True if it was armed and not yet cancelled:
    /// then the caller submits the cancel.
    pub fn cancel_receive(&mut self) -> bool {
        let armed = self.receiving == Receiving::Armed;
        if armed {
            self.receiving = Receiving::Cancelling;
        }
        armed
    }

    /// The receive's last completion is in: nothing of it is in flight.
    pub fn receive_ended(&mut self) {
        self.receiving = Receiving::Idle;
    }

    /// Bytes a receive brought at `now`: for the session while it listens, dropped
    /// otherwise. Only bytes that arrive while no send waits count as progress: a send
    /// stuck behind a client that stops reading must not be kept alive by its uploads.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return;
        }
        let name = if self.is_listening() { "recv" } else { "discard" };
        self.record(Cat::Read, name, bytes.len());
        if self.is_listening() {
            self.session.receive_at(bytes, now);
        } else if self.life == Life::Open {
            self.heard_after_close = true;
        }
        if self.sending == Sending::Idle {
            self.since = now;
        }
    }

    /// A receive returned 0: the client closed its side; nothing more will arrive.
    pub fn end_of_input(&mut self) {
        self.record(Cat::Read, "recv", 0);
        self.session.end_of_input();
    }

    /// A send completed with `result` (bytes taken, or an error) at `now`.
    pub fn sent(&mut self, result: Result<usize, i32>, now: Instant) {
        self.sending = Sending::Idle;
        match result {
            Ok(n) if n > 0 => {
                self.sent += n;
                self.since = now;
            }
            // Nothing taken of a non-empty send would be sent again and again (Ok(0)), or
            // a reset, a broken pipe: this client is gone.
            Err(e) if -e == libc::ECONNRESET => self.start_closing_because("reset"),
            Ok(_) | Err(_) => self.start_closing_because("error"),
        }
    }

    /// The socket failed, or the loop decided to close: from now on only what is in
    /// flight is awaited.
    pub fn start_closing(&mut self) {
        let why = match self.session.closed() {
            Some(closed) => trace::closed_why(closed),
            None if self.session.input_ended() => "eof",
            // The loop's decision (a timeout, the shutdown) or a failed receive: a loop
            // that knows which says so with `start_closing_because`.
            None => "closed",
        };
        self.start_closing_because(why);
    }

    /// [`Connection::start_closing`], the timeline's close saying `why`.
    pub fn start_closing_because(&mut self, why: &'static str) {
        if !self.is_closing() {
            let _serving = trace::serving(self.number);
            trace::closed(why);
            self.life = Life::Closing { cancelled: false };
        }
    }

    /// An instant of `cat` for this connection, with its bytes.
    fn record(&self, cat: Cat, name: &'static str, bytes: usize) {
        if trace::on() {
            let _serving = trace::serving(self.number);
            trace::instant(cat, name, &[("bytes", bytes.into())]);
        }
    }

    /// True the first time it is called while closing: the caller then ends what is in
    /// flight (a cancel, a shutdown), once.
    pub fn cancel_once(&mut self) -> bool {
        let first = self.life == Life::Closing { cancelled: false };
        if first {
            self.life = Life::Closing { cancelled: true };
        }
        first
    }

    /// Decides what comes next, once whatever completed has been taken in: the rest of a
    /// short send; else the answers to every complete request received (all of them, so
    /// pipelined requests go out as one send); else the staged close a reply asked for;
    /// else receiving. One send at a time, and replies are written before the close.
    pub fn next(&mut self, dispatcher: &Dispatcher) -> Step<'_> {
        self.next_admitting(dispatcher, &mut Admission::open())
    }

    /// [`Connection::next`], each handler run only if `admission` decides so (see
    /// [`crate::overload`]).
    pub fn next_admitting(
        &mut self,
        dispatcher: &Dispatcher,
        admission: &mut Admission,
    ) -> Step<'_> {
        if self.is_closing() {
            return Step::Close;
        }
        if self.sending == Sending::InFlight {
            return Step::Wait;
        }
        // The requests it decodes and handles are its own on the ring's lane.
        let _serving = trace::serving(self.number);
        if self.sent == self.outgoing.len() {
            if self.is_listening() {
                let client = self.socket.descriptor();
                self.session.answer_admitting(dispatcher, admission, client);
            }
            // Swapped, not copied: the emptied buffer becomes the session's next outbox.
            self.session.take_output(&mut self.outgoing);
            self.sent = 0;
        }
        if self.sent < self.outgoing.len() {
            self.sending = Sending::InFlight;
            self.record(Cat::Write, "send", self.outgoing.len() - self.sent);
            return Step::Send(&self.outgoing[self.sent..]);
        }
        let peer_closed = self.session.input_ended();
        if let Life::Lingering { .. } = self.life {
            return if peer_closed { Step::Close } else { Step::Receive };
        }
        match self.session.closed() {
            Some(why) if self.owes_a_lingering_close(why) => {
                // Every reply is written: FIN, then read and drop until the client
                // closes, so it reads its last reply, not a reset.
                self.write_shutdown_owed = !self.socket.start_lingering_close(&mut self.session);
                self.life = Life::Lingering { since: Instant::now() };
                Step::Receive
            }
            Some(_) => Step::Close,
            None if peer_closed => Step::Close,
            None => {
                self.session.release_spare_capacity();
                Step::Receive
            }
        }
    }
}

impl<S: Socket> Connection<S> {
    /// [`Session::owes_a_lingering_close`], asked of the socket when it has a descriptor to
    /// peek at; without one, bytes that arrived since the reply decided to close stand in
    /// for the peek (the receive armed meanwhile took them: with a descriptor, a peek
    /// would not see those either).
    fn owes_a_lingering_close(&self, why: crate::session::Closed) -> bool {
        let client = self.socket.descriptor();
        self.session.owes_a_lingering_close(why, client)
            || (client.is_none()
                && self.heard_after_close
                && why.owes_a_lingering_close()
                && !self.session.input_ended())
    }
}

// ANCHOR: eager_sends
/// How long the answers a loop has queued may wait for the handlers after them before
/// they go to the kernel on their own, without the wait that ends the turn. An early
/// submit is one `io_uring_enter` more, a few microseconds at most: beside a handler that
/// outlasts 200 µs it is a small share, and a turn of fast handlers (a `/hello` takes a
/// few microseconds) rarely lasts that long, so batching keeps its one call per turn.
/// Measured with v7 under wrk, one ring: one or two early submits in 7,000 requests at 64
/// connections, one per seventy requests at 1,000 (turns that long do pass the budget).
pub const SEND_BUDGET: Duration = Duration::from_micros(200);

/// How many handlers in a row must run within [`SEND_BUDGET`] after one that did not
/// before a loop stops expecting slow ones. A count, not a time: on a busy machine a
/// handler preempted for a few milliseconds looks as slow as one that blocks, and
/// then costs at most this many early submits, however often it happens; a ring whose
/// handlers are all slow never counts to it.
pub const CALM_AFTER: u32 = 16;

/// When a completion loop submits the sends it has queued without waiting, rather than
/// with the `io_uring_enter` that ends its turn and waits.
///
/// Batching every send of a turn into that one call is what makes a completion loop
/// cheap (a system call per turn, not per answer), but a handler runs on the loop's
/// thread, so an answer queued early in a turn waits for every handler after it: behind
/// a slow one, its whole turn misses its clients' timeouts, answers computed in
/// microseconds among them. A loop cannot know a handler is slow before it has run, so
/// it keeps two rules:
///
/// * queued answers go to the kernel before a connection's handlers run once they have
///   waited [`SEND_BUDGET`] (many fast handlers: a submit every budget's worth of them);
/// * a handler that outlasts the budget goes to the kernel with its answer, and until
///   [`CALM_AFTER`] handlers in a row have not, the loop expects more: each connection's
///   answers are submitted before the next connection's handlers run, a system call per
///   answer, cheap beside handlers that slow. Only the first slow handler after a calm
///   stretch still holds back the answers queued before it in its turn.
///
/// Without a budget (`None`) the loop never submits early: the turn's one call carries
/// everything, as before this rule (kept to measure what it costs).
#[derive(Debug, Clone, Copy)]
pub struct EagerSends {
    budget: Option<Duration>,
    /// Sends queued since the last submission.
    queued: usize,
    /// When the last submission took everything queued: the oldest queued answer's age
    /// is at most the time since.
    since: Instant,
    /// Handlers run within the budget since the last that was not; `None`: calm.
    fast_since_slow: Option<u32>,
}

impl EagerSends {
    pub fn new(budget: Option<Duration>) -> Self {
        Self { budget, queued: 0, since: Instant::now(), fast_since_slow: None }
    }

    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// A send was queued (not yet submitted).
    pub fn queued(&mut self) {
        self.queued += 1;
    }

    /// Everything queued went to the kernel at `now` (a wait, a full queue, an early submit).
    pub fn submitted(&mut self, now: Instant) {
        self.queued = 0;
        self.since = now;
    }

    /// A connection's handlers ran from `started` to `now`.
    pub fn handlers_ran(&mut self, started: Instant, now: Instant) {
        let Some(budget) = self.budget else { return };
        self.fast_since_slow = if now.duration_since(started) >= budget {
            Some(0)
        } else {
            self.fast_since_slow.map(|n| n + 1).filter(|&n| n < CALM_AFTER)
        };
    }

    /// Whether the queued sends should go to the kernel now, before the next handler runs.
    pub fn submit_now(&self, now: Instant) -> bool {
        let Some(budget) = self.budget else { return false };
        let expecting_slow = self.fast_since_slow.is_some();
        self.queued > 0 && (expecting_slow || now.duration_since(self.since) >= budget)
    }
}
// ANCHOR_END: eager_sends

/// A new connection's number, its accept recorded on the calling thread.
fn accepted() -> u64 {
    let number = trace::next_conn();
    trace::accepted(number);
    number
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::evented::Slots;
    use crate::limit::LimitLatch;
    use crate::session::LINGER;

    const TIMEOUTS: Timeouts =
        Timeouts { idle: Duration::from_secs(30), request: Duration::from_secs(10) };

    /// A connection on loopback, and the client's end of it.
    fn connection(dispatcher: &Dispatcher) -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback port 0 binds");
        let client =
            TcpStream::connect(listener.local_addr().expect("bound")).expect("loopback connects");
        let (server, _) = listener.accept().expect("the connect just completed");
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("a non-zero timeout");
        let permit = Arc::new(LimitLatch::new(1)).try_acquire().expect("an empty latch");
        (Connection::new(server, dispatcher.stats().connection_opened(), permit), client)
    }

    /// Plays the kernel's part: takes the whole send at `now`.
    fn send_all(conn: &mut Connection, dispatcher: &Dispatcher, now: Instant) -> Vec<u8> {
        let Step::Send(bytes) = conn.next(dispatcher) else { panic!("a send was owed") };
        let bytes = bytes.to_vec();
        assert_eq!(conn.next(dispatcher), Step::Wait, "one send at a time");
        conn.sent(Ok(bytes.len()), now);
        bytes
    }

    #[test]
    fn a_close_after_the_reply_lingers_then_closes_when_the_client_does() {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let (mut conn, mut client) = connection(&dispatcher);
        // More behind the request that closes: the client is still sending (with nothing
        // behind it, the connection closes at once: `Session::owes_a_lingering_close`).
        conn.received(
            b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /hel",
            Instant::now(),
        );
        let reply = send_all(&mut conn, &dispatcher, Instant::now());
        assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
        // Replies written: FIN, and the connection lingers, reading to drop.
        assert_eq!(conn.next(&dispatcher), Step::Receive);
        let Life::Lingering { since } = conn.life() else { panic!("{:?}", conn.life()) };
        let mut heard = Vec::new();
        client.read_to_end(&mut heard).expect("the server's FIN ends the stream");
        assert!(heard.is_empty(), "only the FIN reaches the socket here: {heard:?}");
        conn.received(b"GET /hello\n", Instant::now());
        assert_eq!(conn.session().output(), b"", "input is dropped while lingering");
        assert_eq!(conn.is_overdue(since, TIMEOUTS), Overdue::No);
        assert_eq!(conn.is_overdue(since + LINGER, TIMEOUTS), Overdue::Idle, "the linger ends");
        conn.end_of_input();
        assert_eq!(conn.next(&dispatcher), Step::Close, "the client closed: done");
    }

    #[test]
    fn the_overdue_rule_is_the_event_loops() {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let (mut conn, _client) = connection(&dispatcher);
        let start = Instant::now();
        conn.received(b"GET /hel", start);
        assert_eq!(conn.next(&dispatcher), Step::Receive, "half a request: nothing to send");
        assert_eq!(conn.is_overdue(start, TIMEOUTS), Overdue::No);
        let late = start + TIMEOUTS.request;
        assert_eq!(conn.is_overdue(late, TIMEOUTS), Overdue::Request);
        assert_eq!(
            conn.is_overdue(late, TIMEOUTS),
            overdue(conn.session(), None, late, start, TIMEOUTS),
            "one rule"
        );
        conn.received(b"lo\n", start);
        send_all(&mut conn, &dispatcher, start);
        assert_eq!(conn.next(&dispatcher), Step::Receive);
        assert!(conn.is_at_rest());
        assert_eq!(conn.is_overdue(late, TIMEOUTS), Overdue::No, "between requests");
        assert_eq!(conn.is_overdue(start + TIMEOUTS.idle, TIMEOUTS), Overdue::Idle);
    }

    #[test]
    fn bytes_that_arrive_during_a_send_are_answered_after_it() {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let (mut conn, _client) = connection(&dispatcher);
        let start = Instant::now();
        conn.received(b"GET /hello\n", start);
        let Step::Send(first) = conn.next(&dispatcher) else { panic!("a reply was owed") };
        assert_eq!(first, b"200 Hello, World!\n");
        conn.received(b"GET /hello\nGET /hello\n", start + Duration::from_secs(1));
        assert_eq!(conn.next(&dispatcher), Step::Wait);
        // A short send: the rest first, then both pipelined answers in one send.
        conn.sent(Ok(4), start + Duration::from_secs(2));
        assert_eq!(conn.next(&dispatcher), Step::Send(b"Hello, World!\n".as_slice()));
        conn.sent(Ok(14), start);
        let Step::Send(both) = conn.next(&dispatcher) else { panic!("two replies were owed") };
        assert_eq!(both, b"200 Hello, World!\n200 Hello, World!\n");
        conn.sent(Err(-32), start); // -EPIPE
        assert!(conn.is_closing() && !conn.in_flight());
        assert!(conn.cancel_once() && !conn.cancel_once(), "ends what is in flight once");
        assert_eq!(conn.next(&dispatcher), Step::Close);
    }

    #[test]
    fn a_stale_key_finds_nothing_in_its_reused_slot() {
        let mut slots = Slots::default();
        let first = slots.insert(|key| key);
        assert_ne!(first, 0, "0 is left for a listener");
        assert_eq!(slots.remove(first), Some(first));
        let second = slots.insert(|key| key);
        assert_ne!(second, first, "the same slot, a new generation");
        assert_eq!(slots.get(first), None, "a completion for the closed one is recognised");
        assert_eq!(slots.remove(first), None);
        assert_eq!(slots.get(second), Some(&second));
        assert_eq!(slots.tokens().collect::<Vec<_>>(), [second]);
        assert!(second < 1 << crate::evented::KEY_BITS, "room for an operation's tag");
    }

    #[test]
    fn queued_sends_go_early_after_a_slow_handler_or_past_the_budget() {
        let budget = Duration::from_millis(1);
        let t0 = Instant::now();
        let mut eager = EagerSends::new(Some(budget));
        eager.submitted(t0);
        assert!(!eager.submit_now(t0 + budget * 5), "nothing queued, nothing to submit");
        eager.queued();
        assert!(!eager.submit_now(t0), "a fast turn keeps its sends for the wait");
        assert!(eager.submit_now(t0 + budget), "queued a budget ago: submitted");
        // A handler that outlasted the budget: from then on, before every handler.
        let slow_end = t0 + budget * 3;
        eager.handlers_ran(t0 + budget, slow_end);
        eager.submitted(slow_end);
        eager.queued();
        assert!(eager.submit_now(slow_end), "a fresh answer goes before the next handler");
        for _ in 1..CALM_AFTER {
            eager.handlers_ran(slow_end, slow_end);
        }
        assert!(eager.submit_now(slow_end), "still expecting slow ones");
        eager.handlers_ran(slow_end, slow_end);
        assert!(!eager.submit_now(slow_end), "CALM_AFTER fast ones: the turn batches again");
        let never = EagerSends { queued: 3, ..EagerSends::new(None) };
        assert!(!never.submit_now(t0 + budget * 10), "no budget: only the wait submits");
    }
}
