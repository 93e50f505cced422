//! Stage 2: what model is it? Questions asked by behaviour alone, each bounded in time,
//! so they work on a server in any language; `/proc` adds threads and processes when the
//! grader started the server itself.
//!
//! The kernel's backlog can fake concurrency: an iterative server's second client is
//! *connected* (the kernel completed its handshake) before the server ever accepts it.
//! So the first client here never speaks and the second speaks first; only a server that
//! serves two connections at once answers it. A pool is measured the same way, one
//! silent client at a time, until a newcomer goes unanswered.
//!
//! [`closest`] then names the first workspace version whose registry entry describes the
//! model the answers show (serial, a thread or a process per connection, a pool, or where
//! an event loop's handlers run): a version added to the registry is considered without
//! this file changing.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use registry::{Handlers, PerConnection};
use serde::Serialize;

use super::transcript::Protocol;
use super::wire::{ANSWER_WAIT, Conn, Got};

/// How long a client that should be answered at once is given before it counts as
/// waiting: long against a loopback round trip, short enough to ask many times.
const PROMPT: Duration = Duration::from_secs(1);
/// The most clients the pool question holds before concluding there is no pool.
pub const MOST_HOLDERS: usize = 64;
/// Silent connections for the event-loop question: past `select`'s 1,024 descriptors.
pub const CROWD: usize = 1_100;
/// Clients that ask for `/hello` while a slow handler runs.
const PROBES: usize = 32;
/// At most this many of them waiting still counts as none: a runtime that steals work
/// may leave one behind a slow handler for a moment. (A loop per core leaves about half.)
const STRAYS: usize = PROBES / 16;
/// How long the slow handler takes, and how long the others may wait for theirs.
const SLOW_MS: u64 = 2_000;

/// How the grader reaches the server, and what it may look at.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// The server's process, when the grader started it: `/proc` can then be read.
    pub pid: Option<u32>,
    /// Whether `GET /abort` may be asked (it crashes the server, if served).
    pub may_crash: bool,
}

/// One question and what the server's behaviour answered.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: &'static str,
    /// The answer in a few words, or why the question could not be asked.
    pub answer: String,
    /// What was seen, in numbers.
    pub evidence: String,
    /// False when the question was skipped.
    pub asked: bool,
}

/// The model, as far as the questions tell.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Fingerprint {
    pub serial: Option<bool>,
    /// Threads and processes gained with [`HELD`] silent clients.
    pub threads_grew: Option<u64>,
    pub processes_grew: Option<u64>,
    /// Clients served at once, when a newcomer starved below [`MOST_HOLDERS`].
    pub pool: Option<usize>,
    /// A thousand silent clients: answered beside them, and threads gained.
    pub crowd_answered: Option<bool>,
    pub crowd_threads: Option<u64>,
    /// Of [`PROBES`] clients, how many a slow handler kept waiting; with one slow
    /// handler, and with as many as the machine has cores.
    pub stalled_by_one: Option<usize>,
    /// The slow route the question used: `/sleep`, or `/cpu` where that is not served.
    pub slow_route: Option<&'static str>,
    pub stalled_by_cores: Option<usize>,
    /// Whether the others survived `GET /abort` on one connection.
    pub crash_isolated: Option<bool>,
    pub answers: Vec<Answer>,
}

/// Silent clients for the threads-and-processes question.
pub const HELD: usize = 50;

/// Asks every question that applies, in an order where each answer can spare the next.
pub fn run(server: &Server) -> io::Result<Fingerprint> {
    let mut f = Fingerprint::default();
    serial(server, &mut f)?;
    if f.serial == Some(true) {
        skip(
            &mut f,
            "the other questions",
            "a server that serves one client at a time has its answer",
        );
        return Ok(f);
    }
    growth(server, &mut f)?;
    pool(server, &mut f)?;
    if f.pool.is_none() {
        crowd(server, &mut f)?;
    } else {
        skip(
            &mut f,
            "Does a newcomer get an answer beside 1,100 silent clients?",
            "the pool is full long before",
        );
    }
    if f.pool.is_some() {
        // Which slow route it serves, for the comparison; the question itself is moot.
        f.slow_route = slow_route(server)?.ok();
        // Its clients would wait for a free thread, whatever the handler does.
        skip(
            &mut f,
            "Does a slow handler (GET /sleep, or /cpu) keep other clients waiting?",
            "the pool's threads run the handlers, and its size limits everyone",
        );
    } else {
        slow_handler(server, &mut f)?;
    }
    crash(server, &mut f)?;
    Ok(f)
}

