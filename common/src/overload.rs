//! What a server does past its capacity: load shedding, off by default.
//!
//! A server that keeps every request it is sent, however long it must wait, spends its
//! whole capacity past the knee on requests whose clients have already given up:
//! throughput stays, goodput collapses. Three settings, each off unless asked for, let a
//! version refuse work it cannot do in time instead:
//!
//! * `--max-queue N`, a model setting of the versions with a queue of their own (v3's
//!   pool of accepted connections, v4-nio's worker queue): past `N` waiting, a newcomer is
//!   answered `503 Service Unavailable` with `Retry-After` at once (counted `shed`);
//! * `--max-queue-wait DURATION` ([`Shedding::max_queue_wait`]): a request that waited
//!   longer than this before its handler would start is answered 503 without running the
//!   handler (counted `expired`);
//! * `--skip-departed` ([`Shedding::skip_departed`]): before running a handler, a server
//!   that can see its client has closed or reset does not run it and closes (counted
//!   `departed`), as nginx logs 499 "client closed request". A client that half-closes
//!   after sending its request (`nc -N`, `shutdown(SHUT_WR)`) looks the same
//!   as one that left, and is not answered: that is why it is opt-in.
//!
//! The decision before a handler is made once, here ([`Admission::decide`]), and applied
//! by [`crate::Session::answer_admitting`], which every model drives; each model says
//! only when a request started waiting. `/stats` shows the counters and the settings
//! under `shedding` ([`ShedStats::to_json`]).

pub mod shedder;

use std::os::fd::BorrowedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::response::Response;
use crate::stats::Counter;

/// The shedding settings every version shares (the queue's bound is a model's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shedding {
    /// A request that waited longer than this before its handler would start is refused.
    pub max_queue_wait: Option<Duration>,
    /// A request whose client has visibly gone is not served.
    pub skip_departed: bool,
}

impl Shedding {
    /// Whether any shedding is asked for; when not, a model need not note times.
    pub fn is_off(&self) -> bool {
        self.max_queue_wait.is_none() && !self.skip_departed
    }
}

/// Why a request was refused with a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue in front of the handlers was full when it arrived.
    Shed,
    /// It waited past `--max-queue-wait`.
    Expired,
}

/// What to do with a decoded request, before its handler would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// Answer 503 with `Retry-After` instead, and close.
    Refuse(Refused),
    /// The client has gone: answer nothing, and close.
    Departed,
}

/// The decision before each handler of one connection's turn (in the blocking model, of
/// what its first read brought), with when its requests started waiting.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    settings: Shedding,
    /// When the requests of this turn started waiting for a thread to serve them. Those
    /// behind the first in the same turn (pipelined, or on a loop's other connections)
    /// wait for the handlers before them too, and are judged from the same start.
    waiting_since: Option<Instant>,
    /// Refuse every request: the queue was full when the connection came.
    refuse_all: bool,
}

impl Admission {
    /// Runs every request: what a model that does not shed passes.
    pub fn open() -> Self {
        Self { settings: Shedding::default(), waiting_since: None, refuse_all: false }
    }

    /// Decides by `settings`, for requests that started waiting at `waiting_since` (if
    /// the model knows).
    pub fn new(settings: Shedding, waiting_since: Option<Instant>) -> Self {
        Self { settings, waiting_since, refuse_all: false }
    }

    /// Refuses every request with a 503, counted `shed`: for a connection that came when
    /// the queue was full.
    pub fn refuse_all() -> Self {
        Self { refuse_all: true, ..Self::open() }
    }

    /// From now on, requests are not judged by their wait: a blocking thread's later
    /// requests come to a thread that is already theirs, and wait for no one.
    pub fn stop_timing(&mut self) {
        self.waiting_since = None;
    }

    /// Whether this admission runs every request without looking.
    pub fn is_open(&self) -> bool {
        !self.refuse_all && self.settings.is_off()
    }

