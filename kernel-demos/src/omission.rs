//! Coordinated omission, measured: a server that stalls once, timed by a closed loop and
//! by an open loop that keeps its schedule.
//!
//! The client means to send a request every `interval`. A closed loop sends the next only
//! when the previous reply has come: while the server stalls, it sends nothing, so the
//! requests it should have sent meanwhile are never made and never measured; it records
//! one slow request. An open loop sends on schedule whatever happens (here, pipelined on
//! one connection), so the requests due during the stall wait for it, and timing each
//! from when it was due counts the stall once per request it delayed. The server answers
//! at once, except that it sleeps `stall` before answering request number `stall_at`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::sequence::{Figure, Item, Panel, Shade, show};
use crate::{DEADLINE, REQUEST, accept_within};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Requests per loop
    #[arg(long, default_value_t = 8)]
    pub requests: usize,
    /// The schedule: one request due every this many ms
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Which request (from 0) the server stalls on
    #[arg(long, default_value_t = 1)]
    pub stall_at: usize,
    /// How long it stalls, in ms
    #[arg(long, default_value_t = 200)]
    pub stall_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { requests: 8, interval_ms: 50, stall_at: 1, stall_ms: 200 }
    }
}

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

/// One request's times, from the loop's start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    /// When the schedule said to send it.
    pub due: Duration,
    pub sent: Duration,
    /// When the server read it, and when it began writing the reply.
    pub read: Duration,
    pub answered: Duration,
    /// When the client had the whole reply.
    pub received: Duration,
}

impl Request {
    /// The latency a loop that times from the send records.
    pub fn from_send(&self) -> Duration {
        self.received.saturating_sub(self.sent)
    }

    /// The latency counted from when the request was due.
    pub fn from_due(&self) -> Duration {
        self.received.saturating_sub(self.due)
    }
}

/// How the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// The next request once the previous reply is in (and not before it is due).
    Closed,
    /// Every request when it is due, replies read by another thread.
    Open,
}

/// The server: answers `count` requests on one connection, stalling on one. Returns
/// when it read each, and when it began each reply.
fn serve(
    listener: &TcpListener,
    options: &Options,
    origin: Instant,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let mut stream = accept_within(listener)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut request = [0; REQUEST.len()];
    let mut times = Vec::with_capacity(options.requests);
    for index in 0..options.requests {
        stream.read_exact(&mut request).context("read a request")?;
        let read = origin.elapsed();
        if index == options.stall_at {
            std::thread::sleep(Duration::from_millis(options.stall_ms));
        }
        times.push((read, origin.elapsed()));
        stream.write_all(REPLY)?;
    }
    Ok(times)
}

/// Sleeps until `due` after `origin` (at once if it has passed).
fn until(origin: Instant, due: Duration) {
    if let Some(left) = due.checked_sub(origin.elapsed()) {
        std::thread::sleep(left);
    }
}

/// The closed loop: returns each request's (due, sent, received).
fn closed(
    stream: &mut TcpStream,
    options: &Options,
    origin: Instant,
) -> anyhow::Result<Vec<[Duration; 3]>> {
    let mut reply = [0; REPLY.len()];
    let interval = Duration::from_millis(options.interval_ms);
    let mut times = Vec::with_capacity(options.requests);
    for index in 0..options.requests {
        let due = interval * index as u32;
        until(origin, due);
        let sent = origin.elapsed();
        stream.write_all(REQUEST)?;
        stream.read_exact(&mut reply).context("read a reply")?;
        times.push([due, sent, origin.elapsed()]);
    }
    Ok(times)
}

/// The open loop: sends on schedule while another thread reads the replies in order.
fn open(
    stream: &mut TcpStream,
    options: &Options,
    origin: Instant,
) -> anyhow::Result<Vec<[Duration; 3]>> {
    let mut reader = stream.try_clone()?;
    let count = options.requests;
    std::thread::scope(|scope| {
        let replies = scope.spawn(move || {
            let mut reply = [0; REPLY.len()];
            (0..count)
                .map(|_| {
                    reader.read_exact(&mut reply)?;
                    Ok(origin.elapsed())
                })
                .collect::<std::io::Result<Vec<_>>>()
        });
        let interval = Duration::from_millis(options.interval_ms);
        let mut sends = Vec::with_capacity(count);
        for index in 0..count {
            let due = interval * index as u32;
            until(origin, due);
            sends.push((due, origin.elapsed()));
            stream.write_all(REQUEST)?;
        }
        let received = replies.join().map_err(|_| anyhow!("the reader panicked"))??;
        Ok(sends.into_iter().zip(received).map(|((due, sent), got)| [due, sent, got]).collect())
    })
}

