//! The fault matrix: the same faults, run against every version's binary, with the
//! outcome each version is expected to show written down in [`expected`]. The probes
//! that commit each fault are in [`probes`].
//!
//! Teaching code that falls over teaches the wrong lesson, so after every fault the
//! server must still be running and answer a new client. Where a version's limit is the
//! very thing its chapter shows (v1 and a one-thread v3 make others wait behind a slow
//! client), the matrix records that outcome, and the check proves the server recovers
//! once the fault ends. One row crashes on purpose: a handler that aborts the process,
//! served only with `--allow-abort`, shows what processes isolate and threads do not.

use std::io;
use std::process::Command;
use std::time::Duration;

use super::{ChildServer, TIMEOUT, answered_within};

mod probes;

/// One way a client can misbehave (or a server can run short), or a real client's way of
/// speaking HTTP that a server must get right.
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
    /// A request whose handler aborts the process (`GET /abort`, with `--allow-abort`),
    /// as a crash in native code would, while another client is connected.
    AbortingHandler,
    /// A client that resets the connection in the middle of a large answer.
    ResetMidResponse,
    /// A client that uploads requests for 8 MiB of answers and stops reading.
    StopsReading,
    /// A body over the limit, still being uploaded when the server answers 413.
    ErrorWhileUploading,
    /// 4 KiB of empty lines in one write, then a request: once enough to overflow a
    /// stack in a decoder that recursed per line.
    BlankLines,
    /// 64 KiB of empty lines and no request.
    BlankFlood,
    /// 64 KiB of random bytes through `POST /echo`, which must come back unchanged.
    BinaryEcho,
    /// A 1 MiB echo with `Connection: close`, more requests pipelined behind it, and a
    /// client that reads only once the server has decided to close.
    CloseWithInputPending,
    /// 150 line requests, `exit`, and more lines behind it, in one write.
    ExitWithInputPending,
    /// A request every 300 ms for 3 s, each write finishing one request and starting the
    /// next, so a request is always half-arrived; each is well within the deadline.
    SteadyPipelining,
    /// A body uploaded in pieces every 300 ms for 3 s: slow, but moving.
    SlowUpload,
    /// After an error reply, a byte every 300 ms: the close must not linger forever.
    SendsAfterError,
    /// `Expect: 100-continue`: the client waits for `100 Continue` before its body, as
    /// curl, .NET and Java clients do.
    ExpectContinue,
    /// `Expect: 100-continue` with a body over the limit: the 413 comes at once.
    ExpectContinueTooLarge,
    /// A body sent with `Transfer-Encoding: chunked` (curl `-T -`, Python's `http.client`).
    ChunkedUpload,
    /// `GET http://host/echo?msg=… HTTP/1.1`: the absolute form proxies send.
    AbsoluteForm,
    /// `GET /hello` in the line protocol and a half-close in the same moment
    /// (`printf 'GET /hello\n' | nc -N`): the answer, then the server's close at once.
    HalfCloseAfterLine,
    /// The same over HTTP/1.1, as an HTTP client that shuts its write side does.
    HalfCloseAfterHttp,
    /// Half a request head, then a half-close: a 400 and the close, at once.
    HalfCloseMidHead,
    /// A body shorter than its `Content-Length`, then a half-close: a 400 and the close.
    HalfCloseMidBody,
    /// 200 connections, each a request, a half-close and a close, one after another:
    /// within a second of the last, the server holds none of them.
    Churn,
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
    TrailingSpaceAfterVersion,
    LowerCaseVersion,
    UnknownTransferCoding,
}

