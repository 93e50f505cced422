//! The probes behind the fault matrix: for each fault of [`crate::faults::FAULTS`], a
//! client that commits it against a running server and reports the [`Outcome`] it saw.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::kernel::TcpState;
use common::procfs;
use common::testkit::{
    ChildServer, Client, TIMEOUT, answered_within, ends, hold_idle, reset, server_has_read,
    wait_until,
};

use crate::outcome::Outcome;

/// How long a newcomer waits before the check concludes it is being made to wait.
const PROMPT: Duration = Duration::from_secs(1);

pub(crate) fn trickle(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    for byte in b"GET /echo?msg=trickled HTTP/1.1\r\nHost: t\r\n\r\n" {
        c.send(&[*byte])?;
        // The pause between bytes is the fault itself.
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = c.read_response()?;
    Ok(if r.status == 200 && r.text() == "trickled" {
        Outcome::Served
    } else {
        Outcome::Rejected(r.status)
    })
}

pub(crate) fn silent(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    let start = Instant::now();
    let closed = c.is_closed_by_server();
    // The idle timeout is 2 s; allow for the sweep and a busy machine.
    Ok(if closed && start.elapsed() < Duration::from_secs(6) {
        Outcome::CutOff
    } else {
        Outcome::Served
    })
}

/// Silent clients the cap probe holds: the cap every capped version runs the matrix with.
pub(crate) const OVER_CAP: usize = 4;

pub(crate) fn over_cap(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    // Four silent clients: v4's cap, and more than one-at-a-time servers serve.
    let idle = hold_idle(addr, OVER_CAP)?;
    // Until the server has accepted all four (none left in its listeners' accept queues),
    // the newcomer could take a place one of them was about to. Read from the kernel's
    // queues, not the server's descriptor table: a ring's direct descriptors never appear
    // there. A server that takes one client at a time never accepts four: then the wait
    // runs out.
    let accepted_all = || {
        common::kernel::accept_queue(addr.port()).is_ok_and(|q| q.listeners > 0 && q.queued == 0)
    };
    wait_until(PROMPT, accepted_all);
    let mut newcomer = Client::connect(addr)?;
    newcomer.set_timeout(PROMPT)?;
    newcomer.send(b"GET /hello\n")?;
    if newcomer.read_line().is_ok() {
        return Ok(Outcome::Served);
    }
    drop(idle);
    newcomer.set_timeout(TIMEOUT)?;
    newcomer.read_line()?;
    Ok(Outcome::OthersWaited)
}

pub(crate) fn aborting_handler(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(b"GET /abort\n")?;
    // No answer: the connection ends when the process serving it dies.
    match c.read_line() {
        Ok(line) => return Err(io::Error::other(format!("/abort was answered: {line}"))),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            return Err(io::Error::other("/abort neither answered nor closed"));
        }
        Err(_) => {}
    }
    Ok(if answered_within(addr, TIMEOUT) { Outcome::Dropped } else { Outcome::Died })
}

pub(crate) fn panicking_handler(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    let status = c.get("/panic")?.status;
    // The connection survives the handler's panic, too.
    Ok(if c.get("/hello")?.status == 200 {
        Outcome::Answered(status)
    } else {
        Outcome::Rejected(status)
    })
}

pub(crate) fn reset_mid_response(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(TIMEOUT))?;
    let uploader = upload_in_background(&c, &post_echo_requests(6))?;
    let mut first = [0u8; 1024];
    c.read_exact(&mut first)?;
    reset(c);
    let _ = uploader.join();
    Ok(if answered_within(addr, TIMEOUT) { Outcome::Dropped } else { Outcome::OthersWaited })
}

/// How long the client that stops reading stays silent: past the servers' 2 s idle (and
/// write) timeout, with room to spare. A blocking write can take twice the timeout to
/// fail (the first `write` that times out returns the bytes it did copy, and only the
/// next one reports the timeout), and any progress restarts it. Counted from the connect,
/// not from when answers start to back up: from there, 6 s let v2-process finish writing
/// in one run of eight.
const SILENCE: Duration = Duration::from_millis(6_500);