/// Runs one loop against a fresh server; every request's times.
pub fn run(kind: Loop, options: &Options) -> anyhow::Result<Vec<Request>> {
    if options.requests == 0 || options.stall_at >= options.requests {
        bail!("--stall-at must name one of the --requests");
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut stream = TcpStream::connect(listener.local_addr()?)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_nodelay(true)?;
    let origin = Instant::now();
    let (server, client) = std::thread::scope(|scope| {
        let server = scope.spawn(|| serve(&listener, options, origin));
        let client = match kind {
            Loop::Closed => closed(&mut stream, options, origin),
            Loop::Open => open(&mut stream, options, origin),
        };
        let server = server.join().map_err(|_| anyhow!("the server thread panicked"))?;
        anyhow::Ok((server?, client?))
    })?;
    Ok(client
        .into_iter()
        .zip(server)
        .map(|([due, sent, received], (read, answered))| Request {
            due,
            sent,
            read,
            answered,
            received,
        })
        .collect())
}

/// Requests whose latency, as `latency` counts it, exceeds `limit`.
fn over(requests: &[Request], latency: fn(&Request) -> Duration, limit: Duration) -> usize {
    requests.iter().filter(|r| latency(r) > limit).count()
}

fn panel(kind: Loop, requests: &[Request]) -> Panel {
    let mut items = Vec::new();
    for (index, r) in requests.iter().enumerate() {
        items.push(Item::mark(0, r.due, &format!("#{index} due")));
        items.push(Item::message(1, 2, r.sent, r.read, &format!("#{index}")));
        let recorded = match kind {
            Loop::Closed => format!("#{index}: {} from send", show(r.from_send())),
            Loop::Open => format!("#{index}: {} from due", show(r.from_due())),
        };
        items.push(Item::message(2, 1, r.answered, r.received, &recorded));
        if r.answered > r.read + Duration::from_millis(1) {
            items.push(Item::span(2, r.read, r.answered, "stalls", Shade::Waiting));
        }
        if kind == Loop::Closed && r.sent > r.due + Duration::from_millis(1) {
            items.push(Item::span(1, r.due, r.sent, "late: waits for a reply", Shade::Waiting));
        }
    }
    let title = match kind {
        Loop::Closed => "closed loop: next request after the reply",
        Loop::Open => "open loop: every request when due",
    };
    Panel {
        title: title.into(),
        lifelines: vec!["schedule".into(), "client".into(), "server".into()],
        items,
        px_per_ms: Some(1.2),
    }
}

/// The sequence diagram: the same schedule and stall, timed by each loop.
pub fn sequence(options: &Options) -> anyhow::Result<Figure> {
    let closed = run(Loop::Closed, options).context("the closed loop")?;
    let open = run(Loop::Open, options).context("the open loop")?;
    let limit = Duration::from_millis(options.interval_ms / 2);
    let slow_closed = over(&closed, Request::from_send, limit);
    let slow_open = over(&open, Request::from_due, limit);
    Ok(Figure {
        title: "Coordinated omission: one server stall, timed by a closed and an open loop".into(),
        caption: format!(
            "The same schedule (a request due every {} ms) and the same stall ({} ms on request \
             #{}). Left, the closed loop sends nothing while it waits, so the requests due \
             meanwhile go late (orange) and each is timed from its late send: {slow_closed} of {} \
             took over {} ms. Right, the open loop sends on schedule and times from when each \
             was due: {slow_open} of {} took over {} ms, the stall counted once per request it \
             delayed. Times measured; vertical distance is proportional to time, with a few \
             pixels added between events that would touch.",
            options.interval_ms,
            options.stall_ms,
            options.stall_at,
            closed.len(),
            limit.as_millis(),
            open.len(),
            limit.as_millis()
        ),
        panels: vec![panel(Loop::Closed, &closed), panel(Loop::Open, &open)],
    })
}
