//! Closing one of several `SO_REUSEPORT` listeners: what happens to the connections
//! already queued on it?
//!
//! Under `SO_REUSEPORT` each listener has its own accept queue, and the kernel puts each
//! new connection in one of them by a hash of its addresses and ports. A connection
//! whose handshake is complete sits in that queue until its listener accepts it. Close
//! the listener (a worker restarting, a server reloading one process at a time) and, by
//! default, the kernel resets every connection still in its queue, although another
//! listener on the same port could have taken them: `net.ipv4.tcp_migrate_req = 1`
//! (Linux 5.14) moves them to another listener of the group instead.
//!
//! Two listeners, A and B; nobody accepts; the client connects. Then B is closed, A
//! accepts everything there is, and each client connection is found either accepted on
//! A or reset.

use std::fmt;
use std::io::{self, Read};
use std::mem::{MaybeUninit, size_of};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use anyhow::{Context, bail};
use nix::libc;
use socket2::{Domain, Socket, Type};

use crate::{sysctl, wait_for, wrap};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Connections the client opens before B is closed
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Run only with net.ipv4.tcp_migrate_req as it is, and do not try to set it (the
    /// other value needs root and a writable /proc/sys; it is restored afterwards)
    #[arg(long)]
    pub no_migrate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { connections: 64, no_migrate: false }
    }
}

/// One run, with `tcp_migrate_req` at `migrate_req`.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub migrate_req: u8,
    /// Connections opened.
    pub connections: usize,
    /// In A's and B's accept queue just before B was closed.
    pub queued_a: u32,
    pub queued_b: u32,
    /// What each queue could hold (`tcpi_sacked` of a listener).
    pub cap: u32,
    /// Client connections found reset after the close.
    pub reset: usize,
    /// Connections A accepted after the close.
    pub accepted_a: usize,
    /// Client connections neither reset nor accepted on A: closed by a FIN, or never
    /// resolved before the deadline.
    pub lost: usize,
}

impl RunOutcome {
    /// Connections A accepted beyond those queued on it: they came from B.
    pub fn migrated(&self) -> usize {
        self.accepted_a.saturating_sub(self.queued_a as usize)
    }
}

/// The runs, and why one was left out.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub runs: Vec<RunOutcome>,
    /// `tcp_migrate_req` as found (and left).
    pub migrate_req: u8,
    /// Why a run with the other value is missing, if it is.
    pub skipped: Option<String>,
}

impl Outcome {
    /// The run with `tcp_migrate_req` at `value`.
    pub fn run(&self, value: u8) -> Option<&RunOutcome> {
        self.runs.iter().find(|r| r.migrate_req == value)
    }
}

const MIGRATE_REQ: &str = "net/ipv4/tcp_migrate_req";
/// Each listener's backlog: room for every connection, so none waits for space.
const BACKLOG: i32 = 1024;

/// Runs with `tcp_migrate_req` as it is, then (unless `no_migrate`) with the other
/// value, restoring it.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    if options.connections == 0 || options.connections > BACKLOG as usize / 2 {
        bail!("--connections must be between 1 and {}", BACKLOG / 2);
    }
    let found = read_migrate_req()?;
    // The run with 0 (the default) first, as the chapter tells it.
    let mut values = vec![found];
    if !options.no_migrate {
        values.push(1 - found);
        values.sort_unstable();
    }
    let mut runs = Vec::new();
    let mut skipped = None;
    for value in values {
        if value == found {
            runs.push(run_once(value, options.connections)?);
            continue;
        }
        match Setting::set(value) {
            Ok(setting) => {
                let run = run_once(value, options.connections);
                setting.restore()?;
                runs.push(run?);
            }
            Err(reason) => skipped = Some(reason),
        }
    }
    Ok(Outcome { runs, migrate_req: found, skipped })
}