pub(crate) fn stops_reading(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = connect_with_small_window(addr)?;
    let silent_from = Instant::now();
    let uploader = upload_in_background(&c, &post_echo_requests(8))?;
    // The newcomer comes once the server's answers back up (it is blocked, or about to
    // be, on its write). A server that never gets there is judged all the same by what
    // follows.
    let _ = wait_until(TIMEOUT, || answers_back_up(&c));
    let others_served = answered_within(addr, PROMPT);
    // The silence is the fault: the client reads nothing for SILENCE from its connect,
    // then reads what there is, and a server that gave up on it ends the stream early.
    std::thread::sleep(SILENCE.saturating_sub(silent_from.elapsed()));
    let received = read_until_quiet(&mut c);
    drop(c);
    let _ = uploader.join();
    let answers = 8 * (1024 * 1024 + 100);
    Ok(match (others_served, received >= answers) {
        (false, _) => Outcome::OthersWaited,
        (true, false) => Outcome::CutOff,
        (true, true) => Outcome::HeldAThread,
    })
}

pub(crate) fn error_while_uploading(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4194304\r\n\r\n")?;
    // Keep uploading until the answer is there to be read.
    let _ = c.send(&vec![b'x'; 256 * 1024]);
    Ok(Outcome::Rejected(c.read_response()?.status))
}

pub(crate) fn blank_lines(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(&[b"\n".repeat(4096), b"GET /hello\n".to_vec()].concat())?;
    let reply = c.read_line()?;
    served_if(reply == "200 Hello, World!", || format!("got {reply:?}"))
}

pub(crate) fn blank_flood(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    // The server answers and closes after the first 8 KiB; the rest may not fit.
    let _ = c.send(&b"\r\n".repeat(32 * 1024));
    rejected_or_served(&mut c)
}

pub(crate) fn expect_continue_too_large(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4194304\r\n\r\n")?;
    // The final answer comes without the body ever being sent.
    c.set_timeout(PROMPT)?;
    rejected_or_served(&mut c)
}

pub(crate) fn chunked_upload(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    for piece in [&b"5\r\nhello\r\n"[..], b"7;note=x\r\n, world\r\n", b"0\r\n\r\n"] {
        // Apart, so that the chunks reach the server in reads of their own.
        std::thread::sleep(Duration::from_millis(20));
        c.send(piece)?;
    }
    let r = c.read_response()?;
    served_if(r.status == 200 && r.text() == "hello, world", || {
        format!("got {} {:?}", r.status, r.text())
    })
}

