//! v6's timeline, read from its `--trace` file: every poll of a connection's task is a span
//! on the worker thread that ran it, and when a handler blocks one worker (`/sleep`, run
//! inline), the connections that are ready meanwhile are polled by the other: a task is
//! not tied to a thread, as v5's connections are to their loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::testkit::trace::{Thread, Trace, TraceEvent, TracedServer};
use common::testkit::{Client, TIMEOUT};

const BINARY: &str = env!("CARGO_BIN_EXE_v6-async");
const BUSY_CLIENTS: usize = 3;
const SLEEPS: usize = 3;
/// How long the server records: `--trace-for 4s`.
const RECORDED: Duration = Duration::from_secs(4);

/// On two workers: one client asks `/sleep?ms=200` [`SLEEPS`] times in a row while
/// [`BUSY_CLIENTS`] others ask `/hello` without pause; the trace.
///
/// Without pause, because a worker that is woken by nothing does not wake: a worker that
/// takes one ready task from the I/O driver and blocks in it leaves the other asleep if
/// that was all there was to do, and then nobody polls the driver until the block ends
/// (tokio wakes a second worker only when the first has more than one task queued).
///
/// A trace of busy clients grows by thousands of events a second, which a debug build on a
/// loaded machine took up to 7 s to write; written as the server stops, that outlasted the
/// shutdown's deadline, and the server exited with an error. So the recording ends at a
/// time bound, [`RECORDED`], well after the scenario (about a second), and the server
/// writes it meanwhile, with no deadline; the test waits for the file, reads it, and then
/// stops the server.
fn two_workers_one_blocked() -> (Trace, u64) {
    let server = TracedServer::start(BINARY, &["--workers", "2", "--trace-for", "4s"]);
    let mut sleeper = Client::connect(server.addr()).expect("connect");
    assert_eq!(sleeper.line("GET /hello").expect("an answer"), "200 Hello, World!");
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(BUSY_CLIENTS + 1));
    let busy: Vec<_> = (0..BUSY_CLIENTS)
        .map(|_| {
            let (addr, done, started) = (server.addr(), Arc::clone(&done), Arc::clone(&started));
            thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connect");
                started.wait();
                let mut answered = 0;
                while !done.load(Ordering::Relaxed) {
                    assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    started.wait();
    for _ in 0..SLEEPS {
        assert_eq!(sleeper.line("GET /sleep?ms=200").expect("an answer"), "200 slept 200 ms");
    }
    done.store(true, Ordering::Relaxed);
    for client in busy {
        assert!(client.join().expect("a busy client") > 0);
    }
    drop(sleeper);
    let trace = server.trace_written(RECORDED + TIMEOUT).expect("a trace, at its time bound");
    drop(server); // stopped (killed): its trace is written, and its shutdown tested elsewhere
    let limit = trace.other["limit"].as_str().unwrap_or_default();
    assert!(limit.starts_with("time: "), "recording stopped for: {limit}");
    let sleeper = trace
        .spans("handle")
        .find(|h| h.name.starts_with("GET /sleep"))
        .and_then(TraceEvent::conn)
        .expect("the sleeps are recorded with their connection");
    (trace, sleeper)
}

/// The polls of connections other than `sleeper` on `thread`, by connection.
fn polled_on<'a>(
    trace: &'a Trace,
    thread: Thread,
    sleeper: u64,
) -> impl Iterator<Item = &'a TraceEvent> + 'a {
    trace.spans("poll").filter(move |p| p.thread() == thread && p.conn() != Some(sleeper))
}

#[test]
fn a_blocked_worker_s_ready_connections_are_polled_by_the_other() {
    let (trace, sleeper) = two_workers_one_blocked();
    assert_eq!(trace.other["version"], "v6-async");
    let workers: BTreeSet<Thread> = trace.spans("poll").map(TraceEvent::thread).collect();
    let names: BTreeSet<_> = workers.iter().filter_map(|&w| trace.thread_name(w)).collect();
    assert_eq!(names, BTreeSet::from(["tokio-worker-0", "tokio-worker-1"]), "{workers:?}");
    assert!(trace.spans("poll").all(|p| p.conn().is_some()), "a poll for no connection");
    // Every handler ran inside a poll of its connection's task, on that poll's worker.
    let mut polls: BTreeMap<Thread, Vec<&TraceEvent>> = BTreeMap::new();
    for poll in trace.spans("poll") {
        polls.entry(poll.thread()).or_default().push(poll);
    }
    for lane in polls.values_mut() {
        lane.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    }
    for handler in trace.spans("handle") {
        let lane = polls.get(&handler.thread()).map_or(&[][..], Vec::as_slice);
        // Polls on one thread do not overlap: the last to start before the handler.
        let poll = lane[..lane.partition_point(|p| p.ts <= handler.ts)].last();
        let poll = poll.filter(|p| handler.end() <= p.end());
        assert_eq!(poll.and_then(|p| p.conn()), handler.conn(), "{handler:?}");
    }
    let sleeps: Vec<_> =
        trace.spans("handle").filter(|h| h.name.starts_with("GET /sleep")).collect();
    assert_eq!(sleeps.len(), SLEEPS, "the scenario outlasted the recording");
    let mut moved = BTreeSet::new();
    for sleep in &sleeps {
        let blocked = sleep.thread();
        let other = *workers.iter().find(|&&w| w != blocked).expect("two workers");
        let during: BTreeSet<u64> = polled_on(&trace, other, sleeper)
            .filter(|p| p.ts >= sleep.ts && p.end() <= sleep.end())
            .filter_map(TraceEvent::conn)
            .collect();
        assert!(!during.is_empty(), "nothing ran while {sleep:?} blocked its worker");
        // Those of them that the blocked worker has polled too, before or after.
        let on_blocked: BTreeSet<u64> =
            polled_on(&trace, blocked, sleeper).filter_map(TraceEvent::conn).collect();
        moved.extend(during.intersection(&on_blocked).copied());
    }
    assert!(!moved.is_empty(), "no connection's task moved between the workers");
}

/// With `--blocking spawn`, each answer is handed from the worker that polled the task to
/// a thread of the blocking pool, which runs the handler: an arrow per request.
#[test]
fn spawned_answers_cross_from_a_worker_to_the_blocking_pool() {
    let server = TracedServer::start(BINARY, &["--workers", "2", "--blocking", "spawn"]);
    let mut client = Client::connect(server.addr()).expect("connect");
    for _ in 0..3 {
        assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
    }
    drop(client);
    let trace = server.stop().expect("a trace in the format");
    let name = |thread| trace.thread_name(thread).unwrap_or_default();
    let handlers: Vec<_> = trace.spans("handle").collect();
    assert_eq!(handlers.len(), 3, "{handlers:#?}");
    assert!(handlers.iter().all(|h| name(h.thread()).starts_with("blocking-")), "{handlers:#?}");
    let handoffs = trace.handoffs();
    assert_eq!(handoffs.len(), 3, "an arrow per answer: {handoffs:#?}");
    for (queued, taken) in handoffs {
        assert!(name(queued.thread()).starts_with("tokio-worker-"), "{queued:?}");
        assert!(name(taken.thread()).starts_with("blocking-"), "{taken:?}");
        assert_eq!(queued.conn(), handlers[0].conn(), "the arrow carries the connection");
    }
}
