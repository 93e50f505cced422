//! What the soak reads of a server every few seconds, from outside: its memory, open
//! descriptors, threads and processes from /proc, and its open connections from the
//! kernel's socket table, so that a server that cannot answer (v1 busy with a slow client)
//! is still read, and the reading costs it nothing.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::kernel::{self, End, TcpState};
use common::procfs;
use serde::Serialize;

use crate::sample;

/// The server soaked: where it listens, its process, and whether its children are part of
/// it (a fork per connection: the whole process tree is the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Target {
    pub addr: SocketAddr,
    pub pid: u32,
    pub tree: bool,
}

/// The resources the soak watches, in the order its tables print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    Rss,
    Descriptors,
    Threads,
    Processes,
    Connections,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Rss,
        Resource::Descriptors,
        Resource::Threads,
        Resource::Processes,
        Resource::Connections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Rss => "memory",
            Resource::Descriptors => "descriptors",
            Resource::Threads => "threads",
            Resource::Processes => "processes",
            Resource::Connections => "connections",
        }
    }

    /// Where to look when this resource leaks.
    pub fn hint(self, pid: u32) -> String {
        match self {
            Resource::Rss => format!(
                "memory kept per request or per closed connection: a buffer or map entry never \
                 dropped (compare /proc/{pid}/smaps_rollup over time; heaptrack or valgrind \
                 --tool=massif on the version run alone)"
            ),
            Resource::Descriptors => format!(
                "a descriptor not closed on some path (`ls -l /proc/{pid}/fd`: sockets \
                 left open, and after which fault: run the soak with one kind of client)"
            ),
            Resource::Threads => format!(
                "threads that never end: a thread per connection whose connection closed \
                 without it noticing (`ls /proc/{pid}/task`, their names in */comm)"
            ),
            Resource::Processes => format!(
                "children that never exit, or exit and are never reaped (zombies: \
                 `ps --ppid {pid} -o pid,stat,etime`)"
            ),
            Resource::Connections => "connections the server never closes: CLOSE_WAIT means \
                 the client left and the server did not notice (`ss -tanp state close-wait`)"
                .to_owned(),
        }
    }
}

/// One reading, at `secs` since the soak began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    pub secs: f64,
    /// RSS; for a process tree, the sum of PSS (see [`sample::Reading::rss_bytes`]).
    pub rss_bytes: u64,
    pub descriptors: u64,
    pub threads: u64,
    pub processes: u64,
    /// The connections the server holds: its side of the port's connections ESTABLISHED
    /// or CLOSE_WAIT (the client has gone and the server has not closed yet), less those
    /// still in the accept queue, which are the kernel's until accepted.
    pub connections: u64,
    /// Connections in the accept queue, not judged: a serial server under this mix keeps a
    /// queue (its clients arrive faster than it serves them), which its backlog bounds.
    pub queued: u64,
}

impl Sample {
    pub fn get(&self, resource: Resource) -> f64 {
        (match resource {
            Resource::Rss => self.rss_bytes,
            Resource::Descriptors => self.descriptors,
            Resource::Threads => self.threads,
            Resource::Processes => self.processes,
            Resource::Connections => self.connections,
        }) as f64
    }
}

/// Reads `target` now; `None` once its process is gone.
pub fn read(target: &Target, secs: f64) -> Option<Sample> {
    let reading = sample::read(target.pid, target.addr.port(), target.tree);
    if reading.processes == 0 {
        return None;
    }
    let mut descriptors = open_descriptors(target.pid);
    if target.tree {
        let children = procfs::children(target.pid).unwrap_or_default();
        descriptors += children.into_iter().map(open_descriptors).sum::<u64>();
    }
    let held = [TcpState::Established, TcpState::CloseWait];
    let open =
        kernel::tcp_sockets(&held, End::Local(target.addr.port())).map_or(0, |s| s.len() as u64);
    let queued = u64::from(reading.accept_queue);
    Some(Sample {
        secs,
        rss_bytes: reading.rss_bytes,
        descriptors,
        threads: reading.threads,
        processes: reading.processes,
        connections: open.saturating_sub(queued),
        queued,
    })
}

/// Entries of `/proc/<pid>/fd`; 0 for a process that has just exited.
fn open_descriptors(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// What the server itself says of its connections (`connections.active` in `/stats`), or
/// `None` if it does not say, or does not answer within `timeout`. Asked only while no
/// load runs: a serial server busy with a client would keep the soak waiting.
pub fn stats_active(addr: SocketAddr, timeout: Duration) -> Option<u64> {
    let (status, body) = get(addr, "/stats", timeout).ok()?;
    if status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json["connections"]["active"].as_u64()
}

/// `GET path` on a connection of its own, `Connection: close`: the status and the body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of head"))?;
    let status = std::str::from_utf8(&answer[..split])
        .ok()
        .and_then(|head| head.split(' ').nth(1)?.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status"))?;
    Ok((status, answer[split + 4..].to_vec()))
}
