//! The Java article's level-triggered storm, side by side with its fix: the same client
//! asks the same questions of a poller that leaves a ready socket armed and of one that
//! masks it with EPOLLONESHOT, and both say what happened.
//!
//!     cargo run -p v4-syscalls --example storm

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::Dispatcher;
use v4_syscalls::storm::{self, Masking, StormConfig};

fn main() -> anyhow::Result<()> {
    let message = "the-quick-brown-fox-jumps-over-the-lazy-dog-0123456789";
    let requests = 20;
    println!("{requests} requests `GET /echo?msg={message}`, one at a time, on one connection;");
    println!("4 workers, each reading 16 bytes per hand-off after a 20 ms pause.\n");
    for masking in [Masking::None, Masking::OneShot] {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let dispatcher = Arc::new(Dispatcher::with_builtin_routes("storm"));
        let config =
            StormConfig { masking, workers: 4, provocation: Duration::from_millis(20), chunk: 16 };
        let storm = storm::start(listener, dispatcher, config)?;
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let (mut right, mut wrong, mut missing) = (0, 0, 0);
        let mut example = None;
        for _ in 0..requests {
            stream.write_all(format!("GET /echo?msg={message}\n").as_bytes())?;
            let mut answer = String::new();
            match reader.read_line(&mut answer) {
                Ok(n) if n > 0 && answer.trim_end() == format!("200 {message}") => right += 1,
                Ok(n) if n > 0 => {
                    wrong += 1;
                    example.get_or_insert(answer.trim_end().to_owned());
                }
                _ => missing += 1,
            }
        }
        let (dispatches, duplicates, empty) = storm.counters.read();
        println!("{masking:?}:");
        println!("  the client: {right} right, {wrong} wrong, {missing} unanswered in 2 s");
        if let Some(example) = example {
            println!("  a wrong answer: {example}");
        }
        println!(
            "  the server: {dispatches} hand-offs (5 per request needed), {duplicates} to a socket a worker already had, {empty} found nothing to read\n"
        );
    }
    Ok(())
}
