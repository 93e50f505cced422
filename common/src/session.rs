//! A connection's conversation, with no I/O in it.
//!
//! [`Session`] holds what a connection has read but not yet answered and what it has
//! answered but not yet written, and turns the one into the other without touching a
//! socket. Every model drives the same `Session`: the blocking versions from
//! [`crate::blocking`] (read, answer, write, repeat), the event loops from readiness
//! events ([`crate::evented`]), io_uring from completions, v6 from a task.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::codec::{Decoder, Inbox, Request};
use crate::dispatcher::Dispatcher;
use crate::overload::{self, Admission, Decision};
use crate::response::{Framing, Response};
use crate::trace::{self, Cat};

/// How much a connection reads from its socket in one call.
pub const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed its side (read returned 0).
    ByPeer,
    /// The client sent the line protocol's `exit`.
    Exit,
    /// The last request did not keep the connection alive (`Connection: close`, HTTP/1.0).
    NotKeepAlive,
    /// No request arrived within the idle timeout.
    IdleTimeout,
    /// A request did not arrive whole in time: its head within the request timeout of its
    /// first byte, or its body with no pause longer than that.
    RequestTimeout,
    /// The request could not be decoded and the stream is out of step; the error reply
    /// with this status was sent.
    ProtocolError(u16),
    /// The server was overloaded and refused the request with a 503 (see
    /// [`crate::overload`]).
    Refused,
    /// The client had closed or reset before its request's turn, which was not served.
    Departed,
}

impl Closed {
    /// Whether a close of this kind can owe a lingering close (the server closes while
    /// the client may still be sending); whether this one does is
    /// [`Session::owes_a_lingering_close`]'s decision.
    pub fn owes_a_lingering_close(self) -> bool {
        matches!(self, Self::Exit | Self::NotKeepAlive | Self::ProtocolError(_) | Self::Refused)
    }
}

// ANCHOR: bytes_waiting
/// Whether bytes the server has not read are waiting in `client`'s receive queue: a
/// one-byte `recv` with `MSG_PEEK | MSG_DONTWAIT`, which neither takes them nor waits.
/// Closing a socket with unread input makes the kernel reset the connection. A peek that
/// fails says nothing waits (the socket is then closed or failed, and lingering on it
/// would read nothing either).
pub fn bytes_waiting(client: BorrowedFd<'_>) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(recv(client.as_raw_fd(), &mut byte, flags), Ok(1..))
}
// ANCHOR_END: bytes_waiting

/// Where a connection is in its current request, which decides the deadline it is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: only the idle timeout applies.
    Idle,
    /// Part of a request head has arrived: the head must be whole within the request
    /// timeout of its first byte (nginx's `client_header_timeout`), so a slowloris client
    /// cannot hold the connection.
    Head,
    /// The head is in and the body is arriving: no pause between reads may be longer than
    /// the request timeout (nginx's `client_body_timeout`), so a slow upload that keeps
    /// moving is never cut off, and a stalled one is.
    Body,
}

