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
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

use common::blocking::incoming;
use common::cli::{Signals, Start};
use common::shutdown::DEADLINE;
use common::stats::Counter;
use common::trace::{self, Cat};
use common::{Dispatcher, accept_failed, handle_connection, procfs};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// The crate name, sent in the `Server` header.
pub const SERVER: &str = registry::V2_PROCESS_PER_CONN.name;
/// Where `cargo run` of this crate listens.
pub const DEFAULT_ADDR: &str = registry::V2_PROCESS_PER_CONN.addr;

/// Its settings: only the shared ones.
pub type Config = common::Config;

/// Its command line: only the options every version shares.
pub type Args = common::cli::Args;

/// Starts the server from its command line and serves until stopped: what its `main` and
/// `loadgen serve` both run. The process stays single-threaded (no thread waits for
/// signals): `run` handles SIGINT and SIGTERM itself.
pub fn serve(args: &Args) -> Result<(), common::Error> {
    let start = Start { signals: Signals::Own, ..Start::default() };
    let (listener, dispatcher, config) = common::cli::start(SERVER, args, start)?;
    let served = run(listener, dispatcher, config);
    // After the children have ended: their pieces of the trace are merged into it.
    trace::finish();
    served?;
    Ok(())
}

/// Children reaped by the `SIGCHLD` handler. A static, because a signal handler can reach
/// nothing else.
static REAPED: AtomicU64 = AtomicU64::new(0);
/// SIGINT and SIGTERM the parent received. The first stops the accept loop, the second
/// exits.
static STOP_SIGNALS: AtomicU64 = AtomicU64::new(0);
/// The socket a stop signal shuts: the listener in the parent, the connection in a
/// child. -1 when there is none.
static SHUT_ON_STOP: AtomicI32 = AtomicI32::new(-1);

/// Accepts until `config.shutdown` is triggered, forking a child per connection.
///
/// Fails at once if this process has more than one thread: the child of a multi-threaded
/// process has only the thread that forked, but a copy of every lock, including those
/// another thread held at that instant (the logger's, stdout's, a pool's queue), and
/// nobody left to release them. glibc makes `malloc` itself safe across `fork`; the
/// locks of everything else are not.
pub fn run(listener: TcpListener, dispatcher: Arc<Dispatcher>, config: Config) -> io::Result<()> {
    let threads = procfs::status(None)?.threads;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "{SERVER} forks, so it must run in a single-threaded process, and this one has \
             {threads} threads; start it as its own binary (cargo run -p {SERVER})"
        )));
    }
    install_reaper()?;
    on_stop(listener.as_raw_fd(), parent_stop)?;
    let stats = dispatcher.stats();
    let forked = stats.counter("children_forked");
    stats.counter_from("children_reaped", || REAPED.load(Ordering::Relaxed));
    stats.describe("A process per connection: the parent forks, the child serves. These figures are the answering child's own.");
    // Every /stats is answered by a child; its parent's children are the connections.
    stats.gauge("processes", || {
        let parent = nix::unistd::getppid().as_raw().unsigned_abs();
        procfs::children(parent).map_or(0, |children| children.len() as u64) + 1
    });
    stats.shedding().settings(config.shedding, None);
    tracing::info!("a process per connection: the parent forks, the child serves");
    let mut next_id: u64 = 0;
    // ANCHOR: accept_loop
    for accepted in incoming(&listener) {
        if config.shutdown.is_triggered() || STOP_SIGNALS.load(Ordering::Relaxed) > 0 {
            break;
        }
        match accepted {
            Ok((stream, _)) => {
                next_id += 1;
                fork_connection(next_id, stream, &listener, &dispatcher, &config, &forked);
            }
            Err(e) => accept_failed(&e),
        }
        // No thread may write the trace here: this one does, once a bound is reached.
        trace::flush_if_due();
    }
    // ANCHOR_END: accept_loop
    wait_for_children(&forked);
    Ok(())
}

