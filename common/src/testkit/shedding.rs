//! Load shedding's scenarios (see [`crate::overload`]), shared by the versions that shed:
//! a server whose one thread is held by a sleeper, and what a newcomer, a late request
//! and a departed client then get.

use std::net::Shutdown as Direction;
use std::time::{Duration, Instant};

use super::{Client, HttpResponse, TIMEOUT, TestServer, reset, wait_until};

/// How long a sleeper holds the server's thread: long enough for every step of a
/// scenario to happen behind it, even on a loaded machine.
pub const HOLD_MS: u64 = 1500;

/// How soon a refusal must come: the bound for "at once".
pub const AT_ONCE: Duration = Duration::from_millis(100);

/// A client whose `GET /sleep?ms=ms` holds the server's only thread (worker, loop),
/// returned once its handler runs (the dispatcher counts a request before running it),
/// with its reply still to read. It asks to close after it, or a thread of a blocking
/// server would stay with its connection; and, once its handler runs, closes its own
/// side, so the server's lingering close ends as soon as the reply is written instead of
/// holding the thread for the linger while the test reads.
pub fn hold_with_sleeper(server: &TestServer, ms: u64) -> Client {
    let before = server.stats().requests();
    let mut sleeper = Client::connect(server.addr()).expect("connect the sleeper");
    let request = format!("GET /sleep?ms={ms} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    sleeper.send(request.as_bytes()).expect("send the sleeper's request");
    assert!(
        wait_until(TIMEOUT, || server.stats().requests() > before),
        "the sleeper never reached its handler"
    );
    sleeper.stream().shutdown(Direction::Write).expect("half-close the sleeper");
    sleeper
}

/// Checks that `response` is a refusal: 503 with `Retry-After`, closing.
pub fn assert_refused(response: &HttpResponse) {
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.header("retry-after"), Some("1"), "{:?}", response.headers);
    assert_eq!(response.header("connection"), Some("close"), "{:?}", response.headers);
}

/// With one worker held by a sleeper and one client waiting in the queue (the figure
/// `queued` of `/stats`'s `model` at 1), a newcomer is refused 503 within [`AT_ONCE`], in
/// either protocol; the one already queued is still served. For a server started with
/// one worker and `--max-queue 1`.
pub fn check_a_full_queue_refuses_at_once(server: &TestServer, queued: &str) {
    let mut sleeper = hold_with_sleeper(server, HOLD_MS);
    let mut waiting = Client::connect(server.addr()).expect("connect");
    waiting.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    assert!(
        wait_until(TIMEOUT, || server.model_once_registered(queued) == 1),
        "the second client never queued"
    );
    let asked = Instant::now();
    let mut newcomer = Client::connect(server.addr()).expect("connect the newcomer");
    let refused = newcomer.get("/hello").expect("a refusal, not a reset or a wait");
    let took = asked.elapsed();
    assert_refused(&refused);
    assert!(took < AT_ONCE, "refused after {took:?}");
    let mut liner = Client::connect(server.addr()).expect("connect");
    let line = liner.line("GET /hello").expect("a refusal in the line protocol");
    assert!(line.starts_with("503 "), "{line}");
    assert!(liner.is_closed_by_server(), "a refusal closes");
    // One refused before its request is in is held until it comes, then answered.
    let accepted = server.stats().accepted();
    let mut slow = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().accepted() > accepted), "never taken in");
    assert_refused(&slow.get("/hello").expect("a refusal, sent after it was taken in"));
    assert_eq!(server.stats().shedding().shed.get(), 3);
    assert_eq!(sleeper.read_response().expect("the sleeper's reply").status, 200);
    assert_eq!(waiting.read_response().expect("the queued client's reply").status, 200);
}

/// With the one worker held by a sleeper for 300 ms, a request behind it is answered
/// 503 and its handler never runs: `requests` counts the sleeper alone, `expired` the
/// late one. For a server started with one worker and `--max-queue-wait 50ms`.
pub fn check_a_late_request_expires_unserved(server: &TestServer) {
    let before = server.stats().requests();
    let mut sleeper = hold_with_sleeper(server, 300);
    let mut late = Client::connect(server.addr()).expect("connect");
    assert_refused(&late.get("/hello").expect("a refusal"));
    assert_eq!(sleeper.read_response().expect("the sleeper's reply").status, 200);
    assert_eq!(server.stats().shedding().expired.get(), 1);
    assert_eq!(server.stats().requests(), before + 1, "the late request's handler ran");
}

/// A client that sends its request and resets while it waits behind a sleeper (in the
/// queue: `queued` at 1) never reaches its handler: `departed` counts it, `requests`
/// does not. For a server started with one worker and `--skip-departed`.
pub fn check_a_reset_client_is_not_served(server: &TestServer, queued: &str) {
    let before = server.stats().requests();
    let mut sleeper = hold_with_sleeper(server, 300);
    let mut gone = Client::connect(server.addr()).expect("connect");
    gone.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    assert!(
        wait_until(TIMEOUT, || server.model_once_registered(queued) == 1),
        "the client never queued"
    );
    reset(gone.stream().try_clone().expect("clone the socket"));
    drop(gone);
    assert_eq!(sleeper.read_response().expect("the sleeper's reply").status, 200);
    assert!(
        wait_until(TIMEOUT, || server.stats().shedding().departed.get() == 1),
        "the departed client was not noticed: {}",
        server.stats().snapshot()
    );
    assert_eq!(server.stats().requests(), before + 1, "the departed client's handler ran");
}

/// A client, already accepted, that sends its request and closes its side while a
/// sleeper holds the loop is not answered: `departed` counts it, `requests` does not.
/// For an event loop started with one loop and `--skip-departed`.
pub fn check_a_half_closed_client_is_not_served(server: &TestServer) {
    let mut gone = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().accepted() == 1), "never accepted");
    let before = server.stats().requests();
    let mut sleeper = hold_with_sleeper(server, 300);
    gone.send(b"GET /hello\n").expect("send");
    gone.stream().shutdown(Direction::Write).expect("half-close");
    assert_eq!(sleeper.read_response().expect("the sleeper's reply").status, 200);
    assert!(gone.read_line().is_err(), "the departed client was answered");
    assert_eq!(server.stats().shedding().departed.get(), 1);
    assert_eq!(server.stats().requests(), before + 1, "the departed client's handler ran");
}

/// Two requests that arrive while a loop (or ring) started alone is held by a sleeper come
/// back from one wait, in the order they arrived: a second sleeper, then a `/hello` that
/// must wait 300 ms behind it. Timed from that wake-up, the `/hello` has waited past the
/// server's `--max-queue-wait` (under 300 ms) when its turn comes, and is refused
/// unserved. (The 300 ms it waited behind the first sleeper is invisible to the loop,
/// which was not looking: a lower bound.)
pub fn check_a_request_behind_a_slow_handler_expires_in_its_turn(server: &TestServer) {
    let mut second = Client::connect(server.addr()).expect("connect");
    let mut late = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().accepted() == 2), "never accepted");
    let before = server.stats().requests();
    let mut first = hold_with_sleeper(server, 300);
    second
        .send(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("send");
    late.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    assert_refused(&late.read_response().expect("a refusal"));
    for sleeper in [&mut first, &mut second] {
        assert_eq!(sleeper.read_response().expect("a sleeper's reply").status, 200);
    }
    assert_eq!(server.stats().shedding().expired.get(), 1);
    assert_eq!(server.stats().requests(), before + 2, "the late request's handler ran");
}