/// The bytes of one connection between the socket and the dispatcher.
#[derive(Debug)]
pub struct Session {
    decoder: Decoder,
    /// Read from the socket, not yet decoded: a partial request, or pipelined ones.
    inbox: Inbox,
    /// Encoded replies not yet written to the socket.
    outbox: Vec<u8>,
    closed: Option<Closed>,
    /// When the first byte of the request head now arriving came in.
    head_started: Option<Instant>,
    /// When bytes last came in.
    last_input: Instant,
    /// Requests answered so far (errors included).
    answered: u64,
    /// The client closed its side: nothing more will arrive.
    input_ended: bool,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            decoder: Decoder::new(),
            inbox: Inbox::new(),
            outbox: Vec::new(),
            closed: None,
            head_started: None,
            last_input: Instant::now(),
            answered: 0,
            input_ended: false,
        }
    }
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in bytes just read from the socket.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.receive_at(bytes, Instant::now());
    }

    /// Takes in bytes that arrived at `now`: the request deadlines (see [`Phase`]) run from
    /// the clock the caller passes, so a test can move it instead of sleeping.
    pub fn receive_at(&mut self, bytes: &[u8], now: Instant) {
        if self.phase() == Phase::Idle {
            self.head_started = Some(now);
        }
        self.inbox.extend(bytes);
        self.last_input = now;
    }

    /// The client closed its side (a read returned 0): nothing more will arrive. The next
    /// [`Session::answer`] answers what is whole, and a request left half sent with a 400,
    /// so a client that half-closes mid-request hears why nothing else came.
    pub fn end_of_input(&mut self) {
        self.input_ended = true;
    }

    /// Whether the client has closed its side.
    pub fn input_ended(&self) -> bool {
        self.input_ended
    }

    /// Bytes received and not yet decoded: what a loop checks before reading more, so a
    /// client that sends faster than it reads cannot grow the inbox without bound.
    pub fn unanswered_input(&self) -> usize {
        self.inbox.len()
    }

    /// Drops whatever was received and not answered: a connection that has decided to
    /// close reads on only to let the client finish sending, not to answer it.
    pub fn drop_input(&mut self) {
        self.inbox.clear();
    }

    /// The replies owed: encoded, not yet written to the socket.
    pub fn output(&self) -> &[u8] {
        &self.outbox
    }

    /// The first `n` bytes of [`Session::output`] have been written to the socket.
    pub fn output_written(&mut self, n: usize) {
        self.outbox.drain(..n.min(self.outbox.len()));
    }

    /// Hands every byte owed to `into`, which a completion loop gives the kernel to send,
    /// and takes `into`'s allocation in exchange (cleared), so the two buffers alternate
    /// instead of being allocated per reply.
    pub fn take_output(&mut self, into: &mut Vec<u8>) {
        into.clear();
        std::mem::swap(into, &mut self.outbox);
    }

    /// Why the connection must close once its output is written, if an answer decided so.
    pub fn closed(&self) -> Option<Closed> {
        self.closed
    }

    /// Answers every complete request in the inbox, in order, appending the replies to
    /// the outbox. Returns why the connection must close once the outbox is written, if
    /// it must; after that, further input is ignored.
    // ANCHOR: answer
    pub fn answer(&mut self, dispatcher: &Dispatcher) -> Option<Closed> {
        self.answer_admitting(dispatcher, &mut Admission::open(), None)
    }

    /// [`Session::answer`], asking `admission` before each handler whether to run it
    /// (see [`crate::overload`]); `client` is the connection's socket, for a look at
    /// whether the client has gone. Refused requests are answered 503 and close the
    /// connection; a departed client's request is dropped, unanswered.
    pub fn answer_admitting(
        &mut self,
        dispatcher: &Dispatcher,
        admission: &mut Admission,
        client: Option<BorrowedFd<'_>>,
    ) -> Option<Closed> {
        let mut decoded = false;
        while self.closed.is_none() {
            let decoding = self.decode();
            decoded |= !matches!(decoding, Ok(None));
            self.answered += u64::from(!matches!(decoding, Ok(None)));
            match decoding {
                Ok(None) => break,
                Ok(Some(request)) if request.is_exit() => {
                    let goodbye = Response::text(200, "Bye! Closing the connection.");
                    goodbye.encode(&Framing::to(&request), dispatcher.server(), &mut self.outbox);
                    self.closed = Some(Closed::Exit);
                }
                Ok(Some(request)) => self.serve(&request, dispatcher, admission, client),
                Err(error) => {
                    let framing = Framing::to_error(&error);
                    Response::for_error(&error).encode(
                        &framing,
                        dispatcher.server(),
                        &mut self.outbox,
                    );
                    if error.closes_connection() {
                        self.closed = Some(Closed::ProtocolError(error.status()));
                    }
                }
            }
        }
        if self.input_ended && self.closed.is_none() {
            if let Some(error) = self.decoder.truncated(&self.inbox) {
                Response::for_error(&error).encode(
                    &Framing::to_error(&error),
                    dispatcher.server(),
                    &mut self.outbox,
                );
                self.inbox.clear();
                self.closed = Some(Closed::ProtocolError(error.status()));
            }
        }
        // A client that sent `Expect: 100-continue` waits for this before its body; one
        // whose request will be refused anyway (404, 405) gets the refusal instead, at
        // once, and the connection closes, since the body may follow regardless.
        if self.decoder.take_continue() && self.closed.is_none() {
            let refusal = self.decoder.pending_head().and_then(|head| {
                let response = dispatcher.refusal(head)?;
                Some((response, Framing { keep_alive: false, ..Framing::to(head) }))
            });
            match refusal {
                Some((response, framing)) => {
                    response.encode(&framing, dispatcher.server(), &mut self.outbox);
                    dispatcher.stats().request_served();
                    self.answered += 1;
                    self.inbox.clear();
                    self.closed = Some(Closed::ProtocolError(response.status));
                }
                None => self.outbox.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"),
            }
        }
        // The bytes left over after a request are the start of the next one, and its clock
        // starts when they came in: each request gets the whole timeout for its head.
        if decoded {
            self.head_started = Some(self.last_input);
        }
        self.closed
    }
    // ANCHOR_END: answer

    /// The next whole request in the inbox, if there is one; recorded as a decode span
    /// when it produced a request or an error, not when it found only part of one.
    fn decode(&mut self) -> Result<Option<Request>, crate::codec::ProtocolError> {
        let span = trace::span(Cat::Decode, "decode");
        let decoding = self.decoder.decode(&mut self.inbox);
        if matches!(decoding, Ok(None)) {
            span.cancel();
        }
        decoding
    }

    /// Runs `request`'s handler, unless `admission` decides otherwise, and encodes the
    /// reply.
    fn serve(
        &mut self,
        request: &Request,
        dispatcher: &Dispatcher,
        admission: &mut Admission,
        client: Option<BorrowedFd<'_>>,
    ) {
        let decision = if admission.is_open() {
            Decision::Run
        } else {
            admission.decide(client, self.input_ended)
        };
        match decision {
            Decision::Run => {
                let handling = trace::span(Cat::Handle, (request.method.as_str(), request.path()));
                let response = dispatcher.dispatch(request);
                drop(handling);
                response.encode(&Framing::to(request), dispatcher.server(), &mut self.outbox);
                if !request.keep_alive {
                    self.closed = Some(Closed::NotKeepAlive);
                }
            }
            Decision::Refuse(why) => {
                dispatcher.stats().shedding().refused(why);
                let framing = Framing { keep_alive: false, ..Framing::to(request) };
                overload::refusal(why).encode(&framing, dispatcher.server(), &mut self.outbox);
                self.closed = Some(Closed::Refused);
            }
            Decision::Departed => {
                dispatcher.stats().shedding().departed.bump();
                self.inbox.clear();
                self.closed = Some(Closed::Departed);
            }
        }
    }

    // ANCHOR: owes_a_lingering_close
    /// Whether closing for `why` must close in stages (see
    /// [`crate::blocking::linger_close`]): shut the write side, then read and drop input
    /// for up to [`LINGER`], because the client may still be sending and what arrives
    /// after a plain close is answered with a reset that can destroy the last reply.
    ///
    /// Decided as nginx decides by default (`lingering_close on`, in
    /// `ngx_http_finalize_connection`, src/http/ngx_http_request.c): always after an
    /// error or a refusal (nginx's `r->lingering_close`, set when it answers a request
    /// it did not read whole), since the rest of that request may still be on its way;
    /// after `exit` or a request that does not keep the connection alive, only when the
    /// heuristics say the client is still sending: bytes read and not answered (nginx's
    /// `header_in->pos < header_in->last`, and `c->pipeline`), a body still arriving
    /// (`r->reading_body`), or bytes waiting on the socket (`c->read->ready`; here a
    /// non-blocking peek at `client`, when the caller has the socket). A client that
    /// sent `exit` and nothing after it is closed at once: lingering would hold the
    /// connection, and on v1 the only thread, until that client closes or 2 s pass. A
    /// client that has closed its side sends nothing more, so it is never owed one.
    pub fn owes_a_lingering_close(&self, why: Closed, client: Option<BorrowedFd<'_>>) -> bool {
        if self.input_ended || !why.owes_a_lingering_close() {
            return false;
        }
        match why {
            Closed::ProtocolError(_) | Closed::Refused => true,
            _ => {
                !self.inbox.is_empty()
                    || self.decoder.is_reading_body()
                    || client.is_some_and(bytes_waiting)
            }
        }
    }
    // ANCHOR_END: owes_a_lingering_close

    /// Requests answered on this connection so far, error replies included.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    pub fn phase(&self) -> Phase {
        if self.decoder.is_reading_body() {
            Phase::Body
        } else if self.inbox.is_empty() {
            Phase::Idle
        } else {
            Phase::Head
        }
    }

    /// When the request now arriving is overdue (see [`Phase`]), if one is arriving.
    pub fn deadline(&self, request_timeout: Duration) -> Option<Instant> {
        match self.phase() {
            Phase::Idle => None,
            Phase::Head => self.head_started.map(|started| started + request_timeout),
            Phase::Body => Some(self.last_input + request_timeout),
        }
    }

    /// Whether the request now arriving has missed its deadline.
    pub fn is_overdue(&self, now: Instant, request_timeout: Duration) -> bool {
        self.deadline(request_timeout).is_some_and(|deadline| now >= deadline)
    }

    /// Whether the connection may be closed now without losing anything: no reply owed,
    /// no request half read.
    pub fn is_at_rest(&self) -> bool {
        self.outbox.is_empty() && self.phase() == Phase::Idle
    }

    /// Gives back buffer memory a large request or reply left behind, once the buffers are
    /// empty, so a connection that once moved a megabyte does not keep it while idle.
    pub fn release_spare_capacity(&mut self) {
        const KEEP: usize = READ_CHUNK;
        self.inbox.release_spare_capacity(KEEP);
        if self.outbox.is_empty() && self.outbox.capacity() > KEEP {
            self.outbox = Vec::new();
        }
    }
}

