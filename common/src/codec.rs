//! The incremental request decoder every version shares.
//!
//! Bytes go into an [`Inbox`] as they arrive from the socket; [`Decoder::decode`] takes
//! the next complete request off its front, or says it needs more bytes. A request split
//! over many reads, or many requests pipelined into one read, decode the same way, which
//! is what lets the blocking versions and the event loops use exactly the same parser.
//!
//! Two protocols are told apart per request, from the first line:
//!
//! * a line ending in an HTTP version starts an HTTP request, whose head is parsed by
//!   `httparse` and whose body is read by `Content-Length` or in chunks; a first line
//!   whose last word merely looks like a version (`http/1.1`, a stray space) is a bad
//!   HTTP request;
//! * anything else is the line protocol of the Java article: `METHOD /path [body]`, one per
//!   line, and `exit` to leave.
//!
//! Whatever the bytes, decoding uses bounded stack (a loop, no recursion) and bounded
//! memory (the limits below), and looks at each byte a bounded number of times.

use std::fmt;

mod body;

use body::Body;

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

#[cfg(test)]
impl Request {
    /// `GET target` over HTTP/1.1 with nothing else, for unit tests.
    pub(crate) fn get(target: &str) -> Self {
        Self {
            protocol: Protocol::Http11,
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            keep_alive: true,
        }
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
    /// A transfer coding before the final `chunked` (`gzip, chunked`, say), which this
    /// server does not decode: 501. A coding list that does not end in `chunked` is a
    /// framing error instead (400), since the body's end could not be found.
    TransferEncoding(String),
    /// More than [`MAX_HEAD`] bytes of blank lines where a request should start.
    TooManyBlankLines,
    /// A line-protocol line that does not read `METHOD /path [body]`. The line has been
    /// consumed, so the connection stays in step and can go on.
    BadLine(String),
    /// The client closed its side with a request half sent, in the protocol it began in.
    Truncated { protocol: Protocol },
}

impl ProtocolError {
    /// The status code of the error reply.
    pub fn status(&self) -> u16 {
        match self {
            Self::UriTooLong => 414,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedVersion(_) => 505,
            Self::BadRequest(_)
            | Self::BadLine(_)
            | Self::TooManyBlankLines
            | Self::Truncated { .. } => 400,
            Self::TransferEncoding(_) => 501,
        }
    }

    /// The protocol the error reply is written in. A request line too long to see its
    /// end could be either; HTTP is the form both curl and a human at `nc` can read.
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::BadLine(_) => Protocol::Line,
            Self::Truncated { protocol } => *protocol,
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
            Self::TransferEncoding(coding) => {
                write!(
                    f,
                    "transfer coding {coding} is not implemented; send the body as is or chunked"
                )
            }
            Self::TooManyBlankLines => {
                write!(f, "more than {MAX_HEAD} bytes of blank lines and no request")
            }
            Self::BadLine(why) => {
                write!(f, "{why}; expected `METHOD /path [body]`, e.g. `GET /hello`")
            }
            Self::Truncated { .. } => {
                write!(f, "the client closed its side with a request half sent")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Bytes read from a connection and not yet decoded.
///
/// Decoding a request advances a start offset instead of shifting the bytes that follow
/// it to the front, so N requests pipelined into one read cost O(N), not O(N²). The bytes
/// before the offset are reclaimed when the buffer empties, or before the next read adds
/// to it (moving at most one partial request).
#[derive(Debug, Default)]
pub struct Inbox {
    bytes: Vec<u8>,
    start: usize,
}

impl Inbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes not yet decoded.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes just read.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Drops everything not yet decoded (the connection is closing).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// Marks the first `n` bytes as decoded.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.bytes.len() {
            self.clear();
        }
    }

    /// Gives back memory a large request left behind, once the inbox is empty.
    pub fn release_spare_capacity(&mut self, keep: usize) {
        if self.is_empty() && self.bytes.capacity() > keep {
            self.bytes = Vec::new();
        }
    }
}

