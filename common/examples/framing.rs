//! What the workspace's decoder understands of raw byte streams, as JSON, for the
//! differential framing check (`scripts/differential/`), which gives the same streams to
//! other HTTP/1.1 parsers and compares.
//!
//! Reads a JSON array of streams, each a hex string, on standard input; writes a JSON
//! array with, for each stream, the requests decoded from it whole, in order (method,
//! target, version, headers, body in hex, and `end`: where in the stream the next request
//! begins), then how the stream ended:
//!
//! * `"end"`: every byte decoded; `"incomplete"`: a request begun and not finished;
//! * `"closed"`: the last request closes the connection (what follows is never read);
//! * `"rejected"`: an error that closes the connection (`status` and `detail` say which);
//! * `"not-http"`: the next request is in the line protocol, which these parsers do not
//!   speak.
//!
//! ```sh
//! echo '["474554202f20485454502f312e310d0a486f73743a20610d0a0d0a"]' |
//!     cargo run -q -p common --example framing
//! ```

use std::io::Read as _;

use common::codec::{Decoder, Inbox, Protocol, Request};
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let streams: Vec<String> = serde_json::from_str(&input)?;
    let mut results = Vec::with_capacity(streams.len());
    for hex in &streams {
        results.push(understand(&from_hex(hex)?));
    }
    println!("{}", Value::Array(results));
    Ok(())
}

/// The requests in `stream`, delivered in one read, and how it ends.
fn understand(stream: &[u8]) -> Value {
    let mut decoder = Decoder::new();
    let mut inbox = Inbox::new();
    inbox.extend(stream);
    let mut messages = Vec::new();
    let outcome = loop {
        match decoder.decode(&mut inbox) {
            Ok(None) if inbox.is_empty() && !decoder.is_reading_body() => break json!("end"),
            Ok(None) => break json!("incomplete"),
            Ok(Some(request)) if request.protocol == Protocol::Line => break json!("not-http"),
            Ok(Some(request)) => {
                let keep_alive = request.keep_alive;
                messages.push(message(&request, stream.len() - inbox.len()));
                if !keep_alive {
                    break json!("closed");
                }
            }
            Err(error) if error.protocol() == Protocol::Line => break json!("not-http"),
            Err(error) => {
                return json!({"messages": messages, "outcome": "rejected",
                              "status": error.status(), "detail": error.to_string()});
            }
        }
    };
    json!({"messages": messages, "outcome": outcome})
}

fn message(request: &Request, end: usize) -> Value {
    let headers: Vec<Value> = request
        .headers
        .iter()
        .map(|h| json!([h.name.to_ascii_lowercase(), latin1(&h.value)]))
        .collect();
    let version = if request.protocol == Protocol::Http10 { "1.0" } else { "1.1" };
    json!({
        "method": request.method,
        "target": request.target,
        "version": version,
        "headers": headers,
        "body": to_hex(&request.body),
        "end": end,
    })
}

/// Header values are bytes; as Latin-1 each byte is one character, as node and h11 give them.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits = hex.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(format!("odd-length hex string of {} digits", digits.len()));
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex: {}", String::from_utf8_lossy(pair)))
        })
        .collect()
}
