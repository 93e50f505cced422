//! The iterative server as one small program: it accepts a client, serves it until it
//! leaves, and only then accepts the next, so one thread does everything and a second
//! client waits in the kernel's accept queue. Run: `cargo run -p small --bin blocking --
//! 127.0.0.1:8080` (port 0 picks a free port; the address is printed).
//!
//! HTTP/1.1, as small as stays correct for `GET /hello` (anything else is answered 404):
//! keep-alive, request heads read up to the blank line (8 KiB at most, else the connection
//! closes), `Connection: close` and HTTP/1.0 honoured. A request that announces a body is
//! answered and the connection closed, since this server never reads bodies (nor lingers to
//! drain them before the close, as the workspace's versions do).

// ANCHOR: whole
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: u64 = 8 * 1024;

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?; // socket, setsockopt, bind, listen
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        // One client at a time: the next accept happens only once this one has left.
        match stream {
            Ok(stream) => serve(stream).unwrap_or_else(|e| eprintln!("client: {e}")),
            Err(e) => eprintln!("accept: {e}"),
        }
    } // dropping a stream is its close
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
