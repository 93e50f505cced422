//! The incremental request decoder every version shares.
//!
//! Bytes go into a buffer as they arrive from the socket; [`Decoder::decode`] takes the
//! next complete request off the front of that buffer, or says it needs more bytes. A
//! request split over many reads, or many requests pipelined into one read, decode the
//! same way, which is what lets the blocking versions and v4's event loop use exactly the
//! same parser.
//!
//! Two protocols are told apart per request, from the first line:
//!
//! * a line ending in ` HTTP/1.0` or ` HTTP/1.1` starts an HTTP request, whose head is
//!   parsed by `httparse` and whose body is read by `Content-Length`;
//! * anything else is the line protocol of the articles: `METHOD /path [body]`, one per
//!   line, and `exit` to leave.

use std::fmt;

/// Longest request head accepted, request line included (414 or 431 beyond it).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields accepted in one request (431 beyond it).
pub const MAX_HEADERS: usize = 100;
/// Largest request body accepted (413 beyond it).
pub const MAX_BODY: usize = 1024 * 1024;

/// Which protocol a request arrived in, and therefore which form its reply takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The line protocol: `GET /hello` in, `200 Hello, World!` out.
    Line,
    /// HTTP/1.0: closes after each response unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1: keep-alive unless the client says `Connection: close`.
    Http11,
}

/// One header field as received; the value is bytes because HTTP allows non-UTF-8 there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

/// A complete request, whichever protocol it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub protocol: Protocol,
    /// `GET`, `POST`, …; upper case in the line protocol whatever the client typed.
    pub method: String,
    /// The request target as sent: the path, then `?query` if there is one.
    pub target: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the reply.
    pub keep_alive: bool,
}

impl Request {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The first value of `key` in the query string, percent-decoded (`+` is a space).
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
    }

    /// The line protocol's `exit`: the client is leaving and wants a goodbye.
    pub fn is_exit(&self) -> bool {
        self.protocol == Protocol::Line && self.method == "EXIT" && self.target.is_empty()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                match hex.map(|h| h.iter().fold(0u8, |acc, &d| acc << 4 | hex_value(d))) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    // Not an escape after all: keep the `%` as it came.
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of a digit already known to be hexadecimal.
fn hex_value(digit: u8) -> u8 {
    (digit as char).to_digit(16).unwrap_or(0) as u8
}

/// Why a request could not be decoded. Each kind maps to the status its reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// No end of the request line within [`MAX_HEAD`] bytes.
    UriTooLong,
    /// The request line fits, but the whole head does not end within [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// `Content-Length` above [`MAX_BODY`].
    BodyTooLarge { length: u64 },
    /// An HTTP version other than 1.0 and 1.1.
    UnsupportedVersion(String),
    /// The head is not valid HTTP (httparse's verdict, or a rule of ours).
    BadRequest(String),
    /// `Transfer-Encoding` without `Content-Length`: chunked bodies are not implemented.
    TransferEncoding,
    /// A line-protocol line that does not read `METHOD /path [body]`. The line has been
    /// consumed, so the connection stays in step and can go on.
    BadLine(String),
}

impl ProtocolError {
    /// The status code of the error reply.
    pub fn status(&self) -> u16 {
        match self {
            Self::UriTooLong => 414,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedVersion(_) => 505,
            Self::BadRequest(_) | Self::BadLine(_) => 400,
            Self::TransferEncoding => 501,
        }
    }