fn skip(f: &mut Fingerprint, question: &'static str, why: &str) {
    f.answers.push(Answer {
        question,
        answer: format!("not asked: {why}"),
        evidence: String::new(),
        asked: false,
    });
}

fn record(f: &mut Fingerprint, question: &'static str, answer: String, evidence: String) {
    f.answers.push(Answer { question, answer, evidence, asked: true });
}

/// The request for `path` in the protocol the server speaks.
fn request(protocol: Protocol, path: &str) -> Vec<u8> {
    match protocol {
        Protocol::Line => format!("GET {path}\n").into_bytes(),
        Protocol::Http => format!("GET {path} HTTP/1.1\r\nHost: grade\r\n\r\n").into_bytes(),
    }
}

/// Waits up to `wait` for the answer to one request; its status if it came.
fn answer(conn: &mut Conn, protocol: Protocol, wait: Duration) -> io::Result<Option<u16>> {
    Ok(match protocol {
        Protocol::Line => match conn.line(wait)? {
            Got::Answer(line) => line.get(..3).and_then(|code| code.parse().ok()),
            _ => None,
        },
        Protocol::Http => match conn.http(wait)? {
            Got::Answer(r) => Some(r.status),
            _ => None,
        },
    })
}

/// Asks `path` on a new connection; the status, and how long it took.
fn ask(server: &Server, path: &str, wait: Duration) -> io::Result<(Option<u16>, Duration, Conn)> {
    let mut conn = Conn::connect(server.addr)?;
    let started = Instant::now();
    conn.send(&request(server.protocol, path))?;
    let status = answer(&mut conn, server.protocol, wait)?;
    Ok((status, started.elapsed(), conn))
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} ms", d.as_millis())
    }
}

// ANCHOR: serial
/// Does a second client get an answer while a first one is connected and silent?
fn serial(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "Is a second client answered while a first one is connected and silent?";
    let first = TcpStream::connect_timeout(&server.addr, ANSWER_WAIT)?;
    let mut second = Conn::connect(server.addr)?;
    let started = Instant::now();
    second.send(&request(server.protocol, "/hello"))?;
    if answer(&mut second, server.protocol, PROMPT)? == Some(200) {
        f.serial = Some(false);
        let evidence = format!("the second client was answered in {}", ms(started.elapsed()));
        record(f, Q, "yes: it serves clients concurrently".into(), evidence);
        return Ok(());
    }
    // Serial, or broken: the first client leaves, and the second should be served now.
    drop(first);
    let left = Instant::now();
    let after = answer(&mut second, server.protocol, ANSWER_WAIT)?;
    f.serial = Some(after == Some(200));
    let evidence = match after {
        Some(200) => format!(
            "the second client waited {} unanswered, and was answered {} after the first left",
            ms(PROMPT),
            ms(left.elapsed())
        ),
        _ => format!(
            "the second client was not answered, even after the first left ({} more)",
            ms(ANSWER_WAIT)
        ),
    };
    let answer = if after == Some(200) { "no: one client at a time" } else { "no answer at all" };
    record(f, Q, answer.into(), evidence);
    Ok(())
}
// ANCHOR_END: serial

