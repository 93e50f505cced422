//! The load engine: many connections driven by mio from one or two threads.
//!
//! Each connection repeats: send a request (or a batch of `pipeline`), read the answers,
//! record each latency, go again. Two ways to go again:
//!
//! * **closed loop** (the default): send the next request as soon as the last is
//!   answered. Simple, but a stalled server also stalls the measurement: while it stalls,
//!   no requests are sent, so no slow latencies are recorded, and a rare long stall all
//!   but vanishes from the percentiles ("coordinated omission").
//! * **open loop** (`rate`): requests are due on a fixed schedule, and each latency is
//!   counted from when the request was *due*, not from when it could be sent. A stall now
//!   shows as every request that fell due during it arriving late, as wrk2 measures.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::measure::{Errors, Summary, new_histogram};

pub(crate) mod answer;
mod config;

use answer::parse_answer;
pub use config::{BenchConfig, Wire};

/// Runs the load and returns what it measured.
pub fn run(config: &BenchConfig) -> io::Result<Summary> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let progress = progress_bar(config);
    let done = Arc::new(AtomicU64::new(0));
    let threads = config.threads.min(config.connections);
    let mut drivers: Vec<Driver> = (0..threads)
        .map(|k| Driver::new(config, k, threads, Arc::clone(&done)))
        .collect::<io::Result<_>>()?;
    let first = drivers.remove(0);
    let others: Vec<_> = drivers
        .into_iter()
        .map(|driver| {
            std::thread::Builder::new().name("loadgen-2".into()).spawn(|| driver.run(None))
        })
        .collect::<io::Result<_>>()?;
    let mut results = vec![first.run(progress.as_ref())];
    for handle in others {
        results.push(handle.join().map_err(|_| io::Error::other("a driver thread panicked"))?);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut histogram = new_histogram();
    let (mut requests, mut sent, mut errors, mut connects) = (0, 0, Errors::default(), 0);
    let mut busiest = Duration::ZERO;
    let mut clients_answered = 0;
    for result in results {
        let result = result?;
        clients_answered += result.clients_answered;
        histogram.add(&result.histogram).map_err(|e| io::Error::other(e.to_string()))?;
        requests += result.requests;
        sent += result.sent;
        errors.add(&result.errors);
        connects += result.connects;
        busiest = busiest.max(result.cpu);
    }
    let mut summary = Summary::new(requests, config.duration, &histogram, errors, connects);
    summary.sent = sent;
    summary.clients = config.connections;
    summary.clients_answered = clients_answered;
    summary.timeout_us = config.timeout.as_micros() as u64;
    summary.generator_threads = threads;
    summary.generator_busiest_share = busiest.as_secs_f64() / config.duration.as_secs_f64();
    Ok(summary)
}

/// CPU time the calling thread has used, user and system.
fn thread_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    // The thread CPU clock exists on every Linux; were it refused, the share reads 0.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

fn progress_bar(config: &BenchConfig) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if !config.progress || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(config.duration.as_millis() as u64);
    let style = ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// One connection's state.
#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    connected: bool,
    /// When the current connection attempt began (for the connect timeout).
    opened_at: Instant,
    out: Vec<u8>,
    written: usize,
    inbuf: Vec<u8>,
    /// Start times of the requests sent and not yet answered: when each was sent (closed
    /// loop) or when it was due (open loop).
    in_flight: VecDeque<Instant>,
    /// Open loop: when the next request is due; until the run starts, its offset from
    /// the start.
    next_due: Instant,
    offset: Duration,
    /// The server said it will close after its last answer; wait for that close.
    server_closes: bool,
    /// Requests answered on this client's connections, whichever socket it is on now: a
    /// client that got none was starved, however few requests it managed to send.
    answered: u64,
}

/// What one driver thread measured.
struct DriverResult {
    /// Every request answered (at its latency) or timed out (at the timeout).
    histogram: Histogram<u64>,
    requests: u64,
    /// Requests sent in the measured window.
    sent: u64,
    /// Clients (connection slots) that had at least one request answered.
    clients_answered: usize,
    errors: Errors,
    connects: u64,
    /// CPU time this thread used while measuring: near the whole window, and the load
    /// generator, not the server, may have been the limit.
    cpu: Duration,
}

