//! A connection as v4 moves it around: the socket, its [`Session`] (the bytes read but
//! not answered, the replies not yet written, the decoder's state) and its flags, all in
//! one value.
//!
//! That value has exactly one owner at a time: the poller while the connection waits for
//! readiness, one worker while it is served. It moves into the worker's job and back in
//! the re-arm event, so "two workers on one socket" cannot be written, let alone happen.

use std::io::{self, Read, Write};
use std::net::Shutdown as Direction;
use std::time::Instant;

use common::Session;
use common::stats::ConnectionGuard;
use mio::Token;
use mio::net::TcpStream;

use crate::acceptor::Permit;

/// Read at most this much in one go before answering what has arrived; a client
/// streaming requests faster than they are answered cannot grow the inbox without bound.
pub const READ_BATCH: usize = 64 * 1024;

/// What one fill of the inbox ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// Read until `WouldBlock`: the socket is drained, and edge-triggered readiness will
    /// report the next bytes.
    Drained { bytes: usize },
    /// Stopped at [`READ_BATCH`] with more perhaps waiting.
    Batch,
    /// The client closed its side; everything it sent has been read.
    PeerClosed,
}

// ANCHOR: connection
/// One client connection and everything v4 knows about it.
#[derive(Debug)]
pub struct Connection {
    pub token: Token,
    pub stream: TcpStream,
    pub session: Session,
    /// After an error reply: the write side is shut and input is read and dropped until
    /// the client closes, so the client reads the reply instead of a reset.
    pub draining: bool,
    /// When the first byte of a request still incomplete arrived. A request must be whole
    /// within the request timeout: a client trickling its headers (slowloris) is cut off.
    pub request_started: Option<Instant>,
    /// Counts this connection in `/stats` until dropped.
    _open: ConnectionGuard,
    /// Holds this connection's place under `max_connections` until dropped.
    _permit: Permit,
}
// ANCHOR_END: connection

impl Connection {
    pub fn new(token: Token, stream: TcpStream, open: ConnectionGuard, permit: Permit) -> Self {
        Self {
            token,
            stream,
            session: Session::new(),
            draining: false,
            request_started: None,
            _open: open,
            _permit: permit,
        }
    }

    /// Starts or stops the request clock after a turn: running while a request is
    /// incomplete, from its first byte.
    pub fn note_partial_request(&mut self) {
        if !self.session.is_mid_request() {
            self.request_started = None;
        } else if self.request_started.is_none() {
            self.request_started = Some(Instant::now());
        }
    }

    /// Reads into the inbox until the socket has nothing more, the client closes, or a
    /// batch is full.
    pub fn fill_inbox(&mut self) -> io::Result<Filled> {
        let mut chunk = [0u8; 16 * 1024];
        let mut bytes = 0;
        while bytes < READ_BATCH {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Filled::PeerClosed),
                Ok(n) => {
                    self.session.inbox.extend_from_slice(&chunk[..n]);
                    bytes += n;
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

    /// Writes as much of the outbox as the socket takes. True when it is all written;
    /// false on a short write, when the rest waits for the socket to become writable.
    pub fn flush(&mut self) -> io::Result<bool> {
        let mut written = 0;
        let outbox = &self.session.outbox;
        let result = loop {
            if written == outbox.len() {
                break Ok(true);
            }
            match self.stream.write(&outbox[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                // The socket buffer is full: the client reads slower than we write.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.session.outbox.drain(..written);
        result
    }

    /// Sends FIN after an error reply and switches to dropping input until the client
    /// closes (or the poller's linger deadline passes).
    pub fn start_draining(&mut self) {
        // If the shutdown fails the peer is already gone; the next read will say so.
        let _ = self.stream.shutdown(Direction::Write);
        self.session.inbox.clear();
        self.draining = true;
    }

    /// Reads and drops input. True once the client has closed (or the socket failed).
    pub fn discard_input(&mut self) -> bool {
        let mut sink = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}
