//! Who closes first holds the TIME_WAIT.
//!
//! The side that sends the first FIN ends in TIME_WAIT: its socket stays in the kernel
//! for 60 s (Linux's fixed 2 MSL) after the connection is gone, so that a late segment
//! of this connection cannot be taken for one of the next connection with the same
//! addresses and ports. The other side's socket is freed as soon as its FIN is
//! acknowledged. Two runs of the same conversation (a request, a reply) differ only in
//! who closes first, each on a fresh server port so that the other run's 60-second
//! leftovers are not counted; then the TIME_WAIT sockets of that port are counted on
//! each side, by `common::kernel::time_wait` (sock_diag, as `ss` reads them).

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use common::kernel::{TimeWait, time_wait};

use crate::{DEADLINE, REQUEST, accept_within, sysctl, wrap};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Connections per run, one after the other, a request and a reply each
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { connections: 200 }
    }
}

/// Which side closes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The server writes the reply and closes; the client reads to the end, then closes.
    Server,
    /// The client reads the reply and closes; the server reads the end, then closes.
    Client,
}

impl Closer {
    fn name(self) -> &'static str {
        match self {
            Closer::Server => "server",
            Closer::Client => "client",
        }
    }
}

/// One run's count.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub closer: Closer,
    /// The server's port in this run.
    pub port: u16,
    /// TIME_WAIT sockets of that port: `local` on the server's side, `remote` on the
    /// clients'.
    pub count: TimeWait,
}

/// Both runs, and the settings that decide what TIME_WAIT costs a client.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub connections: usize,
    pub runs: Vec<RunOutcome>,
    /// `net.ipv4.ip_local_port_range`: the ports `connect` picks from.
    pub port_range: Option<(u32, u32)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 never, 1 always, 2 (the default) for loopback only, may
    /// an outgoing connection take a port still in TIME_WAIT.
    pub tw_reuse: Option<String>,
    /// `net.ipv4.tcp_tw_reuse_delay` (Linux 6.14), in ms: how old a TIME_WAIT socket
    /// must be before `tcp_tw_reuse` may take its port.
    pub tw_reuse_delay_ms: Option<String>,
}

impl Outcome {
    /// The run in which `closer` closed first.
    pub fn run(&self, closer: Closer) -> Option<&RunOutcome> {
        self.runs.iter().find(|r| r.closer == closer)
    }
}

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";

/// Runs the conversation `connections` times with each side closing first.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    if options.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let runs = [Closer::Server, Closer::Client]
        .into_iter()
        .map(|closer| {
            run_one(closer, options.connections)
                .with_context(|| format!("the {} closing first", closer.name()))
        })
        .collect::<anyhow::Result<_>>()?;
    let port_range = sysctl("net/ipv4/ip_local_port_range").ok().and_then(|range| {
        let mut ends = range.split_whitespace().map(str::parse::<u32>);
        Some((ends.next()?.ok()?, ends.next()?.ok()?))
    });
    Ok(Outcome {
        connections: options.connections,
        runs,
        port_range,
        tw_reuse: sysctl("net/ipv4/tcp_tw_reuse").ok(),
        tw_reuse_delay_ms: sysctl("net/ipv4/tcp_tw_reuse_delay").ok(),
    })
}

fn run_one(closer: Closer, connections: usize) -> anyhow::Result<RunOutcome> {
    // A fresh port: TIME_WAIT sockets of an earlier run, anyone's, are on other ports.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            for _ in 0..connections {
                serve(accept_within(&listener)?, closer)?;
            }
            anyhow::Ok(())
        });
        let client = (0..connections).try_for_each(|_| {
            let stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
            converse(stream, closer)
        });
        let served = server.join().map_err(|_| anyhow!("the server thread panicked"))?;
        client?;
        served
    })?;
    let count = settled_count(addr.port(), connections as u64)?;
    Ok(RunOutcome { closer, port: addr.port(), count })
}

// ANCHOR: server
/// The server's side of one connection.
fn serve(mut stream: TcpStream, closer: Closer) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut request = [0; REQUEST.len()];
    stream.read_exact(&mut request).context("read the request")?;
    stream.write_all(REPLY)?;
    if closer == Closer::Client {
        // Wait for the client's FIN (read returns 0) before closing.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).context("read to the client's close")?;
    }
    Ok(()) // dropping the stream closes it
}
// ANCHOR_END: server

// ANCHOR: client
/// The client's side of one connection.
fn converse(mut stream: TcpStream, closer: Closer) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.write_all(REQUEST)?;
    let mut reply = vec![0; REPLY.len()];
    stream.read_exact(&mut reply).context("read the reply")?;
    if closer == Closer::Server {
        // Wait for the server's FIN before closing.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).context("read to the server's close")?;
    }
    Ok(())
}
// ANCHOR_END: client

/// The TIME_WAIT count of `port`, once it has settled: the closes end asynchronously
/// (the last FIN and its ACK cross after both programs have moved on), so the count is
/// read until every connection has left one, or it has not moved for half a second.
fn settled_count(port: u16, connections: u64) -> anyhow::Result<TimeWait> {
    let deadline = Instant::now() + DEADLINE;
    let mut count = time_wait(port).context("count TIME_WAIT sockets")?;
    let mut unchanged_since = Instant::now();
    while count.local + count.remote < connections
        && unchanged_since.elapsed() < Duration::from_millis(500)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
        let now = time_wait(port).context("count TIME_WAIT sockets")?;
        if now != count {
            unchanged_since = Instant::now();
            count = now;
        }
    }
    Ok(count)
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            wrap(&format!(
                "TIME_WAIT: {} connections per run, a request and a reply each, a fresh server \
                 port per run; TIME_WAIT sockets of that port counted on each side",
                self.connections
            ))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:>6} {:>13} {:>13}",
            "closes first", "port", "server side", "client side"
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "{:<20} {:>6} {:>13} {:>13}",
                run.closer.name(),
                run.port,
                run.count.local,
                run.count.remote
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{}",
            wrap(
                "Look at where the count is: the side that closes first keeps a socket per \
                 connection for 60 s (2 MSL on Linux) after the connection ended; the other \
                 side keeps nothing. A server that closes first holds them (cheap: they all \
                 share its one port, and a TIME_WAIT socket is a small structure); a client \
                 that closes first holds them on its ephemeral ports, one per connection."
            )
        )?;
        if let Some((low, high)) = self.port_range {
            let ports = high.saturating_sub(low) + 1;
            writeln!(
                f,
                "{}",
                wrap(&format!(
                    "net.ipv4.ip_local_port_range = {low} {high}: {ports} ephemeral ports, so a \
                     client that closes first can open at most {ports} connections to one \
                     server address and port per 60 s, {} a second sustained; beyond, connect \
                     fails with EADDRNOTAVAIL unless it may reuse a port in TIME_WAIT.",
                    ports / 60
                ))
            )?;
        }
        if let Some(reuse) = &self.tw_reuse {
            let delay = match &self.tw_reuse_delay_ms {
                Some(ms) => {
                    format!(" and the old socket is {ms} ms old (net.ipv4.tcp_tw_reuse_delay)")
                }
                None => String::new(),
            };
            write!(
                f,
                "{}",
                wrap(&format!(
                    "net.ipv4.tcp_tw_reuse = {reuse} (0 never; 1 yes; 2, the default, on \
                     loopback only): whether connect may take a port still in TIME_WAIT, \
                     when TCP timestamps tell the old connection's segments from the new \
                     one's{delay}: on loopback, then, connect takes such a port again rather than fail."
                ))
            )?;
        }
        Ok(())
    }
}
