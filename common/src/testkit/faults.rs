//! The fault matrix: the same faults, run against every version's binary, with the
//! outcome each version is expected to show written down in [`MATRIX`].
//!
//! Teaching code that falls over teaches the wrong lesson, so after every fault the
//! server must still be running and answer a new client. Where a version's limit is the
//! very thing its chapter shows (v1 and a one-thread v3 make others wait behind a slow
//! client), the matrix records that outcome, and the check proves the server recovers
//! once the fault ends.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{ChildServer, Client, TIMEOUT, answered_within, hold_idle, reset};
use crate::procfs;

/// One way a client can misbehave (or a server can run short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A whole request sent one byte at a time.
    Trickle,
    /// A request head that never ends: a header line every 200 ms (slowloris).
    Slowloris,
    /// A client that connects and says nothing.
    Silent,
    /// More clients than the server takes at once (v4's `--max-connections 4`).
    OverCap,
    /// The server limited to 64 file descriptors while 100 clients connect.
    FdExhaustion,
    /// A request whose handler panics (`GET /panic`).
    PanickingHandler,
    /// A client that resets the connection in the middle of a large answer.
    ResetMidResponse,
    /// A client that uploads requests for 8 MiB of answers and stops reading.
    StopsReading,
    /// A body over the limit, still being uploaded when the server answers 413.
    ErrorWhileUploading,
    /// A request-smuggling or malformed shape.
    Smuggle(Shape),
}

/// Request shapes that proxies and servers have disagreed about, to request smuggling's
/// profit, or that are simply not HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    ContentLengthAndTransferEncoding,
    DifferingContentLengths,
    PlusContentLength,
    ObsFold,
    SpaceBeforeColon,
    BareLf,
    Nul,
    NonUtf8Path,
}

impl Shape {
    pub const ALL: [Shape; 8] = [
        Shape::ContentLengthAndTransferEncoding,
        Shape::DifferingContentLengths,
        Shape::PlusContentLength,
        Shape::ObsFold,
        Shape::SpaceBeforeColon,
        Shape::BareLf,
        Shape::Nul,
        Shape::NonUtf8Path,
    ];

    fn bytes(self) -> &'static [u8] {
        match self {
            Shape::ContentLengthAndTransferEncoding => {
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            }
            Shape::DifferingContentLengths => {
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello"
            }
            Shape::PlusContentLength => b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
            Shape::ObsFold => b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
            Shape::SpaceBeforeColon => b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n",
            Shape::BareLf => b"GET /hello HTTP/1.1\nHost: t\n\n",
            Shape::Nul => b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Nul: a\0b\r\n\r\n",
            Shape::NonUtf8Path => b"GET /hel\xfflo HTTP/1.1\r\nHost: t\r\n\r\n",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Shape::ContentLengthAndTransferEncoding => "Content-Length with Transfer-Encoding",
            Shape::DifferingContentLengths => "two differing Content-Length headers",
            Shape::PlusContentLength => "`Content-Length: +5`",
            Shape::ObsFold => "a header folded onto a second line (obs-fold)",
            Shape::SpaceBeforeColon => "a space before a header's colon",
            Shape::BareLf => "bare LF line ends in an HTTP head",
            Shape::Nul => "a NUL byte in a header value",
            Shape::NonUtf8Path => "a byte that is not UTF-8 in the path",
        }
    }
}

impl Fault {
    /// Every fault, in the matrix's order.
    pub fn all() -> Vec<Fault> {
        let mut all = vec![
            Fault::Trickle,
            Fault::Slowloris,
            Fault::Silent,
            Fault::OverCap,
            Fault::FdExhaustion,
            Fault::PanickingHandler,
            Fault::ResetMidResponse,
            Fault::StopsReading,
            Fault::ErrorWhileUploading,
        ];
        all.extend(Shape::ALL.map(Fault::Smuggle));
        all
    }

    pub fn describe(self) -> String {
        match self {
            Fault::Trickle => "request sent one byte at a time".into(),
            Fault::Slowloris => "headers trickled, never finished (slowloris)".into(),
            Fault::Silent => "a client that connects and says nothing".into(),
            Fault::OverCap => "more clients than it serves at once".into(),
            Fault::FdExhaustion => "out of file descriptors (limit 64, 100 clients)".into(),
            Fault::PanickingHandler => "a handler that panics".into(),
            Fault::ResetMidResponse => "a client that resets mid-answer".into(),
            Fault::StopsReading => "a client that stops reading a large answer".into(),
            Fault::ErrorWhileUploading => "413 while the client is still uploading".into(),
            Fault::Smuggle(shape) => shape.describe().into(),
        }
    }
}

