//! Nagle's algorithm meets the delayed ACK: a reply written in two pieces waits for the
//! ACK of the first.
//!
//! Nagle (RFC 896) holds a small segment while an earlier small one is unacknowledged,
//! so that a program writing a byte at a time sends few packets. The receiver, for its
//! part, delays its ACK (at least 40 ms on Linux) hoping to carry it on data of its own.
//! A server that writes a reply's header, then its body, sends the header at once; the
//! body waits for the header's ACK; the client, still waiting for the body, has nothing
//! to send and delays that ACK. Each request then costs the delayed-ACK timer.
//!
//! Three servers answer the same requests: Nagle on with the reply in two writes (the
//! stall), `TCP_NODELAY` with two writes (the usual fix), and Nagle on with the reply in
//! one write (the other fix: a small reply that is never split has nothing to wait for).
//! A fourth case keeps the stalling server and changes the client instead: it sets
//! `TCP_QUICKACK` after each request, so it acknowledges at once, which removes the
//! stall and so shows whose timer it was. The namespace's count of delayed ACKs sent
//! (`TcpExtDelayedACKs`) is read around each case as well.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use socket2::SockRef;

use crate::sequence::{Figure, Item, Panel, Shade};
use crate::{DEADLINE, REQUEST, ms, quantile, wrap};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Round trips measured per case
    #[arg(long, default_value_t = 50)]
    pub rounds: usize,
    /// Round trips made first and not measured: a new connection acknowledges at once
    /// while in quick-ACK mode, which hides the stall (on Linux 6.18 loopback, for the
    /// first round trip only)
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { rounds: 50, warmup: 2 }
    }
}

/// How the server writes its reply, and how the client acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Nagle on, the reply in two writes: header, then body.
    NagleTwoWrites,
    /// `TCP_NODELAY`, the reply in two writes.
    NoDelayTwoWrites,
    /// Nagle on, the reply in one write.
    NagleOneWrite,
    /// Nagle on, two writes, and a client that sets `TCP_QUICKACK` after each request.
    ClientQuickAck,
}

impl Case {
    pub const ALL: [Case; 4] =
        [Case::NagleTwoWrites, Case::NoDelayTwoWrites, Case::NagleOneWrite, Case::ClientQuickAck];

    fn name(self) -> &'static str {
        match self {
            Case::NagleTwoWrites => "Nagle, two writes",
            Case::NoDelayTwoWrites => "TCP_NODELAY, two writes",
            Case::NagleOneWrite => "Nagle, one write",
            Case::ClientQuickAck => "Nagle, two, QUICKACK",
        }
    }
}

/// One case's round trips.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub case: Case,
    /// The measured round trips, sorted.
    pub round_trips: Vec<Duration>,
    /// Delayed ACKs the network namespace sent meanwhile (`TcpExtDelayedACKs` of
    /// /proc/net/netstat): this case's, and any other program's on the machine.
    pub delayed_acks: Option<u64>,
}

impl CaseOutcome {
    pub fn median(&self) -> Duration {
        quantile(&self.round_trips, 0.5)
    }

    pub fn p90(&self) -> Duration {
        quantile(&self.round_trips, 0.9)
    }
}

/// Every case's figures, and the settings that decide them.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub rounds: usize,
    pub warmup: usize,
    pub cases: Vec<CaseOutcome>,
}

impl Outcome {
    /// The figures of `case`.
    pub fn case(&self, case: Case) -> Option<&CaseOutcome> {
        self.cases.iter().find(|c| c.case == case)
    }
}

/// The server's reply, in its two pieces.
const HEADER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n";
const BODY: &[u8] = b"hello\n";

/// Runs the three cases, each on a fresh connection.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    if options.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let cases = Case::ALL
        .into_iter()
        .map(|case| run_case(case, options).with_context(|| case.name()))
        .collect::<anyhow::Result<_>>()?;
    Ok(Outcome { rounds: options.rounds, warmup: options.warmup, cases })
}

