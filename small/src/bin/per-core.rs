//! A loop per core as one small program: N threads, each with its own listening socket on
//! the same port (SO_REUSEPORT, so the kernel spreads new connections over them) and its
//! own epoll loop, so nothing passes between threads and a connection stays on the thread
//! that accepted it. Run: `cargo run -p small --bin per-core -- 127.0.0.1:8080 2`
//! (2 loops, by default one per core; port 0 picks a free port; the address is printed).
//!
//! HTTP/1.1, as small as stays correct for `GET /hello`: keep-alive, pipelined requests
//! answered in order, a request head ends at the first blank line (CRLF CRLF; more than
//! 8 KiB without one closes the connection), `Connection: close` and HTTP/1.0 honoured. A
//! request that announces a body is refused with 400 and the connection closed, since
//! this server never reads bodies (nor lingers to drain them before the close, as the
//! workspace's versions do).

// ANCHOR: whole
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage};

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: usize = 8 * 1024;
/// The listener's key in each epoll set; the connections' keys count up from 0.
const LISTENER: u64 = u64::MAX;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let loops = args.next().and_then(|n| n.parse().ok()).unwrap_or(cores);
    let mut listeners = vec![];
    for _ in 0..loops {
        let listener = reuse_port_listener(addr)?;
        addr = listener.local_addr()?; // port 0: the others bind the port the first got
        listeners.push(listener);
    }
    // Announced only once every loop's socket listens, so the kernel spreads from the first.
    println!("listening on {addr} with {loops} loops");
    thread::scope(|scope| {
        for (i, listener) in listeners.into_iter().enumerate() {
            let serve = move || run(listener).unwrap_or_else(|e| eprintln!("loop {i}: {e}"));
            thread::Builder::new().name(format!("loop {i}")).spawn_scoped(scope, serve)?;
        }
        Ok(()) // the scope then waits for every loop
    })
}

/// A listening socket that shares its port with the other loops' (the standard library
/// cannot set SO_REUSEPORT before `bind`, so the calls are made one by one).
fn reuse_port_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, socket::sockopt::ReusePort, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(&fd, Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

/// The loop: wait until some socket is ready, then do for each what it allows.
fn run(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_key = 0;
    let mut events = [EpollEvent::empty(); 256];
    loop {
        let ready = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Err(Errno::EINTR) => continue, // stopped and continued (a debugger, say)
            ready => ready?,
        };
        for event in &events[..ready] {
            let key = event.data();
            if key == LISTENER {
                while let Some(conn) = accept(&listener) {
                    let readable = EpollEvent::new(EpollFlags::EPOLLIN, next_key);
                    // A connection the kernel will not watch is dropped: closed.
                    if epoll.add(&conn.stream, readable).is_ok() {
                        conns.insert(next_key, conn);
                        next_key += 1;
                    }
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&key) else { continue };
            if !conn.on_ready().unwrap_or(false) {
                conns.remove(&key); // closing the socket also takes it out of the epoll set
                continue;
            }
            // Level-triggered: ask for "writable" only while replies wait, and change the
            // registration (a system call) only when that changes, not on every request.
            let replies_wait = !conn.output.is_empty();
            if conn.writing != replies_wait {
                conn.writing = replies_wait;
                let interest =
                    if conn.writing { EpollFlags::EPOLLOUT } else { EpollFlags::EPOLLIN };
                if epoll.modify(&conn.stream, &mut EpollEvent::new(interest, key)).is_err() {
                    conns.remove(&key);
                }
            }
        }
    }
}

/// The next connection waiting in the accept queue, if any, made non-blocking.
fn accept(listener: &TcpListener) -> Option<Conn> {
    match listener.accept().and_then(|(stream, _)| stream.set_nonblocking(true).map(|()| stream)) {
        Ok(stream) => {
            Some(Conn { stream, input: vec![], output: vec![], closing: false, writing: false })
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => {
            // Out of descriptors, say: the listener stays ready, so the loop comes straight
            // back here until one is free (the workspace's versions back off instead).
            eprintln!("accept: {e}");
            None
        }
    }
}

/// One client: its socket and its two buffers. Nothing done with it ever blocks.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,  // received, not yet a whole request head
    output: Vec<u8>, // replies the kernel has not taken yet
    closing: bool,   // close once `output` is sent
    writing: bool,   // registered for "writable" (replies wait) rather than "readable"
}

impl Conn {
    /// Does what the socket allows without blocking: reads what has arrived, answers every
    /// whole head, writes what the kernel takes. Returns false when the connection is done.
    fn on_ready(&mut self) -> io::Result<bool> {
        // Read only once the replies owed are sent: a client that sends and never reads
        // cannot make this server buffer without bound.
        if self.output.is_empty() {
            let mut chunk = [0; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false), // the client left
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        while !self.closing {
            let Some(end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") else { break };
            let head: Vec<u8> = self.input.drain(..end + 4).collect();
            let (reply, keep_alive) = answer(&String::from_utf8_lossy(&head));
            self.output.extend_from_slice(reply.as_bytes());
            self.closing = !keep_alive;
        }
        if self.input.len() > MAX_HEAD {
            return Ok(false);
        }
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(!(self.closing && self.output.is_empty()))
    }
}

/// The reply to one request head, and whether the connection stays open after it.
fn answer(head: &str) -> (String, bool) {
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default();
    let mut keep_alive = request.ends_with(" HTTP/1.1");
    let mut has_body = false;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "connection" => keep_alive &= !value.trim().eq_ignore_ascii_case("close"),
            "content-length" => has_body |= value.trim() != "0",
            "transfer-encoding" => has_body = true,
            _ => {}
        }
    }
    let (status, body) = match request.rsplit_once(' ') {
        _ if has_body => ("400 Bad Request", "Bodies are not read here\n"),
        Some(("GET /hello", "HTTP/1.1" | "HTTP/1.0")) => ("200 OK", "Hello, World!"),
        Some((_, "HTTP/1.1" | "HTTP/1.0")) => ("404 Not Found", "Not Found\n"),
        _ => ("400 Bad Request", "Not an HTTP/1 request line\n"),
    };
    keep_alive &= status.starts_with("200") || status.starts_with("404");
    let close = if keep_alive { "" } else { "Connection: close\r\n" };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n{body}",
        body.len()
    );
    (reply, keep_alive)
}
// ANCHOR_END: whole