/// One thread's share of the connections, and its event loop.
struct Driver {
    config: BenchConfig,
    request: Vec<u8>,
    poll: Poll,
    conns: Vec<Conn>,
    /// Open-loop sends and reconnects waiting for their time.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Open loop: this driver's interval between requests on one connection.
    interval: Option<Duration>,
    start: Instant,
    deadline: Instant,
    /// False while warming up: connections open, but no request is sent.
    measuring: bool,
    done: Arc<AtomicU64>,
    result: DriverResult,
    /// Where every read lands before it is appended to its connection's input.
    chunk: Box<[u8]>,
}

/// How often timeouts are checked and the progress bar redrawn.
const TICK: Duration = Duration::from_millis(50);
/// Pause before replacing a failed connection, so a refusing server is not hammered.
const RECONNECT_DELAY: Duration = Duration::from_millis(10);

impl Driver {
    fn new(
        config: &BenchConfig,
        index: usize,
        drivers: usize,
        done: Arc<AtomicU64>,
    ) -> io::Result<Self> {
        let start = Instant::now();
        // Connections are dealt out like cards: driver k gets every k-th one.
        let count = (config.connections + drivers - 1 - index) / drivers;
        let interval =
            config.rate.map(|rate| Duration::from_secs_f64(config.connections as f64 / rate));
        let conns = (0..count)
            .map(|i| Conn {
                stream: None,
                connected: false,
                opened_at: start,
                out: Vec::new(),
                written: 0,
                inbuf: Vec::new(),
                in_flight: VecDeque::new(),
                // Open loop: spread the first requests evenly over one interval, so the
                // schedule does not start with every connection firing at once.
                next_due: start,
                offset: interval.map_or(Duration::ZERO, |iv| {
                    iv.mul_f64((i * drivers + index) as f64 / config.connections as f64)
                }),
                server_closes: false,
                answered: 0,
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            request: config.request(),
            poll: Poll::new()?,
            conns,
            timers: BinaryHeap::new(),
            interval,
            start,
            deadline: start,
            measuring: false,
            done,
            result: DriverResult {
                histogram: new_histogram(),
                requests: 0,
                sent: 0,
                clients_answered: 0,
                errors: Errors::default(),
                connects: 0,
                cpu: Duration::ZERO,
            },
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
        })
    }

