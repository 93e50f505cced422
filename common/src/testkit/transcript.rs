//! What a test's clients sent and received, kept so that a failure can show the bytes.
//!
//! Recording is per thread and off unless asked for ([`recording`]): the fault matrix
//! turns it on around each probe, and every [`super::Client`] on that thread then notes
//! its writes and reads. A probe's own raw sockets, and clients on other threads, are
//! not recorded; what is shown is what the probe's clients exchanged.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::TcpStream;

/// Bytes kept per recording: the end of a long exchange is what explains a failure.
const KEEP: usize = 4 * 1024;

/// Who wrote the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// An exchange: each stretch of bytes one side wrote before the other answered.
pub type Log = Vec<(Direction, Vec<u8>)>;

thread_local! {
    static LOG: RefCell<Option<Log>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's clients recorded; its result and what they exchanged,
/// consecutive bytes in one direction joined.
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Log) {
    LOG.with(|log| *log.borrow_mut() = Some(Vec::new()));
    let result = f();
    let log = LOG.with(|log| log.borrow_mut().take()).unwrap_or_default();
    (result, log)
}

pub(super) fn note(direction: Direction, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    LOG.with(|log| {
        let mut log = log.borrow_mut();
        let Some(log) = log.as_mut() else { return };
        match log.last_mut() {
            Some((last, kept)) if *last == direction => kept.extend_from_slice(bytes),
            _ => log.push((direction, bytes.to_vec())),
        }
        // Forget the oldest bytes past the budget.
        let mut total: usize = log.iter().map(|(_, b)| b.len()).sum();
        while total > KEEP && log.len() > 1 {
            total -= log.remove(0).1.len();
        }
        if let Some((_, only)) = log.first_mut()
            && only.len() > KEEP
        {
            only.drain(..only.len() - KEEP);
        }
    });
}

/// A socket whose reads are noted.
#[derive(Debug)]
pub(super) struct Recorded(pub(super) TcpStream);

impl Read for Recorded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        note(Direction::Received, &buf[..n]);
        Ok(n)
    }
}

/// A transcript as lines a person reads: `> ` what was sent, `< ` what came back, each
/// escaped (`\r\n` shown, other bytes as `\xNN`) and cut to `width` characters.
pub fn render(log: &Log, width: usize) -> Vec<String> {
    log.iter()
        .map(|(direction, bytes)| {
            let mark = match direction {
                Direction::Sent => '>',
                Direction::Received => '<',
            };
            let mut text = String::new();
            for &b in bytes {
                match b {
                    b'\r' => text.push_str("\\r"),
                    b'\n' => text.push_str("\\n"),
                    b'\t' => text.push_str("\\t"),
                    0x20..=0x7e => text.push(b as char),
                    _ => text.push_str(&format!("\\x{b:02x}")),
                }
            }
            if text.chars().count() > width {
                let cut: String = text.chars().take(width).collect();
                text = format!("{cut}… ({} bytes)", bytes.len());
            }
            format!("{mark} {text}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Client;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn a_clients_exchange_is_recorded_only_while_asked() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut line = [0u8; 11];
            stream.read_exact(&mut line).expect("read");
            stream.write_all(b"200 hi\r\n").expect("write");
            stream.read_exact(&mut [0u8; 4]).expect("read the unrecorded bytes");
        });
        let mut client = Client::connect(addr).expect("connect");
        let (reply, log) = recording(|| client.line("GET /hello").expect("a reply"));
        assert_eq!(reply, "200 hi");
        assert_eq!(render(&log, 80), ["> GET /hello\\n", "< 200 hi\\r\\n"]);
        client.send(b"off\n").expect("send");
        let ((), after) = recording(|| ());
        assert!(after.is_empty(), "nothing is kept from before a recording");
        server.join().expect("the server thread");
    }
}
