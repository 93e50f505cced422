//! Starvation made visible: hold N idle connections open, then time a new client; and
//! what the kernel holds for the server meanwhile (its accept queue, the handshakes it
//! refused).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::kernel::{self, ListenCounters};

use serde::Serialize;

use crate::measure::{Errors, parse_addr, parse_duration};

/// What to hold; also `loadgen hold`'s options, whose help is the doc of each field.
#[derive(Debug, Clone, clap::Args)]
pub struct HoldConfig {
    /// The server, e.g. 127.0.0.1:8084 (v3-thread-pool's default)
    #[arg(long, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Idle connections to hold
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: usize,
    /// What the new client asks for
    #[arg(long, default_value = "/hello")]
    pub path: String,
    /// How long the idle connections may take to be established (all at once), and the new
    /// client to be answered
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What the new client saw while the idle connections were held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldResult {
    /// Idle connections that were established.
    pub held: usize,
    /// Idle connections that could not be established, by kind.
    pub failed: Errors,
    /// How long the new client waited for its answer, if it got one in time.
    pub answered_in_us: Option<u64>,
    /// The answer's status, if there was one.
    pub status: Option<u16>,
    pub timeout_us: u64,
}

impl HoldResult {
    pub fn starved(&self) -> bool {
        self.answered_in_us.is_none()
    }
}

/// Opens the idle connections, times the new client, and hands back the idle connections
/// too, so a caller can keep them open longer.
pub fn run(config: &HoldConfig) -> io::Result<(HoldResult, Vec<TcpStream>)> {
    let (idle, errors) =
        common::testkit::connect_all(config.addr, config.connections, config.timeout)?;
    let mut failed = Errors::default();
    errors.iter().for_each(|e| failed.count_io(e));
    // Let a server that accepts at all get through its queue before the newcomer comes.
    std::thread::sleep(Duration::from_millis(200));
    let (answered_in, status) = match newcomer(config) {
        Ok((elapsed, status)) => (Some(elapsed.as_micros() as u64), Some(status)),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            (None, None)
        }
        Err(e) => return Err(e),
    };
    let result = HoldResult {
        held: idle.len(),
        failed,
        answered_in_us: answered_in,
        status,
        timeout_us: config.timeout.as_micros() as u64,
    };
    Ok((result, idle))
}

/// What the kernel holds for the server on `port`, in one line: its accept queue against
/// the cap, and the handshakes refused since `since` (namespace-wide). `None` when nothing
/// listens on the port here (a server on another machine).
pub fn kernel_line(port: u16, since: ListenCounters) -> Option<String> {
    let queue = kernel::accept_queue(port).ok().filter(|q| q.listeners > 0)?;
    let full = if queue.queued > queue.cap { " (full)" } else { "" };
    let refused = kernel::listen_counters()
        .map(|now| {
            let d = now.since(since);
            format!("; listen overflows {} and drops {} since hold began", d.overflows, d.drops)
        })
        .unwrap_or_default();
    Some(format!(
        "kernel: accept queue {} of {}{full}{refused} (overflows and drops namespace-wide, as `nstat -n` before and `nstat -z TcpExtListenOverflows` after count them)",
        queue.queued, queue.cap
    ))
}

/// One HTTP request on a new connection: how long until the status line, and the status.
fn newcomer(config: &HoldConfig) -> io::Result<(Duration, u16)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&config.addr, config.timeout)?;
    let left = config.timeout.saturating_sub(start.elapsed()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        config.path, config.addr
    )?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {status_line:?}")))?;
    Ok((start.elapsed(), status))
}
