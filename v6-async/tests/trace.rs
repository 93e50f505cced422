//! v6's timeline, read from what it records (`--trace-live`, fetched from `GET /trace`):
//! every poll of a connection's task is a span on the worker thread that ran it, and when
//! a handler blocks one worker (`/sleep`, run inline), the connections that are ready
//! meanwhile are polled by the other: a task is not tied to a thread, as v5's connections
//! are to their loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::testkit::trace::{Thread, Trace, TraceEvent, TracedServer};
use common::testkit::{Client, spawn_binary};

const BINARY: &str = env!("CARGO_BIN_EXE_v6-async");
const BUSY_CLIENTS: usize = 3;
/// The sleeps asked at most, one after another, until both things are seen.
const MAX_SLEEPS: usize = 20;

/// The polls of connections other than `sleeper` on `thread`, by connection.
fn polled_on<'a>(
    trace: &'a Trace,
    thread: Thread,
    sleeper: u64,
) -> impl Iterator<Item = &'a TraceEvent> + 'a {
    trace.spans("poll").filter(move |p| p.thread() == thread && p.conn() != Some(sleeper))
}

/// Every handler in `trace` ran inside a poll of its connection's task, on that poll's
/// worker, and only the two workers polled.
fn check_handlers_run_in_polls(trace: &Trace) {
    let workers: BTreeSet<Thread> = trace.spans("poll").map(TraceEvent::thread).collect();
    let names: BTreeSet<_> = workers.iter().filter_map(|&w| trace.thread_name(w)).collect();
    assert!(names.iter().all(|n| ["tokio-worker-0", "tokio-worker-1"].contains(n)), "{names:?}");
    assert!(trace.spans("poll").all(|p| p.conn().is_some()), "a poll for no connection");
    let mut polls: BTreeMap<Thread, Vec<&TraceEvent>> = BTreeMap::new();
    for poll in trace.spans("poll") {
        polls.entry(poll.thread()).or_default().push(poll);
    }
    for lane in polls.values_mut() {
        lane.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    }
    for handler in trace.spans("handle") {
        let lane = polls.get(&handler.thread()).map_or(&[][..], Vec::as_slice);
        // A poll is recorded when it ends: a handler that ended after the lane's last
        // recorded poll ran in one still going when the window was read.
        if lane.last().is_none_or(|last| last.end() < handler.end()) {
            continue;
        }
        // Polls on one thread do not overlap: the last to start before the handler.
        let poll = lane[..lane.partition_point(|p| p.ts <= handler.ts)].last();
        let poll = poll.filter(|p| handler.end() <= p.end());
        assert_eq!(poll.and_then(|p| p.conn()), handler.conn(), "{handler:?}");
    }
}

/// On two workers: one client asks `/sleep?ms=200` again and again while [`BUSY_CLIENTS`]
/// others ask `/hello` without pause, and after each sleep the test reads the last half second
/// of the server's timeline.
///
/// Without pause, because a worker that is woken by nothing does not wake: a worker that
/// takes one ready task from the I/O driver and blocks in it leaves the other asleep if
/// that was all there was to do, and then nobody polls the driver until the block ends
/// (tokio wakes a second worker only when the first has more than one task queued). Busy
/// clients make that rare, not impossible: of 16 runs of three sleeps each, two saw a
/// sleep during which nothing else was polled (the chapter's warning, *Blocking inside
/// async*). And which connections a worker polls is the runtime's choice: a run may keep
/// the busy connections on the free worker throughout. So the test asks for what tokio
/// does without promising it each time, a sleep during which the other worker polled
/// connections it had also seen polled on the blocked one, and sleeps again until it has
/// seen it, up to [`MAX_SLEEPS`] times.
#[test]
fn a_blocked_worker_s_ready_connections_are_polled_by_the_other() {
    let server = spawn_binary(BINARY, &["--workers", "2", "--trace-live"]);
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
    let mut reader = Client::connect(server.addr()).expect("connect");
    let (mut sleeps, mut served_during, mut stalled) = (0, 0, 0);
    let mut moved = BTreeSet::new();
    while moved.is_empty() && sleeps < MAX_SLEEPS {
        assert_eq!(sleeper.line("GET /sleep?ms=200").expect("an answer"), "200 slept 200 ms");
        sleeps += 1;
        let window = reader.get("/trace?ms=500").expect("the last half second");
        assert_eq!(window.status, 200, "{}", window.text());
        let trace = Trace::parse(&window.text()).expect("a trace in the format");
        assert_eq!(trace.other["version"], "v6-async");
        check_handlers_run_in_polls(&trace);
        // The last sleep, recorded as it ended, before this request was read.
        let sleep = trace
            .spans("handle")
            .filter(|h| h.name.starts_with("GET /sleep"))
            .max_by(|a, b| a.ts.total_cmp(&b.ts))
            .unwrap_or_else(|| {
                panic!("the sleep just answered is not in the window: {}", trace.other)
            });
        let sleeper = sleep.conn().expect("the sleep is recorded with its connection");
        let blocked = sleep.thread();
        let workers: BTreeSet<Thread> = trace.spans("poll").map(TraceEvent::thread).collect();
        let Some(&other) = workers.iter().find(|&&w| w != blocked) else {
            stalled += 1; // the other worker polled nothing in the whole window
            continue;
        };
        let during: BTreeSet<u64> = polled_on(&trace, other, sleeper)
            .filter(|p| p.ts >= sleep.ts && p.end() <= sleep.end())
            .filter_map(TraceEvent::conn)
            .collect();
        if during.is_empty() {
            stalled += 1;
            continue;
        }
        served_during += 1;
        // Those of them that the blocked worker polled too, before or after.
        let on_blocked: BTreeSet<u64> =
            polled_on(&trace, blocked, sleeper).filter_map(TraceEvent::conn).collect();
        moved.extend(during.intersection(&on_blocked).copied());
    }
    done.store(true, Ordering::Relaxed);
    for client in busy {
        assert!(client.join().expect("a busy client") > 0);
    }
    let seen = format!("{sleeps} sleeps: {served_during} with others polled, {stalled} stalled");
    assert!(served_during > 0, "nothing else ran while a worker was blocked ({seen})");
    assert!(!moved.is_empty(), "no connection's task moved between the workers ({seen})");
    eprintln!("{seen}; moved: {moved:?}");
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
    let names: Vec<&str> = handlers.iter().map(|h| name(h.thread())).collect();
    assert!(names.iter().all(|n| n.starts_with("blocking-")), "handlers ran on {names:?}");
    let handoffs = trace.handoffs();
    assert_eq!(handoffs.len(), 3, "an arrow per answer: {handoffs:#?}");
    for (queued, taken) in handoffs {
        assert!(name(queued.thread()).starts_with("tokio-worker-"), "{queued:?}");
        assert!(name(taken.thread()).starts_with("blocking-"), "{taken:?}");
        assert_eq!(queued.conn(), handlers[0].conn(), "the arrow carries the connection");
    }
}
