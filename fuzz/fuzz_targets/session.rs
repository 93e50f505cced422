//! A connection's conversation on arbitrary bytes in arbitrary reads, answered by the
//! built-in routes: every reply is well-formed in its protocol (an HTTP response that
//! parses and is framed by its `Content-Length`, or exactly one line), there is one reply
//! per request or error the decoder makes of the stream, in order and in the request's
//! protocol, and the connection closes exactly when, and only after, the reply that says
//! so (`Connection: close`, the line protocol's goodbye, an error that closes).

#![no_main]

use std::sync::{Once, OnceLock};

use common::codec::Protocol;
use common::handlers::builtin_routes;
use common::response::Response;
use common::{Closed, Dispatcher, Request, Session, Stats};
use common_fuzz::{Delivery, Event, decode};
use libfuzzer_sys::fuzz_target;

/// What `GET /panic` panics with; the dispatcher catches it and answers 500.
const ON_PURPOSE: &str = "GET /panic: a handler with a bug, on purpose";

/// The built-in routes, with `/sleep` and `/cpu` answering at once: the fuzzer would
/// otherwise spend its time asleep. Their replies keep the same shape. One dispatcher for
/// every input, as a server has.
fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let stats = Stats::new("fuzz");
        let instant = |_: &Request| Response::text(200, "worked 0 ms");
        let mapping =
            builtin_routes(&stats).route("GET", "/sleep", instant).route("GET", "/cpu", instant);
        Dispatcher::new(mapping, stats)
    })
}

/// libFuzzer's hook aborts on any panic, before the dispatcher can catch it. The one
/// panic the routes raise on purpose is let through to the dispatcher; any other still
/// aborts, and is a finding.
fn allow_the_panic_route() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&ON_PURPOSE) {
                fuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|input: &[u8]| {
    allow_the_panic_route();
    let dispatcher = dispatcher();
    let delivery = Delivery::from_input(input);
    let mut session = Session::new();
    for piece in delivery.pieces() {
        session.receive(piece);
        if session.answer(dispatcher).is_some() {
            break;
        }
    }
    if session.closed().is_none() {
        session.end_of_input();
        session.answer(dispatcher);
    }
    let closed = session.closed();
    let output = session.output().to_vec();
    if closed.is_some() {
        // Once closing, nothing more is answered, whatever arrives.
        session.receive(b"GET /hello HTTP/1.1\r\nHost: late\r\n\r\n");
        assert_eq!(session.answer(dispatcher), closed);
        assert_eq!(session.output(), output, "a reply after the connection closed");
    }
    check(&output, &decode(&[delivery.stream]), closed);
});

/// A reply as it went out.
#[derive(Debug)]
struct Reply {
    status: u16,
    http: bool,
    /// An HTTP reply saying `Connection: close`.
    close: bool,
}

/// Matches the replies in `output` with the `events` the decoder makes of the whole stream.
fn check(mut output: &[u8], events: &[Event], closed: Option<Closed>) {
    // An answer to `Expect: 100-continue` refusing a body that never came (or was not
    // waited for): the last reply, to a head whose full request may never be decoded.
    let refused_early = matches!(closed, Some(Closed::ProtocolError(404 | 405)));
    let mut replies = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if output.is_empty() {
            break;
        }
        let (http, head_only) = match event {
            Ok(request) => (request.protocol != Protocol::Line, request.method == "HEAD"),
            Err(error) => (error.protocol() != Protocol::Line, false),
        };
        let last = i + 1 == events.len() || refused_early;
        let (reply, len) = if http {
            http_reply(output, head_only, last && refused_early)
        } else {
            line_reply(output)
        };
        assert_eq!(reply.http, http, "reply {i} in the wrong protocol for {event:?}");
        if let Err(error) = event
            && !(refused_early && reply.close)
        {
            assert_eq!(reply.status, error.status(), "reply {i} to {error:?}");
        }
        output = &output[len..];
        replies.push(reply);
    }
    assert!(output.is_empty(), "bytes after the last reply: {:?}", String::from_utf8_lossy(output));
    if !refused_early {
        assert_eq!(replies.len(), events.len(), "one reply per event: {events:?}");
    }
    check_closing(&replies, &events[..replies.len()], closed);
}