pub(crate) fn absolute_form(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(
        format!("GET http://{addr}/echo?msg=absolute HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )?;
    let r = c.read_response()?;
    served_if(r.status == 200 && r.text() == "absolute", || {
        format!("got {} {:?}", r.status, r.text())
    })
}

pub(crate) fn half_close_after_line(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let (mut c, closed) = half_close(addr, b"GET /hello\n")?;
    let reply = c.read_line()?;
    closed_at_once(&mut c, closed)?;
    served_if(reply == "200 Hello, World!", || format!("got {reply:?}"))
}

pub(crate) fn half_close_after_http(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let (mut c, closed) = half_close(addr, b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")?;
    let r = c.read_response()?;
    closed_at_once(&mut c, closed)?;
    served_if(r.status == 200, || format!("got {}", r.status))
}

pub(crate) fn half_close_mid_head(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let (mut c, closed) = half_close(addr, b"GET /hello HTTP/1.1\r\nHost: t\r\n")?;
    let status = c.read_response()?.status;
    closed_at_once(&mut c, closed)?;
    Ok(Outcome::Rejected(status))
}

pub(crate) fn half_close_mid_body(server: &ChildServer) -> io::Result<Outcome> {
    let addr = server.addr();
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc";
    let (mut c, closed) = half_close(addr, request)?;
    let status = c.read_response()?.status;
    closed_at_once(&mut c, closed)?;
    Ok(Outcome::Rejected(status))
}

/// Sends a malformed or ambiguous request; a clear error and the close is the answer.
pub(crate) fn smuggle(server: &ChildServer, bytes: &[u8]) -> io::Result<Outcome> {
    let addr = server.addr();
    let mut c = Client::connect(addr)?;
    c.send(bytes)?;
    rejected_or_served(&mut c)
}

/// Sends `bytes` and shuts the write side in the same moment, as `nc -N` does; returns the
/// client and when its side closed.
fn half_close(addr: SocketAddr, bytes: &[u8]) -> io::Result<(Client, Instant)> {
    let mut c = Client::connect(addr)?;
    c.send(bytes)?;
    c.stream().shutdown(std::net::Shutdown::Write)?;
    Ok((c, Instant::now()))
}

/// The server must close its side once everything is answered: well before its 2 s idle
/// timeout, which is what a server that missed the client's close waits for.
fn closed_at_once(c: &mut Client, since: Instant) -> io::Result<()> {
    if !c.is_closed_by_server() {
        return Err(io::Error::other("the server sent more after its answer"));
    }
    match since.elapsed() {
        held if held < PROMPT => Ok(()),
        held => Err(io::Error::other(format!(
            "the server held the connection {held:.1?} after the client closed its side"
        ))),
    }
}

/// Connections opened, used and closed one after another, each with its last request and
/// its half-close in one moment; then no socket of the server's may still be open.
pub(crate) fn churn(addr: SocketAddr) -> io::Result<Outcome> {
    for i in 0..200 {
        let http = i % 2 == 1;
        let request: &[u8] =
            if http { b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" } else { b"GET /hello\n" };
        let (mut c, _) = half_close(addr, request)?;
        let ok =
            if http { c.read_response()?.status == 200 } else { c.read_line()?.starts_with("200") };
        if !ok {
            return Err(io::Error::other(format!("connection {i} was not answered")));
        }
    }
    // A server socket still ESTABLISHED or in CLOSE_WAIT is one whose client has gone.
    let mut open = 0;
    let settled = common::testkit::wait_until(PROMPT, || {
        open = common::testkit::open_sockets_on(addr.port()).unwrap_or(usize::MAX);
        open == 0
    });
    served_if(settled, || {
        format!("{open} of the server's connections still open a second after their clients left")
    })
}

/// `Served` if `ok`, else an error saying what was seen instead.
fn served_if(ok: bool, seen: impl FnOnce() -> String) -> io::Result<Outcome> {
    if ok { Ok(Outcome::Served) } else { Err(io::Error::other(seen())) }
}

/// Reads one answer: a 200 is `Served`; an error status must come with the close.
fn rejected_or_served(c: &mut Client) -> io::Result<Outcome> {
    let r = c.read_response()?;
    match r.status {
        200 => Ok(Outcome::Served),
        status if c.is_closed_by_server() => Ok(Outcome::Rejected(status)),
        status => Err(io::Error::other(format!("{status} but the connection stayed open"))),
    }
}

/// Bytes of every value, in an order that repeats only after the whole buffer.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

pub(crate) fn binary_echo(addr: SocketAddr) -> io::Result<Outcome> {
    let body = noise(64 * 1024);
    let mut c = Client::connect(addr)?;
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    c.send(&[head.as_bytes(), &body].concat())?;
    let r = c.read_response()?;
    // Only the bytes are checked: the protocol (README.md) promises them back exactly and
    // names no `Content-Type` for the echo, so a server that sends none, or another, has
    // broken nothing a client was told to rely on.
    served_if(r.body == body, || {
        let same = r.body.iter().zip(&body).take_while(|(a, b)| a == b).count();
        format!("{} bytes came back as {}, the same for the first {same}", body.len(), r.body.len())
    })
}

/// How long after a server's close decision a reset that destroys its answer is given to
/// arrive: the reset's absence is what the probe observes, and an absence takes time.
/// A reset follows a `close` at once; this is ample margin on a loaded machine.
const RESET_WINDOW: Duration = Duration::from_millis(300);

/// Sends `bytes` from a thread, waits until the server has answered and decided to close,
/// then reads everything until the server's end-of-file. A server that closes with input
/// unread resets the connection, and the reset destroys answer bytes not yet read: the
/// read then fails or comes up short.
fn read_after_close_decision(addr: SocketAddr, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(TIMEOUT))?;
    let uploader = upload_in_background(&c, &bytes)?;
    // The server has decided when its side is no longer open (its FIN or reset has
    // reached the client), or, with answers larger than the client takes in at once,
    // once they back up. A server that does neither is judged by the read all the same.
    let decided = || match ends(&c) {
        Ok(Some(e)) => e.client.state != TcpState::Established || answers_back_up(&c),
        Ok(None) => true,
        Err(_) => false,
    };
    let _ = wait_until(TIMEOUT, decided);
    std::thread::sleep(RESET_WINDOW);
    let mut received = Vec::new();
    let read = c.read_to_end(&mut received);
    drop(c);
    let _ = uploader.join();
    match read {
        Ok(_) => Ok(received),
        Err(e) => {
            Err(io::Error::other(format!("{e} after {} bytes of the answers", received.len())))
        }
    }
}

pub(crate) fn close_with_input_pending(addr: SocketAddr) -> io::Result<Outcome> {
    let body = noise(1024 * 1024);
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let more = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2000);
    let received = read_after_close_decision(addr, [head.as_bytes(), &body, &more].concat())?;
    let answer = received.windows(4).position(|w| w == b"\r\n\r\n").map(|end| &received[end + 4..]);
    served_if(answer == Some(&body[..]), || {
        format!(
            "{} bytes arrived; expected one answer with the 1 MiB body, then the close",
            received.len()
        )
    })
}

pub(crate) fn exit_with_input_pending(addr: SocketAddr) -> io::Result<Outcome> {
    let lines =
        [b"GET /hello\n".repeat(150), b"exit\n".to_vec(), b"GET /hello\n".repeat(5000)].concat();
    let received = read_after_close_decision(addr, lines)?;
    let text = String::from_utf8_lossy(&received);
    let replies: Vec<&str> = text.lines().collect();
    let expected =
        [vec!["200 Hello, World!"; 150], vec!["200 Bye! Closing the connection."]].concat();
    served_if(replies == expected, || {
        format!("{} reply lines arrived; expected 150 and the goodbye", replies.len())
    })
}

/// Each write completes one request and starts the next, every 300 ms for 3 s: the
/// connection is never without a half-arrived request, but no request takes long.
pub(crate) fn steady_pipelining(addr: SocketAddr) -> io::Result<Outcome> {
    let request = |i: usize| format!("GET /echo?msg={i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    let half = |r: &[u8]| r.len() / 2;
    let mut c = Client::connect(addr)?;
    let first = request(0);
    c.send(&first[..half(&first)])?;
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(300));
        let (this, next) = (request(i), request(i + 1));
        c.send(&[&this[half(&this)..], &next[..half(&next)]].concat())?;
        let r = c.read_response().map_err(|e| {
            io::Error::other(format!(
                "answer {i} lost {:?} into the pipelining: {e}",
                start.elapsed()
            ))
        })?;
        if r.text() != i.to_string() {
            return Err(io::Error::other(format!("answer {i} was {:?}", r.text())));
        }
        i += 1;
    }
    Ok(Outcome::Served)
}

/// A 3,000-byte body in pieces of 300 bytes, one every 300 ms: 3 s in all, longer than
/// the request timeout, but never a pause as long.
pub(crate) fn slow_upload(addr: SocketAddr) -> io::Result<Outcome> {
    let body = noise(3000);
    let mut c = Client::connect(addr)?;
    c.send(
        format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len())
            .as_bytes(),
    )?;
    for piece in body.chunks(300) {
        std::thread::sleep(Duration::from_millis(300));
        c.send(piece)?;
    }
    let r = c.read_response()?;
    served_if(r.status == 200 && r.body == body, || {
        format!("got {} with {} bytes", r.status, r.body.len())
    })
}

