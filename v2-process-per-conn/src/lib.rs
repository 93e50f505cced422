//! v2-process-per-conn: a `fork()` per connection, the multi-processing server.
//!
//! Changed from v1: the accepting process no longer serves. For each accepted connection
//! it forks; the child serves that one connection and exits, the parent closes its copy
//! of the socket and goes back to `accept`. A `SIGCHLD` handler reaps every child as it
//! exits, so none lingers as a zombie. What it shows:
//!
//! * no client waits for another, as with v2-thread-per-conn;
//! * a fork costs far more than a thread (a new address space, page tables, copy-on-write
//!   faults), and each connection is a whole process;
//! * processes share no memory: the child that answers `/stats` shows its own counters,
//!   a copy of the parent's taken at the fork, so requests never add up across
//!   connections.
//!
//! Forking is only sound in a single-threaded process, so [`run`] refuses to start in any
//! other. Run it with `cargo run -p v2-process-per-conn` (port 8083).

use std::ffi::CString;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Dispatcher, accept_failed, handle_connection, procfs};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

pub use common::Config;

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = "v2-process-per-conn";
/// Where `cargo run -p v2-process-per-conn` listens.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8083";

/// Children reaped by the `SIGCHLD` handler. A static, because a signal handler can reach
/// nothing else.
static REAPED: AtomicU64 = AtomicU64::new(0);

/// Accepts until `config.shutdown` is triggered, forking a child per connection.
///
/// Fails at once if this process has more than one thread: a child of a multi-threaded
/// process inherits locks held by threads that do not exist in it, and may deadlock.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let threads = procfs::status(None)?.threads;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "{SERVER} forks, so it must run in a single-threaded process, and this one has \
             {threads} threads; start it as its own binary (cargo run -p {SERVER})"
        )));
    }
    install_reaper()?;
    let stats = dispatcher.stats();
    let forked = stats.counter("children_forked");
    stats.gauge("children_reaped", || REAPED.load(Ordering::Relaxed));
    tracing::info!("a process per connection: the parent forks, the child serves");
    let mut next_id: u64 = 0;
    // ANCHOR: accept_loop
    for stream in listener.incoming() {
        if config.shutdown.is_triggered() {
            break;
        }
        match stream {
            Ok(stream) => {
                next_id += 1;
                fork_connection(next_id, stream, &dispatcher, &config, &forked);
            }
            Err(e) => accept_failed(&e),
        }
    }
    // ANCHOR_END: accept_loop
    Ok(())
}

// ANCHOR: fork
/// Forks a child to serve `stream`. The child never returns from here; the parent closes
/// its copy of the socket (by dropping it) and returns to `accept`.
fn fork_connection(
    id: u64,
    stream: TcpStream,
    dispatcher: &Dispatcher,
    config: &Config,
    forked: &AtomicU64,
) {
    // SAFETY: `run` checked that this process has one thread, so the child starts with
    // no lock held by a thread it lacks and may run ordinary Rust code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The process name shows in `ps` and in the log lines the child writes.
            if let Ok(name) = CString::new(format!("conn-{id}")) {
                let _ = nix::sys::prctl::set_name(&name);
            }
            handle_connection(stream, dispatcher, config);
            std::process::exit(0);
        }
        Ok(ForkResult::Parent { child }) => {
            forked.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%child, "forked a child for connection {id}");
        }
        // EAGAIN: too many processes, or no memory for another. This client is closed
        // (when `stream` drops); the next one may be luckier.
        Err(e) => tracing::warn!("cannot fork for connection {id}, closing it: {e}"),
    }
}
// ANCHOR_END: fork

// ANCHOR: reap
/// Reaps every child that has exited. One `SIGCHLD` may stand for several exits (signals
/// of one kind do not queue), so it loops until none is left to collect.
extern "C" fn reap_children(_signal: nix::libc::c_int) {
    // waitpid can change errno under the code this signal interrupted; put it back.
    let saved = Errno::last_raw();
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
        REAPED.fetch_add(1, Ordering::Relaxed);
    }
    Errno::set_raw(saved);
}

fn install_reaper() -> io::Result<()> {
    // SA_RESTART: an `accept` interrupted by the signal carries on instead of failing.
    let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
    let action = SigAction::new(SigHandler::Handler(reap_children), flags, SigSet::empty());
    // SAFETY: the handler calls only waitpid and atomic operations, which are
    // async-signal-safe, and restores errno.
    unsafe { sigaction(Signal::SIGCHLD, &action) }.map_err(io::Error::from)?;
    Ok(())
}
// ANCHOR_END: reap
