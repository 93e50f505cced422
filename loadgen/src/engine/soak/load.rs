//! The soak's mixed load: a thread per kind of client, each repeating its visit until told
//! to stop. Plain blocking sockets with timeouts: the soak is about what a server keeps
//! after thousands of faults, not about how fast it answers, and a visit reads as the
//! transcript it is.
//!
//! Every wait is bounded (connect, read and write timeouts, and a stop flag looked at
//! between trickled bytes), so the load ends within a few seconds of being told to, even
//! against a server that has stopped answering.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The longest any one read, write or connect waits.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Requests on one kept-alive connection before it closes and the next one opens: long
/// enough to be kept alive, short enough that a serial server gets to the other clients.
const SESSION: u32 = 50;
/// The large echo's body: half the codec's 1 MiB limit.
const LARGE: usize = 512 * 1024;
/// How long a non-reader keeps its connection, its answers unread, before it leaves.
const NON_READER_HOLD: Duration = Duration::from_secs(2);
/// A slowloris client's pace, and how long the ones that give up before the server does
/// keep trickling.
const TRICKLE: Duration = Duration::from_secs(1);
const SLOWLORIS_PATIENCE: Duration = Duration::from_secs(5);

/// The kinds of client in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Kept-alive requests on a fixed schedule (open loop), a session at a time.
    KeepAlive,
    /// A request, its answer, then the client closes (FIN).
    Fin,
    /// The client resets (SO_LINGER 0): after its answer, before it, or in mid-head.
    Reset,
    /// The client sends its request and shuts down its write side, then reads to the end.
    HalfClose,
    /// A head trickled a byte a second: half give up, half wait for the server's timeout.
    Slowloris,
    /// Large echoes pipelined and never read, then the client leaves.
    NonReader,
    /// Heads the codec must refuse: bad versions, oversized, conflicting framing, junk.
    BadHead,
    /// `GET /panic` (a handler that panics: a 500), then a request on the same connection.
    Panic,
    /// `POST /echo` of 512 KiB, the echo checked byte for byte.
    LargeEcho,
}

impl Kind {
    // ANCHOR: mix
    /// The mix: one client of each kind, two of slowloris (each spends most of its time
    /// waiting).
    pub const MIX: [Kind; 10] = [
        Kind::KeepAlive,
        Kind::Fin,
        Kind::Reset,
        Kind::HalfClose,
        Kind::Slowloris,
        Kind::Slowloris,
        Kind::NonReader,
        Kind::BadHead,
        Kind::Panic,
        Kind::LargeEcho,
    ];
    // ANCHOR_END: mix

    pub fn name(self) -> &'static str {
        match self {
            Kind::KeepAlive => "keep-alive",
            Kind::Fin => "FIN",
            Kind::Reset => "reset",
            Kind::HalfClose => "half-close",
            Kind::Slowloris => "slowloris",
            Kind::NonReader => "non-reader",
            Kind::BadHead => "bad head",
            Kind::Panic => "panic",
            Kind::LargeEcho => "large echo",
        }
    }
}

/// What one kind of client did: visits made, and those that did not go as the protocol
/// says (no answer, a wrong one). A serial server under this mix fails many: the soak
/// counts them to show the load reached the server, and judges only what it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub kind: Kind,
    pub visits: u64,
    pub failed: u64,
}

/// How hard the mix pushes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Kept-alive requests per second.
    pub rate: f64,
    /// Between two visits of the other kinds.
    pub pause: Duration,
}

/// The mix running against a server.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<(Kind, Arc<[AtomicU64; 2]>, JoinHandle<()>)>,
}