    /// The protocol the error reply is written in. A request line too long to see its
    /// end could be either; HTTP is the form both curl and a human at `nc` can read.
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::BadLine(_) => Protocol::Line,
            _ => Protocol::Http11,
        }
    }

    /// Whether the stream is out of step after this error, so the server must close.
    /// Only a bad line leaves it in step: the line was read whole and thrown away.
    pub fn closes_connection(&self) -> bool {
        !matches!(self, Self::BadLine(_))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UriTooLong => write!(f, "request line longer than {MAX_HEAD} bytes"),
            Self::HeadTooLarge => write!(f, "request head longer than {MAX_HEAD} bytes"),
            Self::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header fields"),
            Self::BodyTooLarge { length } => {
                write!(f, "body of {length} bytes is over the {MAX_BODY}-byte limit")
            }
            Self::UnsupportedVersion(v) => write!(f, "{v} is not supported; use HTTP/1.0 or 1.1"),
            Self::BadRequest(why) => write!(f, "bad request: {why}"),
            Self::TransferEncoding => {
                write!(f, "Transfer-Encoding is not implemented; send Content-Length")
            }
            Self::BadLine(why) => {
                write!(f, "{why}; expected `METHOD /path [body]`, e.g. `GET /hello`")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A parsed HTTP head waiting for its body to arrive.
#[derive(Debug)]
struct PendingBody {
    request: Request,
    head_len: usize,
    body_len: usize,
}

/// How far the search for the end of the current request's head has got, so that bytes
/// trickling in one at a time are each looked at once, not once per read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Looking for the end of the first line; no LF in the first `searched` bytes.
    FirstLine { searched: usize },
    /// An HTTP request line was found; looking for the blank line that ends the head,
    /// which cannot start before `searched`.
    Head { protocol: Protocol, searched: usize },
}

impl Default for Scan {
    fn default() -> Self {
        Self::FirstLine { searched: 0 }
    }
}

/// Takes requests off the front of a connection's read buffer.
///
/// The state kept between calls is how far the buffer has been searched, and a head
/// already parsed while its body is still arriving; neither changes what is decoded, only
/// how often the same bytes are looked at.
#[derive(Debug, Default)]
pub struct Decoder {
    scan: Scan,
    pending: Option<PendingBody>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether part of a request has been taken in (a head waiting for its body).
    pub fn is_mid_request(&self) -> bool {
        self.pending.is_some()
    }

    /// Removes the next complete request from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed. After an error for which
    /// [`ProtocolError::closes_connection`] is true the stream is out of step and the
    /// caller must stop decoding.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Request>, ProtocolError> {
        if let Some(mut pending) = self.pending.take() {
            let end = pending.head_len + pending.body_len;
            if buf.len() < end {
                self.pending = Some(pending);
                return Ok(None);
            }
            pending.request.body = buf[pending.head_len..end].to_vec();
            buf.drain(..end);
            return Ok(Some(pending.request));
        }
        // Only the first MAX_HEAD bytes are ever searched: past them is over the limit.
        let window = buf.len().min(MAX_HEAD);
        loop {
            match self.scan {
                Scan::FirstLine { searched } => {
                    let Some(lf) = buf[searched..window].iter().position(|&b| b == b'\n') else {
                        self.scan = Scan::FirstLine { searched: window };
                        return if buf.len() >= MAX_HEAD {
                            Err(ProtocolError::UriTooLong)
                        } else {
                            Ok(None)
                        };
                    };
                    let lf = searched + lf;
                    let line = trim_cr(&buf[..lf]);
                    match http_version(line) {
                        Some(Ok(protocol)) => self.scan = Scan::Head { protocol, searched: lf },
                        Some(Err(version)) => {
                            return Err(ProtocolError::UnsupportedVersion(version));
                        }
                        None => {
                            let blank = line.trim_ascii().is_empty();
                            let parsed = if blank { None } else { Some(parse_line(line)) };
                            buf.drain(..=lf);
                            self.scan = Scan::default();
                            // Blank lines between requests are skipped: telnet users press
                            // Enter, and HTTP asks servers to ignore one before a request.
                            if let Some(parsed) = parsed {
                                return parsed.map(Some);
                            }
                            return self.decode(buf);
                        }
                    }
                }
                Scan::Head { protocol, searched } => {
                    let Some(head_len) = find_head_end(&buf[..window], searched) else {
                        // A blank line may begin in the last two bytes: look there again.
                        let searched = searched.max(window.saturating_sub(2));
                        self.scan = Scan::Head { protocol, searched };
                        return if buf.len() >= MAX_HEAD {
                            Err(ProtocolError::HeadTooLarge)
                        } else {
                            Ok(None)
                        };
                    };
                    self.scan = Scan::default();
                    let (request, body_len) = parse_http_head(&buf[..head_len], protocol)?;
                    self.pending = Some(PendingBody { request, head_len, body_len });
                    return self.decode(buf);
                }
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ANCHOR: detect
/// `Some(Ok(_))` for an HTTP/1.x request line, `Some(Err(version))` for another HTTP
/// version, `None` for the line protocol.
fn http_version(line: &[u8]) -> Option<Result<Protocol, String>> {
    let last = line.rsplit(|&b| b == b' ').next()?;
    match last {
        b"HTTP/1.1" => Some(Ok(Protocol::Http11)),
        b"HTTP/1.0" => Some(Ok(Protocol::Http10)),
        // Only a request line of three parts is HTTP; `POST /echo HTTP/2 rocks` is a line.
        v if v.starts_with(b"HTTP/") && line.split(|&b| b == b' ').count() == 3 => {
            Some(Err(String::from_utf8_lossy(v).into_owned()))
        }
        _ => None,
    }
}
// ANCHOR_END: detect

/// The end of the head: just past the blank line that ends it (CRLF or bare LF), looking
/// for the LF that starts it at `from` or later.
fn find_head_end(window: &[u8], from: usize) -> Option<usize> {
    (from..window.len()).find_map(|i| {
        if window[i] != b'\n' {
            return None;
        }
        match &window[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

fn parse_line(line: &[u8]) -> Result<Request, ProtocolError> {
    let line = std::str::from_utf8(line)
        .map_err(|_| ProtocolError::BadLine("the line is not valid UTF-8".into()))?
        .trim();
    let (method, rest) = line.split_once(' ').unwrap_or((line, ""));
    if method.eq_ignore_ascii_case("exit") && rest.trim().is_empty() {
        return Ok(line_request("EXIT", String::new(), Vec::new()));
    }
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ProtocolError::BadLine(format!("`{}` is not a method", truncate(method))));
    }
    let (target, body) = rest.trim_start().split_once(' ').unwrap_or((rest.trim_start(), ""));
    if target.is_empty() {
        return Err(ProtocolError::BadLine(format!("`{}` has no path", truncate(method))));
    }
    if !target.starts_with('/') {
        return Err(ProtocolError::BadLine("the path must start with `/`".into()));
    }
    Ok(line_request(&method.to_ascii_uppercase(), target.to_owned(), body.as_bytes().to_vec()))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(32) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn line_request(method: &str, target: String, body: Vec<u8>) -> Request {
    Request {
        protocol: Protocol::Line,
        method: method.to_owned(),
        target,
        headers: Vec::new(),
        body,
        keep_alive: true,
    }
}

fn parse_http_head(head: &[u8], protocol: Protocol) -> Result<(Request, usize), ProtocolError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ProtocolError::BadRequest("incomplete request head".into()));
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::TooManyHeaders),
        Err(e) => return Err(ProtocolError::BadRequest(e.to_string())),
    }
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(ProtocolError::BadRequest("incomplete request line".into()));
    };
    let headers: Vec<Header> = parsed
        .headers
        .iter()
        .map(|h| Header { name: h.name.to_owned(), value: h.value.to_vec() })
        .collect();

    let named =
        |name: &'static str| headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name));
    if protocol == Protocol::Http11 && named("host").count() != 1 {
        return Err(ProtocolError::BadRequest("HTTP/1.1 needs exactly one Host header".into()));
    }
    let content_length = content_length(named("content-length").map(|h| h.value.as_slice()))?;
    if named("transfer-encoding").next().is_some() {
        return Err(match content_length {
            // Both framings at once is the classic request-smuggling shape.
            Some(_) => {
                ProtocolError::BadRequest("Transfer-Encoding and Content-Length together".into())
            }
            None => ProtocolError::TransferEncoding,
        });
    }
    let body_len = match content_length {
        Some(length) if length > MAX_BODY as u64 => {
            return Err(ProtocolError::BodyTooLarge { length });
        }
        Some(length) => length as usize,
        None => 0,
    };

    let mut keep_alive = protocol == Protocol::Http11;
    for value in named("connection").map(|h| h.value.as_slice()) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if token.eq_ignore_ascii_case(b"keep-alive") && protocol == Protocol::Http10 {
                keep_alive = true;
            }
        }
    }
    let request = Request {
        protocol,
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: Vec::new(),
        keep_alive,
    };
    Ok((request, body_len))
}

/// Every `Content-Length` must be plain digits, and all of them the same number.
fn content_length<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<u64>, ProtocolError> {
    let mut length = None;
    for value in values {
        let digits = value.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ProtocolError::BadRequest("Content-Length is not a number".into()));
        }
        // All digits, so the only way to fail is overflow: a length far past the limit.
        let n = std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).unwrap_or(u64::MAX);
        if length.is_some_and(|l| l != n) {
            return Err(ProtocolError::BadRequest("differing Content-Length headers".into()));
        }
        length = Some(n);
    }
    Ok(length)
}

#[cfg(test)]
mod tests;