fn run_case(case: Case, options: &Options) -> anyhow::Result<CaseOutcome> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // connect returns once the handshake is done, so this accept finds it queued.
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(DEADLINE))?;
    }
    // ANCHOR: nodelay
    // The client is left as a client would be: Nagle on, ACKs delayed.
    client.set_nodelay(false)?;
    server.set_nodelay(case == Case::NoDelayTwoWrites)?;
    // ANCHOR_END: nodelay
    let acks_before = delayed_acks();
    std::thread::scope(|scope| {
        let answering = scope.spawn(|| answer(server, case));
        let measured = measure(&mut client, case, options);
        // Closing the client ends the server's loop (it reads end of file).
        drop(client);
        let answered = answering.join().map_err(|_| anyhow!("the server thread panicked"))?;
        let mut round_trips = measured?;
        answered?;
        round_trips.sort_unstable();
        let delayed_acks = match (acks_before, delayed_acks()) {
            (Ok(before), Ok(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        Ok(CaseOutcome { case, round_trips, delayed_acks })
    })
}

/// The client: a request, the whole reply, timed; `warmup` times unmeasured first.
fn measure(client: &mut TcpStream, case: Case, options: &Options) -> anyhow::Result<Vec<Duration>> {
    let mut reply = vec![0; HEADER.len() + BODY.len()];
    let mut round_trips = Vec::with_capacity(options.rounds);
    for round in 0..options.warmup + options.rounds {
        let start = Instant::now();
        client.write_all(REQUEST)?;
        // ANCHOR: quickack
        if case == Case::ClientQuickAck {
            // Not a lasting setting: sending data puts the connection back in the
            // mode that delays ACKs, so it is set again after every request.
            SockRef::from(&*client).set_tcp_quickack(true)?;
        }
        // ANCHOR_END: quickack
        client.read_exact(&mut reply).context("read the reply")?;
        if round >= options.warmup {
            round_trips.push(start.elapsed());
        }
    }
    Ok(round_trips)
}

/// The server: reads each request whole and answers it as `case` says, until the client
/// closes.
fn answer(mut server: TcpStream, case: Case) -> anyhow::Result<()> {
    let mut request = [0; REQUEST.len()];
    loop {
        match server.read_exact(&mut request) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(anyhow!(e).context("read a request")),
        }
        // ANCHOR: reply
        match case {
            Case::NagleTwoWrites | Case::NoDelayTwoWrites | Case::ClientQuickAck => {
                // The header leaves at once; with Nagle on, the body waits until the
                // client acknowledges the header, which it delays.
                server.write_all(HEADER)?;
                server.write_all(BODY)?;
            }
            Case::NagleOneWrite => server.write_all(&[HEADER, BODY].concat())?,
        }
        // ANCHOR_END: reply
    }
}

/// The namespace's delayed ACKs so far (`TcpExt: ... DelayedACKs` in /proc/net/netstat,
/// a line of names followed by a line of values).
fn delayed_acks() -> io::Result<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat")?;
    let mut lines = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no TcpExt lines"));
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "DelayedACKs")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no TcpExt DelayedACKs"))
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            wrap(&format!(
                "Nagle and delayed ACK: {} round trips per case on loopback (after {} not \
                 measured), a {}-byte request, a reply of {} + {} bytes",
                self.rounds,
                self.warmup,
                REQUEST.len(),
                HEADER.len(),
                BODY.len()
            ))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>10} {:>13}",
            "case", "median", "p90", "max", "delayed ACKs"
        )?;
        for c in &self.cases {
            let max = c.round_trips.last().copied().unwrap_or_default();
            let acks = c.delayed_acks.map_or("?".to_owned(), |n| n.to_string());
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>10} {:>13}",
                c.case.name(),
                ms(c.median()),
                ms(c.p90()),
                ms(max),
                acks
            )?;
        }
        if let (Some(nagle), Some(nodelay)) =
            (self.case(Case::NagleTwoWrites), self.case(Case::NoDelayTwoWrites))
        {
            let ratio = nagle.median().as_secs_f64() / nodelay.median().as_secs_f64().max(1e-9);
            writeln!(f, "\nmedian with Nagle / median with TCP_NODELAY: {ratio:.0}x")?;
        }
        writeln!(f)?;
        write!(
            f,
            "{}",
            wrap(
                "Look at the medians: with Nagle on, the body of each reply waits for the \
                 client's ACK of the header, and the client delays that ACK (Linux: at \
                 least 40 ms) because it has nothing to send until the body arrives. \
                 TCP_NODELAY sends the body at once; so does writing the reply in one \
                 piece, Nagle or not. A client that sets TCP_QUICKACK acknowledges the \
                 header at once and the stall is gone too: it was the client's delayed-ACK \
                 timer. \"delayed ACKs\" is the network namespace's TcpExtDelayedACKs over \
                 the case: one per stalled round trip, plus whatever else ran meanwhile."
            )
        )
    }
}

/// The times of one round trip, each taken just after the call that it names returned.
struct RoundTrip {
    request_sent: Instant,
    request_read: Instant,
    /// Just before the server's write of the header, then of the body.
    header_sent: Instant,
    body_sent: Instant,
    /// When the write of the body returned.
    body_written: Instant,
    /// When the server's kernel no longer held any of the body: it sent it.
    body_left: Instant,
    /// Each read of the client's, with the bytes it returned.
    client_reads: Vec<(Instant, usize)>,
}

/// Bytes written to `stream` that its kernel has not sent yet (`SIOCOUTQNSD`): what
/// Nagle holds back.
fn not_sent(stream: &TcpStream) -> io::Result<libc::c_int> {
    use std::os::fd::AsRawFd;
    let mut bytes: libc::c_int = 0;
    // SAFETY: SIOCOUTQNSD on a TCP socket writes one int to the pointer given, which
    // points to `bytes`, alive for the call; the fd is the stream's, open while it lives.
    let result = unsafe { libc::ioctl(stream.as_raw_fd(), libc::SIOCOUTQNSD, &mut bytes) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(bytes) }
}

