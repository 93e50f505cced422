//! The blocking model: a thread serves one connection to the end, as v1, v2 and v3 do.
//!
//! [`answer_until_closed`] drives a [`Session`] with blocking reads and writes (read,
//! answer, write, repeat), with the idle and request timeouts as read timeouts;
//! [`handle_connection`] wraps it for an accepted socket, and [`linger_close`] closes it
//! without losing the last reply. [`incoming`] is the accept loop's `listener.incoming()`,
//! numbering connections and timing the wait in `accept` for the recorder ([`trace`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::dispatcher::Dispatcher;
use crate::overload::Admission;
use crate::server::Config;
use crate::session::{Closed, LINGER, Phase, READ_CHUNK, Session, bytes_waiting};
use crate::trace::{self, Cat};

/// A stream whose reads can be given a time limit: a TCP socket, or a test's in-memory
/// stand-in.
pub trait Transport: Read + Write {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;

    /// The socket, for a look at whether the client has gone; none in memory.
    fn client(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        TcpStream::set_read_timeout(self, Some(timeout))
    }

    fn client(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

/// Serves one connection to the end on the calling thread: the blocking model.
///
/// Generic over the stream so tests can drive it with in-memory bytes. Between requests a
/// read waits at most the idle timeout; within one, at most what is left of the request's
/// deadline (see [`Phase`]).
// ANCHOR: answer_until_closed
pub fn answer_until_closed<S: Transport>(
    stream: &mut S,
    dispatcher: &Dispatcher,
    config: &Config,
) -> io::Result<Closed> {
    answer_until_closed_admitting(stream, dispatcher, config, Admission::open())
        .map(|ending| ending.why)
}

/// How a connection served to the end closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub why: Closed,
    /// Whether it closes in stages: [`Session::owes_a_lingering_close`]'s decision, made
    /// when the last reply was written, with what the session and the socket then held.
    pub lingers: bool,
}

/// [`answer_until_closed`], each request's handler run only if `admission` decides so
/// (see [`crate::overload`]).
pub fn answer_until_closed_admitting<S: Transport>(
    stream: &mut S,
    dispatcher: &Dispatcher,
    config: &Config,
    mut admission: Admission,
) -> io::Result<Ending> {
    let mut session = Session::new();
    let mut chunk = [0u8; READ_CHUNK];
    let mut read_timeout = None;
    loop {
        let closed = session.answer_admitting(dispatcher, &mut admission, stream.client());
        if session.answered() > 0 {
            admission.stop_timing();
        }
        if !session.output().is_empty() {
            let _write = trace::span(Cat::Write, "write").with("bytes", session.output().len());
            stream.write_all(session.output())?;
            session.output_written(session.output().len());
        }
        if let Some(why) = closed {
            let lingers = session.owes_a_lingering_close(why, stream.client());
            return Ok(Ending { why, lingers });
        }
        if session.input_ended() {
            return Ok(Ending { why: Closed::ByPeer, lingers: false });
        }
        let wait = match session.deadline(config.request_timeout) {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => config.idle_timeout,
        };
        // A zero timeout means "none" to the kernel; and a syscall is saved when the
        // timeout has not changed (between keep-alive requests, it never does).
        let wait = wait.max(Duration::from_millis(1));
        if read_timeout != Some(wait) {
            stream.set_read_timeout(wait)?;
            read_timeout = Some(wait);
        }
        // Blocks this thread until the client sends something: the heart of the limit
        // that v1 to v3 share.
        let waiting = trace::span(Cat::Wait, "read");
        let read = stream.read(&mut chunk);
        drop(waiting);
        match read {
            // The client closed its side; the next answer says so if a request is cut.
            Ok(0) => session.end_of_input(),
            Ok(n) => {
                trace::instant(Cat::Read, "read", &[("bytes", n.into())]);
                session.receive(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let why = match session.phase() {
                    Phase::Idle => Closed::IdleTimeout,
                    Phase::Head | Phase::Body => Closed::RequestTimeout,
                };
                return Ok(Ending { why, lingers: false });
            }
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: answer_until_closed

/// Serves an accepted TCP connection with the blocking loop, counting it in the stats,
/// and closes it without losing the last reply. `accepted` is when the accepting thread
/// took it: how long its first request waited for this thread, if shedding asks.
pub fn handle_connection(
    mut stream: TcpStream,
    dispatcher: &Dispatcher,
    config: &Config,
    accepted: Instant,
) {
    let _open = dispatcher.stats().connection_opened();
    // Tracked so a shutdown can end this connection's wait for its next request. One that
    // reaches a thread only after the shutdown began (queued in v3's pool) is closed.
    let Some(_tracked) = config.shutdown.track(&stream) else {
        return;
    };
    let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    // The write timeout stops a client that never reads from pinning this thread forever
    // on a full socket buffer.
    let setup =
        stream.set_write_timeout(Some(config.idle_timeout)).and_then(|()| stream.set_nodelay(true));
    if let Err(e) = setup {
        tracing::warn!(%peer, "cannot set up the socket, closing: {e}");
        return;
    }
    tracing::debug!(%peer, "serving");
    let admission = admission(&stream, config, accepted);
    match answer_until_closed_admitting(&mut stream, dispatcher, config, admission) {
        Ok(Ending { why, lingers: true }) => {
            tracing::debug!(%peer, ?why, "closing in stages");
            linger_close(stream);
            trace::closed(trace::closed_why(why));
        }
        Ok(Ending { why, lingers: false }) => {
            tracing::debug!(%peer, ?why, "connection closed");
            trace::closed(trace::closed_why(why));
        }
        Err(e) => {
            tracing::debug!(%peer, "connection failed: {e}");
            trace::closed(if e.kind() == io::ErrorKind::ConnectionReset {
                "reset"
            } else {
                "error"
            });
        }
    }
}

// ANCHOR: incoming
/// What `listener.incoming()` yields, each connection with its number (1, 2, 3... in
/// accept order, for the recorder; 0 when it is off), the wait in `accept` recorded.
pub fn incoming(listener: &TcpListener) -> impl Iterator<Item = io::Result<(TcpStream, u64)>> {
    std::iter::repeat_with(move || {
        let waiting = trace::span(Cat::Wait, "accept");
        let accepted = listener.accept();
        drop(waiting);
        let (stream, _) = accepted?;
        let conn = trace::next_conn();
        trace::accepted(conn);
        Ok((stream, conn))
    })
}
// ANCHOR_END: incoming

/// What decides whether a connection's requests are served (see [`crate::overload`]).
/// Its first request waited since `accepted` if it was already in when this thread took
/// the connection; if not, it comes now, to a free thread, and has waited for nothing
/// (the accept time would make a client that connects and thinks look expired).
fn admission(stream: &TcpStream, config: &Config, accepted: Instant) -> Admission {
    if config.shedding.is_off() {
        return Admission::open();
    }
    let request_in = bytes_waiting(stream.as_fd());
    Admission::new(config.shedding, request_in.then_some(accepted))
}

// ANCHOR: linger_close
/// Closes without the client losing its last reply (RFC 9112 §9.6; nginx's lingering
/// close). Closing a socket that still has unread input, or that receives more after the
/// close, makes the kernel send RST, and the reset drops the reply bytes the kernel had
/// not delivered yet (the client reads what had arrived, then `ECONNRESET`; some stacks
/// also discard what arrived but was not read). So: everything owed is
/// already written; send FIN (`shutdown(Write)`), then read and drop what the client
/// still sends until it closes too, for at most [`LINGER`] in all. Owed only when the
/// client may still be sending, as nginx decides ([`Session::owes_a_lingering_close`]):
/// after an error, or with more input behind the last request; a client that sent
/// `exit` and nothing after it is closed at once, so it holds no thread for 2 s.
pub fn linger_close(mut stream: TcpStream) {
    let deadline = Instant::now() + LINGER;
    if stream.shutdown(Direction::Write).is_err() {
        return;
    }
    let mut sink = [0u8; READ_CHUNK];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
// ANCHOR_END: linger_close

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory connection: reads come from `input`, writes collect in `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Transport for Duplex {
        fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn transcript(input: &[u8]) -> (Closed, String) {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let mut duplex = Duplex { input: Cursor::new(input.to_vec()), output: Vec::new() };
        let closed = answer_until_closed(&mut duplex, &dispatcher, &Config::default()).unwrap();
        (closed, String::from_utf8(duplex.output).unwrap())
    }

    #[test]
    fn line_session_like_the_article() {
        let (closed, out) = transcript(b"GET /hello\nnonsense\nGET /nowhere\nexit\nGET /hello\n");
        assert_eq!(closed, Closed::Exit);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "200 Hello, World!");
        assert!(lines[1].starts_with("400 "), "{out}");
        assert_eq!(lines[2], "404 no route for /nowhere");
        assert_eq!(lines[3], "200 Bye! Closing the connection.");
        assert_eq!(lines.len(), 4, "nothing is answered after exit: {out}");
    }

    #[test]
    fn peer_close_ends_the_loop() {
        let (closed, out) = transcript(b"GET /hello\r\n");
        assert_eq!((closed, out.as_str()), (Closed::ByPeer, "200 Hello, World!\n"));
    }

    #[test]
    fn http_close_and_error_end_the_connection() {
        let (closed, out) =
            transcript(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /hello\n");
        assert_eq!(closed, Closed::NotKeepAlive);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 1, "{out}");

        let (closed, out) = transcript(b"GET /hello HTTP/1.1\r\n\r\n");
        assert_eq!(closed, Closed::ProtocolError(400));
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n") && out.contains("Connection: close")
        );
    }

    const LIMIT: Duration = Duration::from_secs(20);

    #[test]
    fn the_head_deadline_runs_from_each_requests_first_byte() {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let mut session = Session::new();
        assert_eq!((session.phase(), session.deadline(LIMIT)), (Phase::Idle, None));

        let start = Instant::now();
        session.receive_at(b"GET /hel", start);
        assert_eq!(session.deadline(LIMIT), Some(start + LIMIT), "from the head's first byte");
        assert_eq!(session.phase(), Phase::Head);
        let later = start + Duration::from_millis(20);
        session.receive_at(b"lo\nGET /he", later);
        assert_eq!(session.answer(&dispatcher), None);
        // One request done; the next began with the last read, and has its own clock.
        assert_eq!(session.deadline(LIMIT), Some(later + LIMIT), "the next head's own clock");
        session.receive_at(b"llo\n", later + Duration::from_millis(20));
        session.answer(&dispatcher);
        assert_eq!((session.phase(), session.deadline(LIMIT)), (Phase::Idle, None));
        assert_eq!(session.output(), b"200 Hello, World!\n200 Hello, World!\n");
        assert!(!session.is_at_rest(), "two replies are owed");
        let mut sending = Vec::new();
        session.take_output(&mut sending);
        assert_eq!(sending, b"200 Hello, World!\n200 Hello, World!\n");
        assert!(session.is_at_rest());
    }

    #[test]
    fn the_body_deadline_runs_from_the_last_read() {
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let mut session = Session::new();
        let start = Instant::now();
        let head = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab";
        session.receive_at(head, start);
        session.answer(&dispatcher);
        assert_eq!(session.phase(), Phase::Body);
        assert_eq!(session.deadline(LIMIT), Some(start + LIMIT), "a body is arriving");
        let later = start + Duration::from_millis(20);
        session.receive_at(b"c", later);
        session.answer(&dispatcher);
        assert_eq!(session.deadline(LIMIT), Some(later + LIMIT), "restarted by the read");
        assert!(!session.is_overdue(start + LIMIT, LIMIT), "not by the first read's clock");
        assert!(session.is_overdue(later + LIMIT, LIMIT));
    }

    #[test]
    fn expect_100_continue_gets_its_go_ahead_before_the_body() {
        // The client then closes without sending its body: a 400 says so.
        let (closed, out) = transcript(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(closed, Closed::ProtocolError(400));
        let (go_ahead, refusal) = out.split_at("HTTP/1.1 100 Continue\r\n\r\n".len());
        assert_eq!(go_ahead, "HTTP/1.1 100 Continue\r\n\r\n", "{out}");
        assert!(refusal.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(refusal.ends_with("the client closed its side with a request half sent"), "{out}");
    }

    #[test]
    fn a_request_that_will_be_refused_gets_no_go_ahead() {
        for (path, status) in [("/nowhere", "404 Not Found"), ("/hello", "405 Method Not Allowed")]
        {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
            );
            let (closed, out) = transcript(head.as_bytes());
            assert!(out.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{out}");
            assert!(!out.contains("100 Continue") && out.contains("Connection: close"), "{out}");
            assert!(matches!(closed, Closed::ProtocolError(404 | 405)), "{closed:?}");
        }
    }

    #[test]
    fn input_ending_mid_request_is_answered_in_its_protocol() {
        let (closed, out) = transcript(b"GET /hello\nGET /hel");
        assert_eq!(closed, Closed::ProtocolError(400));
        assert_eq!(
            out,
            "200 Hello, World!\n400 the client closed its side with a request half sent\n"
        );
        let (_, out) = transcript(b"GET /hello HTTP/1.1\r\nHost: t\r\n");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        let (_, out) =
            transcript(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        // Blank lines at the end are not a request.
        let (closed, out) = transcript(b"GET /hello\n\r\n\r");
        assert_eq!((closed, out.as_str()), (Closed::ByPeer, "200 Hello, World!\n"));
    }

    #[test]
    fn only_a_close_with_input_perhaps_in_flight_lingers() {
        for closed in [Closed::Exit, Closed::NotKeepAlive, Closed::ProtocolError(400)] {
            assert!(closed.owes_a_lingering_close(), "{closed:?}");
        }
        for closed in [Closed::ByPeer, Closed::IdleTimeout, Closed::RequestTimeout] {
            assert!(!closed.owes_a_lingering_close(), "{closed:?}");
        }
    }
}