/// The server's threads and processes, with every descendant's.
fn census(pid: u32) -> Option<(u64, u64)> {
    let mut todo = vec![pid];
    let (mut threads, mut processes) = (0, 0);
    while let Some(pid) = todo.pop() {
        let Ok(status) = common::procfs::status(Some(pid)) else { continue };
        threads += status.threads;
        processes += 1;
        todo.extend(common::procfs::children(pid).unwrap_or_default());
    }
    (processes > 0).then_some((threads, processes))
}

/// The census once it has stopped changing (for half a second), or after five seconds.
fn settled_census(pid: u32) -> Option<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = census(pid)?;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = census(pid)?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(500) {
            break;
        }
    }
    Some(last)
}

/// Do threads or processes grow with silent clients?
fn growth(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "Do threads or processes grow with silent clients?";
    let Some(pid) = server.pid else {
        skip(f, Q, "the grader did not start this server, so it cannot read its /proc");
        return Ok(());
    };
    let Some(before) = settled_census(pid) else {
        skip(f, Q, "its /proc could not be read");
        return Ok(());
    };
    let held = common::testkit::hold_idle(server.addr, HELD)?;
    let after = settled_census(pid).unwrap_or(before);
    drop(held);
    let (threads, processes) = (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1));
    f.threads_grew = Some(threads);
    f.processes_grew = Some(processes);
    let per = |grew: u64| grew * 10 >= HELD as u64 * 9;
    let answer = if per(processes) {
        "a process per connection"
    } else if per(threads) {
        "a thread per connection"
    } else {
        "no: they stay flat"
    };
    let evidence = format!(
        "with {HELD} silent clients: {} → {} threads, {} → {} processes",
        before.0, after.0, before.1, after.1
    );
    record(f, Q, answer.into(), evidence);
    Ok(())
}

// ANCHOR: pool
/// How many clients, each answered once and then silent, does it take before a newcomer
/// waits?
fn pool(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "How many silent clients, each answered once, leave a newcomer waiting?";
    let mut holders = Vec::new();
    while holders.len() < MOST_HOLDERS {
        let mut conn = Conn::connect(server.addr)?;
        conn.send(&request(server.protocol, "/hello"))?;
        if answer(&mut conn, server.protocol, PROMPT)? == Some(200) {
            holders.push(conn);
            continue;
        }
        // Every thread it serves with is held; does one leaving free it?
        let size = holders.len();
        holders.pop();
        let left = Instant::now();
        let freed = answer(&mut conn, server.protocol, ANSWER_WAIT)? == Some(200);
        f.pool = Some(size);
        let evidence = if freed {
            format!(
                "with {size} clients connected and silent, the next waited {} unanswered, and was answered {} after one of them left",
                ms(PROMPT),
                ms(left.elapsed())
            )
        } else {
            format!(
                "with {size} clients connected and silent, the next was not answered, even after one left"
            )
        };
        record(f, Q, format!("{size}: it serves at most {size} connections at once"), evidence);
        return Ok(());
    }
    record(
        f,
        Q,
        format!("none up to {MOST_HOLDERS}"),
        format!("all {MOST_HOLDERS} were answered at once, each beside the silent others"),
    );
    Ok(())
}
// ANCHOR_END: pool

/// Is a newcomer answered beside a thousand silent clients, and at what cost in threads?
fn crowd(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "Does a newcomer get an answer beside 1,100 silent clients?";
    raise_descriptor_limit();
    let before = server.pid.and_then(census);
    let crowd = match common::testkit::hold_idle(server.addr, CROWD) {
        Ok(crowd) => crowd,
        Err(e) => {
            record(f, Q, "could not open them".into(), format!("connecting the crowd failed: {e}"));
            return Ok(());
        }
    };
    let after = server.pid.and_then(settled_census);
    let (status, took, _) = ask(server, "/hello", ANSWER_WAIT)?;
    drop(crowd);
    let answered = status == Some(200);
    f.crowd_answered = Some(answered);
    let threads = match (before, after) {
        (Some(b), Some(a)) => {
            f.crowd_threads = Some(a.0.saturating_sub(b.0));
            format!("; threads {} → {}", b.0, a.0)
        }
        _ => String::new(),
    };
    let evidence = if answered {
        format!("answered in {}{threads}", ms(took))
    } else {
        format!("not answered within {}{threads}", ms(ANSWER_WAIT))
    };
    record(f, Q, if answered { "yes".into() } else { "no".into() }, evidence);
    Ok(())
}

