//! A completion loop as one small program: one thread hands the kernel whole operations
//! through an io_uring (accept, receive into this buffer, send from that one) and is told when
//! each has finished, so it never asks "ready?" and never blocks in a read or write. Needs a
//! kernel that allows io_uring (5.19 or later, not refused by a container's seccomp profile).
//! HTTP as in blocking.rs, pipelining too. Run: `cargo run -p small --bin uring -- ADDR`.

// ANCHOR: whole
use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{IoUring, cqueue, opcode, squeue, types::Fd};

const ACCEPT: u64 = u64::MAX; // the accept's tag on its completions; a connection's is its fd

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?;
    let mut ring = IoUring::new(256)?;
    println!("listening on {}", listener.local_addr()?);
    // One multishot accept: a completion per new connection, until it reports an end.
    let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd())).build().user_data(ACCEPT);
    push(&mut ring, &accept)?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    loop {
        // The one wait. Its errors (EINTR after a stop; the kernel short of memory or of room
        // for completions) all leave the same to do: reap what has completed, and wait again.
        let _ = ring.submit_and_wait(1);
        let completions: Vec<cqueue::Entry> = ring.completion().collect();
        for done in completions {
            let (key, result) = (done.user_data(), done.result());
            if key != ACCEPT {
                match conns.get_mut(&key).and_then(|conn| conn.complete(result)) {
                    Some(next) => push(&mut ring, &next.user_data(key))?,
                    None => drop(conns.remove(&key)), // nothing of it in the ring: close
                }
                continue;
            }
            if !cqueue::more(done.flags()) {
                push(&mut ring, &accept)?; // it ended (out of descriptors, say): re-arm
            }
            if result < 0 {
                eprintln!("accept: {}", io::Error::from_raw_os_error(-result));
                continue;
            }
            // SAFETY: a successful accept's result is a new descriptor, ours alone.
            let fd = unsafe { OwnedFd::from_raw_fd(result) };
            let (buf, input, output) = (Box::new([0; 4096]), vec![], vec![]);
            let mut conn = Conn { fd, buf, input, output, closing: false };
            push(&mut ring, &conn.receive().user_data(result as u64))?;
            conns.insert(result as u64, conn);
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

/// One client. At most one of its operations is in the ring at a time: a send from `output`
/// while replies are owed, else a receive into `buf`, so the kernel and this loop never share
/// a buffer; and `output` is not touched until that operation completes.
struct Conn {
    fd: OwnedFd,
    buf: Box<[u8; 4096]>, // the receive lands here
    input: Vec<u8>,       // received, not yet a whole request head
    output: Vec<u8>,      // replies the kernel has not taken yet; the send reads from here
    closing: bool,        // close once `output` is sent
}

impl Conn {
    /// Takes the result of this connection's operation and returns its next one, if any.
    fn complete(&mut self, result: i32) -> Option<squeue::Entry> {
        let n = usize::try_from(result).ok()?; // negative: an error, so close
        if !self.output.is_empty() {
            self.output.drain(..n); // it was a send
        } else if n == 0 {
            return None; // a receive of nothing: the client left
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
        if !self.output.is_empty() {
            let len = u32::try_from(self.output.len()).unwrap_or(u32::MAX);
            let fd = Fd(self.fd.as_raw_fd());
            return Some(opcode::Send::new(fd, self.output.as_ptr(), len).build());
        }
        // Done once closing and all sent, or when a head passes 8 KiB without its end.
        (!self.closing && self.input.len() <= 8 * 1024).then(|| self.receive())
    }

    /// A receive into `buf`: the operation of a connection that owes no replies.
    fn receive(&mut self) -> squeue::Entry {
        opcode::Recv::new(Fd(self.fd.as_raw_fd()), self.buf.as_mut_ptr(), 4096).build()
    }
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
