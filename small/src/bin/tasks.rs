//! A task per connection as one small program: tokio runs a few worker threads, and each
//! client gets a task that reads like v2's thread but waits without holding a thread, so
//! thousands of idle clients share the same few threads. Run: `cargo run -p small --bin
//! tasks -- 127.0.0.1:8080 2` (2 worker threads, by default one per core; port 0 picks a
//! free port; the address is printed).
//!
//! HTTP as in blocking.rs.

// ANCHOR: whole
use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head read; a longer one closes the connection.
const MAX_HEAD: u64 = 8 * 1024;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.next().and_then(|n| n.parse().ok()).unwrap_or(cores);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(accept_loop(addr, workers))
}

async fn accept_loop(addr: String, workers: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {} with {workers} worker threads", listener.local_addr()?);
    loop {
        match listener.accept().await {
            // A task, not a thread: it waits on the runtime's epoll, holding no thread.
            Ok((stream, _)) => {
                tokio::spawn(async { serve(stream).await.unwrap_or_else(|e| eprintln!("{e}")) });
            }
            Err(e) => {
                // Out of descriptors, say: accepting again at once would only spin.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Answers requests on one connection until the client leaves or asks to close: v1's
/// code, with `.await` where a thread would block.
async fn serve(mut stream: TcpStream) -> io::Result<()> {
    let (read, mut write) = stream.split();
    let mut reader = BufReader::new(read);
    loop {
        let mut head = String::new();
        let mut limited = (&mut reader).take(MAX_HEAD);
        loop {
            let start = head.len();
            // 0: the client left, or its head passed MAX_HEAD without a blank line.
            if limited.read_line(&mut head).await? == 0 {
                return Ok(());
            }
            if matches!(&head[start..], "\r\n" | "\n") {
                break;
            }
        }
        let (reply, keep_alive) = answer(&head);
        write.write_all(reply.as_bytes()).await?;
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