fn read_migrate_req() -> anyhow::Result<u8> {
    let value = sysctl(MIGRATE_REQ).context("read net.ipv4.tcp_migrate_req (Linux 5.14)")?;
    match value.as_str() {
        "0" => Ok(0),
        "1" => Ok(1),
        other => bail!("net.ipv4.tcp_migrate_req is {other:?}, expected 0 or 1"),
    }
}

/// `tcp_migrate_req` changed for one run; put back by [`Setting::restore`], or on drop
/// if a run failed first.
#[derive(Debug)]
struct Setting {
    original: u8,
    restored: bool,
}

impl Setting {
    /// Sets the value, or says why it cannot be.
    fn set(value: u8) -> Result<Setting, String> {
        let original = read_migrate_req().map_err(|e| e.to_string())?;
        if !root() {
            return Err("not root, so net.ipv4.tcp_migrate_req cannot be set".into());
        }
        write_migrate_req(value)
            .map_err(|e| format!("writing {value} to /proc/sys/{MIGRATE_REQ} failed: {e}"))?;
        Ok(Setting { original, restored: false })
    }

    fn restore(mut self) -> anyhow::Result<()> {
        self.restored = true;
        write_migrate_req(self.original)
            .with_context(|| format!("restore net.ipv4.tcp_migrate_req to {}", self.original))
    }
}

impl Drop for Setting {
    fn drop(&mut self) {
        if !self.restored {
            // A failed run is already being reported; this is the best left to do.
            let _ = write_migrate_req(self.original);
        }
    }
}

/// Whether the effective user is root (the second figure of `Uid:` in
/// /proc/self/status).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn write_migrate_req(value: u8) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{MIGRATE_REQ}"), format!("{value}\n"))
}

/// Opens the connections, until B's queue holds at least one (the hash could put all
/// on A), then closes B and sorts out what became of each.
fn run_once(migrate_req: u8, connections: usize) -> anyhow::Result<RunOutcome> {
    let mut wanted = connections;
    loop {
        let run = attempt(migrate_req, wanted)?;
        if run.queued_b > 0 || wanted * 2 > BACKLOG as usize {
            return Ok(run);
        }
        wanted *= 2; // all on A: the close of B would show nothing
    }
}

fn attempt(migrate_req: u8, connections: usize) -> anyhow::Result<RunOutcome> {
    let a = reuseport_listener(([127, 0, 0, 1], 0).into())?;
    let addr = a.local_addr()?;
    let b = reuseport_listener(addr)?;
    // ANCHOR: queued
    let mut clients = (0..connections)
        .map(|_| TcpStream::connect(addr).with_context(|| format!("connect to {addr}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for("every connection queued on A or B", || {
        matches!((accept_queue(&a), accept_queue(&b)),
                 (Ok((qa, _)), Ok((qb, _))) if (qa + qb) as usize == connections)
    })?;
    let ((queued_a, cap), (queued_b, _)) = (accept_queue(&a)?, accept_queue(&b)?);
    // ANCHOR_END: queued

    a.set_nonblocking(true)?;
    for client in &clients {
        client.set_nonblocking(true)?;
    }
    // Kept open until every fate is known: a closed one would send the client a FIN.
    let (mut accepted, mut ports) = (Vec::new(), Vec::new());
    let mut fates = vec![Fate::Waiting; clients.len()];
    // Connections still unsettled at the deadline are counted as lost below: a finding
    // to show, not a failure of the demonstration.
    // ANCHOR: close
    drop(b); // B's queue: reset (tcp_migrate_req = 0) or moved to A (= 1)
    let _unsettled = wait_for("each connection to be accepted on A or reset", || {
        while let Ok((stream, peer)) = a.accept() {
            accepted.push(stream);
            ports.push(peer.port()); // the client's port, as A sees it
        }
        for (client, fate) in clients.iter_mut().zip(&mut fates) {
            if *fate == Fate::Waiting {
                *fate = fate_of(client, &ports);
            }
        }
        fates.iter().all(|fate| *fate != Fate::Waiting)
    });
    // ANCHOR_END: close
    let count = |wanted: Fate| fates.iter().filter(|fate| **fate == wanted).count();
    Ok(RunOutcome {
        migrate_req,
        connections,
        queued_a,
        queued_b,
        cap,
        reset: count(Fate::Reset),
        accepted_a: accepted.len(),
        lost: connections - count(Fate::Reset) - count(Fate::Accepted),
    })
}

/// What became of one client connection after B was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Accepted,
    Reset,
    Closed,
}

