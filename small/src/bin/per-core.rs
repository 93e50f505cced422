//! A loop per core as one small program: N threads, each with its own epoll loop and IPv4
//! listening socket on one port (SO_REUSEPORT), sharing nothing. Run: `cargo run -p small
//! --bin per-core -- 127.0.0.1:8080 2` (N = 2; by default one per core).

// ANCHOR: whole
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut addr: SocketAddrV4 = addr.parse().map_err(io::Error::other)?;
    let cores = std::thread::available_parallelism()?.get();
    let loops = args.next().and_then(|n| n.parse().ok()).unwrap_or(cores).max(1);
    let first = reuse_port_listener(addr)?;
    addr.set_port(first.local_addr()?.port()); // port 0: the others bind the one it got
    for _ in 1..loops {
        let listener = reuse_port_listener(addr)?;
        std::thread::spawn(move || run(listener).unwrap_or_else(|e| eprintln!("loop: {e}")));
    }
    println!("listening on {addr} with {loops} loops"); // all listen: spread from the first
    run(first) // the main thread is a loop too
}

/// A socket listening on `addr` with SO_REUSEPORT, which std cannot set before `bind`.
fn reuse_port_listener(addr: SocketAddrV4) -> io::Result<TcpListener> {
    let fd = socket::socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, socket::sockopt::ReusePort, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    socket::listen(&fd, Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

/// One loop: wait until some of its sockets are ready, then do for each what it allows.
fn run(listener: TcpListener) -> io::Result<()> {
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