/// After its 400, the client sends a byte every 300 ms. The server shuts its side at
/// once (the client reads end-of-file) and lingers, reading, so the answer is not lost;
/// but not for ever: it must close within its linger time (2 s) and a sweep, long before
/// 6 s. Once it has closed, the client's next byte is answered with a reset, and the
/// write after that fails.
pub(crate) fn sends_after_error(addr: SocketAddr) -> io::Result<Outcome> {
    let mut c = Client::connect(addr)?;
    c.send(b"GET / HTTP/1.1\r\n\r\n")?; // no Host: 400
    let status = c.read_response()?.status;
    if status != 400 {
        return Err(io::Error::other(format!("expected 400, got {status}")));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(300));
        if c.send(b"x").is_err() {
            return Ok(Outcome::CutOff);
        }
    }
    Err(io::Error::other(
        "still open 6 s after the error reply, while the client sent a byte every 300 ms",
    ))
}

pub(crate) fn expect_continue(addr: SocketAddr) -> io::Result<Outcome> {
    let mut c = Client::connect(addr)?;
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")?;
    // curl waits 1 s for the go-ahead before it sends the body anyway.
    c.set_timeout(PROMPT)?;
    let interim = c
        .read_response()
        .map_err(|e| io::Error::other(format!("no 100 Continue within {PROMPT:?}: {e}")))?;
    if interim.status != 100 {
        return Err(io::Error::other(format!("expected 100 Continue, got {}", interim.status)));
    }
    c.set_timeout(TIMEOUT)?;
    c.send(b"hello")?;
    let r = c.read_response()?;
    served_if(r.status == 200 && r.text() == "hello", || format!("got {} {:?}", r.status, r.text()))
}

/// Reads until the stream ends, fails, or stays quiet for 2 s; the bytes received.
fn read_until_quiet(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    if stream.set_read_timeout(Some(Duration::from_secs(2))).is_err() {
        return 0;
    }
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        total += n;
    }
    total
}

