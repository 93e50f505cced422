//! A connection's conversation, and the blocking loop v1, v2 and v3 run it in.
//!
//! [`Session`] holds what a connection has read but not yet answered and what it has
//! answered but not yet written, and turns the one into the other without doing any I/O.
//! The blocking versions drive it with [`serve_connection`] (read, answer, write, repeat);
//! v4's workers drive the very same `Session` from readiness events.

use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::time::{Duration, Instant};

use crate::codec::Decoder;
use crate::dispatcher::Dispatcher;
use crate::response::{Reply, Response};
use crate::server::Config;

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
    /// The request could not be decoded and the stream is out of step; the error reply
    /// with this status was sent.
    ProtocolError(u16),
}

/// The bytes of one connection between the socket and the dispatcher.
#[derive(Debug, Default)]
pub struct Session {
    decoder: Decoder,
    /// Read from the socket, not yet decoded: a partial request, or pipelined ones.
    pub inbox: Vec<u8>,
    /// Encoded replies not yet written to the socket.
    pub outbox: Vec<u8>,
    closed: Option<Closed>,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers every complete request in the inbox, in order, appending the replies to
    /// the outbox. Returns why the connection must close once the outbox is written, if
    /// it must; after that, further input is ignored.
    // ANCHOR: answer
    pub fn answer(&mut self, dispatcher: &Dispatcher) -> Option<Closed> {
        while self.closed.is_none() {
            match self.decoder.decode(&mut self.inbox) {
                Ok(None) => break,
                Ok(Some(request)) if request.is_exit() => {
                    let goodbye = Response::text(200, "Bye! Closing the connection.");
                    goodbye.encode(&Reply::to(&request), dispatcher.server(), &mut self.outbox);
                    self.closed = Some(Closed::Exit);
                }
                Ok(Some(request)) => {
                    let response = dispatcher.dispatch(&request);
                    response.encode(&Reply::to(&request), dispatcher.server(), &mut self.outbox);
                    if !request.keep_alive {
                        self.closed = Some(Closed::NotKeepAlive);
                    }
                }
                Err(error) => {
                    let reply = Reply::to_error(&error);
                    Response::for_error(&error).encode(
                        &reply,
                        dispatcher.server(),
                        &mut self.outbox,
                    );
                    if error.closes_connection() {
                        self.closed = Some(Closed::ProtocolError(error.status()));
                    }
                }
            }
        }
        self.closed
    }
    // ANCHOR_END: answer

    /// Whether part of a request has arrived but not all of it.
    pub fn is_mid_request(&self) -> bool {
        !self.inbox.is_empty() || self.decoder.is_mid_request()
    }

    /// Gives back buffer memory a large request or reply left behind, once the buffers are
    /// empty, so a connection that once moved a megabyte does not keep it while idle.
    pub fn release_spare_capacity(&mut self) {
        const KEEP: usize = 16 * 1024;
        for buffer in [&mut self.inbox, &mut self.outbox] {
            if buffer.is_empty() && buffer.capacity() > KEEP {
                *buffer = Vec::new();
            }
        }
    }
}

/// Serves one connection to the end on the calling thread: the blocking model.
///
/// Generic over the stream so tests can drive it with in-memory bytes. A read that
/// times out (see [`TcpStream::set_read_timeout`]) ends the connection as idle.
// ANCHOR: serve_connection
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    dispatcher: &Dispatcher,
) -> io::Result<Closed> {
    let mut session = Session::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let closed = session.answer(dispatcher);
        if !session.outbox.is_empty() {
            stream.write_all(&session.outbox)?;
            session.outbox.clear();
        }
        if let Some(closed) = closed {
            return Ok(closed);
        }
        // Blocks this thread until the client sends something: the heart of the limit
        // that v1 to v3 share.
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(Closed::ByPeer),
            Ok(n) => session.inbox.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(Closed::IdleTimeout);
            }
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: serve_connection

/// Serves an accepted TCP connection with the blocking loop, counting it in the stats,
/// and closes it without losing the last reply.
pub fn handle_connection(mut stream: TcpStream, dispatcher: &Dispatcher, config: &Config) {
    let _open = dispatcher.stats().connection_opened();
    // Tracked so a shutdown can end this connection's wait for its next request. One that
    // reaches a thread only after the shutdown began (queued in v3's pool) is closed.
    let Some(_tracked) = config.shutdown.track(&stream) else {
        return;
    };
    let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    // The read timeout is the idle timeout; the write timeout stops a client that never
    // reads from pinning this thread forever on a full socket buffer.
    let setup = stream
        .set_read_timeout(Some(config.idle_timeout))
        .and_then(|()| stream.set_write_timeout(Some(config.idle_timeout)))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = setup {
        tracing::warn!(%peer, "cannot set up the socket, closing: {e}");
        return;
    }
    tracing::debug!(%peer, "serving");
    match serve_connection(&mut stream, dispatcher) {
        Ok(closed @ Closed::ProtocolError(_)) => {
            tracing::debug!(%peer, ?closed, "closing after a bad request");
            linger_close(stream);
        }
        Ok(closed) => tracing::debug!(%peer, ?closed, "connection closed"),
        Err(e) => tracing::debug!(%peer, "connection failed: {e}"),
    }
}

/// Closes after an error reply without the client losing it. Closing a socket that still
/// has unread input makes the kernel send RST, and a client still uploading (a 413 body,
/// say) may then lose the reply before reading it. So: send FIN, then read and drop what
/// the client still sends, for a bounded time, before closing.
pub fn linger_close(mut stream: TcpStream) {
    const LINGER: Duration = Duration::from_secs(2);
    let deadline = Instant::now() + LINGER;
    if stream.shutdown(Direction::Write).is_err() {
        return;
    }
    let mut sink = [0u8; 16 * 1024];
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
        let closed = serve_connection(&mut duplex, &dispatcher).unwrap();
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
}