/// After the accept loop: tells every child to stop (each answers the request it is
/// serving, then exits), and waits for them until the shutdown deadline.
fn wait_for_children(forked: &Counter) {
    for child in procfs::children(std::process::id()).unwrap_or_default() {
        if let Ok(pid) = i32::try_from(child) {
            // A child that has just exited is not there to signal: nothing to do.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + DEADLINE;
    let live = || forked.get().saturating_sub(REAPED.load(Ordering::Relaxed));
    // From here the parent reaps in this loop instead of in the handler: with SIGCHLD
    // blocked, an exit stays pending until `sigtimedwait` takes it, so the parent sleeps
    // until a child exits or the deadline passes, and checks nothing in between.
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    if let Err(e) = sigchld.thread_block() {
        tracing::warn!("cannot block SIGCHLD ({e}); not waiting for the children");
        return;
    }
    // Those that exited before the block, whose signal the handler may not have seen.
    reap_children(0);
    while live() > 0 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        let timeout = nix::libc::timespec {
            tv_sec: left.as_secs() as nix::libc::time_t,
            tv_nsec: nix::libc::c_long::from(left.subsec_nanos() as i32),
        };
        // SAFETY: both pointers are to values that live through the call; a null
        // `siginfo_t` pointer is allowed. The result (the signal, or -1 on the timeout or
        // an interruption) is not needed: the reaping below counts what happened.
        unsafe { nix::libc::sigtimedwait(sigchld.as_ref(), std::ptr::null_mut(), &timeout) };
        reap_children(0);
    }
    if live() > 0 {
        tracing::warn!(
            children = live(),
            "children still serving at the shutdown deadline; leaving them"
        );
    }
}

// ANCHOR: fork
/// Forks a child to serve `stream`. The child closes its copy of the listening socket and
/// never returns from here; the parent closes its copy of the connection (by dropping it)
/// and returns to `accept`.
fn fork_connection(
    id: u64,
    stream: TcpStream,
    listener: &TcpListener,
    dispatcher: &Dispatcher,
    config: &Config,
    forked: &Counter,
) {
    // A stop signal the parent passes on to a child just forked must find the child's
    // handler, not the parent's it inherits (which would shut the child's copy of the
    // listener and leave the connection served until its idle timeout): held back from
    // before the fork until the child has its own handler. Should blocking fail, the
    // window stays open, as it was.
    let stops = stop_signals();
    let _ = stops.thread_block();
    // The fork on the parent's lane; the child's lane starts in its own process.
    let mut forking = trace::span(Cat::Spawn, "fork").conn(id);
    // SAFETY: `run` checked that this process has one thread, so the child starts with
    // no lock held by a thread it lacks and may run ordinary Rust code.
    let forked_as = unsafe { fork() };
    if !matches!(forked_as, Ok(ForkResult::Child)) {
        let _ = stops.thread_unblock();
    }
    match forked_as {
        Ok(ForkResult::Child) => {
            // The child serves one connection and must not hold the listener: a child
            // that outlived the parent would keep the port bound, and the kernel would
            // go on queueing connections that nobody accepts (Stevens' close(listenfd)).
            // SAFETY: the child never returns to the loop that owns `listener` (it exits
            // below), so the descriptor is neither used nor closed again.
            unsafe { nix::libc::close(listener.as_raw_fd()) };
            // From now on a stop signal ends this child's connection, not the listener.
            if let Err(e) = on_stop(stream.as_raw_fd(), child_stop) {
                tracing::warn!("child for connection {id}: no stop handler: {e}");
            }
            // A stop that came meanwhile is delivered now, to `child_stop`.
            let _ = stops.thread_unblock();
            // The process name shows in `ps` and in the log lines the child writes.
            if let Ok(name) = CString::new(format!("conn-{id}")) {
                let _ = nix::sys::prctl::set_name(&name);
            }
            // The recorder's copy of the parent's events is not this process's to write: the
            // child records into a piece of the trace of its own, written as it exits, which
            // the parent merges into the file when it writes it.
            trace::forked(id);
            // Nothing queues in front of a forked child: it starts on the connection now.
            handle_connection(stream, dispatcher, config, Instant::now());
            trace::finish();
            std::process::exit(0);
        }
        Ok(ForkResult::Parent { child }) => {
            forking.set("child", child.as_raw().unsigned_abs());
            drop(forking);
            forked.bump();
            tracing::debug!(%child, "forked a child for connection {id}");
        }
        // EAGAIN: too many processes, or no memory for another. This client is closed
        // (when `stream` drops); the next one may be luckier.
        Err(e) => tracing::warn!("cannot fork for connection {id}, closing it: {e}"),
    }
}
// ANCHOR_END: fork

// ANCHOR: reap
/// Reaps every child that has exited (the `SIGCHLD` handler, and the shutdown's wait for
/// the children). One `SIGCHLD` may stand for several exits (signals of one kind do not
/// queue), so it loops until none is left to collect.
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

// ANCHOR: stop
/// The parent's SIGINT and SIGTERM handler. The first signal shuts the listening socket,
/// which makes the blocked `accept` return, so the loop sees the stop; a second exits at
/// once.
extern "C" fn parent_stop(_signal: nix::libc::c_int) {
    if STOP_SIGNALS.fetch_add(1, Ordering::Relaxed) > 0 {
        // SAFETY: _exit is async-signal-safe and ends the process without unwinding.
        unsafe { nix::libc::_exit(130) };
    }
    shut(nix::libc::SHUT_RDWR);
}

/// A child's handler: stop reading from the client, so the child answers the request it
/// is serving, sees end-of-file, and exits. Ctrl-C in a terminal signals the parent and
/// every child at once; the parent also passes a stop on to its children.
extern "C" fn child_stop(_signal: nix::libc::c_int) {
    shut(nix::libc::SHUT_RD);
}

/// Shuts [`SHUT_ON_STOP`]'s socket in direction `how`, keeping errno as it was.
fn shut(how: nix::libc::c_int) {
    let saved = Errno::last_raw();
    let fd = SHUT_ON_STOP.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: shutdown is async-signal-safe; on a closed descriptor it fails harmlessly.
        unsafe { nix::libc::shutdown(fd, how) };
    }
    Errno::set_raw(saved);
}

/// SIGINT and SIGTERM, the signals that stop the server.
fn stop_signals() -> SigSet {
    let mut stops = SigSet::empty();
    stops.add(Signal::SIGINT);
    stops.add(Signal::SIGTERM);
    stops
}

/// Installs `handler` for SIGINT and SIGTERM, to shut `socket` when one arrives.
fn on_stop(socket: RawFd, handler: extern "C" fn(nix::libc::c_int)) -> io::Result<()> {
    SHUT_ON_STOP.store(socket, Ordering::Relaxed);
    let action = SigAction::new(SigHandler::Handler(handler), SaFlags::SA_RESTART, SigSet::empty());
    for signal in stop_signals().iter() {
        // SAFETY: both handlers use only atomics, shutdown and _exit, all
        // async-signal-safe, and restore errno.
        unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}
// ANCHOR_END: stop