/// What a version did about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client was served correctly.
    Served,
    /// The client got a clear error with this status, and the connection was closed.
    Rejected(u16),
    /// The client got this status, and the connection went on serving it.
    Answered(u16),
    /// The server closed the client's connection at a deadline.
    CutOff,
    /// Others were served meanwhile, but the client kept one of the server's threads (or
    /// processes) until it left.
    HeldAThread,
    /// Others waited until the client left, then were served.
    OthersWaited,
    /// The client broke its own connection; the server let it go.
    Dropped,
    /// The server neither spun nor exited, and served again once the fault ended.
    Recovered,
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Served => "served".into(),
            Outcome::Rejected(status) => format!("{status}, then closed"),
            Outcome::Answered(status) => format!("{status}; the connection goes on"),
            Outcome::CutOff => "cut off at a deadline".into(),
            Outcome::HeldAThread => "others served; it holds a thread".into(),
            Outcome::OthersWaited => "others wait until it leaves".into(),
            Outcome::Dropped => "dropped; others served".into(),
            Outcome::Recovered => "no spin, no exit; recovers".into(),
        }
    }
}

/// The versions, in the matrix's column order, and the arguments each runs with: every
/// version closes idle connections after 2 s; v3 has one thread and v4 one worker, so a
/// pinned thread shows; v4 takes at most 4 connections and 1 s to read a request.
pub const SETUPS: [(&str, &[&str]); 5] = [
    ("v1-blocking", &["--idle-timeout", "2"]),
    ("v2-thread-per-conn", &["--idle-timeout", "2"]),
    ("v2-process-per-conn", &["--idle-timeout", "2"]),
    ("v3-thread-pool", &["--idle-timeout", "2", "--threads", "1"]),
    (
        "v4-nio",
        &[
            "--idle-timeout",
            "2",
            "--workers",
            "1",
            "--max-connections",
            "4",
            "--request-timeout",
            "1",
        ],
    ),
];

// ANCHOR: matrix
/// What each version is expected to do about each fault, in [`SETUPS`]' order:
/// v1, v2 (threads), v2 (processes), v3, v4.
pub fn expected(fault: Fault) -> [Outcome; 5] {
    use Outcome::*;
    match fault {
        Fault::Trickle => [Served; 5],
        // Only v4 has a deadline for a request to arrive whole; the blocking versions give
        // the trickler a thread for as long as it keeps sending.
        Fault::Slowloris => [OthersWaited, HeldAThread, HeldAThread, OthersWaited, CutOff],
        Fault::Silent => [CutOff; 5],
        Fault::OverCap => [OthersWaited, Served, Served, OthersWaited, OthersWaited],
        Fault::FdExhaustion => [Recovered; 5],
        Fault::PanickingHandler => [Answered(500); 5],
        Fault::ResetMidResponse => [Dropped; 5],
        // A blocked write holds a blocking server's thread until the write timeout.
        Fault::StopsReading => [OthersWaited, CutOff, CutOff, OthersWaited, CutOff],
        Fault::ErrorWhileUploading => [Rejected(413); 5],
        // RFC 9112 lets a server accept a bare LF as a line end; httparse does.
        Fault::Smuggle(Shape::BareLf) => [Served; 5],
        Fault::Smuggle(_) => [Rejected(400); 5],
    }
}
// ANCHOR_END: matrix

/// The matrix as a Markdown table, rows of faults, columns of versions: the book shows
/// exactly this (a test keeps the two the same).
pub fn markdown() -> String {
    let mut md = String::from("| fault |");
    for (version, _) in SETUPS {
        md += &format!(" {version} |");
    }
    md += &format!("\n|---|{}\n", "---|".repeat(SETUPS.len()));
    for fault in Fault::all() {
        md += &format!("| {} |", fault.describe());
        for outcome in expected(fault) {
            md += &format!(" {} |", outcome.label());
        }
        md += "\n";
    }
    md
}

/// Runs `fault` against `binary` (version `version`, one of [`SETUPS`]) and checks the
/// outcome against [`expected`], then that the server still answers a new client.
pub fn check(binary: &str, version: &str, fault: Fault) {
    let column = SETUPS.iter().position(|(v, _)| *v == version).expect("a version of SETUPS");
    let mut command = Command::new(binary);
    command.args(["--addr", "127.0.0.1:0"]).args(SETUPS[column].1);
    if fault == Fault::FdExhaustion {
        limit_descriptors(&mut command, 64);
    }
    let mut server = ChildServer::spawn(command).expect("start the server");
    let observed =
        run(fault, &server).unwrap_or_else(|e| panic!("{fault:?} against {version}: {e}"));
    assert_eq!(observed, expected(fault)[column], "{version}: {}", fault.describe());
    assert!(server.wait_timeout(Duration::ZERO).expect("wait").is_none(), "{version} exited");
    assert!(answered_within(server.addr(), TIMEOUT), "{version} stopped serving after {fault:?}");
}