    fn run(mut self, progress: Option<&ProgressBar>) -> io::Result<DriverResult> {
        let mut events = Events::with_capacity(1024);
        self.warm_up(&mut events)?;
        let cpu_at_start = thread_cpu();
        let mut last_tick = Instant::now();
        let mut reported = 0;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let wake = [Some(self.deadline), Some(last_tick + TICK), next_timer]
                .into_iter()
                .flatten()
                .min();
            let timeout = wake.map(|at| at.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                let i = event.token().0;
                if event.is_writable() {
                    self.on_writable(i);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(i, event.is_read_closed() || event.is_error());
                }
            }
            self.fire_timers();
            let now = Instant::now();
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.expire(now);
                self.done.fetch_add(self.result.requests - reported, Ordering::Relaxed);
                reported = self.result.requests;
                if let Some(bar) = progress {
                    bar.set_position(now.duration_since(self.start).as_millis() as u64);
                    bar.set_message(format!("{} answered", self.done.load(Ordering::Relaxed)));
                }
            }
        }
        // Requests still waiting past the timeout at the end were not answered in time.
        self.expire(self.deadline);
        self.abandon_the_rest();
        self.result.cpu = thread_cpu().saturating_sub(cpu_at_start);
        self.result.clients_answered = self.conns.iter().filter(|c| c.answered > 0).count();
        Ok(self.result)
    }

    /// Opens every connection before the clock starts, so the run measures serving, not
    /// a storm of ten thousand handshakes (which overflows any listen backlog, and whose
    /// SYN retries would add seconds to the first requests). Waits the timeout or the
    /// configured warm-up, whichever is longer; connections still not open then are
    /// counted when they time out.
    fn warm_up(&mut self, events: &mut Events) -> io::Result<()> {
        self.deadline = Instant::now() + self.config.timeout.max(self.config.warm_up);
        for i in 0..self.conns.len() {
            self.connect(i);
        }
        while self.conns.iter().any(|c| c.stream.is_some() && !c.connected) {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            match self.poll.poll(events, Some(self.deadline - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                if event.is_writable() {
                    // Connected; `maybe_send` holds back until `measuring`.
                    self.on_writable(event.token().0);
                }
            }
        }
        self.start = Instant::now();
        self.deadline = self.start + self.config.duration;
        self.measuring = true;
        for conn in &mut self.conns {
            conn.next_due = self.start + conn.offset;
        }
        for i in 0..self.conns.len() {
            self.maybe_send(i);
        }
        Ok(())
    }

    fn connect(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.connected = false;
        conn.out.clear();
        conn.written = 0;
        conn.inbuf.clear();
        conn.in_flight.clear();
        conn.server_closes = false;
        conn.opened_at = Instant::now();
        self.result.connects += 1;
        let stream = TcpStream::connect(self.config.addr).and_then(|mut stream| {
            self.poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        match stream {
            Ok(stream) => conn.stream = Some(stream),
            Err(e) => self.fail(i, &e),
        }
    }

    /// Counts the error, drops the connection, and schedules its replacement.
    fn fail(&mut self, i: usize, error: &io::Error) {
        self.result.errors.count_io(error);
        self.drop_and_replace(i);
    }

    /// The run is over: a connection still waiting for an answer (or for its handshake)
    /// is given up on as an expired one is, with a reset, for the same reason (a FIN would
    /// leave it here in FIN_WAIT2 while the server has not read the request). Which of
    /// them were still waiting at the end depends on when the timeouts fell, so without
    /// this the generator's closing sockets would depend on the timing of the run.
    fn abandon_the_rest(&mut self) {
        for conn in &self.conns {
            if let Some(stream) = &conn.stream
                && (!conn.in_flight.is_empty() || !conn.connected)
            {
                let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
            }
        }
    }

    fn drop_and_replace(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Some(mut stream) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        conn.in_flight.clear();
        self.timers.push(Reverse((Instant::now() + RECONNECT_DELAY, i)));
    }

    fn on_writable(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let Some(stream) = &conn.stream else { return };
        if !conn.connected {
            // mio's recipe for a non-blocking connect: writable, then no pending error
            // and a peer address.
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(i, &e),
            }
            match stream.peer_addr() {
                Ok(_) => conn.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(i, &e),
            }
            self.maybe_send(i);
            return;
        }
        self.write(i);
    }

    /// Sends the next request (or batch) if the connection is free and one is due.
    fn maybe_send(&mut self, i: usize) {
        let now = Instant::now();
        let conn = &mut self.conns[i];
        let idle = conn.connected && conn.in_flight.is_empty() && !conn.server_closes;
        if !idle || !self.measuring || now >= self.deadline {
            return;
        }
        let started = match self.interval {
            None => now,
            Some(interval) => {
                if conn.next_due > now {
                    self.timers.push(Reverse((conn.next_due, i)));
                    return;
                }
                // Latency counts from when the request was due, however late we are.
                let due = conn.next_due;
                conn.next_due += interval;
                due
            }
        };
        for _ in 0..self.config.pipeline {
            conn.out.extend_from_slice(&self.request);
            conn.in_flight.push_back(started);
        }
        self.result.sent += self.config.pipeline as u64;
        self.write(i);
    }

    fn write(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let Some(stream) = conn.stream.as_mut() else { return };
        while conn.written < conn.out.len() {
            match stream.write(&conn.out[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, &e),
            }
        }
        conn.out.clear();
        conn.written = 0;
    }

    /// Reads what the socket holds. `closing`: the event said the server closed (or the
    /// socket failed), so read to the end; otherwise a read that did not fill the buffer
    /// emptied the socket, and the edge-triggered poll reports whatever comes next.
    /// The generator is the instrument: every call it saves is headroom for the server.
    fn on_readable(&mut self, i: usize, closing: bool) {
        loop {
            let conn = &mut self.conns[i];
            let Some(stream) = conn.stream.as_mut() else { return };
            // One buffer for every read, zeroed once: a fresh 64 KiB per event cost the
            // generator a tenth of its CPU in memset.
            match stream.read(&mut self.chunk) {
                Ok(0) => return self.on_server_close(i),
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&self.chunk[..n]);
                    if n < self.chunk.len() && !closing {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, &e),
            }
        }
        self.take_answers(i);
    }

    fn on_server_close(&mut self, i: usize) {
        self.take_answers(i);
        let conn = &mut self.conns[i];
        if conn.in_flight.is_empty() && conn.server_closes {
            // The close we asked for (`--close`): the next connection opens at once.
            if let Some(mut stream) = conn.stream.take() {
                let _ = self.poll.registry().deregister(&mut stream);
            }
            return self.connect(i);
        }
        if !conn.in_flight.is_empty() {
            self.result.errors.closed += 1;
        }
        self.drop_and_replace(i);
    }

    /// Takes every complete answer off the connection's input.
    fn take_answers(&mut self, i: usize) {
        let now = Instant::now();
        loop {
            let conn = &mut self.conns[i];
            if conn.in_flight.is_empty() {
                break;
            }
            let answer = match parse_answer(self.config.wire, &conn.inbuf) {
                Ok(Some(answer)) => answer,
                Ok(None) => break,
                Err(()) => {
                    self.result.errors.other += 1;
                    return self.drop_and_replace(i);
                }
            };
            conn.inbuf.drain(..answer.len);
            let started = conn.in_flight.pop_front().unwrap_or(now);
            conn.server_closes |= answer.closes;
            if now <= self.deadline {
                if (200..300).contains(&answer.status) {
                    self.result.requests += 1;
                    conn.answered += 1;
                    let us = now.saturating_duration_since(started).as_micros() as u64;
                    // Values beyond the histogram's 5 minutes are clamped, not dropped.
                    self.result.histogram.saturating_record(us.max(1));
                } else {
                    self.result.errors.bad_status += 1;
                }
            }
        }
        self.maybe_send(i);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, i))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.conns[i].stream.is_none() {
                self.connect(i);
            } else {
                self.maybe_send(i);
            }
        }
    }

    /// Replaces connections whose oldest request, or whose connect, has waited too long.
    fn expire(&mut self, now: Instant) {
        let timeout = self.config.timeout;
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            let Some(stream) = &conn.stream else { continue };
            // ANCHOR: connected_after_all
            // A handshake the kernel completed while this thread was busy elsewhere is
            // not a connect timeout: ask the socket before counting one. Without this, a
            // generator slowed down by its own `connect` calls would report connections
            // "never accepted" that the server's kernel had queued at once. Found connected
            // here, it sends at once: its writable event may still be on its way, and
            // `on_writable` sends only for a connection it sees connect, so a client
            // marked here and left would wait for an event that never comes (a connection
            // per request stalled for good at the first tick that fell between a
            // `connect` and its event).
            if !conn.connected
                && stream.take_error().ok().flatten().is_none()
                && stream.peer_addr().is_ok()
            {
                conn.connected = true;
                self.maybe_send(i);
                continue;
            }
            // ANCHOR_END: connected_after_all
            let waiting_since = match conn.in_flight.front() {
                Some(&started) => Some(started),
                None if !conn.connected => Some(conn.opened_at),
                None => None,
            };
            if waiting_since.is_some_and(|since| now.saturating_duration_since(since) >= timeout) {
                // Every request in flight on it has timed out, not just the oldest; a
                // connection that never opened is one connect timeout. Each goes into the
                // distribution at the timeout, a lower bound on its latency: a starved
                // client must raise the tail, not vanish from it.
                let timed_out = conn.in_flight.len() as u64;
                self.result.errors.timeout += timed_out;
                let timeout_us = timeout.as_micros() as u64;
                for _ in 0..timed_out {
                    self.result.histogram.saturating_record(timeout_us);
                }
                if !conn.connected {
                    self.result.errors.connect_timeout += 1;
                }
                // ANCHOR: abandon
                // Given up on: closed with a reset, not a FIN. A FIN would leave this side
                // holding the port for a minute: in FIN_WAIT2 for `tcp_fin_timeout` while
                // the server, which has not read the request, does not close its side (or
                // in TIME_WAIT, if it does). At
                // thousands a second (a starved server under C10k) the ephemeral ports run
                // short, each `connect` searches the range for a free one, and this thread
                // slows down until it becomes the limit: measured, v3's C10k row counted
                // 3,568 "connections never accepted" that the kernel had in fact queued.
                if let Some(stream) = &self.conns[i].stream {
                    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                }
                // ANCHOR_END: abandon
                self.drop_and_replace(i);
            }
        }
    }
}