impl Load {
    pub fn start(addr: SocketAddr, pace: Pace) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for (n, kind) in Kind::MIX.into_iter().enumerate() {
            let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&counts));
            let thread = std::thread::Builder::new()
                .name(format!("soak-{}", kind.name()))
                .spawn(move || client(kind, n as u64, addr, pace, &stop, &tally))?;
            clients.push((kind, counts, thread));
        }
        Ok(Self { stop, clients })
    }

    /// Stops every client (each within one bounded wait) and sums what each kind did.
    pub fn stop(mut self) -> Vec<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        let mut tallies: Vec<Tally> = Vec::new();
        for (kind, counts, thread) in std::mem::take(&mut self.clients) {
            // A client thread that panicked has still counted what it did before.
            let _ = thread.join();
            let (visits, failed) =
                (counts[0].load(Ordering::Relaxed), counts[1].load(Ordering::Relaxed));
            match tallies.iter_mut().find(|t| t.kind == kind) {
                Some(t) => (t.visits, t.failed) = (t.visits + visits, t.failed + failed),
                None => tallies.push(Tally { kind, visits, failed }),
            }
        }
        tallies
    }
}

/// A soak that ends early (its server gone) drops its load unstopped: the clients must
/// still stop, not go on knocking at a closed port beside the other servers' soaks.
impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One client's life: visits until stopped, each counted, a failed one too.
fn client(
    kind: Kind,
    seed: u64,
    addr: SocketAddr,
    pace: Pace,
    stop: &AtomicBool,
    tally: &[AtomicU64; 2],
) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let outcome = match kind {
            Kind::KeepAlive => keep_alive(addr, pace.rate, stop),
            Kind::Fin => fin(addr),
            Kind::Reset => reset(addr, n),
            Kind::HalfClose => half_close(addr),
            Kind::Slowloris => slowloris(addr, n, stop),
            Kind::NonReader => non_reader(addr, stop),
            Kind::BadHead => bad_head(addr, n),
            Kind::Panic => panic_then_hello(addr),
            Kind::LargeEcho => large_echo(addr, n),
        };
        tally[0].fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            tally[1].fetch_add(1, Ordering::Relaxed);
        }
        n = n.wrapping_add(1);
        if kind != Kind::KeepAlive {
            std::thread::sleep(pace.pause);
        }
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn hello(addr: SocketAddr, close: bool) -> String {
    let close = if close { "Connection: close\r\n" } else { "" };
    format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\n{close}\r\n")
}

/// A session of kept-alive requests, each due 1/rate after the last was due (not after it
/// was answered: open loop), then a close by FIN.
fn keep_alive(addr: SocketAddr, rate: f64, stop: &AtomicBool) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let mut reader = Reader::default();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut due = Instant::now();
    for _ in 0..SESSION {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        stream.write_all(hello(addr, false).as_bytes())?;
        expect(reader.response(&mut stream)?, 200)?;
        due += gap;
    }
    Ok(())
}

fn fin(addr: SocketAddr) -> io::Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(hello(addr, true).as_bytes())?;
    expect(Reader::default().response(&mut stream)?, 200)
}

/// Three ways to reset, in turn: after the answer, right after the request (the server
/// may be writing its answer), in the middle of a head.
fn reset(addr: SocketAddr, n: u64) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let outcome = match n % 3 {
        0 => {
            stream.write_all(hello(addr, false).as_bytes())?;
            expect(Reader::default().response(&mut stream)?, 200)
        }
        1 => stream.write_all(hello(addr, false).as_bytes()),
        _ => stream.write_all(b"GET /hello HTTP/1.1\r\nHost: soak\r\nX-Half: "),
    };
    abort(stream);
    outcome
}

/// Closes with a reset instead of a FIN.
fn abort(stream: TcpStream) {
    // If the option cannot be set, the close is a FIN: still a close, counted as a visit.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
}

fn half_close(addr: SocketAddr) -> io::Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(hello(addr, false).as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    expect(status_of(&all)?, 200)
}

/// A head a byte per [`TRICKLE`]. Every other client gives up after
/// [`SLOWLORIS_PATIENCE`]; the others trickle on until the server's request timeout
/// closes the connection (or the soak stops), which is what the server is meant to do.
fn slowloris(addr: SocketAddr, n: u64, stop: &AtomicBool) -> io::Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(b"GET /hello HTTP/1.1\r\nHost: soak\r\n")?;
    let started = Instant::now();
    let patient = n % 2 == 0;
    while !stop.load(Ordering::Relaxed) && (patient || started.elapsed() < SLOWLORIS_PATIENCE) {
        std::thread::sleep(TRICKLE);
        // A write that fails is the server having closed: its timeout did its work.
        if stream.write_all(b"X").is_err() {
            return Ok(());
        }
        // Bounded, in case a server never closes: about eight times the default timeout.
        if started.elapsed() > Duration::from_secs(160) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "never closed"));
        }
    }
    Ok(())
}