/// A test or a grader opening a thousand connections needs more than the usual 1,024
/// descriptors; the hard limit is this process's to take.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

// ANCHOR: slow_handler
/// While `slow` requests for `/sleep` run, how many of [`PROBES`] other clients wait?
fn stalled_by(server: &Server, route: &str, slow: usize) -> io::Result<Option<usize>> {
    let mut sleepers = Vec::new();
    for _ in 0..slow {
        let mut conn = Conn::connect(server.addr)?;
        conn.send(&request(server.protocol, &format!("{route}?ms={SLOW_MS}")))?;
        sleepers.push(conn);
    }
    // Time for the slow requests to reach their handlers.
    std::thread::sleep(Duration::from_millis(200));
    let mut probes = Vec::new();
    for _ in 0..PROBES {
        let mut conn = Conn::connect(server.addr)?;
        conn.send(&request(server.protocol, "/hello"))?;
        probes.push(conn);
    }
    let deadline = Instant::now() + PROMPT;
    let mut stalled = 0;
    for conn in &mut probes {
        let left = deadline.saturating_duration_since(Instant::now());
        if answer(conn, server.protocol, left)? != Some(200) {
            stalled += 1;
        }
    }
    // The slow ones must finish too, or the server is not what this measured.
    for conn in &mut sleepers {
        if answer(conn, server.protocol, Duration::from_millis(SLOW_MS) + ANSWER_WAIT)? != Some(200)
        {
            return Ok(None);
        }
    }
    Ok(Some(stalled))
}

// ANCHOR_END: slow_handler

/// A slow route the server serves: one that sleeps, or else one that computes (either
/// holds its thread); or what was tried.
fn slow_route(server: &Server) -> io::Result<Result<&'static str, String>> {
    let mut tried = Vec::new();
    for route in ["/sleep", "/cpu"] {
        match ask(server, &format!("{route}?ms=1"), ANSWER_WAIT)?.0 {
            Some(200) => return Ok(Ok(route)),
            Some(status) => tried.push(format!("GET {route}?ms=1 answered {status}")),
            None => tried.push(format!("GET {route}?ms=1 was not answered")),
        }
    }
    Ok(Err(tried.join(", ")))
}

/// Does a slow handler keep other clients waiting: one, and as many as there are cores?
fn slow_handler(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "Does a slow handler (GET /sleep, or /cpu) keep other clients waiting?";
    let route = match slow_route(server)? {
        Ok(route) => route,
        Err(tried) => {
            skip(f, Q, &format!("{tried}: neither route is served"));
            return Ok(());
        }
    };
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let (Some(one), Some(many)) =
        (stalled_by(server, route, 1)?, stalled_by(server, route, cores)?)
    else {
        record(f, Q, "could not tell".into(), "a slow request itself went unanswered".into());
        return Ok(());
    };
    f.stalled_by_one = Some(one);
    f.slow_route = Some(route);
    f.stalled_by_cores = Some(many);
    // The same reading as `closest`'s: a stray or two left behind is still none.
    let answer = match (one, many) {
        (o, _) if o == PROBES => "yes, every client: one thread does everything".to_owned(),
        (o, _) if o > STRAYS => {
            format!("some: {o} of {PROBES} clients waited, those that share its thread")
        }
        (_, m) if m + STRAYS >= PROBES => {
            format!("not one, but {cores} at once stall everyone: handlers run on {cores} threads")
        }
        _ => "no: handlers run beside the connections' I/O".to_owned(),
    };
    let evidence = format!(
        "of {PROBES} clients asking GET /hello during a {SLOW_MS} ms {route}, {one} waited over {}; during {cores} at once, {many}",
        ms(PROMPT)
    );
    record(f, Q, answer, evidence);
    Ok(())
}

