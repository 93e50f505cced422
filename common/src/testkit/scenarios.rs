//! The scenarios the versions' chapters turn on, measured the same way for every version:
//! a newcomer starved by clients that hold every thread, and the threads that idle
//! connections cost.

use std::io;
use std::net::SocketAddr;

use super::{Client, NO_ANSWER_WAIT, TIMEOUT, hold_idle, wait_until};
use crate::procfs;

/// What [`starvation`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starvation {
    /// The newcomer was answered while the holders stayed connected.
    pub answered_while_held: bool,
    /// The newcomer was answered once the holders left (or already had been).
    pub answered_after_release: bool,
}

/// The starvation scenario the blocking versions' chapters turn on. `holders` clients each
/// make one request (so each is surely being served, by a thread or worker of its own)
/// and then stay connected without a word. A newcomer then sends `GET /hello` and waits
/// [`NO_ANSWER_WAIT`]; the holders leave; the newcomer waits up to [`TIMEOUT`] more.
pub fn starvation(addr: SocketAddr, holders: usize) -> io::Result<Starvation> {
    let mut held = Vec::with_capacity(holders);
    for _ in 0..holders {
        let mut client = Client::connect(addr)?;
        let reply = client.line("GET /hello")?;
        if reply != "200 Hello, World!" {
            return Err(io::Error::other(format!("a holder got {reply:?}")));
        }
        held.push(client);
    }
    let mut newcomer = Client::connect(addr)?;
    newcomer.set_timeout(NO_ANSWER_WAIT)?;
    newcomer.send(b"GET /hello\n")?;
    let answered_while_held = match newcomer.read_line() {
        Ok(reply) => reply == "200 Hello, World!",
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => false,
        Err(e) => return Err(e),
    };
    drop(held);
    let answered_after_release = answered_while_held || {
        newcomer.set_timeout(TIMEOUT)?;
        newcomer.read_line().is_ok_and(|r| r == "200 Hello, World!")
    };
    Ok(Starvation { answered_while_held, answered_after_release })
}

/// Opens `n` idle connections to a server running in this process, waits until `settled`
/// says the server has taken them all in, and returns how many threads this process
/// gained meanwhile (from /proc). Run it in a test binary of its own: other tests'
/// threads would count too.
pub fn thread_growth(addr: SocketAddr, n: usize, settled: impl FnMut() -> bool) -> io::Result<i64> {
    let before = procfs::status(None)?.threads as i64;
    let idle = hold_idle(addr, n)?;
    if !wait_until(TIMEOUT, settled) {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the server never took in every connection",
        ));
    }
    let after = procfs::status(None)?.threads as i64;
    drop(idle);
    Ok(after - before)
}

/// Threads of this process whose name starts with `prefix` (from /proc).
pub fn threads_named(prefix: &str) -> usize {
    procfs::thread_names(None)
        .map_or(0, |names| names.iter().filter(|n| n.starts_with(prefix)).count())
}
