//! The open-loop driver of one step: requests arrive on their schedule whatever the
//! server does, each on an idle kept-alive connection, or a new one (always a new one with
//! `--close`), and wait in the generator only when `max_connections` are open and busy.
//!
//! One thread on mio, as `bench`'s drivers. `bench --rate` keeps a schedule per connection
//! and sends a connection's next request only once the last is answered, so past the
//! capacity its queue forms here, in the generator, and the server never sees the load;
//! here a busy connection does not hold back an arrival, another connection takes it.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::schedule::Schedule;
use super::{SweepConfig, request_bytes};
use crate::bench::answer::parse_answer;
use crate::measure::{Errors, new_histogram};

/// What one step measured, before it is summed up as a [`super::Step`].
pub struct Measured {
    /// Every request due, answered at its latency from its due time, or at the timeout.
    pub histogram: Histogram<u64>,
    pub due: u64,
    pub sent: u64,
    /// Answers of any status to the step's requests, whenever they came.
    pub answered: u64,
    /// Answers of any status that came before the step's end: its throughput, in number
    /// (answers to its requests that came during the drain are left out, as answers to the
    /// last step's before it are not counted in).
    pub answered_in_step: u64,
    /// 2xx answers within the SLO.
    pub good: u64,
    pub unavailable: u64,
    pub errors: Errors,
    /// How late each arrival was taken up (a connect begun, or a request written on an
    /// idle connection) behind its due time, in microseconds.
    pub send_lag: Histogram<u64>,
    /// This thread's CPU time over the step, and the step's length with its drain.
    pub cpu: Duration,
    pub elapsed: Duration,
    pub connections_max: usize,
    /// An arrival found `max_connections` open and busy and had to wait.
    pub hit_max_connections: bool,
}

/// One connection: idle when it has no `due`, busy with one request otherwise.
struct Conn {
    stream: TcpStream,
    connected: bool,
    /// When the request on it was due; `None`: idle.
    due: Option<Instant>,
    out: Vec<u8>,
    written: usize,
    /// The request on it has been written whole (and counted as sent).
    sent: bool,
    inbuf: Vec<u8>,
    /// Answered with `Connection: close`: waiting for the server's FIN, so the TIME_WAIT
    /// is the server's, and since when.
    closing_since: Option<Instant>,
}

struct Driver<'a> {
    config: &'a SweepConfig,
    request: Vec<u8>,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    /// Slots of `conns` free for the next connection.
    free: Vec<usize>,
    open: usize,
    /// Kept-alive connections with nothing in flight.
    idle: Vec<usize>,
    /// Arrivals due and not yet taken up, by due time.
    waiting: VecDeque<Instant>,
    /// When the step's last request falls due.
    end: Instant,
    m: Measured,
    chunk: Box<[u8]>,
}

/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(10);

/// Offers `rate` requests per second for `config.step`, then waits for the last of them
/// to be answered or to time out.
pub fn run_step(config: &SweepConfig, rate: f64, seed: u64) -> io::Result<Measured> {
    let start = Instant::now();
    let mut driver = Driver::new(config, start + config.step)?;
    let cpu_at_start = super::thread_cpu();
    let mut due_times = Schedule::new(config.arrivals, rate, seed)
        .offsets_before(config.step)
        .map(|offset| start + offset)
        .peekable();
    let mut events = Events::with_capacity(1024);
    let mut last_tick = start;
    loop {
        let now = Instant::now();
        while let Some(due) = due_times.next_if(|due| *due <= now) {
            driver.m.due += 1;
            driver.waiting.push_back(due);
        }
        driver.dispatch();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            driver.expire(now);
        }
        let next_due = due_times.peek().copied();
        if next_due.is_none() && driver.finished() {
            break;
        }
        let wake = next_due.map_or(last_tick + TICK, |due| due.min(last_tick + TICK));
        match driver.poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let i = event.token().0;
            if event.is_writable() {
                driver.on_writable(i);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                driver.on_readable(i, event.is_read_closed() || event.is_error());
            }
        }
    }
    driver.m.elapsed = start.elapsed();
    driver.m.cpu = super::thread_cpu().saturating_sub(cpu_at_start);
    // Dropped, the connections left (idle, or waiting for a FIN) close normally.
    Ok(driver.m)
}

impl<'a> Driver<'a> {
    fn new(config: &'a SweepConfig, end: Instant) -> io::Result<Self> {
        Ok(Self {
            config,
            request: request_bytes(config),
            poll: Poll::new()?,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            idle: Vec::new(),
            waiting: VecDeque::new(),
            end,
            m: Measured {
                histogram: new_histogram(),
                due: 0,
                sent: 0,
                answered: 0,
                answered_in_step: 0,
                good: 0,
                unavailable: 0,
                errors: Errors::default(),
                send_lag: new_histogram(),
                cpu: Duration::ZERO,
                elapsed: Duration::ZERO,
                connections_max: 0,
                hit_max_connections: false,
            },
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
        })
    }

    /// Nothing waits and nothing is in flight.
    fn finished(&self) -> bool {
        self.waiting.is_empty() && self.conns.iter().flatten().all(|c| c.due.is_none())
    }

    /// Gives each waiting arrival a connection: an idle one, or a new one while fewer than
    /// `max_connections` are open.
    fn dispatch(&mut self) {
        while let Some(&due) = self.waiting.front() {
            let idle = if self.config.close { None } else { self.idle.pop() };
            if let Some(i) = idle {
                self.record_lag(due);
                self.waiting.pop_front();
                if let Some(conn) = self.conns[i].as_mut() {
                    conn.due = Some(due);
                    conn.sent = false;
                    conn.out.extend_from_slice(&self.request);
                }
                self.write(i);
            } else if self.open < self.config.max_connections {
                self.record_lag(due);
                self.waiting.pop_front();
                self.connect(due);
            } else {
                self.m.hit_max_connections = true;
                return;
            }
        }
    }