/// Does a crash in one connection (`GET /abort`) take the others down?
fn crash(server: &Server, f: &mut Fingerprint) -> io::Result<()> {
    const Q: &str = "Does a crash in one connection (GET /abort) take the others down?";
    if !server.may_crash {
        skip(f, Q, "the grader did not start this server, and will not crash it");
        return Ok(());
    }
    let mut other = Conn::connect(server.addr)?;
    other.send(&request(server.protocol, "/hello"))?;
    if answer(&mut other, server.protocol, ANSWER_WAIT)? != Some(200) {
        skip(f, Q, "a client to watch was not answered");
        return Ok(());
    }
    let (status, _, _) = ask(server, "/abort", ANSWER_WAIT)?;
    if let Some(status) = status {
        skip(f, Q, &format!("GET /abort answered {status}: no crash on offer"));
        return Ok(());
    }
    other.send(&request(server.protocol, "/hello"))?;
    let survived = answer(&mut other, server.protocol, ANSWER_WAIT)? == Some(200);
    let newcomer =
        ask(server, "/hello", ANSWER_WAIT).map(|(s, _, _)| s == Some(200)).unwrap_or(false);
    f.crash_isolated = Some(survived && newcomer);
    let answer = if survived && newcomer {
        "no: the crash took only its own connection"
    } else {
        "yes: everyone went down with it"
    };
    let evidence = format!(
        "after GET /abort on one connection: another open connection {}, a new client {}",
        if survived { "was still answered" } else { "was lost" },
        if newcomer { "was answered" } else { "found nobody" }
    );
    record(f, Q, answer.into(), evidence);
    Ok(())
}

/// A model as the registry describes one, found from behaviour.
#[derive(Debug, Clone, Copy)]
enum Model {
    Serial,
    PerConnection(PerConnection),
    Pool,
    Loop(Handlers),
}

impl Model {
    /// Whether the registry says `version` is of this model.
    fn fits(self, version: &registry::Version) -> bool {
        match self {
            Model::Serial => version.serial(),
            Model::PerConnection(each) => version.per_connection == Some(each),
            // Whether its pool can be sized at all.
            Model::Pool => version.pool_options(1).is_some(),
            Model::Loop(handlers) => {
                version.per_connection.is_none() && version.handlers == handlers
            }
        }
    }
}

/// The workspace version this behaves most like (the first of the series whose registry
/// entry fits the model found), and why, in a sentence.
pub fn closest(f: &Fingerprint) -> (Option<&'static registry::Version>, String) {
    let (model, why) = model(f);
    (model.and_then(|m| registry::VERSIONS.iter().find(|v| m.fits(v))), why)
}

/// The model the answers show, and why, in a sentence.
fn model(f: &Fingerprint) -> (Option<Model>, String) {
    if f.serial == Some(true) {
        return (
            Some(Model::Serial),
            "it serves one client at a time: a second one waits until the first leaves".into(),
        );
    }
    if f.serial.is_none() {
        return (None, "it did not answer".into());
    }
    let per = |grew: Option<u64>| grew.is_some_and(|g| g * 10 >= HELD as u64 * 9);
    let grown = [
        (PerConnection::Process, "processes", f.processes_grew),
        (PerConnection::Thread, "threads", f.threads_grew),
    ];
    if let Some(&(each, what, grew)) = grown.iter().find(|(_, _, grew)| per(*grew)) {
        let why = format!("its {what} grew by {} with {HELD} silent clients", grew.unwrap_or(0));
        return (Some(Model::PerConnection(each)), why);
    }
    if let Some(size) = f.pool {
        let why = format!("a pool of {size}: with {size} silent clients a newcomer waited");
        return (Some(Model::Pool), why);
    }
    let (model, why) = event_loop(f);
    let flat = match (f.threads_grew, f.crowd_threads) {
        (Some(t), Some(c)) => {
            format!(" (threads +{t} with {HELD} silent clients, +{c} with {CROWD})")
        }
        _ => String::new(),
    };
    // A loop that cannot watch a newcomer's descriptor: select's fixed bitmap.
    let refused = if f.crowd_answered == Some(false) {
        format!(
            "; but beside {CROWD} silent clients a newcomer was not answered, as with select, which cannot watch a descriptor past 1,023 (v4-syscalls --api select)"
        )
    } else {
        String::new()
    };
    (model, format!("{why}{flat}{refused}"))
}