/// A parsed HTTP head whose body is still arriving.
#[derive(Debug)]
struct PendingBody {
    request: Request,
    body: Body,
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

/// Takes requests off the front of a connection's [`Inbox`].
///
/// The state kept between calls is how far the inbox has been searched, how many blank
/// lines were skipped, and a head already parsed while its body is still arriving; none
/// of it changes what is decoded, only how often the same bytes are looked at.
#[derive(Debug, Default)]
pub struct Decoder {
    scan: Scan,
    /// Bytes of blank lines skipped since the last request, capped at [`MAX_HEAD`].
    blank: usize,
    pending: Option<PendingBody>,
    /// The head just parsed asked for `100 Continue` before it sends its body.
    wants_continue: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a request's head has been taken in and its body is still arriving.
    pub fn is_reading_body(&self) -> bool {
        self.pending.is_some()
    }

    /// The head whose body is still arriving, if one is.
    pub fn pending_head(&self) -> Option<&Request> {
        self.pending.as_ref().map(|pending| &pending.request)
    }

    /// The error for input that ended (the client closed its side) with `inbox` holding
    /// part of a request, if it does. A body under way is HTTP; a first line not yet
    /// ended could be either, and a line-protocol request is one line, so it is answered
    /// as the line protocol; bytes past a line end are an HTTP head.
    pub fn truncated(&self, inbox: &Inbox) -> Option<ProtocolError> {
        let received = inbox.as_slice();
        let protocol = match &self.pending {
            Some(pending) => pending.request.protocol,
            // Blank-line bytes before a request are not a request.
            None if received.trim_ascii().is_empty() => return None,
            None if received.contains(&b'\n') => Protocol::Http11,
            None => Protocol::Line,
        };
        Some(ProtocolError::Truncated { protocol })
    }

    /// True once after a head with `Expect: 100-continue` was accepted and its body has
    /// not started to arrive: the client is waiting for `100 Continue` before sending it.
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.wants_continue)
    }

    /// Takes the next complete request off the front of `inbox`.
    ///
    /// `Ok(None)` means more bytes are needed. After an error for which
    /// [`ProtocolError::closes_connection`] is true the stream is out of step and the
    /// caller must stop decoding. Every call does bounded work per byte and uses bounded
    /// stack, whatever the input: a loop, never recursion.
    pub fn decode(&mut self, inbox: &mut Inbox) -> Result<Option<Request>, ProtocolError> {
        loop {
            if let Some(pending) = &mut self.pending {
                if !pending.body.read(inbox, &mut pending.request.body)? {
                    return Ok(None);
                }
                return Ok(self.pending.take().map(|pending| pending.request));
            }
            let Some((request, body)) = self.next_head(inbox)? else {
                return Ok(None);
            };
            match body {
                None => return Ok(Some(request)),
                Some(body) => {
                    let expects = request.protocol == Protocol::Http11
                        && request
                            .header("expect")
                            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
                    self.wants_continue = expects && inbox.is_empty();
                    self.pending = Some(PendingBody { request, body });
                }
            }
        }
    }

    /// The next request head: a whole line-protocol request, or an HTTP head with the
    /// framing of the body that follows it, if any.
    fn next_head(
        &mut self,
        inbox: &mut Inbox,
    ) -> Result<Option<(Request, Option<Body>)>, ProtocolError> {
        loop {
            let buf = inbox.as_slice();
            // Only the first MAX_HEAD bytes are ever searched: past them is over the limit.
            let window = buf.len().min(MAX_HEAD);
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
                    if line.trim_ascii().is_empty() {
                        // Blank lines before a request are skipped (telnet users press
                        // Enter; RFC 9112 §2.2 asks servers to ignore at least one), but
                        // not without end.
                        self.blank += lf + 1;
                        inbox.consume(lf + 1);
                        self.scan = Scan::default();
                        if self.blank > MAX_HEAD {
                            return Err(ProtocolError::TooManyBlankLines);
                        }
                        continue;
                    }
                    match http_version(line) {
                        Version::Http(protocol) => {
                            self.scan = Scan::Head { protocol, searched: lf }
                        }
                        Version::Unsupported(version) => {
                            return Err(ProtocolError::UnsupportedVersion(version));
                        }
                        Version::Malformed => {
                            return Err(ProtocolError::BadRequest(
                                "malformed request line; expected `METHOD /path HTTP/1.1`".into(),
                            ));
                        }
                        Version::Line => {
                            let parsed = parse_line(line);
                            self.request_taken(inbox, lf + 1);
                            return parsed.map(|request| Some((request, None)));
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
                    let parsed = parse_http_head(&buf[..head_len], protocol);
                    self.request_taken(inbox, head_len);
                    return parsed.map(Some);
                }
            }
        }
    }

    /// A head of `len` bytes has been decoded: start afresh after it.
    fn request_taken(&mut self, inbox: &mut Inbox, len: usize) {
        inbox.consume(len);
        self.scan = Scan::default();
        self.blank = 0;
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ANCHOR: detect
/// What a first line says about the request's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Version {
    /// `METHOD SP target SP HTTP/1.x`, exactly.
    Http(Protocol),
    /// `METHOD SP target SP HTTP/x.y`, another version (505).
    Unsupported(String),
    /// Ends in something like an HTTP version but is not a well-formed request line
    /// (`http/1.1`, a trailing or doubled space): an HTTP client sent it, so it gets an
    /// HTTP 400, never a line-protocol reply that would leave its headers to be read as
    /// lines.
    Malformed,
    /// The line protocol.
    Line,
}

