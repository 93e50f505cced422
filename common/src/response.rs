//! Responses, and how they are written in each protocol.
//!
//! A handler returns a [`Response`]; the connection code turns it into bytes with
//! [`Response::encode`], in the form the request came in: a full HTTP/1.1 response
//! (`Content-Length`, `Content-Type`, `Date`, `Server`) or one line for the line protocol.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::codec::{Protocol, ProtocolError, Request};

/// What a handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    /// Extra header fields, such as `Allow` on a 405.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Cow::Borrowed("text/plain; charset=utf-8"),
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// An `application/json` response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Cow::Borrowed("application/json"),
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// A response carrying `body` exactly as given, bytes rather than text.
    pub fn bytes(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Self {
        Self { status, content_type: content_type.into(), headers: Vec::new(), body }
    }

    /// The reply to a request the decoder rejected; its text says what was wrong.
    pub fn for_error(error: &ProtocolError) -> Self {
        Self::text(error.status(), error.to_string())
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends this response to `out` in the form `framing` asks for.
    pub fn encode(&self, framing: &Framing, server: &str, out: &mut Vec<u8>) {
        match framing.protocol {
            Protocol::Line => self.encode_line(out),
            Protocol::Http10 | Protocol::Http11 => self.encode_http(framing, server, out),
        }
    }

    /// `200 Hello, World!`: the status, a space, the body with line breaks made spaces, so
    /// one request always gets exactly one line back.
    fn encode_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend(self.body.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
        out.push(b'\n');
    }

    fn encode_http(&self, framing: &Framing, server: &str, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail, hence the ignored results.
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let _ = write!(out, "Server: {server}\r\n");
        with_http_date(|date| {
            let _ = write!(out, "Date: {date}\r\n");
        });
        let _ = write!(out, "Content-Type: {}\r\n", self.content_type);
        let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        // HTTP/1.1 is keep-alive unless told otherwise; 1.0 is the reverse.
        match (framing.keep_alive, framing.protocol) {
            (false, _) => out.extend_from_slice(b"Connection: close\r\n"),
            (true, Protocol::Http10) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            (true, _) => {}
        }
        out.extend_from_slice(b"\r\n");
        if !framing.head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// How a [`Response`] is framed on the wire, as opposed to what it says: which protocol,
/// whether the connection stays open, and whether the body is left out (a `HEAD` request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub protocol: Protocol,
    pub keep_alive: bool,
    pub head_only: bool,
}

impl Framing {
    pub fn to(request: &Request) -> Self {
        Self {
            protocol: request.protocol,
            keep_alive: request.keep_alive,
            head_only: request.method == "HEAD" && request.protocol != Protocol::Line,
        }
    }

    /// The reply to a decoding error: closes the connection when the stream is out of step.
    pub fn to_error(error: &ProtocolError) -> Self {
        Self {
            protocol: error.protocol(),
            keep_alive: !error.closes_connection(),
            head_only: false,
        }
    }
}

/// The reason phrase of the statuses this workspace sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

thread_local! {
    /// The formatted `Date` value and the second it was made for. Formatting a date costs
    /// more than the rest of a small response; each thread does it once a second at most.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current time as an HTTP date (`Tue, 24 Nov 2026 05:13:41 GMT`).
fn with_http_date(f: impl FnOnce(&str)) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second {
            *cached_second = second;
            *text = httpdate::fmt_http_date(now);
        }
        f(text);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http11() -> Framing {
        Framing { protocol: Protocol::Http11, keep_alive: true, head_only: false }
    }

    #[test]
    fn line_replies_are_one_line() {
        let mut out = Vec::new();
        Response::text(200, "two\r\nlines\n").encode(
            &Framing { protocol: Protocol::Line, keep_alive: true, head_only: false },
            "test",
            &mut out,
        );
        assert_eq!(out, b"200 two  lines \n");
    }

    #[test]
    fn http_response_carries_length_type_date_and_server() {
        let mut out = Vec::new();
        Response::text(200, "Hello").encode(&http11(), "v0-test", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: v0-test\r\nDate: "), "{text}");
        assert!(text.contains("\r\nContent-Length: 5\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(!text.contains("Connection:"), "{text}");
        assert!(text.ends_with("\r\n\r\nHello"), "{text}");
    }

    #[test]
    fn connection_header_follows_keep_alive_and_version() {
        let encode = |protocol, keep_alive| {
            let mut out = Vec::new();
            let framing = Framing { protocol, keep_alive, head_only: false };
            Response::text(200, "").encode(&framing, "t", &mut out);
            String::from_utf8(out).unwrap()
        };
        assert!(encode(Protocol::Http11, false).contains("Connection: close\r\n"));
        assert!(encode(Protocol::Http10, true).contains("Connection: keep-alive\r\n"));
        assert!(encode(Protocol::Http10, false).contains("Connection: close\r\n"));
    }

    #[test]
    fn head_keeps_the_length_but_drops_the_body() {
        let mut out = Vec::new();
        let framing = Framing { head_only: true, ..http11() };
        Response::text(200, "Hello").encode(&framing, "t", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn date_header_is_a_valid_http_date() {
        let mut date = String::new();
        with_http_date(|d| date = d.to_owned());
        let parsed = httpdate::parse_http_date(&date).unwrap();
        let skew = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(skew.as_secs() < 5, "{date}");
    }
}
