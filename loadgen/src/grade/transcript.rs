//! Stage 1: does it speak the protocol? Short conversations, in order, in each protocol;
//! the first that fails stops that protocol's list, and says what was sent, what was
//! expected and what came back, byte for byte.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::wire::{ANSWER_WAIT, Conn, Got, Http, show};

/// Which protocol a conversation is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `GET /hello` per line, as `nc` types it.
    Line,
    Http,
}

impl Protocol {
    /// Its name for people.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Line => "line",
            Protocol::Http => "HTTP",
        }
    }
}

/// What one conversation showed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(Failure),
    /// The server answered that it has no such route (404): nothing to hold against it.
    NotServed {
        why: String,
    },
    /// An earlier conversation in this protocol failed.
    NotRun,
}

/// A failed conversation, as a student reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub sent: String,
    pub expected: String,
    pub received: String,
}

/// One conversation and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub protocol: Protocol,
    pub name: &'static str,
    #[serde(flatten)]
    pub outcome: Verdict,
}

type Conversation = fn(SocketAddr) -> io::Result<Verdict>;

/// The line protocol's conversations, in order.
const LINE: &[(&str, Conversation)] = &[
    ("GET /hello is answered 200 Hello, World!", line_hello),
    ("a malformed line gets a 400 line, and the connection stays usable", line_malformed),
    ("exit gets a goodbye, then the server closes", line_exit),
];

/// HTTP's conversations, in order.
const HTTP: &[(&str, Conversation)] = &[
    ("GET /hello over HTTP/1.1: 200, Content-Length, Hello, World!", http_hello),
    ("keep-alive: a second request on the same connection is answered", http_keep_alive),
    ("Connection: close is answered, then the server closes", http_close),
    ("HTTP/1.0 is answered, then the server closes", http_1_0),
    ("two requests in one write are answered in order", http_pipelined),
    ("POST /echo returns its body byte for byte", http_echo),
    ("a request written a byte at a time is answered once whole", http_split),
];

/// Runs every conversation, each protocol's list stopping at its first failure.
pub fn run(addr: SocketAddr) -> Vec<Check> {
    let mut checks = Vec::new();
    for (protocol, list) in [(Protocol::Line, LINE), (Protocol::Http, HTTP)] {
        let mut failed = false;
        for &(name, conversation) in list {
            let outcome = if failed {
                Verdict::NotRun
            } else {
                conversation(addr).unwrap_or_else(|e| {
                    fail("(a connection)", "to connect and talk", &format!("{e}"))
                })
            };
            failed |= matches!(outcome, Verdict::Fail(_));
            checks.push(Check { protocol, name, outcome });
        }
    }
    checks
}

/// The protocol the rest of the grade can talk in: the line protocol if `GET /hello`
/// works in it, else HTTP if it works there, else none (the server cannot be graded).
pub fn usable(checks: &[Check]) -> Option<Protocol> {
    let hello = |protocol| {
        checks
            .iter()
            .find(|c| c.protocol == protocol)
            .is_some_and(|c| matches!(c.outcome, Verdict::Pass))
    };
    [Protocol::Line, Protocol::Http].into_iter().find(|&p| hello(p))
}

fn fail(sent: &str, expected: &str, received: &str) -> Verdict {
    Verdict::Fail(Failure {
        sent: sent.to_owned(),
        expected: expected.to_owned(),
        received: received.to_owned(),
    })
}

/// What a wait brought, for a failure's "received".
fn describe<T>(got: &Got<T>, shown: impl Fn(&T) -> String) -> String {
    match got {
        Got::Answer(answer) => shown(answer),
        Got::Silent(bytes) if bytes.is_empty() => format!("nothing within {ANSWER_WAIT:?}"),
        Got::Silent(bytes) => format!("only \"{}\" within {ANSWER_WAIT:?}", show(bytes, 300)),
        Got::Closed(bytes) if bytes.is_empty() => "the connection closed, with no answer".into(),
        Got::Closed(bytes) => format!("\"{}\", then the connection closed", show(bytes, 300)),
    }
}

const HELLO: &str = "200 Hello, World!";

/// What a wait for a line brought, for a failure's "received".
fn described_line(got: &Got<String>) -> String {
    describe(got, |l| format!("\"{}\"", show(l.as_bytes(), 300)))
}

/// Asks `GET /hello` on `conn`: a pass if it is answered [`HELLO`], else a failure that
/// says what was `sent` on the connection and what was `expected`.
fn line_hello_on(conn: &mut Conn, sent: &str, expected: &str) -> io::Result<Verdict> {
    conn.send(b"GET /hello\n")?;
    Ok(match conn.line(ANSWER_WAIT)? {
        Got::Answer(line) if line == HELLO => Verdict::Pass,
        got => fail(sent, expected, &described_line(&got)),
    })
}