/// Which event loop (or many threads) whom slow handlers stalled shows.
fn event_loop(f: &Fingerprint) -> (Option<Model>, String) {
    let found = |handlers, why: String| (Some(Model::Loop(handlers)), why);
    match (f.stalled_by_one, f.stalled_by_cores) {
        (Some(o), _) if o == PROBES => found(
            Handlers::OneLoop,
            "one event loop, handlers inline: one slow handler stalls everyone".into(),
        ),
        (Some(o), _) if o > STRAYS => found(
            Handlers::LoopPerCore,
            format!(
                "an event loop per thread, handlers inline: a slow handler stalled {o} of {PROBES} clients, those of its loop"
            ),
        ),
        (Some(_), Some(m)) if m + STRAYS >= PROBES => found(
            Handlers::RuntimeWorkers,
            "a runtime's few threads run the handlers inline: as many slow handlers as threads stall everyone".into(),
        ),
        // Without /proc, a thread per connection looks the same from outside.
        (Some(_), Some(_)) if f.threads_grew.is_none() => (
            None,
            "slow handlers stall nobody: an event loop handing handlers to workers (v4-nio) or a thread per connection (v2); without its /proc the grader cannot tell which (let the grader start it to count its threads)".into(),
        ),
        (Some(_), Some(_)) => found(
            Handlers::HandedToWorkers,
            "an event loop that hands handlers to workers: slow handlers stall nobody".into(),
        ),
        _ => (
            None,
            "an event loop, or many threads; without /sleep the handlers' placement is unknown"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closest_name(f: Fingerprint) -> Option<&'static str> {
        closest(&f).0.map(|v| v.name)
    }

    /// Concurrent, flat threads, and a slow handler's reach: what an event loop shows.
    fn event_loop(one: usize, cores: usize) -> Fingerprint {
        Fingerprint {
            serial: Some(false),
            threads_grew: Some(0),
            processes_grew: Some(0),
            stalled_by_one: Some(one),
            stalled_by_cores: Some(cores),
            ..Fingerprint::default()
        }
    }

    #[test]
    fn each_model_found_is_the_first_version_the_registry_says_has_it() {
        let serial = Fingerprint { serial: Some(true), ..Fingerprint::default() };
        assert_eq!(closest_name(serial), Some("v1-blocking"));
        let grown = |threads, processes| Fingerprint {
            serial: Some(false),
            threads_grew: Some(threads),
            processes_grew: Some(processes),
            ..Fingerprint::default()
        };
        assert_eq!(closest_name(grown(HELD as u64, HELD as u64)), Some("v2-process-per-conn"));
        assert_eq!(closest_name(grown(HELD as u64, 0)), Some("v2-thread-per-conn"));
        let pool = Fingerprint { pool: Some(4), ..grown(0, 0) };
        assert_eq!(closest_name(pool), Some("v3-thread-pool"));
        assert_eq!(closest_name(event_loop(PROBES, PROBES)), Some("v4-syscalls"));
        assert_eq!(closest_name(event_loop(PROBES / 2, PROBES)), Some("v5-reactor-per-core"));
        assert_eq!(closest_name(event_loop(0, PROBES)), Some("v6-async"));
        assert_eq!(closest_name(event_loop(0, 0)), Some("v4-nio"));
        // Without /proc, workers and a thread per connection look alike: no version.
        let unseen = Fingerprint { threads_grew: None, ..event_loop(0, 0) };
        assert_eq!(closest_name(unseen), None);
    }
}