/// Large echoes pipelined, their answers never read: the server's writes fill the socket's
/// buffers and block (or wait for writability). Then the client leaves with data unread,
/// which the kernel turns into a reset.
fn non_reader(addr: SocketAddr, stop: &AtomicBool) -> io::Result<()> {
    let mut stream = connect(addr)?;
    stream.set_write_timeout(Some(NON_READER_HOLD))?;
    let head = format!("POST /echo HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {LARGE}\r\n\r\n");
    let body = vec![b'n'; LARGE];
    let started = Instant::now();
    for _ in 0..4 {
        // Once both directions' buffers are full the write times out: the point reached.
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body)).is_err() {
            break;
        }
    }
    while !stop.load(Ordering::Relaxed) && started.elapsed() < NON_READER_HOLD {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Heads the codec must answer with an error and (mostly) a close, in turn.
fn bad_head(addr: SocketAddr, n: u64) -> io::Result<()> {
    let huge = format!("GET /hello HTTP/1.1\r\nHost: soak\r\nX-Big: {}\r\n\r\n", "b".repeat(9000));
    let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /hello HTTP/1.1\r\nHost: soak\r\n{many}\r\n");
    let heads: [&[u8]; 8] = [
        b"GET /hello HTTP/9.9\r\nHost: soak\r\n\r\n",
        huge.as_bytes(),
        many.as_bytes(),
        b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 HTTP/1.1\r\n\r\n",
    ];
    let mut stream = connect(addr)?;
    stream.write_all(heads[(n % heads.len() as u64) as usize])?;
    let status = Reader::default().response(&mut stream)?;
    if (400..600).contains(&status) {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, format!("a bad head answered {status}")))
    }
}

fn panic_then_hello(addr: SocketAddr) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let mut reader = Reader::default();
    stream.write_all(format!("GET /panic HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    expect(reader.response(&mut stream)?, 500)?;
    stream.write_all(hello(addr, true).as_bytes())?;
    expect(reader.response(&mut stream)?, 200)
}

fn large_echo(addr: SocketAddr, n: u64) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let body: Vec<u8> = (0..LARGE).map(|i| (i as u64).wrapping_add(n) as u8).collect();
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {LARGE}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    let mut reader = Reader::default();
    expect(reader.response(&mut stream)?, 200)?;
    if reader.body == body {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, "the echo differs from what was sent"))
    }
}

fn expect(status: u16, wanted: u16) -> io::Result<()> {
    if status == wanted {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, format!("{status}, not {wanted}")))
    }
}

fn status_of(bytes: &[u8]) -> io::Result<u16> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(_) => response.code.ok_or_else(|| invalid("no status")),
        Err(e) => Err(invalid(&e.to_string())),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads responses framed by Content-Length off one connection, keeping what follows.
#[derive(Default)]
struct Reader {
    buffer: Vec<u8>,
    body: Vec<u8>,
}

impl Reader {
    /// The next response's status; its body is left in `self.body`.
    fn response(&mut self, stream: &mut TcpStream) -> io::Result<u16> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) =
                response.parse(&self.buffer).map_err(|e| invalid(&e.to_string()))?
            {
                let status = response.code.ok_or_else(|| invalid("no status"))?;
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while self.buffer.len() < head + length {
                    self.fill(stream)?;
                }
                self.body = self.buffer[head..head + length].to_vec();
                self.buffer.drain(..head + length);
                // A 100 Continue is not the answer: the final one follows.
                if status == 100 {
                    continue;
                }
                return Ok(status);
            }
            self.fill(stream)?;
        }
    }

    fn fill(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the answer"));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