fn line_hello(addr: SocketAddr) -> io::Result<Verdict> {
    line_hello_on(&mut Conn::connect(addr)?, "GET /hello\\n", "200 Hello, World!\\n")
}

fn line_malformed(addr: SocketAddr) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    conn.send(b"NOT-A-REQUEST\n")?;
    match conn.line(ANSWER_WAIT)? {
        Got::Answer(line) if line.starts_with("400 ") => {}
        got => {
            return Ok(fail("NOT-A-REQUEST\\n", "a line starting 400", &described_line(&got)));
        }
    }
    line_hello_on(
        &mut conn,
        "NOT-A-REQUEST\\n (answered 400), then GET /hello\\n on the same connection",
        "200 Hello, World!\\n: a bad request costs only its own answer",
    )
}

fn line_exit(addr: SocketAddr) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    conn.send(b"exit\n")?;
    let got = conn.line(ANSWER_WAIT)?;
    if !matches!(got, Got::Answer(_)) {
        return Ok(fail("exit\\n", "a goodbye line, then the close", &described_line(&got)));
    }
    let (closed, rest) = conn.closes_within(ANSWER_WAIT)?;
    Ok(if closed {
        Verdict::Pass
    } else {
        fail(
            "exit\\n",
            "the server to close after its goodbye",
            &format!("the connection still open after {ANSWER_WAIT:?}{}", extra(&rest)),
        )
    })
}

fn extra(rest: &[u8]) -> String {
    if rest.is_empty() { String::new() } else { format!(", and then \"{}\"", show(rest, 200)) }
}

const GET_HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: grade\r\n\r\n";

/// Whether `r` is the `/hello` answer a keep-alive client can use.
fn is_hello(r: &Http) -> Result<(), String> {
    if r.status != 200 {
        return Err(format!("status {}", r.status));
    }
    if r.framing == "close" {
        return Err("no Content-Length (nor chunked): a client that keeps the connection cannot tell where the body ends".into());
    }
    if r.body != b"Hello, World!" {
        return Err(format!("the body \"{}\"", show(&r.body, 100)));
    }
    Ok(())
}

fn shown_http(r: &Http) -> String {
    format!("\"{}\"", show(&r.raw, 400))
}

/// Sends `request` on `conn` and expects the `/hello` answer.
fn hello_on(conn: &mut Conn, request: &[u8], sent: &str) -> io::Result<Result<(), Verdict>> {
    conn.send(request)?;
    let got = conn.http(ANSWER_WAIT)?;
    Ok(match &got {
        Got::Answer(r) => is_hello(r).map_err(|why| {
            fail(
                sent,
                "HTTP/1.1 200, Content-Length: 13, Hello, World!",
                &format!("{} ({why})", shown_http(r)),
            )
        }),
        _ => Err(fail(sent, "an HTTP response", &describe(&got, shown_http))),
    })
}

fn http_hello(addr: SocketAddr) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    Ok(hello_on(&mut conn, GET_HELLO, &show(GET_HELLO, 200))?.err().unwrap_or(Verdict::Pass))
}

fn http_keep_alive(addr: SocketAddr) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    if let Err(failed) = hello_on(&mut conn, GET_HELLO, &show(GET_HELLO, 200))? {
        return Ok(failed);
    }
    let sent = format!("{} (a second time, on the same connection)", show(GET_HELLO, 200));
    Ok(hello_on(&mut conn, GET_HELLO, &sent)?.err().unwrap_or(Verdict::Pass))
}

/// Sends `request`, expects `/hello`'s answer, then the close.
fn answered_then_closed(addr: SocketAddr, request: &[u8]) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    conn.send(request)?;
    let sent = show(request, 200);
    let got = conn.http(ANSWER_WAIT)?;
    let Got::Answer(r) = &got else {
        return Ok(fail(&sent, "an HTTP response, then the close", &describe(&got, shown_http)));
    };
    if r.status != 200 {
        return Ok(fail(&sent, "HTTP 200, then the close", &shown_http(r)));
    }
    let (closed, rest) = conn.closes_within(ANSWER_WAIT)?;
    Ok(if closed {
        Verdict::Pass
    } else {
        fail(
            &sent,
            "the server to close once it has answered",
            &format!(
                "{}, and the connection still open after {ANSWER_WAIT:?}{}",
                shown_http(r),
                extra(&rest)
            ),
        )
    })
}