/// How long a closing connection keeps reading (and dropping) what the client still
/// sends, at most.
pub const LINGER: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn answered(input: &[u8]) -> (Session, Option<Closed>) {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let mut session = Session::new();
        session.receive(input);
        let closed = session.answer(&dispatcher);
        (session, closed)
    }

    #[test]
    fn a_close_lingers_only_when_the_client_may_still_be_sending() {
        let lingers = |input: &[u8]| {
            let (session, closed) = answered(input);
            let why = closed.expect("the input closes the connection");
            session.owes_a_lingering_close(why, None)
        };
        // Nothing after the request that closes: closed at once (the README's demo).
        assert!(!lingers(b"GET /hello\nexit\n"));
        assert!(!lingers(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        // More behind it, read but not answered: the client is still sending.
        assert!(lingers(b"exit\nGET /hello\n"));
        assert!(lingers(b"GET /hello HTTP/1.0\r\n\r\nGET /hel"));
        // An error or a refusal: the rest of that request may still be on its way.
        assert!(lingers(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(lingers(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999\r\n\r\n"));
        // The client has closed its side: nothing more can come.
        let (mut session, closed) = answered(b"exit\nGET /hello\n");
        session.end_of_input();
        assert!(!session.owes_a_lingering_close(closed.unwrap(), None));
        for why in [Closed::ByPeer, Closed::IdleTimeout, Closed::RequestTimeout, Closed::Departed] {
            assert!(!Session::new().owes_a_lingering_close(why, None), "{why:?}");
        }
    }

    #[test]
    fn bytes_waiting_on_the_socket_make_a_close_linger() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (session, closed) = answered(b"exit\n");
        let why = closed.unwrap();
        assert!(!session.owes_a_lingering_close(why, Some(server.as_fd())));
        client.write_all(b"GET /hello\n").unwrap();
        let arrived =
            crate::testkit::wait_until(crate::testkit::TIMEOUT, || bytes_waiting(server.as_fd()));
        assert!(arrived, "the client's bytes never reached the server's socket");
        assert!(session.owes_a_lingering_close(why, Some(server.as_fd())));
    }
}
