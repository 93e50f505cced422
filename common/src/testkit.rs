//! Helpers for every version's tests (feature `testkit`): start a server on port 0 in this
//! process or as a child process, talk to it in either protocol, hold idle connections,
//! count threads, and wait for what the kernel or the server's counters show. They live
//! here once so no version copies them. The fault matrix, written with them, is the
//! `harness` crate's.
//!
//! One file per concern: [`TestServer`] (`server.rs`), [`ChildServer`] (`child.rs`),
//! [`Client`] (`client.rs`), the chapters' scenarios (`scenarios.rs`), socket states
//! (`sockets.rs`), the shutdown checks (`shutdown.rs`), the browser (`browser.rs`),
//! transcripts, and traces (`trace.rs`: a version run with `--trace`, its file read).
//! Here: the waits, and opening connections.
//!
//! Not only for tests: `harness` and `loadgen` ship with the feature, for [`ChildServer`]
//! (each server in a process of its own), [`Client`] and the socket readers. It stays one
//! feature because they are the same helpers; what no server's binary needs stays out of
//! the servers either way.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod browser;
mod child;
mod client;
pub mod closing;
mod scenarios;
mod server;
pub mod serving;
pub mod shedding;
mod shutdown;
mod sockets;
pub mod trace;
pub mod transcript;

pub use browser::{browser_or_skip, render_in_browser};
pub use child::{
    ChildServer, check_refused_by_the_command_line, every_socket_listens_when_announced,
    run_to_exit,
};
pub use client::{
    Client, HttpResponse, answered_within, check_pipelined_echoes, speaks_both_protocols,
    speaks_both_protocols_then_exits,
};
pub use scenarios::{Starvation, starvation, thread_growth, threads_named};
pub use server::{RunFn, TestServer, dispatcher_naming_threads, threads_grown_per_connection};
pub use shutdown::{check_graceful_shutdown, check_second_signal_exits_at_once, spawn_binary};
pub use sockets::{
    Ends, connections_to, ends, listening_socket_inode, listening_sockets_on, open_sockets_on,
    server_has_read, socket_inodes, socket_states_to,
};

/// How long a test waits for anything that should happen. Generous, because the machine
/// is shared: a passing test never waits this long, a failing one fails after it.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a test waits to conclude that something does *not* happen (a starved client
/// gets no answer). Long enough that a served client would have been served many times.
pub const NO_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// How long a test's `GET /cpu` burns, in milliseconds of the handler thread's CPU time:
/// a neighbour's request on loopback is sent and answered in well under a millisecond, so
/// a thousand times that still dwarfs it, and a loaded machine still ends it well within
/// [`AFTER_CPU_BURN`].
pub const CPU_BURN_MS: u64 = 1000;

/// How long a test waits for what comes only once a [`CPU_BURN_MS`] handler has ended.
/// The burn counts the thread's CPU time, so in wall time it lasts as many times longer as
/// there are runnable threads per core (5 to 7: a load average of 9 to 14 on two cores was
/// seen while tests ran beside builds): allowed for ten, on top of [`TIMEOUT`].
pub const AFTER_CPU_BURN: Duration =
    Duration::from_millis(TIMEOUT.as_millis() as u64 + 10 * CPU_BURN_MS);

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it
/// held. The one polling loop of the workspace's tests; [`wait_for`] is the same wait for
/// a caller that fails when it runs out.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`wait_until`], failing with what it waited for: `Err("gave up after 10 s waiting for
/// <what>")`.
pub fn wait_for(
    timeout: Duration,
    what: &str,
    condition: impl FnMut() -> bool,
) -> Result<(), String> {
    if wait_until(timeout, condition) {
        Ok(())
    } else {
        Err(format!("gave up after {timeout:?} waiting for {what}"))
    }
}

// ANCHOR: connect_all
/// Opens `n` connections to `addr` at once, each with until `timeout` for its handshake.
/// At once, because against a full accept queue each handshake takes seconds (the kernel
/// drops the SYN and the client resends it a second later, and again): one after the
/// other, 200 of them against a queue of 16 would take nine minutes.
/// Returns the connections established and the errors of the others (`TimedOut` for
/// those still waiting at the deadline).
pub fn connect_all(
    addr: SocketAddr,
    n: usize,
    timeout: Duration,
) -> io::Result<(Vec<TcpStream>, Vec<io::Error>)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsFd;

    let deadline = Instant::now() + timeout;
    let (mut done, mut failed, mut pending) = (Vec::with_capacity(n), vec![], vec![]);
    for _ in 0..n {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => done.push(socket),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => pending.push(socket),
            Err(e) => failed.push(e),
        }
    }
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> =
                pending.iter().map(|s| PollFd::new(s.as_fd(), PollFlags::POLLOUT)).collect();
            let wait = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            fds.iter().map(|fd| fd.revents().is_some_and(|r| !r.is_empty())).collect()
        };
        let mut still = Vec::with_capacity(pending.len());
        for (socket, ready) in pending.into_iter().zip(ready) {
            match (ready, socket.take_error()?) {
                (false, _) => still.push(socket),
                (true, None) => done.push(socket),
                (true, Some(e)) => failed.push(e),
            }
        }
        pending = still;
    }
    let late = || io::Error::new(io::ErrorKind::TimedOut, "no handshake before the deadline");
    failed.extend(pending.iter().map(|_| late()));
    let streams = done
        .into_iter()
        .map(|socket| {
            socket.set_nonblocking(false)?;
            Ok(TcpStream::from(socket))
        })
        .collect::<io::Result<_>>()?;
    Ok((streams, failed))
}
// ANCHOR_END: connect_all

/// Opens `n` connections that send nothing. Each one has finished its handshake when this
/// returns; whether the server has *accepted* them is for the caller to wait for.
pub fn hold_idle(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    (0..n).map(|_| TcpStream::connect_timeout(&addr, TIMEOUT)).collect()
}

/// Closes `stream` with a reset (RST) instead of the orderly FIN: `SO_LINGER` of zero.
pub fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
