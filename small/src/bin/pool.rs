//! A fixed pool of threads as one small program: the main thread accepts, and each
//! connection waits in the pool's queue until one of its few threads is free to serve it to
//! the end, so as many clients as threads can hold every thread and the rest wait. Run:
//! `cargo run -p small --bin pool -- 127.0.0.1:8080 4` (4 threads; port 0 picks a free
//! port; the address is printed).
//!
//! HTTP as in blocking.rs.

// ANCHOR: whole
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::{thread, time::Duration};

use threadpool::ThreadPool;

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: u64 = 8 * 1024;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(4);
    let pool = ThreadPool::new(threads);
    let listener = TcpListener::bind(addr)?;
    println!("listening on {} with {threads} threads", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            // Queued until a thread is free; that thread serves the client until it leaves.
            Ok(stream) => pool.execute(move || serve(stream).unwrap_or_else(|e| eprintln!("{e}"))),
            Err(e) => {
                // Out of descriptors, say: accepting again at once would only spin.
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
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