fn http_version(line: &[u8]) -> Version {
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if let [method, target, version] = parts[..] {
        if !method.is_empty() && !target.is_empty() {
            match version {
                b"HTTP/1.1" => return Version::Http(Protocol::Http11),
                b"HTTP/1.0" => return Version::Http(Protocol::Http10),
                // A later 1.x is read as the highest 1.x known, 1.1 (RFC 9110 §2.5 and §6.2).
                [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
                    return Version::Http(Protocol::Http11);
                }
                v if v.starts_with(b"HTTP/") => {
                    return Version::Unsupported(String::from_utf8_lossy(v).into_owned());
                }
                _ => {}
            }
        }
    }
    // `POST /echo HTTP/2 rocks` ends in `rocks`: a line-protocol body, not a version.
    let last = line.split(u8::is_ascii_whitespace).rfind(|token| !token.is_empty());
    match last {
        Some(token) if token.len() >= 5 && token[..5].eq_ignore_ascii_case(b"HTTP/") => {
            Version::Malformed
        }
        _ => Version::Line,
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
        // Only the line ending is removed (above): a body keeps its trailing spaces and
        // tabs, as an echo should.
        .trim_start();
    let (method, rest) = line.split_once(' ').unwrap_or((line.trim_end(), ""));
    if method.eq_ignore_ascii_case("exit") && rest.trim().is_empty() {
        return Ok(line_request("EXIT", String::new(), Vec::new()));
    }
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ProtocolError::BadLine(format!("`{}` is not a method", truncate(method))));
    }
    let rest = rest.trim_start();
    let (target, body) = rest.split_once([' ', '\t']).unwrap_or((rest.trim_end(), ""));
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

fn parse_http_head(
    head: &[u8],
    protocol: Protocol,
) -> Result<(Request, Option<Body>), ProtocolError> {
    let head = as_http_1_1(head);
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(&head) {
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
    if !is_request_target(method, target) {
        return Err(ProtocolError::BadRequest(
            "the target is not a path, an absolute URI, `*` (OPTIONS) or host:port (CONNECT)"
                .into(),
        ));
    }
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
    // Empty list elements (`, chunked`) are ignored, as RFC 9110 §5.6.1 requires.
    let codings: Vec<&[u8]> = named("transfer-encoding")
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty())
        .collect();
    // A Transfer-Encoding with nothing in it is still one: its framing is in doubt (400).
    let no_coding = named("transfer-encoding").next().is_none();
    let body = match (content_length, no_coding) {
        (None, true) | (Some(0), true) => None,
        (Some(length), true) if length > MAX_BODY as u64 => {
            return Err(ProtocolError::BodyTooLarge { length });
        }
        // Not above MAX_BODY, so it fits a usize.
        (Some(length), true) => Some(Body::Length { remaining: length as usize }),
        // Both framings at once is the classic request-smuggling shape (RFC 9112 §6.1).
        (Some(_), false) => {
            return Err(ProtocolError::BadRequest(
                "Transfer-Encoding and Content-Length together".into(),
            ));
        }
        (None, false) => Some(transfer_coding(&codings, protocol)?),
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
        target: origin_form(target).to_owned(),
        headers,
        body: Vec::new(),
        keep_alive,
    };
    Ok((request, body))
}