fn limit_descriptors(command: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
    // touches nothing of the parent's.
    unsafe {
        command.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)
                .map_err(io::Error::from)
        });
    }
}

/// How long a newcomer waits before the check concludes it is being made to wait.
const PROMPT: Duration = Duration::from_secs(1);

fn run(fault: Fault, server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    match fault {
        Fault::Trickle => {
            let mut c = Client::connect(addr)?;
            for byte in b"GET /echo?msg=trickled HTTP/1.1\r\nHost: t\r\n\r\n" {
                c.send(&[*byte])?;
                std::thread::sleep(Duration::from_millis(5));
            }
            let r = c.read_response()?;
            Ok(if r.status == 200 && r.text() == "trickled" {
                Outcome::Served
            } else {
                Outcome::Rejected(r.status)
            })
        }
        Fault::Slowloris => slowloris(addr),
        Fault::Silent => {
            let mut c = Client::connect(addr)?;
            let start = Instant::now();
            let closed = c.is_closed_by_server();
            // The idle timeout is 2 s; allow for the sweep and a busy machine.
            Ok(if closed && start.elapsed() < Duration::from_secs(6) {
                Outcome::CutOff
            } else {
                Outcome::Served
            })
        }
        Fault::OverCap => {
            // Four silent clients: v4's cap, and more than one-at-a-time servers serve.
            let idle = hold_idle(addr, 4)?;
            std::thread::sleep(Duration::from_millis(300));
            let mut newcomer = Client::connect(addr)?;
            newcomer.set_timeout(PROMPT)?;
            newcomer.send(b"GET /hello\n")?;
            if newcomer.read_line().is_ok() {
                return Ok(Outcome::Served);
            }
            drop(idle);
            newcomer.set_timeout(TIMEOUT)?;
            newcomer.read_line()?;
            Ok(Outcome::OthersWaited)
        }
        Fault::FdExhaustion => fd_exhaustion(server),
        Fault::PanickingHandler => {
            let mut c = Client::connect(addr)?;
            let status = c.get("/panic")?.status;
            // The connection survives the handler's panic, too.
            Ok(if c.get("/hello")?.status == 200 {
                Outcome::Answered(status)
            } else {
                Outcome::Rejected(status)
            })
        }
        Fault::ResetMidResponse => {
            let mut c = TcpStream::connect(addr)?;
            c.set_read_timeout(Some(TIMEOUT))?;
            let uploader = upload_in_background(&c, &post_echo_requests(6))?;
            let mut first = [0u8; 1024];
            c.read_exact(&mut first)?;
            reset(c);
            let _ = uploader.join();
            Ok(if answered_within(addr, TIMEOUT) {
                Outcome::Dropped
            } else {
                Outcome::OthersWaited
            })
        }
        Fault::StopsReading => {
            let mut c = connect_with_small_window(addr)?;
            let uploader = upload_in_background(&c, &post_echo_requests(8))?;
            // Let the server fill the socket and block (or wait) on its write.
            std::thread::sleep(Duration::from_millis(500));
            let others_served = answered_within(addr, PROMPT);
            // Stay silent past the servers' 2 s idle (and write) timeout, then read what
            // there is: a server that gave up on us ends the stream early. A blocking
            // write can take twice the timeout to fail: the first `write` that times out
            // returns the bytes it did copy, and only the next one reports the timeout.
            std::thread::sleep(Duration::from_secs(6));
            let received = read_until_quiet(&mut c);
            drop(c);
            let _ = uploader.join();
            let answers = 8 * (1024 * 1024 + 100);
            Ok(match (others_served, received >= answers) {
                (false, _) => Outcome::OthersWaited,
                (true, false) => Outcome::CutOff,
                (true, true) => Outcome::HeldAThread,
            })
        }
        Fault::ErrorWhileUploading => {
            let mut c = Client::connect(addr)?;
            c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4194304\r\n\r\n")?;
            // Keep uploading until the answer is there to be read.
            let _ = c.send(&vec![b'x'; 256 * 1024]);
            Ok(Outcome::Rejected(c.read_response()?.status))
        }
        Fault::Smuggle(shape) => {
            let mut c = Client::connect(addr)?;
            c.send(shape.bytes())?;
            let r = c.read_response()?;
            Ok(match r.status {
                200 => Outcome::Served,
                status if c.is_closed_by_server() => Outcome::Rejected(status),
                status => {
                    return Err(io::Error::other(format!(
                        "{status} but the connection stayed open"
                    )));
                }
            })
        }
    }
}

