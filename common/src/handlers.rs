//! The built-in routes every version serves, each chosen to make one behaviour visible:
//! `/` a live page charting `/stats` in the browser, `/hello` the baseline, `/echo` bodies
//! and query strings, `/sleep` a thread pinned by blocking work (a database call), `/cpu` a
//! thread kept busy computing, `/stats` the server's own figures while load runs, and
//! `/panic` a handler with a bug (it panics; the dispatcher answers 500 and the server goes
//! on), and `/trace` the recorder's last moments (the live page's timeline).
//!
//! This is the application on top of [`dispatcher`](crate::dispatcher), which knows no
//! route: the imports run one way, from here to there.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::Request;
use crate::dispatcher::{Dispatcher, HandlerMapping};
use crate::response::Response;
use crate::stats::Stats;

/// The live page (`GET /`): charts of `/stats` over the last two minutes, drawn in the
/// browser by a few lines of plain JavaScript.
pub const LIVE_PAGE: &str = include_str!("live.html");

/// The longest `/sleep` or `/cpu` a request can ask for, in milliseconds.
pub const MAX_WORK_MS: u64 = 10_000;

/// Every version's dispatcher is built here. The constructor is a method of [`Dispatcher`]
/// so callers write `Dispatcher::with_builtin_routes(name)`, but it lives with the routes
/// it installs, so that `dispatcher.rs` does not import the application built on it.
impl Dispatcher {
    /// A dispatcher for `server` serving every route of [`builtin_routes`]: `/`, `/hello`,
    /// `/echo`, `/sleep`, `/cpu`, `/stats`, `/panic` and `/trace`.
    pub fn with_builtin_routes(server: &'static str) -> Self {
        let stats = Stats::new(server);
        Self::new(builtin_routes(&stats), stats)
    }
}

/// The built-in routes, `/stats` reading `stats`: for a test that adds a route of its own
/// before building its [`Dispatcher`].
pub fn builtin_routes(stats: &Arc<Stats>) -> HandlerMapping {
    let stats = Arc::clone(stats);
    HandlerMapping::new()
        // Live figures: no cache, browser or proxy, may keep a copy and show it later.
        .route("GET", "/", |_: &Request| {
            Response::bytes(200, "text/html; charset=utf-8", LIVE_PAGE.as_bytes().to_vec())
                .with_header("Cache-Control", "no-store")
        })
        .route("GET", "/hello", |_: &Request| Response::text(200, "Hello, World!"))
        .route("GET", "/echo", echo_query)
        .route("POST", "/echo", echo_body)
        .route("GET", "/sleep", sleep)
        .route("GET", "/cpu", cpu)
        .route("GET", "/stats", move |_: &Request| {
            Response::json(200, &stats.snapshot()).with_header("Cache-Control", "no-store")
        })
        .route("GET", "/panic", |_: &Request| -> Response {
            panic!("GET /panic: a handler with a bug, on purpose")
        })
        .route("GET", "/trace", trace_window)
}

/// What `GET /trace` answers a server that records nothing.
pub const NOT_RECORDING: &str = "this server is not recording its timeline: start it with \
    --trace-live to watch its last seconds here for as long as it runs (or --trace FILE to \
    record its first seconds into FILE)";

// ANCHOR: trace_window
/// `GET /trace?ms=N` (default 1000, at most the live mode's keep): the events recorded in
/// the last N ms, in the trace file's format, for the live page to draw; 404 with how to
/// start the recorder when it is off.
fn trace_window(request: &Request) -> Response {
    let keep = crate::trace::LIVE_KEEP.as_millis() as u64;
    let ms = match request.query_param("ms").map(|ms| ms.parse::<u64>()) {
        None => 1000,
        Some(Ok(ms)) => ms.min(keep),
        Some(Err(_)) => {
            return Response::text(400, format!("usage: GET /trace?ms=N, N up to {keep}"));
        }
    };
    match crate::trace::window(Duration::from_millis(ms)) {
        Some(window) => Response::json(200, &window).with_header("Cache-Control", "no-store"),
        None => Response::text(404, NOT_RECORDING),
    }
}
// ANCHOR_END: trace_window

fn echo_query(request: &Request) -> Response {
    match request.query_param("msg") {
        Some(msg) => Response::text(200, msg),
        None => Response::text(400, "usage: GET /echo?msg=<text>, or POST /echo with a body"),
    }
}

/// The body back, byte for byte, labelled as the client labelled it.
fn echo_body(request: &Request) -> Response {
    // A Content-Type goes back into a header, so only a printable one is repeated.
    let content_type = request
        .header("content-type")
        .and_then(|value| std::str::from_utf8(value).ok())
        .filter(|value| {
            !value.is_empty() && value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        })
        .map_or(Cow::Borrowed("application/octet-stream"), |value| Cow::Owned(value.to_owned()));
    Response::bytes(200, content_type, request.body.clone())
}

/// `ms=N` from the query, capped at [`MAX_WORK_MS`]: the milliseconds to work, and a note
/// when the cap cut the request short.
fn work_ms(request: &Request, route: &str) -> Result<(u64, String), Response> {
    let usage = || Response::text(400, format!("usage: GET {route}?ms=N, N up to {MAX_WORK_MS}"));
    let asked: u64 = request.query_param("ms").ok_or_else(usage)?.parse().map_err(|_| usage())?;
    let ms = asked.min(MAX_WORK_MS);
    let note = if asked > ms {
        format!(" (asked for {asked}, capped at {MAX_WORK_MS})")
    } else {
        String::new()
    };
    Ok((ms, note))
}