impl Shape {
    pub const ALL: [Shape; 11] = [
        Shape::ContentLengthAndTransferEncoding,
        Shape::DifferingContentLengths,
        Shape::PlusContentLength,
        Shape::ObsFold,
        Shape::SpaceBeforeColon,
        Shape::BareLf,
        Shape::Nul,
        Shape::NonUtf8Path,
        Shape::TrailingSpaceAfterVersion,
        Shape::LowerCaseVersion,
        Shape::UnknownTransferCoding,
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
            Shape::TrailingSpaceAfterVersion => b"GET /hello HTTP/1.1 \r\nHost: t\r\n\r\n",
            Shape::LowerCaseVersion => b"GET /hello http/1.1\r\nHost: t\r\n\r\n",
            Shape::UnknownTransferCoding => {
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            }
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
            Shape::TrailingSpaceAfterVersion => "`GET /hello HTTP/1.1 ` (a trailing space)",
            Shape::LowerCaseVersion => "`GET /hello http/1.1`",
            Shape::UnknownTransferCoding => "`Transfer-Encoding: gzip, chunked`",
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
            Fault::AbortingHandler,
            Fault::ResetMidResponse,
            Fault::StopsReading,
            Fault::ErrorWhileUploading,
            Fault::BlankLines,
            Fault::BlankFlood,
            Fault::BinaryEcho,
            Fault::CloseWithInputPending,
            Fault::ExitWithInputPending,
            Fault::SteadyPipelining,
            Fault::SlowUpload,
            Fault::SendsAfterError,
            Fault::ExpectContinue,
            Fault::ExpectContinueTooLarge,
            Fault::ChunkedUpload,
            Fault::AbsoluteForm,
            Fault::HalfCloseAfterLine,
            Fault::HalfCloseAfterHttp,
            Fault::HalfCloseMidHead,
            Fault::HalfCloseMidBody,
            Fault::Churn,
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
            Fault::AbortingHandler => "a handler that aborts the process (`--allow-abort`)".into(),
            Fault::ResetMidResponse => "a client that resets mid-answer".into(),
            Fault::StopsReading => "a client that stops reading a large answer".into(),
            Fault::ErrorWhileUploading => "413 while the client is still uploading".into(),
            Fault::BlankLines => "4 KiB of blank lines, then a request".into(),
            Fault::BlankFlood => "64 KiB of blank lines".into(),
            Fault::BinaryEcho => "64 KiB of random bytes to `POST /echo`".into(),
            Fault::CloseWithInputPending => {
                "1 MiB echo with `Connection: close`, more pipelined behind it".into()
            }
            Fault::ExitWithInputPending => "150 lines, `exit`, more lines behind it".into(),
            Fault::SteadyPipelining => {
                "requests pipelined steadily for longer than the request timeout".into()
            }
            Fault::SlowUpload => "a body uploaded slowly but steadily".into(),
            Fault::SendsAfterError => "a byte every 300 ms after an error reply".into(),
            Fault::ExpectContinue => "`Expect: 100-continue`".into(),
            Fault::ExpectContinueTooLarge => {
                "`Expect: 100-continue` with a body over the limit".into()
            }
            Fault::ChunkedUpload => "a chunked upload".into(),
            Fault::AbsoluteForm => "`GET http://host/path` (absolute form)".into(),
            Fault::HalfCloseAfterLine => "a line request and a half-close at once".into(),
            Fault::HalfCloseAfterHttp => "an HTTP request and a half-close at once".into(),
            Fault::HalfCloseMidHead => "a half-close in the middle of a head".into(),
            Fault::HalfCloseMidBody => "a half-close before the body is whole".into(),
            Fault::Churn => "200 connections: request, half-close, close".into(),
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
    /// The server closed the client's connection at a deadline; others were served
    /// meanwhile.
    CutOff,
    /// The server closed the client's connection at a deadline, and others waited until
    /// then.
    CutOffOthersWaited,
    /// Others were served meanwhile, but the client kept one of the server's threads (or
    /// processes) until it left.
    HeldAThread,
    /// Others waited until the client left, then were served.
    OthersWaited,
    /// The client broke its own connection; the server let it go.
    Dropped,
    /// The server neither spun nor exited, and served again once the fault ended.
    Recovered,
    /// The whole server process died, and every client with it.
    Died,
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Served => "served".into(),
            Outcome::Rejected(status) => format!("{status}, then closed"),
            Outcome::Answered(status) => format!("{status}; the connection goes on"),
            Outcome::CutOff => "cut off at a deadline".into(),
            Outcome::CutOffOthersWaited => "cut off at a deadline; others wait till then".into(),
            Outcome::HeldAThread => "others served; it holds a thread".into(),
            Outcome::OthersWaited => "others wait until it leaves".into(),
            Outcome::Dropped => "dropped; others served".into(),
            Outcome::Recovered => "no spin, no exit; recovers".into(),
            Outcome::Died => "the process dies, every client with it".into(),
        }
    }
}

/// The arguments every version runs with in the matrix: idle connections closed after
/// 2 s, and 2 s for a request head to arrive whole (or between two pieces of a body).
const SHARED: [&str; 4] = ["--idle-timeout", "2", "--request-timeout", "2"];

/// How many versions the matrix has columns for.
pub const VERSIONS: usize = 8;

/// The versions, in the matrix's column order, and the arguments each runs with besides
/// [`SHARED`]: v3 has one thread and v4 one worker, so a pinned thread shows; v4, v4's
/// syscall loops, v5 and v6 take at most 4 connections; v5 runs two loops, v6 two
/// runtime workers. v4-syscalls runs the whole matrix once per `--api`.
pub const SETUPS: [(&str, &[&str]); VERSIONS] = [
    ("v1-blocking", &[]),
    ("v2-thread-per-conn", &[]),
    ("v2-process-per-conn", &[]),
    ("v3-thread-pool", &["--threads", "1"]),
    ("v4-nio", &["--workers", "1", "--max-connections", "4"]),
    ("v4-syscalls", &["--max-connections", "4"]),
    ("v5-reactor-per-core", &["--loops", "2", "--max-connections", "4"]),
    ("v6-async", &["--workers", "2", "--max-connections", "4"]),
];