/// Reads until the stream ends, fails, or stays quiet for 2 s; the bytes received.
fn read_until_quiet(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    if stream.set_read_timeout(Some(Duration::from_secs(2))).is_err() {
        return 0;
    }
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        total += n;
    }
    total
}

/// Whether the server has closed `stream`: a read ends (EOF or reset) instead of
/// waiting.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    if stream.set_read_timeout(Some(Duration::from_millis(300))).is_err() {
        return true;
    }
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
    }
}

/// Connects with a 256 KiB receive buffer, set before the handshake so the kernel cannot
/// grow it: eight 1 MiB answers then overflow what the server's socket (at most 4 MiB
/// here) and ours can hold, however the loopback's buffers are tuned.
fn connect_with_small_window(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_recv_buffer_size(256 * 1024)?;
    socket.connect_timeout(&addr.into(), TIMEOUT)?;
    Ok(socket.into())
}

fn post_echo_requests(count: usize) -> Vec<u8> {
    let body = vec![b'a'; 1024 * 1024];
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), &body].concat().repeat(count)
}

/// Writes `bytes` on a clone of `stream` from a thread: a server that stops reading while
/// its answers wait would otherwise block the test.
fn upload_in_background(
    stream: &TcpStream,
    bytes: &[u8],
) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
    let mut upload = stream.try_clone()?;
    let bytes = bytes.to_vec();
    Ok(std::thread::spawn(move || upload.write_all(&bytes)))
}

/// A header line every 200 ms for 3 s, never the blank line that ends the head.
fn slowloris(addr: SocketAddr) -> io::Result<Outcome> {
    let mut slow = TcpStream::connect(addr)?;
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n")?;
    let mut trickle = slow.try_clone()?;
    let trickler = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(200));
            if trickle.write_all(b"X-Slow: yes\r\n").is_err() {
                return true; // the server closed on us
            }
        }
        false
    });
    std::thread::sleep(Duration::from_millis(300));
    let others_served = answered_within(addr, PROMPT);
    let write_failed = trickler.join().map_err(|_| io::Error::other("trickler panicked"))?;
    let cut_off = write_failed || closed_by_server(&mut slow);
    drop(slow);
    Ok(match (cut_off, others_served) {
        (true, true) => Outcome::CutOff,
        (false, true) => Outcome::HeldAThread,
        (_, false) => Outcome::OthersWaited,
    })
}

/// 100 clients against a server limited to 64 descriptors: it must not spin on `accept`
/// (less than a third of a core over a second), must not exit, and must serve again once
/// the clients leave.
fn fd_exhaustion(server: &ChildServer) -> io::Result<Outcome> {
    let clients: Vec<TcpStream> =
        (0..100).filter_map(|_| TcpStream::connect(server.addr()).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let ticks = |pid| procfs::cpu_ticks(Some(pid)).map(|t| t.own).unwrap_or(0);
    let before = ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = ticks(server.pid()) - before;
    if used > 33 {
        return Err(io::Error::other(format!(
            "the server used {used} ticks of CPU in a second: a busy loop"
        )));
    }
    drop(clients);
    Ok(if answered_within(server.addr(), TIMEOUT) {
        Outcome::Recovered
    } else {
        Outcome::OthersWaited
    })
}

/// One `#[test]` per fault for a version's binary: `common::fault_matrix_tests!(BINARY,
/// "v1-blocking");` in the version's `tests/faults.rs`.
#[macro_export]
macro_rules! fault_matrix_tests {
    ($binary:expr, $version:expr) => {
        use $crate::testkit::faults::{Fault, Shape, check};

        #[test]
        fn trickle() {
            check($binary, $version, Fault::Trickle);
        }
        #[test]
        fn slowloris() {
            check($binary, $version, Fault::Slowloris);
        }
        #[test]
        fn silent_connection() {
            check($binary, $version, Fault::Silent);
        }
        #[test]
        fn more_clients_than_it_takes() {
            check($binary, $version, Fault::OverCap);
        }
        #[test]
        fn out_of_file_descriptors() {
            check($binary, $version, Fault::FdExhaustion);
        }
        #[test]
        fn panicking_handler() {
            check($binary, $version, Fault::PanickingHandler);
        }
        #[test]
        fn reset_mid_response() {
            check($binary, $version, Fault::ResetMidResponse);
        }
        #[test]
        fn client_stops_reading() {
            check($binary, $version, Fault::StopsReading);
        }
        #[test]
        fn error_while_uploading() {
            check($binary, $version, Fault::ErrorWhileUploading);
        }
        #[test]
        fn smuggling_shapes() {
            for shape in Shape::ALL {
                check($binary, $version, Fault::Smuggle(shape));
            }
        }
    };
}
