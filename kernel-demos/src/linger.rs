//! The workspace's lingering close, timed: what each side sends and when, against a plain
//! close that leaves input unread.
//!
//! A server that closes a connection while the client's bytes are still unread (a
//! pipelined request after `Connection: close`) makes its kernel send RST rather than
//! FIN, and a reset makes the client's kernel throw away what it received and had not
//! read yet: the last reply. `common::blocking::linger_close` (the one every blocking
//! version uses) sends FIN with `shutdown(Write)`, then reads and drops what comes until
//! the client closes too, for at most `common::session::LINGER` (2 s). Three recordings:
//! the client closes as soon as it has read the reply and the FIN; the client stays
//! silent, so the linger runs out; the server closes at once with input unread.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use common::blocking::linger_close;

use crate::sequence::{Figure, Item, Panel, Shade, show};
use crate::{DEADLINE, accept_within, wait_for};

/// The client's request, and one pipelined behind it that the server never reads.
const REQUESTS: &[u8] =
    b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
const FIRST: usize = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".len();
/// The reply's size: large, like the 1 MiB echo that showed the loss, so that a reset
/// finds some of it still unsent.
const REPLY: usize = 1 << 20;

/// How the recorded connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Lingering close; the client closes once it has read the reply and the FIN.
    ClientCloses,
    /// Lingering close; the client sends nothing more and does not close.
    ClientSilent,
    /// A plain close with the pipelined request unread.
    PlainClose,
}

impl Ending {
    pub const ALL: [Ending; 3] = [Ending::ClientCloses, Ending::ClientSilent, Ending::PlainClose];

    fn title(self) -> &'static str {
        match self {
            Ending::ClientCloses => "lingering close, the client closes",
            Ending::ClientSilent => "lingering close, the client silent",
            Ending::PlainClose => "plain close, input unread",
        }
    }
}

/// The server's times (request read, reply written, close begun, close over) and the
/// bytes of the reply its kernel took.
fn serve(mut stream: TcpStream, ending: Ending) -> anyhow::Result<([Instant; 4], usize)> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut request = [0; FIRST];
    stream.read_exact(&mut request).context("read the first request")?;
    let read = Instant::now();
    let reply = vec![b'x'; REPLY];
    let taken = if ending == Ending::PlainClose {
        // As much as the kernel takes without waiting for the client to read: the
        // client reads only once the connection is reset.
        stream.set_nonblocking(true)?;
        let mut taken = 0;
        loop {
            match stream.write(&reply[taken..]) {
                Ok(n) if n > 0 && taken + n < REPLY => taken += n,
                Ok(n) => break taken + n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break taken,
                Err(e) => return Err(e).context("write the reply"),
            }
        }
    } else {
        stream.write_all(&reply)?;
        REPLY
    };
    let written = Instant::now();
    let closing = Instant::now();
    match ending {
        Ending::PlainClose => drop(stream),
        _ => linger_close(stream),
    }
    Ok(([read, written, closing, Instant::now()], taken))
}

/// What the client's read of the reply gave, and when.
struct ClientTimes {
    sent: Instant,
    /// When it stopped reading the reply, the bytes it got, and the error if one ended it.
    reply: (Instant, usize, Option<io::ErrorKind>),
    /// The end of the stream read (FIN), or the reset seen.
    end: Instant,
    close: Instant,
}

/// Reads up to the whole reply; returns the bytes read and the error that stopped it.
fn read_reply(stream: &mut TcpStream) -> (usize, Option<io::ErrorKind>) {
    let mut buffer = vec![0; 64 * 1024];
    let mut got = 0;
    while got < REPLY {
        match stream.read(&mut buffer) {
            Ok(0) => return (got, Some(io::ErrorKind::UnexpectedEof)),
            Ok(n) => got += n,
            Err(e) => return (got, Some(e.kind())),
        }
    }
    (got, None)
}

/// The client: sends both requests; for a plain close it waits until its socket is
/// reset before reading (as a client busy elsewhere would), else it reads at once.
fn client(
    mut stream: TcpStream,
    ending: Ending,
    server_done: impl Fn(),
) -> anyhow::Result<ClientTimes> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let sent = Instant::now();
    stream.write_all(REQUESTS)?;
    if ending == Ending::PlainClose {
        server_done();
        wait_for("the reset", || socket_state(&stream).is_ok_and(|state| state == TCP_CLOSE))?;
    }
    let end_seen = Instant::now();
    let (got, error) = read_reply(&mut stream);
    let reply = (Instant::now(), got, error);
    let end = if ending == Ending::PlainClose {
        end_seen
    } else {
        stream.read_to_end(&mut Vec::new()).context("read to the server's FIN")?;
        Instant::now()
    };
    if ending == Ending::ClientSilent {
        server_done();
    }
    let close = Instant::now();
    drop(stream);
    Ok(ClientTimes { sent, reply, end, close })
}