/// Whether the server has closed `stream`: a read ends (EOF or reset) instead of
/// waiting.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    if stream.set_read_timeout(Some(Duration::from_millis(300))).is_err() {
        return true;
    }
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
    }
}

/// Whether the server's answers back up: bytes wait unread on `client`'s side while more
/// wait unacknowledged on the server's, so its writes will soon block (or would block)
/// until the client reads.
fn answers_back_up(client: &TcpStream) -> bool {
    ends(client).is_ok_and(|e| e.is_some_and(|e| e.client.recv_q > 0 && e.server.send_q > 0))
}

/// Connects with a 256 KiB receive buffer, set before the handshake so the kernel cannot
/// grow it: eight 1 MiB answers then overflow what the server's socket (at most 4 MiB
/// here) and ours can hold, however the loopback's buffers are tuned.
fn connect_with_small_window(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_recv_buffer_size(256 * 1024)?;
    socket.connect_timeout(&addr.into(), TIMEOUT)?;
    Ok(socket.into())
}

fn post_echo_requests(count: usize) -> Vec<u8> {
    let body = vec![b'a'; 1024 * 1024];
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), &body].concat().repeat(count)
}

/// Writes `bytes` on a clone of `stream` from a thread: a server that stops reading while
/// its answers wait would otherwise block the test.
fn upload_in_background(
    stream: &TcpStream,
    bytes: &[u8],
) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
    let mut upload = stream.try_clone()?;
    let bytes = bytes.to_vec();
    Ok(std::thread::spawn(move || upload.write_all(&bytes)))
}

/// A header line every 200 ms for 4 s, never the blank line that ends the head.
pub(crate) fn slowloris(addr: SocketAddr) -> io::Result<Outcome> {
    let mut slow = TcpStream::connect(addr)?;
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n")?;
    let mut trickle = slow.try_clone()?;
    let trickler = std::thread::spawn(move || {
        let start = Instant::now();
        // Twice the request timeout: cut off or not, there is no doubt which.
        while start.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(200));
            if trickle.write_all(b"X-Slow: yes\r\n").is_err() {
                return true; // the server closed on us
            }
        }
        false
    });
    // The slow client holds its place before the newcomer comes: the server has taken in
    // the head so far (the same condition holds again between the trickled lines).
    let _ = wait_until(PROMPT, || server_has_read(&slow).unwrap_or(false));
    let others_served = answered_within(addr, PROMPT);
    let write_failed = trickler.join().map_err(|_| io::Error::other("trickler panicked"))?;
    let cut_off = write_failed || closed_by_server(&mut slow);
    drop(slow);
    Ok(match (cut_off, others_served) {
        (true, true) => Outcome::CutOff,
        (true, false) => Outcome::CutOffOthersWaited,
        (false, true) => Outcome::HeldAThread,
        (false, false) => Outcome::OthersWaited,
    })
}

/// A third of a second wanting a CPU, and 20 ms of it running: a server that backs off
/// between `accept` retries does neither, a busy loop both, whatever else loads the machine
/// (short of starving it below 2% of a core).
const BUSY_WANTED: Duration = Duration::from_millis(333);
const BUSY_RAN: Duration = Duration::from_millis(20);

/// 100 clients against a server limited to 64 descriptors: it must not spin on `accept`
/// (a busy loop wants a CPU for most of a second and runs for much of what it gets), must
/// not exit, and must serve again once the clients leave.
pub(crate) fn fd_exhaustion(server: &ChildServer) -> io::Result<Outcome> {
    let clients: Vec<TcpStream> =
        (0..100).filter_map(|_| TcpStream::connect(server.addr()).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = procfs::sched_time(server.pid())?;
    std::thread::sleep(Duration::from_secs(1));
    let spent = procfs::sched_time(server.pid())?.since(&before);
    // Wanting a CPU is the measure of a spin (under load a spinning server may get well
    // under a third of a core, but it is runnable the whole second); running is the check
    // on it, since on a loaded machine a server that wakes ten times a second to retry
    // `accept` can wait tens of milliseconds for each turn, and then runs for microseconds.
    if spent.wanted() > BUSY_WANTED && spent.on_cpu > BUSY_RAN {
        return Err(io::Error::other(format!(
            "the server wanted a CPU for {:?} of a second and ran for {:?} of it: a busy loop",
            spent.wanted(),
            spent.on_cpu
        )));
    }
    drop(clients);
    Ok(if answered_within(server.addr(), TIMEOUT) {
        Outcome::Recovered
    } else {
        Outcome::OthersWaited
    })
}