// ANCHOR: fate
/// A connection A accepted is alive: a read finds nothing yet. One that was in B's queue
/// and not moved was reset: the read fails with ECONNRESET.
fn fate_of(client: &mut TcpStream, accepted_on_a: &[u16]) -> Fate {
    let mut byte = [0u8; 1];
    match client.read(&mut byte) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Fate::Reset,
        Ok(0) => Fate::Closed,
        _ => match client.local_addr() {
            Ok(local) if accepted_on_a.contains(&local.port()) => Fate::Accepted,
            _ => Fate::Waiting,
        },
    }
}
// ANCHOR_END: fate

/// A `SO_REUSEPORT` listener on `addr` (port 0: the kernel chooses).
fn reuseport_listener(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_port(true).context("SO_REUSEPORT needs Linux 3.9")?;
    socket.bind(&addr.into()).with_context(|| format!("bind {addr}"))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

// ANCHOR: accept_queue
/// A listener's accept queue: connections waiting for `accept`, and the cap. For a
/// listening socket `TCP_INFO` reuses two fields: `tcpi_unacked` is the queue's length,
/// `tcpi_sacked` its cap (the backlog, clamped by `net.core.somaxconn`).
fn accept_queue(listener: &TcpListener) -> io::Result<(u32, u32)> {
    let info = tcp_info(listener)?;
    Ok((info.tcpi_unacked, info.tcpi_sacked))
}
// ANCHOR_END: accept_queue

/// `getsockopt(TCP_INFO)`, which neither nix nor socket2 wraps.
fn tcp_info(socket: &impl AsRawFd) -> io::Result<libc::tcp_info> {
    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes, its size, and the kernel writes at
    // most `len` bytes into it and the length it wrote into `len`; both live through
    // the call. The descriptor is open while `socket` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every field of `tcp_info` is an integer, so the zeroed bytes the kernel
    // did not overwrite (an older kernel's shorter struct) are a valid value too.
    Ok(unsafe { info.assume_init() })
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            wrap(
                "Closing one of two SO_REUSEPORT listeners, A and B, on one port: the client \
                 connects, nobody accepts, then B is closed and A accepts what there is"
            )
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<17} {:>6} {:>9} {:>9} {:>7} {:>11} {:>9} {:>5}",
            "tcp_migrate_req",
            "opened",
            "queued A",
            "queued B",
            "reset",
            "accepted A",
            "migrated",
            "lost"
        )?;
        for r in &self.runs {
            writeln!(
                f,
                "{:<17} {:>6} {:>9} {:>9} {:>7} {:>11} {:>9} {:>5}",
                r.migrate_req,
                r.connections,
                r.queued_a,
                r.queued_b,
                r.reset,
                r.accepted_a,
                r.migrated(),
                r.lost
            )?;
        }
        if let Some(reason) = &self.skipped {
            writeln!(f, "(no run with tcp_migrate_req = {}: {reason})", 1 - self.migrate_req)?;
        }
        writeln!(f)?;
        write!(
            f,
            "{}",
            wrap(&format!(
                "Look at queued B and reset: with tcp_migrate_req = 0 (the default) every \
                 connection still in B's queue is reset when B closes, although A is \
                 listening on the same port; with 1 (Linux 5.14) the kernel moves them to A \
                 (migrated). A server restarting one SO_REUSEPORT process at a time loses \
                 its queued clients unless it sets it, or first steers new connections \
                 away from the closing listener (a reuseport BPF program) and drains its \
                 queue. net.ipv4.tcp_migrate_req is {} here, and was left so.",
                self.migrate_req
            ))
        )
    }
}