// ANCHOR: matrix
/// What each version is expected to do about each fault, in [`SETUPS`]' order:
/// v1, v2 (threads), v2 (processes), v3, v4, v4-syscalls (every API alike), v5, v6.
pub fn expected(fault: Fault) -> [Outcome; VERSIONS] {
    use Outcome::*;
    match fault {
        Fault::Trickle => [Served; VERSIONS],
        // Every version cuts the trickler off at the request deadline; a one-thread
        // server serves nobody else until then.
        Fault::Slowloris => {
            [CutOffOthersWaited, CutOff, CutOff, CutOffOthersWaited, CutOff, CutOff, CutOff, CutOff]
        }
        Fault::Silent => [CutOff; VERSIONS],
        Fault::OverCap => [
            OthersWaited,
            Served,
            Served,
            OthersWaited,
            OthersWaited,
            OthersWaited,
            OthersWaited,
            OthersWaited,
        ],
        Fault::FdExhaustion => [Recovered; VERSIONS],
        Fault::PanickingHandler => [Answered(500); VERSIONS],
        // What a process isolates: the fork version loses the one connection whose
        // child died; every other version is one process, and loses everyone.
        Fault::AbortingHandler => [Died, Died, Dropped, Died, Died, Died, Died, Died],
        Fault::ResetMidResponse => [Dropped; VERSIONS],
        // A blocked write holds a blocking server's thread until the write timeout.
        Fault::StopsReading => {
            [OthersWaited, CutOff, CutOff, OthersWaited, CutOff, CutOff, CutOff, CutOff]
        }
        Fault::ErrorWhileUploading => [Rejected(413); VERSIONS],
        Fault::BlankLines => [Served; VERSIONS],
        Fault::BlankFlood => [Rejected(400); VERSIONS],
        Fault::BinaryEcho => [Served; VERSIONS],
        Fault::CloseWithInputPending | Fault::ExitWithInputPending => [Served; VERSIONS],
        Fault::SteadyPipelining | Fault::SlowUpload => [Served; VERSIONS],
        Fault::SendsAfterError => [CutOff; VERSIONS],
        Fault::ExpectContinue => [Served; VERSIONS],
        Fault::ExpectContinueTooLarge => [Rejected(413); VERSIONS],
        Fault::ChunkedUpload | Fault::AbsoluteForm => [Served; VERSIONS],
        // Every version notices the client's close, however it arrives.
        Fault::HalfCloseAfterLine | Fault::HalfCloseAfterHttp | Fault::Churn => [Served; VERSIONS],
        Fault::HalfCloseMidHead | Fault::HalfCloseMidBody => [Rejected(400); VERSIONS],
        // RFC 9112 lets a server accept a bare LF as a line end; httparse does.
        Fault::Smuggle(Shape::BareLf) => [Served; VERSIONS],
        Fault::Smuggle(Shape::UnknownTransferCoding) => [Rejected(501); VERSIONS],
        Fault::Smuggle(_) => [Rejected(400); VERSIONS],
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
pub fn check(binary: &str, version: &str, extra: &[&str], fault: Fault) {
    let column = SETUPS.iter().position(|(v, _)| *v == version).expect("a version of SETUPS");
    let mut command = Command::new(binary);
    command.args(["--addr", "127.0.0.1:0"]).args(SHARED).args(SETUPS[column].1).args(extra);
    let version = format!("{version} {}", extra.join(" "));
    let version = version.trim_end();
    if fault == Fault::FdExhaustion {
        limit_rlimit(&mut command, nix::sys::resource::Resource::RLIMIT_NOFILE, 64);
    }
    if fault == Fault::AbortingHandler {
        command.arg("--allow-abort");
        // An abort may dump core; not into the source tree.
        limit_rlimit(&mut command, nix::sys::resource::Resource::RLIMIT_CORE, 0);
    }
    let mut server = ChildServer::spawn(command).expect("start the server");
    let observed =
        probes::run(fault, &server).unwrap_or_else(|e| panic!("{fault:?} against {version}: {e}"));
    assert_eq!(observed, expected(fault)[column], "{version}: {}", fault.describe());
    if observed == Outcome::Died {
        let exited = server.wait_timeout(TIMEOUT).expect("wait");
        assert!(exited.is_some(), "{version} said to have died, but runs");
        return;
    }
    assert!(server.wait_timeout(Duration::ZERO).expect("wait").is_none(), "{version} exited");
    assert!(answered_within(server.addr(), TIMEOUT), "{version} stopped serving after {fault:?}");
}

fn limit_rlimit(command: &mut Command, resource: nix::sys::resource::Resource, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
    // touches nothing of the parent's.
    unsafe {
        command.pre_exec(move || {
            nix::sys::resource::setrlimit(resource, limit, limit).map_err(io::Error::from)
        });
    }
}

/// One `#[test]` per fault for a version's binary: `common::fault_matrix_tests!(BINARY,
/// "v1-blocking");` in the version's `tests/faults.rs`, with the arguments that pick a
/// variant after it if it has several (`..., "v4-syscalls", &["--api", "poll"]);`).
#[macro_export]
macro_rules! fault_matrix_tests {
    ($binary:expr, $version:expr) => {
        $crate::fault_matrix_tests!($binary, $version, &[]);
    };
    ($binary:expr, $version:expr, $extra:expr) => {
        use $crate::testkit::faults::{Fault, Shape, check};

        #[test]
        fn trickle() {
            check($binary, $version, $extra, Fault::Trickle);
        }
        #[test]
        fn slowloris() {
            check($binary, $version, $extra, Fault::Slowloris);
        }
        #[test]
        fn silent_connection() {
            check($binary, $version, $extra, Fault::Silent);
        }
        #[test]
        fn more_clients_than_it_takes() {
            check($binary, $version, $extra, Fault::OverCap);
        }
        #[test]
        fn out_of_file_descriptors() {
            check($binary, $version, $extra, Fault::FdExhaustion);
        }
        #[test]
        fn panicking_handler() {
            check($binary, $version, $extra, Fault::PanickingHandler);
        }
        #[test]
        fn aborting_handler() {
            check($binary, $version, $extra, Fault::AbortingHandler);
        }
        #[test]
        fn reset_mid_response() {
            check($binary, $version, $extra, Fault::ResetMidResponse);
        }
        #[test]
        fn client_stops_reading() {
            check($binary, $version, $extra, Fault::StopsReading);
        }
        #[test]
        fn error_while_uploading() {
            check($binary, $version, $extra, Fault::ErrorWhileUploading);
        }
        #[test]
        fn blank_lines_then_a_request() {
            check($binary, $version, $extra, Fault::BlankLines);
        }
        #[test]
        fn a_flood_of_blank_lines() {
            check($binary, $version, $extra, Fault::BlankFlood);
        }
        #[test]
        fn binary_echo() {
            check($binary, $version, $extra, Fault::BinaryEcho);
        }
        #[test]
        fn connection_close_with_input_pending() {
            check($binary, $version, $extra, Fault::CloseWithInputPending);
        }
        #[test]
        fn exit_with_input_pending() {
            check($binary, $version, $extra, Fault::ExitWithInputPending);
        }
        #[test]
        fn steady_pipelining() {
            check($binary, $version, $extra, Fault::SteadyPipelining);
        }
        #[test]
        fn slow_upload() {
            check($binary, $version, $extra, Fault::SlowUpload);
        }
        #[test]
        fn sends_after_an_error() {
            check($binary, $version, $extra, Fault::SendsAfterError);
        }
        #[test]
        fn expect_100_continue() {
            check($binary, $version, $extra, Fault::ExpectContinue);
        }
        #[test]
        fn expect_100_continue_too_large() {
            check($binary, $version, $extra, Fault::ExpectContinueTooLarge);
        }
        #[test]
        fn chunked_upload() {
            check($binary, $version, $extra, Fault::ChunkedUpload);
        }
        #[test]
        fn absolute_form() {
            check($binary, $version, $extra, Fault::AbsoluteForm);
        }
        #[test]
        fn half_close_after_a_line_request() {
            check($binary, $version, $extra, Fault::HalfCloseAfterLine);
        }
        #[test]
        fn half_close_after_an_http_request() {
            check($binary, $version, $extra, Fault::HalfCloseAfterHttp);
        }
        #[test]
        fn half_close_mid_head() {
            check($binary, $version, $extra, Fault::HalfCloseMidHead);
        }
        #[test]
        fn half_close_mid_body() {
            check($binary, $version, $extra, Fault::HalfCloseMidBody);
        }
        #[test]
        fn connection_churn() {
            check($binary, $version, $extra, Fault::Churn);
        }
        #[test]
        fn smuggling_shapes() {
            for shape in Shape::ALL {
                check($binary, $version, $extra, Fault::Smuggle(shape));
            }
        }
    };
}
