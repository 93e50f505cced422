//! A client that speaks both protocols, for writing tests as transcripts, and the two
//! questions every version's tests ask with it: does it speak both, is a newcomer answered.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{TIMEOUT, transcript};

/// A reply read by [`Client::read_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client that speaks both protocols, for writing tests as transcripts.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<transcript::Recorded>,
}

impl Client {
    /// Connects, with reads that give up after [`TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self { reader: BufReader::new(transcript::Recorded(stream)) })
    }

    /// Wraps a stream already connected, with reads that give up after [`TIMEOUT`].
    pub fn from_stream(stream: TcpStream) -> Self {
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let _ = stream.set_nodelay(true);
        Self { reader: BufReader::new(transcript::Recorded(stream)) }
    }

    /// Changes how long a read waits before failing with `WouldBlock`.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().0.set_read_timeout(Some(timeout))
    }

    pub fn stream(&self) -> &TcpStream {
        &self.reader.get_ref().0
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        transcript::note(transcript::Direction::Sent, bytes);
        self.reader.get_mut().0.write_all(bytes)
    }

    /// Sends one line-protocol request and returns the reply line without its newline.
    pub fn line(&mut self, request: &str) -> io::Result<String> {
        self.send(format!("{request}\n").as_bytes())?;
        self.read_line()
    }

    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).map_err(|e| self.said_plainly(e))?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Sends `GET path HTTP/1.1` (keep-alive) and reads the response.
    pub fn get(&mut self, path: &str) -> io::Result<HttpResponse> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
        self.read_response()
    }

    /// Reads one HTTP response, its body by `Content-Length`.
    pub fn read_response(&mut self) -> io::Result<HttpResponse> {
        let status_line = self.read_line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP status line: {status_line}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| io::Error::other(format!("bad header: {line}")))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = HttpResponse { status, headers, body: Vec::new() };
        let length: usize =
            response.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        response.body.resize(length, 0);
        self.reader.read_exact(&mut response.body).map_err(|e| self.said_plainly(e))?;
        Ok(response)
    }

    /// A read that gave up waiting says so, as "no answer within 10s", not as the
    /// kernel's "Resource temporarily unavailable (os error 11)"; its kind is kept, for
    /// the callers that tell a wait from a failure.
    fn said_plainly(&self, e: io::Error) -> io::Error {
        if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return e;
        }
        match self.stream().read_timeout() {
            Ok(Some(wait)) => io::Error::new(e.kind(), format!("no answer within {wait:?}")),
            _ => io::Error::new(e.kind(), "no answer in time"),
        }
    }

    /// Whether an answer has arrived and waits to be read: a look, not a wait, for a test
    /// that asks which of two answers came first.
    pub fn has_answer_waiting(&self) -> io::Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let stream = self.stream();
        stream.set_nonblocking(true)?;
        let peeked = stream.peek(&mut [0u8; 1]);
        stream.set_nonblocking(false)?;
        match peeked {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `exit` and checks the goodbye, and that the server then closes the
    /// connection.
    pub fn check_exit(&mut self) {
        assert_eq!(
            self.line("exit").expect("an answer to exit"),
            "200 Bye! Closing the connection."
        );
        assert!(self.is_closed_by_server(), "the connection outlived its exit");
    }

    /// True if the server has closed the connection: a read returns end-of-file (or a
    /// reset) within [`TIMEOUT`] with nothing more to say.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// The transcript every version's tests open with, on one connection: `GET /hello` in
/// the line protocol, then over HTTP/1.1 with a `Server` header naming `server`.
pub fn speaks_both_protocols(client: &mut Client, server: &str) {
    let line = client.line("GET /hello").expect("an answer in the line protocol");
    assert_eq!(line, "200 Hello, World!");
    let r = client.get("/hello").expect("an answer over HTTP");
    assert_eq!((r.status, r.header("server")), (200, Some(server)), "{r:?}");
}

/// A new client's whole session: [`speaks_both_protocols`], then `exit`, which the
/// server answers before it closes the connection.
pub fn speaks_both_protocols_then_exits(addr: SocketAddr, server: &str) {
    let mut client = Client::connect(addr).expect("connect");
    speaks_both_protocols(&mut client, server);
    client.check_exit();
}

/// Sends `count` `GET /echo` requests in one write, each numbered, and checks that the
/// answers come back whole and in order: pipelining, as a server that reads more than one
/// request at a time must keep it.
pub fn check_pipelined_echoes(client: &mut Client, count: usize) {
    let batch: String =
        (0..count).map(|i| format!("GET /echo?msg={i} HTTP/1.1\r\nHost: t\r\n\r\n")).collect();
    client.send(batch.as_bytes()).expect("send the batch");
    for i in 0..count {
        assert_eq!(client.read_response().expect("an answer").text(), i.to_string());
    }
}

/// Whether a new client gets an answer to `GET /hello` within `wait`.
pub fn answered_within(addr: SocketAddr, wait: Duration) -> bool {
    let mut client = match Client::connect(addr) {
        Ok(client) => client,
        Err(_) => return false,
    };
    client.set_timeout(wait).is_ok()
        && client.line("GET /hello").is_ok_and(|r| r == "200 Hello, World!")
}
