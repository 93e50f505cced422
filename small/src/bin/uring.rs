//! A completion loop as one small program: one thread hands the kernel whole operations
//! through an io_uring (accept, receive into this buffer, send from that one) and is told
//! when each has finished, so it never asks "ready?" and never blocks in a read or write.
//! Run: `cargo run -p small --bin uring -- 127.0.0.1:8080` (port 0 picks a free port; the
//! address is printed). It needs a kernel that allows io_uring (5.19 or later, and not
//! refused by a container's seccomp profile).
//!
//! HTTP/1.1, as small as stays correct for `GET /hello`: keep-alive, pipelined requests
//! answered in order, a request head ends at the first blank line (CRLF CRLF; more than
//! 8 KiB without one closes the connection), `Connection: close` and HTTP/1.0 honoured. A
//! request that announces a body is refused with 400 and the connection closed, since
//! this server never reads bodies (nor lingers to drain them before the close, as the
//! workspace's versions do).

// ANCHOR: whole
use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{IoUring, cqueue, opcode, squeue, types::Fd};

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: usize = 8 * 1024;
/// The accept's tag on its completions; the connections' tags count up from 0.
const ACCEPT: u64 = u64::MAX;

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?;
    let mut ring = IoUring::new(256)?;
    println!("listening on {}", listener.local_addr()?);
    // One multishot accept: a completion per new connection, until it reports an end.
    let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd())).build().user_data(ACCEPT);
    push(&mut ring, &accept)?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_key = 0;
    loop {
        match ring.submit_and_wait(1) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            done => done?,
        };
        let completions: Vec<cqueue::Entry> = ring.completion().collect();
        for done in completions {
            let (key, result) = (done.user_data(), done.result());
            if key == ACCEPT {
                if result >= 0 {
                    // SAFETY: a successful accept's result is a new descriptor, ours alone.
                    let fd = unsafe { OwnedFd::from_raw_fd(result) };
                    let mut conn = Conn::new(fd);
                    if let Some(next) = conn.next() {
                        push(&mut ring, &next.user_data(next_key))?;
                        conns.insert(next_key, conn);
                        next_key += 1;
                    }
                } else {
                    eprintln!("accept: {}", io::Error::from_raw_os_error(-result));
                }
                if !cqueue::more(done.flags()) {
                    push(&mut ring, &accept)?; // it ended (out of descriptors, say): re-arm
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&key) else { continue };
            match conn.complete(result) {
                Some(next) => push(&mut ring, &next.user_data(key))?,
                None => drop(conns.remove(&key)), // nothing of it in the ring: close
            }
        }
    }
}

/// Queues an operation for the next submit; a full queue is handed to the kernel first.
fn push(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
    // SAFETY: every entry points into a Conn's `buf` or `output` (or at nothing: the
    // accept), heap memory the Conn keeps unmoved and untouched until that entry's
    // completion is taken, because a Conn has one operation in the ring at a time and is
    // changed or dropped only when its completion arrives.
    while unsafe { ring.submission().push(entry) }.is_err() {
        ring.submit()?;
    }
    Ok(())
}

/// One client. At most one of its operations is in the ring at a time, a receive into
/// `buf` or a send from `output`, so the kernel and this loop never share a buffer.
struct Conn {
    fd: OwnedFd,
    buf: Box<[u8]>,  // the receive lands here
    input: Vec<u8>,  // received, not yet a whole request head
    output: Vec<u8>, // replies the kernel has not taken yet; the send reads from here
    closing: bool,   // close once `output` is sent
    sending: bool,   // the operation in the ring is a send, not a receive
}

impl Conn {
    fn new(fd: OwnedFd) -> Self {
        let buf = vec![0; 4096].into_boxed_slice();
        Conn { fd, buf, input: vec![], output: vec![], closing: false, sending: false }
    }

    /// Takes the result of this connection's operation and returns its next one.
    fn complete(&mut self, result: i32) -> Option<squeue::Entry> {
        let n = usize::try_from(result).ok()?; // negative: an error, so close
        if self.sending {
            self.output.drain(..n);
        } else if n == 0 {
            return None; // the client left
        } else {
            self.input.extend_from_slice(&self.buf[..n]);
            while !self.closing {
                let Some(end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                let head: Vec<u8> = self.input.drain(..end + 4).collect();
                let (reply, keep_alive) = answer(&String::from_utf8_lossy(&head));
                self.output.extend_from_slice(reply.as_bytes());
                self.closing = !keep_alive;
            }
        }
        self.next()
    }

    /// The next operation: a send while replies are owed, else a receive; None once the
    /// connection is done.
    fn next(&mut self) -> Option<squeue::Entry> {
        let fd = Fd(self.fd.as_raw_fd());
        self.sending = !self.output.is_empty();
        if self.sending {
            let len = u32::try_from(self.output.len()).unwrap_or(u32::MAX);
            return Some(opcode::Send::new(fd, self.output.as_ptr(), len).build());
        }
        if self.closing || self.input.len() > MAX_HEAD {
            return None;
        }
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        Some(opcode::Recv::new(fd, self.buf.as_mut_ptr(), len).build())
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