/// One of the four forms of RFC 9112 §3.2: origin (`/path`), absolute (`scheme:...`, RFC
/// 3986's scheme), asterisk (`*`, OPTIONS only) or authority (`host:port`, CONNECT only).
/// Anything else is an invalid request line, which §3 says SHOULD get a 400.
fn is_request_target(method: &str, target: &str) -> bool {
    // A URI is ASCII (RFC 3986 §2): anything else arrives percent-encoded.
    if !target.is_ascii() {
        return false;
    }
    // The origin form first: it is nearly every request, and needs no search for a scheme.
    if target.starts_with('/') {
        return true;
    }
    let scheme = target.split_once(':').map(|(scheme, _)| scheme.as_bytes());
    let absolute = scheme.is_some_and(|s| {
        s.first().is_some_and(u8::is_ascii_alphabetic)
            && s.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    absolute
        || (target == "*" && method == "OPTIONS")
        || (method == "CONNECT" && !target.is_empty() && !target.contains('/'))
}

/// `head` with a later HTTP/1.x version on its request line (already checked to be one, see
/// [`http_version`]) made `HTTP/1.1`, which is what httparse reads; other heads as they are.
fn as_http_1_1(head: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = trim_cr(&head[..line_end]);
    match line.len().checked_sub(8).map(|at| (at, &line[at..])) {
        Some((at, [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor])) if *minor > b'1' => {
            let mut patched = head.to_vec();
            patched[at + 7] = b'1';
            std::borrow::Cow::Owned(patched)
        }
        _ => std::borrow::Cow::Borrowed(head),
    }
}

/// The path and query of a target in absolute form (`http://host/path?q`, which RFC 9112
/// §3.2.2 says a server must accept, as proxies send it); other targets as they are.
fn origin_form(target: &str) -> &str {
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|s| target.get(..s.len()).is_some_and(|t| t.eq_ignore_ascii_case(s)));
    let Some(scheme) = scheme else {
        return target;
    };
    let rest = &target[scheme.len()..];
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => &rest[i..],
        // `http://host` or `http://host?q`: the path is `/` (the query, if any, is lost,
        // as routing here never needs one on `/`).
        _ => "/",
    }
}

/// The body framing `Transfer-Encoding` asks for: chunked is the only coding this server
/// decodes, and it must come last and once (RFC 9112 §6.1 and §7).
fn transfer_coding(codings: &[&[u8]], protocol: Protocol) -> Result<Body, ProtocolError> {
    let bad = |why: &str| Err(ProtocolError::BadRequest(why.into()));
    if protocol == Protocol::Http10 {
        // An HTTP/1.0 recipient cannot know the framing: the message is faulty (§6.1).
        return bad("Transfer-Encoding in an HTTP/1.0 request");
    }
    let is_chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    match codings.split_last() {
        Some((last, _)) if !is_chunked(last) => bad("chunked must be the last transfer coding"),
        Some((_, before)) if before.iter().any(is_chunked) => bad("chunked applied twice"),
        Some((_, [])) => Ok(Body::chunked()),
        Some((_, before)) => {
            Err(ProtocolError::TransferEncoding(String::from_utf8_lossy(before[0]).into_owned()))
        }
        None => bad("empty Transfer-Encoding"),
    }
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
