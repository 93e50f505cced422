//! A client's SYNs against a full accept queue: dropped without a word, sent again by the
//! client's kernel on its own timer, until one finds room.
//!
//! A listener with a tiny backlog that nobody accepts from is filled (Linux queues one
//! more than the backlog); then one more client connects, without blocking, and its
//! socket is watched every millisecond through `TCP_INFO`: each time its count of
//! retransmissions grows, the kernel has sent the SYN again, the previous one having been
//! dropped (`TcpExtListenOverflows` counts them). After a given number of drops the
//! server accepts one queued connection; the next SYN finds the slot and the handshake
//! completes. What is measured: when each SYN left, when the slot freed, when `connect`
//! completed, so that "connect took seconds" is read off the client's own clock.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::kernel::{accept_queue, listen_counters};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::sequence::{Figure, Item, Panel, Shade, show};
use crate::{DEADLINE, wait_for, wrap};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// SYNs dropped before the server accepts one queued connection and so makes room
    #[arg(long, default_value_t = 2)]
    pub drops: u32,
    /// The listener's backlog (the queue holds one more)
    #[arg(long, default_value_t = 1)]
    pub backlog: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options { drops: 2, backlog: 1 }
    }
}

/// The client's and the server's times, from the client's `connect` call.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Connections the full queue held.
    pub queued: u32,
    /// When each retransmitted SYN left (seen within a millisecond).
    pub retries: Vec<Duration>,
    /// When the server's `accept` was called, and when it returned.
    pub accept: (Duration, Duration),
    /// When the client's socket was seen established.
    pub connected: Duration,
    /// The namespace's listen overflows meanwhile (this listener's and any other's).
    pub overflows: Option<u64>,
}

/// `tcpi_state` of an established connection (`TCP_ESTABLISHED` in linux/tcp_states.h;
/// the libc crate does not export the states).
const TCP_ESTABLISHED: u8 = 1;

/// `TCP_INFO` of `socket`: its state and how often it retransmitted.
fn tcp_info(socket: &Socket) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain integers, for which all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large and
    // alive for the call, and sets `len` to what it wrote; the fd is the socket's.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(info) }
}

/// Fills the accept queue of `listener`: connects until it holds one more than its cap
/// (each connect completes at once while there is room). Returns the connections.
fn fill(listener: &TcpListener) -> anyhow::Result<Vec<TcpStream>> {
    let port = listener.local_addr()?.port();
    let cap = accept_queue(port).context("read the accept queue")?.cap;
    let mut fillers = Vec::new();
    for queued in 1..=cap + 1 {
        fillers.push(TcpStream::connect(listener.local_addr()?).context("connect a filler")?);
        wait_for("the filler in the accept queue", || {
            accept_queue(port).is_ok_and(|queue| queue.queued >= queued)
        })?;
    }
    Ok(fillers)
}

/// Runs it: fills the queue, connects once more, accepts after `drops` dropped SYNs.
/// How long after a retry is counted the server waits before it frees a slot (see [`run`]).
const SETTLE: Duration = Duration::from_millis(100);

pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 0))))?;
    socket.listen(options.backlog)?;
    let listener: TcpListener = socket.into();
    let _fillers = fill(&listener)?;
    let queued = accept_queue(listener.local_addr()?.port())?.queued;
    let overflows_before = listen_counters().ok();
    let probe = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    let start = Instant::now();
    match probe.connect(&SockAddr::from(listener.local_addr()?)) {
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Ok(()) => bail!("connect completed at once: the queue was not full"),
        Err(e) => return Err(e).context("connect"),
    }
    let mut retries = Vec::new();
    let mut accept = None;
    // The client counts a retransmission when it sends it, before the listener has seen
    // (and dropped) it; an accept in between would let that very SYN in, a second early. On
    // a loaded machine the two were seen at the same millisecond. So the slot is freed only
    // once the namespace's listen overflows show the drop (the first SYN's and each
    // retry's), and at least `SETTLE` after the retry was counted: no later SYN is due for
    // another second.
    let dropped = |retries: &[Duration]| {
        let settled = retries.last().is_some_and(|at| start.elapsed() >= *at + SETTLE);
        let counted = overflows_before
            .zip(listen_counters().ok())
            .is_none_or(|(before, now)| now.since(before).overflows > options.drops.into());
        settled && counted
    };
    // Generous: the retries come a second apart (or doubling, on older kernels).
    let deadline = start + DEADLINE * (options.drops + 2);
    loop {
        let info = tcp_info(&probe).context("TCP_INFO of the client")?;
        let now = start.elapsed();
        while retries.len() < info.tcpi_total_retrans as usize {
            retries.push(now);
        }
        if info.tcpi_state == TCP_ESTABLISHED {
            break;
        }
        if accept.is_none() && retries.len() >= options.drops as usize && dropped(&retries) {
            let called = start.elapsed();
            drop(listener.accept().context("accept a filler")?);
            accept = Some((called, start.elapsed()));
        }
        if Instant::now() > deadline {
            bail!("no connection after {} SYNs", retries.len() + 1);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let connected = start.elapsed();
    let overflows = overflows_before
        .zip(listen_counters().ok())
        .map(|(before, after)| after.since(before).overflows);
    let accept = accept.context("connected before the server accepted: the queue had room")?;
    Ok(Outcome { queued, retries, accept, connected, overflows })
}

impl Outcome {
    /// The sequence diagram: client, the listener's queue in the kernel, the server.
    pub fn figure(&self) -> Figure {
        let mut items = vec![Item::lost(0, 1, Duration::ZERO, "SYN: queue full, dropped")];
        let (last, dropped) =
            self.retries.split_last().map_or((None, &[][..]), |(l, d)| (Some(l), d));
        for (index, at) in dropped.iter().enumerate() {
            items.push(Item::lost(0, 1, *at, &format!("SYN again ({}): dropped", index + 1)));
        }
        let (called, returned) = self.accept;
        items.push(Item::message(2, 1, called, returned, "accept(): a slot frees"));
        let full = format!("queue full ({} queued)", self.queued);
        items.push(Item::span(1, Duration::ZERO, returned, &full, Shade::Waiting));
        if let Some(at) = last {
            items.push(Item::message(0, 1, *at, *at, "SYN again: queued"));
            items.push(Item::message(1, 0, *at, self.connected, "SYN-ACK"));
        }
        let waited = format!("connect() waits {}", show(self.connected));
        items.push(Item::span(0, Duration::ZERO, self.connected, &waited, Shade::Waiting));
        let panel = Panel {
            title: format!("listen(backlog {}), nobody accepting", self.queued.saturating_sub(1)),
            lifelines: vec!["client".into(), "kernel: accept queue".into(), "server".into()],
            items,
            px_per_ms: None,
        };
        Figure {
            title: "SYN retries against a full accept queue".into(),
            caption: format!(
                "The queue is full, so the listener's kernel drops the client's SYN without a \
                 word (red crosses); the client's kernel sends it again on its own timer, at the \
                 times at the left, and connect() just waits. Only after the server accepts one \
                 queued connection does the next SYN find room, and connect() completes {} \
                 after it was called. The retries' times are read from the client's TCP_INFO \
                 every millisecond; vertical distance grows with the logarithm of the gap.",
                show(self.connected)
            ),
            panels: vec![panel],
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            wrap(&format!(
                "SYN retries: an accept queue full with {} connections, nobody accepting; one \
                 more client connects",
                self.queued
            ))
        )?;
        writeln!(f)?;
        let mut events = vec![(Duration::ZERO, "SYN sent (connect called)".to_owned())];
        for (index, at) in self.retries.iter().enumerate() {
            events.push((*at, format!("SYN sent again ({})", index + 1)));
        }
        events.push((self.accept.0, "the server accepts one queued connection".into()));
        events.push((self.connected, "connect completes".into()));
        // Stable: an accept seen in the same millisecond as a SYN stays after it.
        events.sort_by_key(|(at, _)| *at);
        for (at, what) in events {
            writeln!(f, "{:>12}  {what}", show(at))?;
        }
        let overflows = self.overflows.map_or("?".to_owned(), |n| n.to_string());
        writeln!(f, "\nlisten overflows meanwhile (TcpExtListenOverflows): {overflows}")?;
        write!(
            f,
            "{}",
            wrap(
                "Look at the gaps: each SYN that finds the queue full is dropped, and the \
                 client's kernel sends it again after its retransmission timer (here: \
                 net.ipv4.tcp_syn_linear_timeouts, 1 s apart at first). The connection is \
                 made by the first SYN after a slot frees, not when it frees."
            )
        )
    }
}
