//! The small fixed load a timeline is taken under, so that two servers' pictures compare:
//! over half a second, four keep-alive clients asking `/hello`, one asking `/sleep?ms=50`
//! back to back, one connection that says nothing, and a newcomer that arrives half-way and
//! asks once. They connect in that order, so a server that accepts on one thread numbers
//! them 1 to 4, 5, 6 and 7 (where several threads accept, as v5's loops and v7's rings
//! do, the numbers follow whichever took each first).
//!
//! The four `/hello` clients ask together every 25 ms rather than as fast as they can: a
//! `/hello` takes tens of microseconds, so flat out they would fill half a second with
//! thousands of requests each narrower than a pixel, and the picture would be a smear.
//! Asked in step, each round is visible, and so is what a server does with requests that
//! arrive at once (one loop serves them in turn, a ring reaps them in one wait, a pool
//! hands them to several workers).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The workload's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub addr: SocketAddr,
    /// How long the clients ask for.
    pub length: Duration,
    /// The `/hello` clients, and how often they ask, together.
    pub clients: usize,
    pub every: Duration,
    /// What the slow client asks, back to back.
    pub slow_path: String,
    /// When the newcomer arrives.
    pub newcomer_at: Duration,
    /// How long a client waits for an answer before it gives up: a hang guard, long
    /// enough for a serial server to reach every client in turn.
    pub patience: Duration,
}

impl Workload {
    /// The teaching workload against `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            length: Duration::from_millis(500),
            clients: 4,
            every: Duration::from_millis(25),
            slow_path: "/sleep?ms=50".into(),
            newcomer_at: Duration::from_millis(250),
            patience: Duration::from_secs(5),
        }
    }

    /// Marks on `timeline` the moments the workload began at `began` (microseconds on
    /// CLOCK_MONOTONIC) has that a reader looks for: the newcomer connecting, the clients
    /// stopping.
    pub fn mark(&self, timeline: &mut super::Timeline, began: f64) {
        let at = |d: Duration| began + d.as_secs_f64() * 1e6;
        timeline.mark(at(self.newcomer_at), "newcomer connects");
        timeline.mark(at(self.length), "clients stop asking");
    }

    /// The workload in a sentence, for a picture's settings.
    pub fn describe(&self) -> String {
        format!(
            "{} keep-alive clients asking /hello together every {} ms, one asking {} back to \
             back, one idle connection, then a newcomer at {} ms asking /hello once; {} ms in \
             all (connected in that order, so a server that accepts on one thread numbers them \
             1-{}, {}, {} and {})",
            self.clients,
            self.every.as_millis(),
            self.slow_path,
            self.newcomer_at.as_millis(),
            self.length.as_millis(),
            self.clients,
            self.clients + 1,
            self.clients + 2,
            self.clients + 3,
        )
    }
}

/// What the clients saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ran {
    /// Requests answered.
    pub answered: u64,
    /// What went wrong, per client that gave up.
    pub failures: Vec<String>,
    /// How long the newcomer waited for its answer, if it got one.
    pub newcomer_waited: Option<Duration>,
}

/// Runs the workload to its end; the connections are closed when it returns.
pub fn run(w: &Workload) -> io::Result<Ran> {
    let connect = || -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&w.addr, w.patience)?;
        stream.set_read_timeout(Some(w.patience))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    // Connected one after another, here, so that the server numbers them in this order.
    let hello: Vec<TcpStream> = (0..w.clients).map(|_| connect()).collect::<io::Result<_>>()?;
    let slow = connect()?;
    let idle = connect()?;
    let start = Instant::now();
    std::thread::scope(|scope| {
        let hellos: Vec<_> =
            hello.into_iter().map(|s| scope.spawn(move || in_step(s, w, start))).collect();
        let slow = scope.spawn(move || back_to_back(slow, w, start));
        let newcomer = scope.spawn(move || -> io::Result<Duration> {
            sleep_until(start + w.newcomer_at);
            let mut stream = connect()?;
            let asked = Instant::now();
            ask(&mut stream, "/hello")?;
            Ok(asked.elapsed())
        });
        sleep_until(start + w.length);
        drop(idle);
        let mut ran = Ran::default();
        for (who, client) in
            hellos.into_iter().map(|h| ("a /hello client", h)).chain([("the slow client", slow)])
        {
            match client.join() {
                Ok(Ok(n)) => ran.answered += n,
                Ok(Err(e)) => ran.failures.push(format!("{who}: {e}")),
                Err(_) => ran.failures.push(format!("{who}: its thread panicked")),
            }
        }
        match newcomer.join() {
            Ok(Ok(waited)) => {
                ran.answered += 1;
                ran.newcomer_waited = Some(waited);
            }
            Ok(Err(e)) => ran.failures.push(format!("the newcomer: {e}")),
            Err(_) => ran.failures.push("the newcomer: its thread panicked".into()),
        }
        Ok(ran)
    })
}

fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        std::thread::sleep(when - now);
    }
}

/// Asks `/hello` at every tick of the shared schedule that falls within the length; an
/// answer that comes after a tick moves to the next one still ahead.
fn in_step(mut stream: TcpStream, w: &Workload, start: Instant) -> io::Result<u64> {
    let mut answered = 0;
    let mut tick = Duration::ZERO;
    while tick < w.length {
        sleep_until(start + tick);
        ask(&mut stream, "/hello")?;
        answered += 1;
        let since = start.elapsed();
        while tick <= since {
            tick += w.every;
        }
    }
    Ok(answered)
}

/// Asks the slow path again as soon as each answer comes, until the length is up.
fn back_to_back(mut stream: TcpStream, w: &Workload, start: Instant) -> io::Result<u64> {
    let mut answered = 0;
    while start.elapsed() < w.length {
        ask(&mut stream, &w.slow_path)?;
        answered += 1;
    }
    Ok(answered)
}

/// Sends one keep-alive request and reads its whole answer.
fn ask(stream: &mut TcpStream, path: &str) -> io::Result<()> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: timeline\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut got = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = content_length(&got[..end]).unwrap_or(0);
            if got.len() >= end + 4 + body {
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed before answering",
            ));
        }
        got.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}
