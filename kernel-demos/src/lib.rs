//! What the kernel does under a server, shown by five small programs that measure it: the
//! accept herd ([`herd`]), Nagle's algorithm meeting the delayed ACK ([`nagle`]), which
//! side of a connection keeps the TIME_WAIT ([`time_wait`]), what happens to the queued
//! connections of a closed SO_REUSEPORT listener ([`reuseport_close`]), and what a
//! context switch costs ([`switch`]).
//!
//! Each module has a `run(&Options)` that returns the figures it measured (an `Outcome`,
//! whose `Display` is the table the binary prints) and a test in `tests/` that fails when
//! the effect is absent. Everything runs on loopback, on ports the kernel chooses, and
//! waits for conditions (a thread parked in `epoll_wait`, a connection in the accept
//! queue) with a deadline rather than for a fixed time.
//!
//! Where timing is the lesson, a demonstration also records itself with a clock on every
//! side and draws a sequence diagram ([`sequence`], `--sequence FILE.svg`): Nagle,
//! TIME_WAIT, and four made for it: a client's SYN retries against a full accept queue
//! ([`syn_retries`]), the lingering close against a plain close ([`linger`]), coordinated
//! omission in a closed loop ([`omission`]), io_uring's batches and lent buffers
//! ([`uring`]), and v4-nio's hand-off and re-arm read from strace ([`handoff`],
//! [`strace`]).
//!
//! ```sh
//! cargo run --release -p kernel-demos -- herd               # or nagle, time-wait,
//! cargo run --release -p kernel-demos -- herd --help        #   reuseport-close, switch
//! scripts/kernel-demos.sh    # all five, into docs/src/results/kernel-<name>.txt
//! scripts/sequences.sh       # every diagram, into docs/src/results/seq-<name>.svg
//! ```

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

pub mod handoff;
pub mod herd;
pub mod linger;
pub mod nagle;
pub mod omission;
pub mod reuseport_close;
pub mod sequence;
pub mod strace;
pub mod switch;
pub mod syn_retries;
pub mod time_wait;
pub mod uring;

/// The request a demonstration's client sends when what it sends does not matter, only
/// that the server has something to read and answer (Nagle, TIME_WAIT).
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

/// How long any one wait for a condition may take before the demonstration gives up. Far
/// above what a loaded two-core machine needs, so that reaching it means something broke.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds, or fails after [`DEADLINE`] naming `what` it waited
/// for. The first polls are a few microseconds apart, since most conditions hold almost
/// at once and a demonstration waits for one hundreds of times; then a millisecond.
///
/// Not `common::testkit::wait_for`: that one sleeps 10 ms between polls, which hundreds of
/// waits would turn into seconds of a demonstration's timings, and it lives behind the
/// `testkit` feature, which this binary, shipped to students, does not compile.
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    let mut polls = 0u32;
    while !condition() {
        if Instant::now() >= deadline {
            bail!("gave up after {} s waiting for {what}", DEADLINE.as_secs());
        }
        polls += 1;
        if polls < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// Accepts one connection, failing if none comes within [`DEADLINE`], so that a server
/// thread whose client failed does not wait in `accept` forever.
pub(crate) fn accept_within(listener: &TcpListener) -> anyhow::Result<TcpStream> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(DEADLINE).context("the deadline as a poll timeout")?;
    if poll(&mut fds, timeout).context("poll the listener")? == 0 {
        bail!("no connection came within {} s", DEADLINE.as_secs());
    }
    Ok(listener.accept().context("accept")?.0)
}

/// A value of `/proc/sys`, trimmed (`net/ipv4/tcp_tw_reuse`).
pub(crate) fn sysctl(name: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/sys/{name}"))?.trim().to_owned())
}

/// The `fraction` quantile (0.5 the median) of `sorted`, which must be sorted; zero when
/// empty.
pub(crate) fn quantile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A duration in milliseconds with two decimals, the unit every table here uses.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// `text` wrapped at 88 columns, for the explanations under each table.
pub(crate) fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > 88 {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}
