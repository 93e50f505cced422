//! How the cost of answering pipelined requests grows with their number, when all of them
//! arrive in one read: the benchmark for the decoder's read offset.
//!
//! Each run puts N copies of `GET /hello HTTP/1.1` into one connection's inbox and times
//! `Session::answer` (decode, dispatch, encode) until all N are answered. With linear
//! decoding the time per request stays flat as N grows; a decoder that shifted the rest
//! of the buffer after every request would cost O(N) per request, O(N²) in all.
//!
//! ```sh
//! cargo run --release -p common --example pipelined_decode
//! ```

use std::time::{Duration, Instant};

use common::{Dispatcher, Session};

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n";

/// The fastest of a few runs, to keep the noise of a shared machine out.
fn time_answering(n: usize, dispatcher: &Dispatcher) -> Duration {
    let input = REQUEST.repeat(n);
    (0..5)
        .map(|_| {
            let mut session = Session::new();
            let start = Instant::now();
            session.receive(&input);
            let closed = session.answer(dispatcher);
            let elapsed = start.elapsed();
            let answered = session.output().windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
            assert_eq!((closed, answered), (None, n), "every request answered");
            elapsed
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let dispatcher = Dispatcher::with_builtin_routes("bench");
    println!("{:>9}  {:>10}  {:>13}", "requests", "total", "per request");
    for n in [1_000, 10_000, 100_000] {
        let total = time_answering(n, &dispatcher);
        let per_request = total / n as u32;
        println!(
            "{n:>9}  {:>8.2} ms  {:>10} ns",
            total.as_secs_f64() * 1e3,
            per_request.as_nanos()
        );
    }
}
