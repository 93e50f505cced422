//! The grader's client: raw bytes on a socket, every wait bounded, and what was received
//! kept to be shown. Unlike testkit's client it assumes nothing of the server: an answer
//! may be a line, an HTTP response with or without `Content-Length`, chunked, partial,
//! or nothing at all, and each of those is something to report, not an error to unwrap.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long the grader waits for an answer the protocol owes, by default.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// A connection to the graded server and every byte it has sent on it.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet taken by a read below.
    pending: Vec<u8>,
    /// The server closed its side (a read returned end of input).
    pub closed: bool,
}

/// What came back when the grader waited for something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got<T> {
    Answer(T),
    /// Nothing complete within the wait; the bytes that did arrive.
    Silent(Vec<u8>),
    /// The server closed (or reset) first; the bytes that arrived before.
    Closed(Vec<u8>),
}

/// An HTTP response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How the body's end was known: `content-length`, `chunked` or `close`.
    pub framing: &'static str,
    /// The whole response, as received.
    pub raw: Vec<u8>,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, ANSWER_WAIT)?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, pending: Vec::new(), closed: false })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `bytes` one at a time, `gap` apart: a request split across writes.
    pub fn send_split(&mut self, bytes: &[u8], gap: Duration) -> io::Result<()> {
        for byte in bytes {
            self.stream.write_all(std::slice::from_ref(byte))?;
            std::thread::sleep(gap);
        }
        Ok(())
    }

    /// Reads until `complete` finds an answer in what has arrived, the server closes, or
    /// `wait` passes. `complete` returns the answer and how many bytes it took.
    fn read_until<T>(
        &mut self,
        wait: Duration,
        mut complete: impl FnMut(&[u8], bool) -> Option<(T, usize)>,
    ) -> io::Result<Got<T>> {
        let deadline = Instant::now() + wait;
        let mut tried = false;
        loop {
            if let Some((answer, used)) = complete(&self.pending, self.closed) {
                self.pending.drain(..used);
                return Ok(Got::Answer(answer));
            }
            if self.closed {
                return Ok(Got::Closed(std::mem::take(&mut self.pending)));
            }
            // At least one read, however short the wait: what has already arrived counts
            // even when the caller's deadline has passed.
            if tried && Instant::now() >= deadline {
                return Ok(Got::Silent(std::mem::take(&mut self.pending)));
            }
            tried = true;
            let left = deadline.saturating_duration_since(Instant::now());
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line (without its `\n` or `\r\n`).
    pub fn line(&mut self, wait: Duration) -> io::Result<Got<String>> {
        self.read_until(wait, |bytes, _| {
            let end = bytes.iter().position(|&b| b == b'\n')?;
            let line = String::from_utf8_lossy(&bytes[..end]).trim_end_matches('\r').to_owned();
            Some((line, end + 1))
        })
    }

    /// The next HTTP response.
    pub fn http(&mut self, wait: Duration) -> io::Result<Got<Http>> {
        self.read_until(wait, parse_http)
    }

    /// Whether the server closes this connection within `wait` (after sending nothing
    /// more than what is returned).
    pub fn closes_within(&mut self, wait: Duration) -> io::Result<(bool, Vec<u8>)> {
        match self.read_until(wait, |_, _| None::<((), usize)>)? {
            Got::Closed(rest) => Ok((true, rest)),
            Got::Silent(rest) => Ok((false, rest)),
            Got::Answer(()) => unreachable!("no answer is ever complete"),
        }
    }
}

/// One response from the front of `bytes`, if it is all there. `closed`: nothing more
/// will arrive, so a body without a length ends here.
fn parse_http(bytes: &[u8], closed: bool) -> Option<(Http, usize)> {
    let head_end =
        find(bytes, b"\r\n\r\n").map(|i| i + 4).or_else(|| find(bytes, b"\n\n").map(|i| i + 2))?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.lines();
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.to_owned();
    let status: u16 = parts.next()?.parse().ok()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let find_header = |name: &str| {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let rest = &bytes[head_end..];
    let (body, used, framing) = if status == 100 || status == 204 || status == 304 {
        (Vec::new(), 0, "content-length")
    } else if let Some(length) = find_header("content-length") {
        let length: usize = length.parse().ok()?;
        if rest.len() < length {
            return None;
        }
        (rest[..length].to_vec(), length, "content-length")
    } else if find_header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let (body, used) = dechunk(rest)?;
        (body, used, "chunked")
    } else if closed {
        (rest.to_vec(), rest.len(), "close")
    } else {
        return None;
    };
    let used = head_end + used;
    let raw = bytes[..used].to_vec();
    Some((Http { status, version, headers, body, framing, raw }, used))
}

/// A chunked body, if it is complete: its bytes and how many bytes it took.
fn dechunk(mut bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = bytes.len();
    let mut body = Vec::new();
    loop {
        let line_end = find(bytes, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            let end = find(bytes, b"\r\n")?;
            let trailer_end = if end == 0 { 2 } else { find(bytes, b"\r\n\r\n")? + 4 };
            bytes = &bytes[trailer_end..];
            return Some((body, start - bytes.len()));
        }
        if bytes.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Bytes as a reader can see them: printable ASCII as is, `\r` `\n` `\t` escaped, the
/// rest as `\xNN`; cut after `max` bytes, saying how many more there were.
pub fn show(bytes: &[u8], max: usize) -> String {
    let mut text = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\t' => text.push_str("\\t"),
            b'\\' => text.push_str("\\\\"),
            0x20..=0x7e => text.push(b as char),
            _ => text.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        text.push_str(&format!("… ({} more bytes)", bytes.len() - max));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_by_length_chunks_or_close() {
        let fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        let (r, used) = parse_http(fixed, false).expect("complete");
        assert_eq!(
            (r.status, r.body.as_slice(), r.framing, used),
            (200, &b"hello"[..], "content-length", 43)
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (r, used) = parse_http(chunked, false).expect("complete");
        assert_eq!((r.body.as_slice(), r.framing, used), (&b"hello"[..], "chunked", chunked.len()));
        let open = b"HTTP/1.0 200 OK\r\n\r\nhel";
        assert!(
            parse_http(open, false).is_none(),
            "a body without a length ends only at the close"
        );
        assert_eq!(parse_http(open, true).map(|(r, _)| r.body), Some(b"hel".to_vec()));
        assert!(parse_http(b"200 Hello, World!\n", true).is_none(), "a line is not HTTP");
    }

    #[test]
    fn bytes_are_shown_escaped_and_cut() {
        assert_eq!(show(b"GET /\r\n\x00", 100), "GET /\\r\\n\\x00");
        assert_eq!(show(b"abcdef", 3), "abc… (3 more bytes)");
    }
}