    // ANCHOR: admit
    /// Decides for the next decoded request of a client on `client` (its socket, when the
    /// model has one to look at), whose end of input the session has or has not seen.
    /// Refusing costs a few hundred bytes written; a handler past the deadline would cost
    /// its whole run, for a client that has probably stopped waiting.
    pub fn decide(&mut self, client: Option<BorrowedFd<'_>>, input_ended: bool) -> Decision {
        if self.refuse_all {
            return Decision::Refuse(Refused::Shed);
        }
        if self.settings.skip_departed && (input_ended || client.is_some_and(has_departed)) {
            return Decision::Departed;
        }
        match (self.settings.max_queue_wait, self.waiting_since) {
            (Some(limit), Some(since)) if since.elapsed() > limit => {
                Decision::Refuse(Refused::Expired)
            }
            _ => Decision::Run,
        }
    }
    // ANCHOR_END: admit
}

// ANCHOR: departed
/// Whether the client on `client` has closed its side or reset: `poll` with a zero
/// timeout, asking for `POLLRDHUP`. A FIN sets `POLLRDHUP`; a reset sets `POLLERR` and
/// `POLLHUP` too. The request itself is already read, so readable bytes say nothing;
/// what the kernel says of the stream's end does. A `poll` that fails says nothing
/// either, and the request is served.
pub fn has_departed(client: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // nix does not name `POLLRDHUP` (Linux's own); libc gives its bit. Nor does it read
    // it back (`revents` is `None` with a bit it does not know), but it need not: asked
    // for nothing else, the descriptor is reported only for `POLLRDHUP` or for what
    // `poll` always reports, `POLLERR` and `POLLHUP`, and each means the client is gone.
    let mut fds = [PollFd::new(client, PollFlags::from_bits_retain(libc::POLLRDHUP))];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1..))
}
// ANCHOR_END: departed

// ANCHOR: refuse
/// How long a refused client is told to wait before it tries again.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The reply to a refused request: `503 Service Unavailable` with `Retry-After`, so a
/// well-behaved client backs off instead of retrying at once (a retry storm would feed
/// the overload it is refused for). The caller writes it in the request's protocol and
/// closes: a connection of an overloaded server is worth freeing.
pub fn refusal(why: Refused) -> Response {
    let text = match why {
        Refused::Shed => "overloaded: too many requests waiting, try again later",
        Refused::Expired => "overloaded: the request waited too long to be served",
    };
    Response::text(503, text).with_header("Retry-After", RETRY_AFTER_SECS.to_string())
}
// ANCHOR_END: refuse

/// The settings as `/stats` shows them, once the version has said what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    shedding: Shedding,
    max_queue: Option<usize>,
}

/// Shedding's counters and settings in [`crate::Stats`].
#[derive(Debug, Default)]
pub struct ShedStats {
    /// Refused at once: the queue was full.
    pub shed: Counter,
    /// Refused after waiting past `--max-queue-wait`.
    pub expired: Counter,
    /// Not served: the client had gone.
    pub departed: Counter,
    settings: OnceLock<Shown>,
}

impl ShedStats {
    /// Says which settings this server sheds with (`max_queue`: its queue's bound, if its
    /// model has one), for `/stats`. Once: a second call changes nothing.
    pub fn settings(&self, shedding: Shedding, max_queue: Option<usize>) {
        let _ = self.settings.set(Shown { shedding, max_queue });
    }

    /// Counts a request refused for `why`.
    pub fn refused(&self, why: Refused) {
        match why {
            Refused::Shed => self.shed.bump(),
            Refused::Expired => self.expired.bump(),
        }
    }

    /// `/stats`'s `shedding`.
    pub fn to_json(&self) -> Value {
        let shown = self.settings.get().copied();
        let shedding = shown.map(|s| s.shedding).unwrap_or_default();
        json!({
            "shed": self.shed.get(),
            "expired": self.expired.get(),
            "departed": self.departed.get(),
            "max_queue": shown.and_then(|s| s.max_queue),
            "max_queue_wait_ms": shedding.max_queue_wait.map(|d| d.as_millis() as u64),
            "skip_departed": shedding.skip_departed,
        })
    }
}