fn sleep(request: &Request) -> Response {
    match work_ms(request, "/sleep") {
        Ok((ms, note)) => {
            std::thread::sleep(Duration::from_millis(ms));
            Response::text(200, format!("slept {ms} ms{note}"))
        }
        Err(usage) => usage,
    }
}

fn cpu(request: &Request) -> Response {
    match work_ms(request, "/cpu") {
        Ok((ms, note)) => {
            let result = burn_cpu(Duration::from_millis(ms));
            Response::text(
                200,
                format!("computed for {ms} ms of CPU time{note} (result {result:#x})"),
            )
        }
        Err(usage) => usage,
    }
}

/// Computes until this thread has used `budget` of CPU time. The thread's own CPU clock,
/// not the wall clock, so a busy machine makes the request slower, not cheaper.
fn burn_cpu(budget: Duration) -> u64 {
    let start = thread_cpu_time();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        for _ in 0..10_000 {
            // xorshift: cheap, and black_box keeps the optimiser from deleting the work.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x = std::hint::black_box(x);
        }
        if thread_cpu_time().saturating_sub(start) >= budget {
            return x;
        }
    }
}

fn thread_cpu_time() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_THREAD_CPUTIME_ID exists on every Linux. Were it ever refused, the monotonic
    // clock still ends the loop; a clock stuck at zero would spin forever.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .map_or(Duration::ZERO, Duration::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn answer(target: &str) -> (u16, String) {
        let response = Dispatcher::with_builtin_routes("test").dispatch(&Request::get(target));
        (response.status, String::from_utf8(response.body).unwrap())
    }

    #[test]
    fn hello_and_echo() {
        assert_eq!(answer("/hello"), (200, "Hello, World!".into()));
        assert_eq!(answer("/echo?msg=hi%20there+you"), (200, "hi there you".into()));
        assert_eq!(answer("/echo").0, 400);
        let post =
            Request { method: "POST".into(), body: b"payload".to_vec(), ..Request::get("/echo") };
        let response = Dispatcher::with_builtin_routes("t").dispatch(&post);
        assert_eq!(response.body, b"payload");
    }

    #[test]
    fn sleep_and_cpu_take_the_time_they_say() {
        let start = Instant::now();
        assert_eq!(answer("/sleep?ms=50"), (200, "slept 50 ms".into()));
        assert!(start.elapsed() >= Duration::from_millis(50));

        let before = thread_cpu_time();
        let (status, body) = answer("/cpu?ms=30");
        assert_eq!(status, 200, "{body}");
        assert!(thread_cpu_time() - before >= Duration::from_millis(30));
    }

    #[test]
    fn work_is_capped_and_bad_arguments_explained() {
        let request = Request::get("/sleep?ms=99999999");
        let (ms, note) = work_ms(&request, "/sleep").unwrap();
        assert_eq!(ms, MAX_WORK_MS);
        assert!(note.contains("capped at 10000"), "{note}");
        for bad in ["/sleep", "/sleep?ms=abc", "/cpu?ms=-1"] {
            let (status, body) = answer(bad);
            assert_eq!(status, 400, "{bad}");
            assert!(body.starts_with("usage:"), "{body}");
        }
    }

    #[test]
    fn trace_says_how_to_start_the_recorder_or_refuses_a_bad_window() {
        // This test process may be recording (the recorder's own test starts it): then
        // the window is a trace; if not, the answer says how to record.
        let (status, body) = answer("/trace?ms=500");
        match status {
            404 => assert!(body.contains("--trace-live"), "{body}"),
            200 => {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(json["traceEvents"].is_array(), "{body}");
            }
            _ => panic!("{status} {body}"),
        }
        assert_eq!(answer("/trace?ms=soon").0, 400);
    }

    /// The echo's label: the client's `Content-Type` when it is printable, else
    /// `application/octet-stream`; the bytes always exactly as sent.
    #[test]
    fn echo_labels_the_body_as_the_client_did_or_as_octets() {
        use crate::codec::Header;
        let body = vec![0u8, 159, 146, 150, b'\n'];
        let post = |content_type: Option<&[u8]>| {
            let mut request = Request::get("/echo");
            request.method = "POST".into();
            request.body = body.clone();
            request.headers.extend(
                content_type.map(|v| Header { name: "Content-Type".into(), value: v.to_vec() }),
            );
            echo_body(&request)
        };
        for (sent, labelled) in [
            (None, "application/octet-stream"),
            (Some(&b"text/plain"[..]), "text/plain"),
            (Some(&b"text/plain\r\nX-Injected: 1"[..]), "application/octet-stream"),
            (Some(&b""[..]), "application/octet-stream"),
        ] {
            let answer = post(sent);
            assert_eq!((answer.status, answer.content_type.as_ref()), (200, labelled), "{sent:?}");
            assert_eq!(answer.body, body);
        }
    }

    #[test]
    fn panic_is_a_500() {
        assert_eq!(answer("/panic").0, 500);
    }

    #[test]
    fn stats_is_json_with_the_request_counted() {
        let (status, body) = answer("/stats");
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["server"], "test");
        assert_eq!(json["requests"], 1);
    }
}