    fn record_lag(&mut self, due: Instant) {
        let lag = Instant::now().saturating_duration_since(due).as_micros() as u64;
        self.m.send_lag.saturating_record(lag.max(1));
    }

    /// Opens a connection for the request due at `due`, written once it connects.
    fn connect(&mut self, due: Instant) {
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let stream = TcpStream::connect(self.config.addr).and_then(|mut stream| {
            let interest = Interest::READABLE | Interest::WRITABLE;
            self.poll.registry().register(&mut stream, Token(i), interest)?;
            Ok(stream)
        });
        match stream {
            Ok(stream) => {
                self.conns[i] = Some(Conn {
                    stream,
                    connected: false,
                    due: Some(due),
                    out: self.request.clone(),
                    written: 0,
                    sent: false,
                    inbuf: Vec::new(),
                    closing_since: None,
                });
                self.open += 1;
                self.m.connections_max = self.m.connections_max.max(self.open);
            }
            Err(e) => {
                self.free.push(i);
                self.m.errors.count_io(&e);
                self.record_unanswered();
            }
        }
    }

    /// A request given up on, in the distribution at the timeout: a lower bound on its
    /// latency, so a refused or starved request raises the tail instead of vanishing.
    fn record_unanswered(&mut self) {
        self.m.histogram.saturating_record(self.config.timeout.as_micros() as u64);
    }

    /// Closes connection `i`; its request, if it had one, was not answered.
    fn remove(&mut self, i: usize) {
        let Some(mut conn) = self.conns[i].take() else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.idle.retain(|&k| k != i);
        self.free.push(i);
        self.open -= 1;
        if conn.due.is_some() {
            self.record_unanswered();
        }
    }

    fn fail(&mut self, i: usize, error: &io::Error) {
        self.m.errors.count_io(error);
        self.remove(i);
    }

    fn on_writable(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else { return };
        if !conn.connected {
            // mio's recipe for a non-blocking connect: writable, then no pending error
            // and a peer address.
            match conn.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(i, &e),
            }
            match conn.stream.peer_addr() {
                Ok(_) => conn.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(i, &e),
            }
        }
        self.write(i);
    }

    fn write(&mut self, i: usize) {
        let Some(conn) = self.conns[i].as_mut() else { return };
        if !conn.connected {
            return;
        }
        while conn.written < conn.out.len() {
            match conn.stream.write(&conn.out[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, &e),
            }
        }
        conn.out.clear();
        conn.written = 0;
        if conn.due.is_some() && !conn.sent {
            conn.sent = true;
            self.m.sent += 1;
        }
    }

    /// Reads what the socket holds (to the end when the event says the server closed).
    fn on_readable(&mut self, i: usize, closing: bool) {
        loop {
            let Some(conn) = self.conns[i].as_mut() else { return };
            match conn.stream.read(&mut self.chunk) {
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
        self.take_answer(i);
    }

    fn on_server_close(&mut self, i: usize) {
        self.take_answer(i);
        if self.conns[i].as_ref().is_some_and(|c| c.due.is_some()) {
            self.m.errors.closed += 1;
        }
        self.remove(i);
    }

    /// Takes the answer off the connection's input, if it is complete.
    fn take_answer(&mut self, i: usize) {
        let now = Instant::now();
        let Some(conn) = self.conns[i].as_mut() else { return };
        let Some(due) = conn.due else { return };
        let answer = match parse_answer(self.config.wire, &conn.inbuf) {
            Ok(Some(answer)) => answer,
            Ok(None) => return,
            Err(()) => {
                self.m.errors.other += 1;
                return self.remove(i);
            }
        };
        conn.inbuf.drain(..answer.len);
        conn.due = None;
        let latency = now.saturating_duration_since(due);
        self.m.histogram.saturating_record((latency.as_micros() as u64).max(1));
        self.m.answered += 1;
        self.m.answered_in_step += u64::from(now <= self.end);
        if (200..300).contains(&answer.status) {
            self.m.good += u64::from(latency <= self.config.slo);
        } else {
            self.m.errors.bad_status += 1;
            self.m.unavailable += u64::from(answer.status == 503);
        }
        if answer.closes || self.config.close {
            conn.closing_since = Some(now);
        } else {
            self.idle.push(i);
            self.dispatch();
        }
    }

    /// Gives up on what has waited a whole timeout: arrivals still in the generator, and
    /// requests on connections, which are reset.
    fn expire(&mut self, now: Instant) {
        let timeout = self.config.timeout;
        while self.waiting.front().is_some_and(|&due| now.saturating_duration_since(due) >= timeout)
        {
            self.waiting.pop_front();
            self.m.errors.timeout += 1;
            self.record_unanswered();
        }
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            // See bench's ANCHOR connected_after_all: a handshake completed while this
            // thread was busy may have its writable event still on its way.
            if !conn.connected
                && conn.stream.take_error().ok().flatten().is_none()
                && conn.stream.peer_addr().is_ok()
            {
                conn.connected = true;
                self.write(i);
                continue;
            }
            if conn
                .closing_since
                .is_some_and(|since| now.saturating_duration_since(since) >= timeout)
            {
                self.remove(i);
                continue;
            }
            if conn.due.is_none_or(|due| now.saturating_duration_since(due) < timeout) {
                continue;
            }
            self.m.errors.timeout += 1;
            if !conn.connected {
                self.m.errors.connect_timeout += 1;
            }
            // Closed with a reset, not a FIN: see bench's ANCHOR abandon.
            let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
            self.remove(i);
        }
    }
}