/// The connection closes after the reply that says so, and only then.
fn check_closing(replies: &[Reply], events: &[Event], closed: Option<Closed>) {
    for reply in replies.iter().rev().skip(1) {
        assert!(!reply.close, "Connection: close before the last reply: {replies:?}");
    }
    let (Some(reply), Some(event)) = (replies.last(), events.last()) else {
        assert_eq!(closed, None, "closed with nothing answered");
        return;
    };
    match (closed, event) {
        (None, Ok(request)) => {
            assert!(request.keep_alive && !request.is_exit() && !reply.close, "{request:?}");
        }
        (None, Err(error)) => assert!(!error.closes_connection() && !reply.close, "{error:?}"),
        (Some(Closed::Exit), Ok(request)) => assert!(request.is_exit() && reply.status == 200),
        (Some(Closed::NotKeepAlive), Ok(request)) => {
            assert!(!request.keep_alive && reply.close, "{request:?} {reply:?}");
        }
        (Some(Closed::ProtocolError(404 | 405)), _) if reply.http && reply.close => {}
        (Some(Closed::ProtocolError(status)), Err(error)) => {
            assert!(error.closes_connection() && status == error.status(), "{error:?}");
            assert!(reply.close || !reply.http, "{reply:?}");
        }
        (closed, event) => panic!("closed {closed:?} after {event:?}"),
    }
}

/// An HTTP response at the front of `output`, and its length: it must parse, say HTTP/1.1,
/// and carry one `Content-Length` with the body after it (none for `HEAD`; either, when
/// `either` is set). `100 Continue` before it is allowed and skipped.
fn http_reply(output: &[u8], head_only: bool, either: bool) -> (Reply, usize) {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut skipped = 0;
    while output[skipped..].starts_with(CONTINUE) {
        skipped += CONTINUE.len();
    }
    let output = &output[skipped..];
    if !output.starts_with(b"HTTP/") {
        return (Reply { status: 0, http: false, close: false }, 0);
    }
    let mut fields = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut fields);
    let head = match response.parse(output) {
        Ok(httparse::Status::Complete(head)) => head,
        other => {
            panic!("a reply that does not parse ({other:?}): {:?}", String::from_utf8_lossy(output))
        }
    };
    assert_eq!(response.version, Some(1), "not HTTP/1.1");
    let status = response.code.unwrap_or_default();
    let named = |name: &'static str| {
        response.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let lengths: Vec<usize> = named("content-length")
        .map(|h| std::str::from_utf8(h.value).ok().and_then(|v| v.parse().ok()).expect("a number"))
        .collect();
    let [length] = lengths[..] else { panic!("Content-Length {lengths:?}") };
    let close = named("connection").any(|h| h.value.eq_ignore_ascii_case(b"close"));
    let body = if (either && output.len() == head) || head_only { 0 } else { length };
    assert!(output.len() >= head + body, "body cut short: {length} bytes announced");
    (Reply { status, http: true, close }, skipped + head + body)
}

/// One line-protocol reply: `NNN text\n`, no other line break.
fn line_reply(output: &[u8]) -> (Reply, usize) {
    let Some(end) = output.iter().position(|&b| b == b'\n') else {
        panic!("a line reply without its end: {:?}", String::from_utf8_lossy(output));
    };
    let line = &output[..end];
    assert!(!line.contains(&b'\r'), "a CR in a line reply");
    let status = std::str::from_utf8(line.get(..3).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|_| line.get(3) == Some(&b' '))
        .unwrap_or_else(|| panic!("not a line reply: {:?}", String::from_utf8_lossy(line)));
    let http = line.starts_with(b"HTTP/");
    (Reply { status, http, close: false }, end + 1)
}