/// `tcpi_state` of a socket the peer reset (`TCP_CLOSE`, linux/tcp_states.h).
const TCP_CLOSE: u8 = 7;

/// The TCP state of `stream`, from `TCP_INFO`.
fn socket_state(stream: &TcpStream) -> io::Result<u8> {
    // SAFETY: tcp_info is plain integers, for which all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large and
    // alive for the call; the fd is the stream's, open while it is borrowed.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(info.tcpi_state) }
}

/// One recorded connection ending as `ending` says, as a panel: client, server.
pub fn record(ending: Ending) -> anyhow::Result<Panel> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let stream = TcpStream::connect(listener.local_addr()?)?;
    let accepted = accept_within(&listener)?;
    let (server, client) = std::thread::scope(|scope| {
        let server = scope.spawn(move || serve(accepted, ending));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let waiter = move || {
            let _ = done_rx.recv_timeout(DEADLINE * 2);
        };
        // Called once: the client waits for the server either before reading or
        // before closing, never both.
        let watcher = scope.spawn(move || {
            let result = server.join();
            drop(done_tx);
            result
        });
        let client = client(stream, ending, waiter);
        let server = watcher.join().and_then(|r| r).map_err(|_| anyhow!("server panicked"))?;
        anyhow::Ok((server?, client?))
    })?;
    Ok(panel(ending, server, &client))
}

fn panel(ending: Ending, (server, taken): ([Instant; 4], usize), client: &ClientTimes) -> Panel {
    let [read, written, closing, closed] = server;
    let at = |instant: Instant| instant.saturating_duration_since(client.sent);
    let mut items = vec![Item::message(0, 1, Duration::ZERO, at(read), "request + one pipelined")];
    let (reply_at, got, error) = &client.reply;
    let kib = |bytes: usize| format!("{} KiB", bytes / 1024);
    match ending {
        Ending::PlainClose => {
            let what = format!("write: {} taken", kib(taken));
            items.push(Item::mark(1, at(written), &what));
            items.push(Item::message(1, 0, at(closing), at(client.end), "RST: input unread"));
            let error = error.map_or("no error".to_owned(), |kind| kind.to_string());
            let what = format!("got {}, then {error}", kib(*got));
            items.push(Item::mark(0, at(*reply_at), &what));
        }
        _ => {
            let reply = format!("reply ({})", kib(*got));
            items.push(Item::message(1, 0, at(read), at(*reply_at), &reply));
            let linger = format!("lingering {}: reads, drops", show(closed - closing));
            items.push(Item::message(1, 0, at(closing), at(client.end), "FIN (shutdown)"));
            items.push(Item::span(1, at(closing), at(closed), &linger, Shade::Busy));
        }
    }
    match ending {
        Ending::ClientCloses => {
            items.push(Item::message(0, 1, at(client.close), at(closed), "FIN"))
        }
        Ending::ClientSilent => {
            items.push(Item::mark(1, at(closed), "2 s up: close()"));
            items.push(Item::mark(0, at(client.close), "close()"));
        }
        Ending::PlainClose => {}
    }
    Panel {
        title: ending.title().into(),
        lifelines: vec!["client".into(), "server".into()],
        items,
        px_per_ms: None,
    }
}

/// The sequence diagram: the three endings side by side.
pub fn sequence() -> anyhow::Result<Figure> {
    let panels = Ending::ALL
        .into_iter()
        .map(|ending| record(ending).with_context(|| ending.title()))
        .collect::<anyhow::Result<_>>()?;
    Ok(Figure {
        title: "Closing without losing the reply: the lingering close".into(),
        caption: "The client sends a request asking to close and a second one behind it. Left and \
                  middle, the server's lingering close (common::blocking::linger_close): FIN after \
                  the reply, then it reads and drops the unread request until the client's FIN \
                  (left) or for 2 s at most (middle, a client that never closes). Right, a plain \
                  close with that request unread: the kernel sends RST and throws away the part of \
                  the 1 MiB reply it had not sent yet; the client reads what had arrived, then the \
                  reset. \
                  Times measured on both sides; vertical distance grows with the logarithm of \
                  the gap."
            .into(),
        panels,
    })
}