/// The parser of `--max-queue-wait`: a number with its unit, `50ms`, `2s`, `0.5s`, `500us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}`: expected e.g. 50ms or 2s"))?;
    let seconds = match unit.trim() {
        "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "" => return Err(format!("`{text}`: give a unit, e.g. {text}ms or {text}s")),
        other => return Err(format!("`{other}`: the unit is s, ms or us")),
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("`{text}`: must be more than zero")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd as _;

    use super::*;

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        for wrong in ["50", "0ms", "ms", "5 minutes", "-1s"] {
            assert!(parse_duration(wrong).is_err(), "{wrong} accepted");
        }
    }

    #[test]
    fn a_wait_past_the_limit_is_refused_until_timing_stops() {
        let settings =
            Shedding { max_queue_wait: Some(Duration::from_millis(50)), ..Default::default() };
        let long_ago = Instant::now() - Duration::from_millis(60);
        let mut admission = Admission::new(settings, Some(long_ago));
        assert_eq!(admission.decide(None, false), Decision::Refuse(Refused::Expired));
        assert_eq!(admission.decide(None, false), Decision::Refuse(Refused::Expired));
        admission.stop_timing();
        assert_eq!(admission.decide(None, false), Decision::Run, "no longer timed");
        let mut admission = Admission::new(settings, Some(Instant::now()));
        assert_eq!(admission.decide(None, false), Decision::Run);
        assert!(Admission::open().is_open() && !Admission::new(settings, None).is_open());
        assert_eq!(Admission::refuse_all().decide(None, false), Decision::Refuse(Refused::Shed));
    }

    #[test]
    fn a_client_that_closed_or_reset_is_seen_gone_and_one_that_waits_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"GET /hello\n").expect("send");
        assert!(!has_departed(server.as_fd()), "a client with its request in is still here");
        client.shutdown(std::net::Shutdown::Write).expect("half-close");
        assert!(crate::testkit::wait_until(crate::testkit::TIMEOUT, || has_departed(
            server.as_fd()
        )));
        let settings = Shedding { skip_departed: true, ..Default::default() };
        let mut admission = Admission::new(settings, None);
        assert_eq!(admission.decide(Some(server.as_fd()), false), Decision::Departed);
        assert_eq!(Admission::new(settings, None).decide(None, true), Decision::Departed);
        let off = Admission::new(Shedding::default(), None).decide(Some(server.as_fd()), true);
        assert_eq!(off, Decision::Run, "off by default");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"GET /hello\n").expect("send");
        crate::testkit::reset(client);
        let gone = || has_departed(server.as_fd());
        assert!(crate::testkit::wait_until(crate::testkit::TIMEOUT, gone), "a reset is seen");
    }

    #[test]
    fn a_refusal_is_written_in_the_requests_protocol_and_runs_no_handler() {
        use crate::{Closed, Dispatcher, Session};
        let dispatcher = Dispatcher::with_builtin_routes("test");
        let mut session = Session::new();
        session.receive(b"GET /hello\nGET /hello\n");
        let closed = session.answer_admitting(&dispatcher, &mut Admission::refuse_all(), None);
        assert_eq!(closed, Some(Closed::Refused));
        let line = "503 overloaded: too many requests waiting, try again later\n";
        assert_eq!(session.output(), line.as_bytes(), "one line, and nothing after it");
        let mut session = Session::new();
        session.receive(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        let settings = Shedding { skip_departed: true, ..Shedding::default() };
        session.end_of_input();
        let closed =
            session.answer_admitting(&dispatcher, &mut Admission::new(settings, None), None);
        assert_eq!((closed, session.output()), (Some(Closed::Departed), &b""[..]));
        let shedding = dispatcher.stats().shedding();
        assert_eq!((shedding.shed.get(), shedding.departed.get()), (1, 1));
        assert_eq!(dispatcher.stats().requests(), 0, "no handler ran");
        assert!(
            Closed::Refused.owes_a_lingering_close() && !Closed::Departed.owes_a_lingering_close()
        );
    }

    #[test]
    fn the_refusal_says_when_to_retry() {
        let response = refusal(Refused::Expired);
        assert_eq!(response.status, 503);
        assert!(response.headers.contains(&("Retry-After", "1".to_owned())));
    }
}