fn http_close(addr: SocketAddr) -> io::Result<Verdict> {
    answered_then_closed(addr, b"GET /hello HTTP/1.1\r\nHost: grade\r\nConnection: close\r\n\r\n")
}

fn http_1_0(addr: SocketAddr) -> io::Result<Verdict> {
    answered_then_closed(addr, b"GET /hello HTTP/1.0\r\n\r\n")
}

fn http_pipelined(addr: SocketAddr) -> io::Result<Verdict> {
    const TWO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: grade\r\n\r\nGET /no-such-page HTTP/1.1\r\nHost: grade\r\n\r\n";
    let mut conn = Conn::connect(addr)?;
    conn.send(TWO)?;
    let sent = show(TWO, 300);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        match conn.http(ANSWER_WAIT)? {
            Got::Answer(r) => statuses.push(r.status),
            got => {
                let before = statuses.iter().map(|s| format!("HTTP {s}, ")).collect::<String>();
                return Ok(fail(
                    &sent,
                    "HTTP 200, then HTTP 404",
                    &format!("{before}{}", describe(&got, shown_http)),
                ));
            }
        }
    }
    Ok(if statuses == [200, 404] {
        Verdict::Pass
    } else {
        fail(
            &sent,
            "HTTP 200, then HTTP 404, in that order",
            &format!("HTTP {}, then HTTP {}", statuses[0], statuses[1]),
        )
    })
}

fn http_echo(addr: SocketAddr) -> io::Result<Verdict> {
    // Every byte value, and more than one read's worth.
    let body: Vec<u8> = (0..64 * 1024).map(|i| (i % 256) as u8).collect();
    let head =
        format!("POST /echo HTTP/1.1\r\nHost: grade\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut conn = Conn::connect(addr)?;
    conn.send(head.as_bytes())?;
    conn.send(&body)?;
    let sent = format!("{}<65,536 bytes: 0x00 to 0xff, over and over>", show(head.as_bytes(), 200));
    let got = conn.http(ANSWER_WAIT)?;
    Ok(match &got {
        Got::Answer(r) if r.status == 404 => {
            Verdict::NotServed { why: "POST /echo answered 404".into() }
        }
        Got::Answer(r) if r.status == 200 && r.body == body => Verdict::Pass,
        Got::Answer(r) => {
            let first_difference = r.body.iter().zip(&body).position(|(a, b)| a != b);
            let why = match first_difference {
                Some(at) => {
                    format!("status {}, {} bytes, differing from byte {at}", r.status, r.body.len())
                }
                None => format!("status {}, {} bytes", r.status, r.body.len()),
            };
            fail(&sent, "HTTP 200 with the same 65,536 bytes", &why)
        }
        _ => fail(&sent, "HTTP 200 with the same 65,536 bytes", &describe(&got, shown_http)),
    })
}

fn http_split(addr: SocketAddr) -> io::Result<Verdict> {
    let mut conn = Conn::connect(addr)?;
    conn.send_split(GET_HELLO, Duration::from_millis(2))?;
    let sent = format!("{} (one byte per write, 2 ms apart)", show(GET_HELLO, 200));
    let got = conn.http(ANSWER_WAIT)?;
    Ok(match &got {
        Got::Answer(r) => match is_hello(r) {
            Ok(()) => Verdict::Pass,
            Err(why) => {
                fail(&sent, "HTTP 200, Hello, World!", &format!("{} ({why})", shown_http(r)))
            }
        },
        _ => fail(&sent, "HTTP 200, Hello, World!", &describe(&got, shown_http)),
    })
}

/// Why a server answered `GET /hello` in neither protocol, as far as one more try says:
/// it answers only once the client has closed its side (it reads to the end before
/// answering), it never answers, or it closes at once.
pub fn diagnose_silence(addr: SocketAddr) -> String {
    let tried = (|| -> io::Result<String> {
        let mut conn = Conn::connect(addr)?;
        conn.send(b"GET /hello\n")?;
        conn.stream().shutdown(std::net::Shutdown::Write)?;
        let (closed, got) = conn.closes_within(ANSWER_WAIT)?;
        Ok(if !got.is_empty() {
            format!(
                "it answers only once the client has closed its side (\"{}\" came after the half-close): it reads to the end of input before answering, so a client that waits for its answer waits forever",
                show(&got, 100)
            )
        } else if closed {
            "it never answers: it took the request, said nothing, and closed once the client closed its side".to_owned()
        } else {
            format!(
                "it accepts connections but never answers, not even once the client has closed its side (waited {ANSWER_WAIT:?} each time)"
            )
        })
    })();
    tried.unwrap_or_else(|e| format!("it could not be reached: {e}"))
}