/// The server's side of the recorded round trip: answers in two writes, then watches the
/// body leave (polled every 50 µs, so its time is known to that). The times: request
/// read, header write called, body write called, body write returned, body gone.
fn answer_recorded(server: &mut TcpStream) -> anyhow::Result<[Instant; 5]> {
    let mut request = [0; REQUEST.len()];
    server.read_exact(&mut request).context("read the recorded request")?;
    let read = Instant::now();
    let header = Instant::now();
    server.write_all(HEADER)?;
    let body = Instant::now();
    server.write_all(BODY)?;
    let written = Instant::now();
    while not_sent(server)? > 0 {
        if written.elapsed() > DEADLINE {
            bail!("the body was still held after {} s", DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok([read, header, body, written, Instant::now()])
}

/// One round trip of `case`, after `warmup` unrecorded ones on the same connection, with
/// the time of every step on both sides.
fn record_round_trip(case: Case, warmup: usize) -> anyhow::Result<RoundTrip> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(DEADLINE))?;
    }
    client.set_nodelay(false)?;
    server.set_nodelay(case == Case::NoDelayTwoWrites)?;
    std::thread::scope(|scope| {
        let answering = scope.spawn(move || {
            let mut request = [0; REQUEST.len()];
            for _ in 0..warmup {
                server.read_exact(&mut request)?;
                server.write_all(HEADER)?;
                server.write_all(BODY)?;
            }
            answer_recorded(&mut server)
        });
        let mut reply = vec![0; HEADER.len() + BODY.len()];
        for _ in 0..warmup {
            client.write_all(REQUEST)?;
            client.read_exact(&mut reply)?;
        }
        let request_sent = Instant::now();
        client.write_all(REQUEST)?;
        let mut client_reads = Vec::new();
        let mut got = 0;
        while got < reply.len() {
            let n = client.read(&mut reply[got..]).context("read the recorded reply")?;
            if n == 0 {
                bail!("the server closed mid-reply");
            }
            client_reads.push((Instant::now(), n));
            got += n;
        }
        let [request_read, header_sent, body_sent, body_written, body_left] =
            answering.join().map_err(|_| anyhow!("the server thread panicked"))??;
        Ok(RoundTrip {
            request_sent,
            request_read,
            header_sent,
            body_sent,
            body_written,
            body_left,
            client_reads,
        })
    })
}

/// A panel of one recorded round trip of `case`: lifelines client, server.
fn panel(case: Case, trip: &RoundTrip) -> Panel {
    let at = |instant: Instant| instant.saturating_duration_since(trip.request_sent);
    let mut items =
        vec![Item::message(0, 1, Duration::ZERO, at(trip.request_read), "request (18 B)")];
    // The body left when the header's ACK came, no later than the client read it (the
    // server's poll sees it up to 50 µs late).
    let body_read = trip.client_reads.last().map_or(trip.body_left, |(t, _)| *t);
    let body_left = trip.body_left.min(body_read).max(trip.body_sent);
    if body_left.saturating_duration_since(trip.body_written) > Duration::from_millis(1) {
        let held = "body held: Nagle waits for an ACK";
        items.push(Item::span(1, at(trip.body_written), at(body_left), held, Shade::Waiting));
        let ack = "delayed ACK of the header";
        items.push(Item::message(0, 1, at(body_left), at(body_left), ack));
    } else {
        items.push(Item::mark(1, at(trip.body_written), "write(body) returns"));
    }
    // Each of the client's reads is the arrival of a piece of the reply: the header's
    // from the header's write, the body's once the body left.
    let mut pieces = vec![(trip.header_sent, "header")];
    if trip.client_reads.len() > 1 {
        pieces.push((body_left, "body"));
    } else {
        pieces[0].1 = "header and body";
    }
    for ((sent, what), (read, bytes)) in pieces.into_iter().zip(&trip.client_reads) {
        items.push(Item::message(1, 0, at(sent), at(*read), &format!("{what} ({bytes} B)")));
    }
    let end = at(body_read);
    items.push(Item::mark(0, end, &format!("reply whole after {}", crate::sequence::show(end))));
    Panel {
        title: case.name().to_owned(),
        lifelines: vec!["client".into(), "server".into()],
        items,
        px_per_ms: None,
    }
}

/// The sequence diagram: one round trip with Nagle on and the reply in two writes, beside
/// one with `TCP_NODELAY`, each recorded after `warmup` round trips.
pub fn sequence(warmup: usize) -> anyhow::Result<Figure> {
    let panels = [Case::NagleTwoWrites, Case::NoDelayTwoWrites]
        .into_iter()
        .map(|case| Ok(panel(case, &record_round_trip(case, warmup).with_context(|| case.name())?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Figure {
        title: "Nagle meets the delayed ACK: one request, the reply in two writes".into(),
        caption: "Left, with Nagle on: the header leaves at once, the body waits in the server's \
                  kernel (orange) until the client acknowledges the header, which it delays \
                  because it has nothing to send; the round trip takes the delayed-ACK timer. \
                  Right, with TCP_NODELAY: the body follows the header at once. Times measured on \
                  both sides (the ACK's is when the server's kernel released the body, polled \
                  every 50 µs); vertical distance grows with the logarithm of the gap."
            .into(),
        panels,
    })
}
