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

use crate::sequence::{Figure, Item, Panel, Shade};
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

/// One side's times in a recorded conversation, each just after the call it names
/// returned (or just before, for what it sends).
#[derive(Debug, Clone, Copy)]
struct Side {
    /// Sent the request (client) or read it (server).
    request: Instant,
    /// Read the reply (client) or began writing it (server).
    reply: Instant,
    /// Sent its FIN: `shutdown(Write)` for the first closer, `close` for the second.
    fin: Instant,
    /// Read the end of the stream: the other side's FIN had come.
    eof: Instant,
}

/// The end of a recorded conversation for one side. The first closer shuts down its
/// write side (its FIN leaves, as with a close) and reads on until the other's FIN, so
/// that the FIN's arrival is timed; the second reads to the first's FIN, then closes.
fn finish(mut stream: TcpStream, first: bool) -> anyhow::Result<(Instant, Instant)> {
    if first {
        let fin = Instant::now();
        stream.shutdown(std::net::Shutdown::Write)?;
        stream.read_to_end(&mut Vec::new()).context("read to the other side's FIN")?;
        Ok((fin, Instant::now()))
    } else {
        stream.read_to_end(&mut Vec::new()).context("read to the other side's FIN")?;
        let eof = Instant::now();
        let fin = Instant::now();
        drop(stream);
        Ok((fin, eof))
    }
}

/// The server's side of a recorded conversation.
fn serve_recorded(mut stream: TcpStream, closer: Closer) -> anyhow::Result<Side> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut request = [0; REQUEST.len()];
    stream.read_exact(&mut request).context("read the request")?;
    let read = Instant::now();
    let reply = Instant::now();
    stream.write_all(REPLY)?;
    let (fin, eof) = finish(stream, closer == Closer::Server)?;
    Ok(Side { request: read, reply, fin, eof })
}

/// The client's side of a recorded conversation.
fn converse_recorded(mut stream: TcpStream, closer: Closer) -> anyhow::Result<Side> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let sent = Instant::now();
    stream.write_all(REQUEST)?;
    let mut reply = vec![0; REPLY.len()];
    stream.read_exact(&mut reply).context("read the reply")?;
    let replied = Instant::now();
    let (fin, eof) = finish(stream, closer == Closer::Client)?;
    Ok(Side { request: sent, reply: replied, fin, eof })
}

/// When a TIME_WAIT socket of `port` first showed on the closer's side (polled through
/// sock_diag), and a later time it was seen still there.
fn time_wait_seen(port: u16, closer: Closer) -> anyhow::Result<(Instant, Instant)> {
    let held = |count: TimeWait| match closer {
        Closer::Server => count.local > 0,
        Closer::Client => count.remote > 0,
    };
    crate::wait_for("the TIME_WAIT socket", || time_wait(port).is_ok_and(held))?;
    let seen = Instant::now();
    // Seen again a little later: a state that lasts, not a passing one.
    std::thread::sleep(Duration::from_millis(100));
    if !held(time_wait(port)?) {
        bail!("the TIME_WAIT socket was gone within 100 ms");
    }
    Ok((seen, Instant::now()))
}

/// One conversation with `closer` closing first, as a panel: client, server.
fn record_close(closer: Closer) -> anyhow::Result<Panel> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    let accepted = accept_within(&listener)?;
    let (server, client) = std::thread::scope(|scope| {
        let server = scope.spawn(|| serve_recorded(accepted, closer));
        let client = converse_recorded(client, closer);
        let server = server.join().map_err(|_| anyhow!("the server thread panicked"))?;
        anyhow::Ok((server?, client?))
    })?;
    let (seen, still) = time_wait_seen(addr.port(), closer)?;
    let at = |instant: Instant| instant.saturating_duration_since(client.request);
    let (first, second, holder) = match closer {
        Closer::Server => (server, client, 1),
        Closer::Client => (client, server, 0),
    };
    let other = 1 - holder;
    let held = "TIME_WAIT (60 s)";
    let items = vec![
        Item::message(0, 1, Duration::ZERO, at(server.request), "request"),
        Item::message(1, 0, at(server.reply), at(client.reply), "reply"),
        Item::message(holder, other, at(first.fin), at(second.eof), "FIN: closes first"),
        Item::message(other, holder, at(second.fin), at(first.eof), "FIN"),
        Item::span(holder, at(first.eof), at(still), held, Shade::Kernel),
        Item::mark(holder, at(seen), "sock_diag: in TIME_WAIT"),
        Item::mark(other, at(second.fin), "closed, socket freed"),
    ];
    Ok(Panel {
        title: format!("the {} closes first", closer.name()),
        lifelines: vec!["client".into(), "server".into()],
        items,
        px_per_ms: None,
    })
}

/// The sequence diagram: the same conversation with the server, then the client,
/// closing first.
pub fn sequence() -> anyhow::Result<Figure> {
    let panels = [Closer::Server, Closer::Client]
        .into_iter()
        .map(record_close)
        .collect::<anyhow::Result<_>>()?;
    Ok(Figure {
        title: "Who closes first holds the TIME_WAIT".into(),
        caption: "The side whose FIN goes first ends in TIME_WAIT (purple) once the other side's \
                  FIN has come and been acknowledged, and keeps that socket 60 s; the other side's \
                  socket is freed at once. Left the server closes first, right the client. The \
                  first closer sends its FIN with shutdown() and reads on, which times the other \
                  FIN's arrival; the bar ends where sock_diag saw the socket still in TIME_WAIT. \
                  Vertical distance grows with the logarithm of the gap."
            .into(),
        panels,
    })
}
