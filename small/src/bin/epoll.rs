//! A readiness loop as one small program: one thread asks epoll which of its sockets are
//! ready and does for each what it allows without blocking, keeping each client's unfinished
//! request and unsent replies in buffers of its own; idle clients cost memory, not threads.
//! HTTP as in blocking.rs, pipelining too. Run: `cargo run -p small --bin epoll -- ADDR`.

// ANCHOR: whole
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    // A socket's key in the epoll set is its descriptor, unique while the socket is open.
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, listener.as_raw_fd() as u64))?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut events = [EpollEvent::empty(); 256];
    loop {
        // The one wait; its one possible error, EINTR (after a stop), means none ready.
        let ready = epoll.wait(&mut events, EpollTimeout::NONE).unwrap_or(0);
        for key in events[..ready].iter().map(EpollEvent::data) {
            if key == listener.as_raw_fd() as u64 {
                // Every queued connection; out of descriptors, the loop comes straight back.
                while let Ok((stream, _)) = listener.accept() {
                    let key = stream.as_raw_fd() as u64;
                    stream.set_nonblocking(true)?; // cannot fail on a socket just accepted
                    // A connection the kernel will not watch is dropped: closed.
                    if epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, key)).is_ok() {
                        let conn = Conn { stream, input: vec![], output: vec![], closing: false };
                        conns.insert(key, conn);
                    }
                }
            } else if let Some(conn) = conns.get_mut(&key) {
                // Done or failed: dropping the socket closes it, which leaves the epoll set.
                if !on_ready(conn, &epoll, key).unwrap_or(false) {
                    conns.remove(&key);
                }
            }
        }
    }
}

/// One client: its socket and its two buffers. Nothing done with it ever blocks.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,  // received, not yet a whole request head
    output: Vec<u8>, // replies the kernel has not taken yet: watched for "writable" meanwhile
    closing: bool,   // close once `output` is sent
}

/// Does what the socket allows without blocking: reads what has arrived, answers every whole
/// head, writes what the kernel takes. False once it is done (or a head passes 8 KiB unended).
fn on_ready(conn: &mut Conn, epoll: &Epoll, key: u64) -> io::Result<bool> {
    // Read only once the replies owed are sent: a client that never reads cannot fill memory.
    let writing = !conn.output.is_empty();
    if !writing {
        let mut chunk = [0; 4096];
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Ok(false), // the client left
            Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !conn.closing {
        let Some(end) = conn.input.windows(4).position(|w| w == b"\r\n\r\n") else { break };
        let head: Vec<u8> = conn.input.drain(..end + 4).collect();
        let (reply, keep_alive) = answer(&String::from_utf8_lossy(&head));
        conn.output.extend_from_slice(reply.as_bytes());
        conn.closing = !keep_alive;
    }
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => drop(conn.output.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    // Level-triggered, so a socket with room to write is always "ready": watch for that
    // only while replies wait, and re-register (a system call) only when that changes.
    if writing == conn.output.is_empty() {
        let interest = if writing { EpollFlags::EPOLLIN } else { EpollFlags::EPOLLOUT };
        epoll.modify(&conn.stream, &mut EpollEvent::new(interest, key))?;
    }
    Ok(!(conn.closing && conn.output.is_empty()) && conn.input.len() <= 8 * 1024)
}

/// The reply to one request head, and whether the connection stays open after it.
fn answer(head: &str) -> (String, bool) {
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default();
    let keep_alive = request.ends_with(" HTTP/1.1")
        && lines.filter_map(|line| line.split_once(':')).all(|(name, value)| {
            match (name.to_ascii_lowercase().as_str(), value.trim()) {
                ("connection", value) => !value.eq_ignore_ascii_case("close"),
                ("content-length", value) => value == "0", // bodies are not read: close
                (name, _) => name != "transfer-encoding",
            }
        });
    let (status, body) = match request {
        "GET /hello HTTP/1.1" | "GET /hello HTTP/1.0" => ("200 OK", "Hello, World!"),
        _ if request.split(' ').count() != 3 => ("400 Bad Request", "Bad Request\n"),
        _ => ("404 Not Found", "Not Found\n"),
    };
    let close = if keep_alive { "" } else { "Connection: close\r\n" };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n{body}",
        body.len()
    );
    (reply, keep_alive)
}
// ANCHOR_END: whole
