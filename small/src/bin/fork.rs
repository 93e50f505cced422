//! A process per connection as one small program: the parent accepts, and `fork` copies
//! the whole process for each client, so the child serves it to the end and exits while
//! the parent goes back to accept; no memory is shared, and a crash ends one client only.
//! Run: `cargo run -p small --bin fork -- 127.0.0.1:8080` (port 0 picks a free port; the
//! address is printed).
//!
//! HTTP as in blocking.rs.
//!
//! `fork` is `unsafe` in Rust because the child is a copy of one thread only: a lock that
//! another thread held at that moment (stdout's, a logger's) stays locked in the
//! child forever. The argument that it is sound here is at the call.

// ANCHOR: whole
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::{thread, time::Duration};

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, fork};

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: u64 = 8 * 1024;

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    // SAFETY: SIG_IGN installs no handler, so no code runs in signal context. Ignoring
    // SIGCHLD asks the kernel to reap each child as it exits: no zombies, no wait calls.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }?;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors, say: accepting again at once would only spin.
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // SAFETY: this process has one thread (nothing here spawns one, and the standard
        // library starts none), so no lock can be held by a thread the child lacks, and
        // the child may allocate and print like any single-threaded program.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(listener); // the child serves; only the parent accepts
                serve(stream).unwrap_or_else(|e| eprintln!("client: {e}"));
                std::process::exit(0);
            }
            // The child has its own copy of the descriptor; the parent closes its one.
            ForkResult::Parent { .. } => drop(stream),
        }
    }
    Ok(())
}

/// Answers requests on one connection until the client leaves or asks to close.
fn serve(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    loop {
        let mut head = String::new();
        let mut limited = (&mut reader).take(MAX_HEAD);
        loop {
            let start = head.len();
            // 0: the client left, or its head passed MAX_HEAD without a blank line.
            if limited.read_line(&mut head)? == 0 {
                return Ok(());
            }
            if matches!(&head[start..], "\r\n" | "\n") {
                break;
            }
        }
        let (reply, keep_alive) = answer(&head);
        (&stream).write_all(reply.as_bytes())?;
        if !keep_alive {
            return Ok(());
        }
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
