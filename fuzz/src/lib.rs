//! What the fuzz targets share: how an input is cut into the reads a socket might deliver,
//! and what the decoder makes of a stream delivered in given pieces.
//!
//! An input is a header saying where to cut, then the bytes of the stream. The first byte
//! gives the number of cuts (at most [`MAX_CUTS`]), each cut is two bytes (an offset into
//! the stream, modulo its length): so the fuzzer searches the splits as it searches the
//! bytes, and a split that finds a bug is kept in the input that reproduces it.

use common::codec::{Decoder, Inbox, MAX_BODY, MAX_HEAD, MAX_HEADERS, ProtocolError, Request};

/// Most cuts an input may ask for: enough to split every part of a small request.
pub const MAX_CUTS: usize = 16;

/// One thing the decoder produced: a request, or an error with the reply it gets.
pub type Event = Result<Request, ProtocolError>;

/// A stream and where it is cut into reads.
#[derive(Debug)]
pub struct Delivery<'a> {
    pub stream: &'a [u8],
    /// Increasing offsets into `stream`, each strictly inside it.
    pub cuts: Vec<usize>,
}

impl<'a> Delivery<'a> {
    /// Reads the cuts off the front of `input`; what follows is the stream. An input too
    /// short to hold its cuts is a stream delivered whole.
    pub fn from_input(input: &'a [u8]) -> Self {
        let Some((&count, rest)) = input.split_first() else {
            return Self { stream: input, cuts: Vec::new() };
        };
        let count = usize::from(count) % (MAX_CUTS + 1);
        let Some((header, stream)) = rest.split_at_checked(count * 2) else {
            return Self { stream: rest, cuts: Vec::new() };
        };
        let mut cuts: Vec<usize> = header
            .chunks_exact(2)
            .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])))
            .filter(|_| stream.len() > 1)
            .map(|offset| 1 + offset % (stream.len() - 1).max(1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        Self { stream, cuts }
    }

    /// The reads, in order: the stream cut at every cut.
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut pieces = Vec::with_capacity(self.cuts.len() + 1);
        let mut from = 0;
        for &cut in &self.cuts {
            pieces.push(&self.stream[from..cut]);
            from = cut;
        }
        pieces.push(&self.stream[from..]);
        pieces
    }
}

/// Everything a decoder makes of `pieces` read one after another, then the client closing
/// its side: the requests and errors in order, stopping where the connection would close
/// (an error that puts the stream out of step, a request that does not keep it alive, the
/// line protocol's `exit`), and last the error for a request left half sent, if one was.
/// The inbox after each piece is checked against the decoder's limits.
pub fn decode(pieces: &[&[u8]]) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut inbox = Inbox::new();
    let mut events = Vec::new();
    for piece in pieces {
        inbox.extend(piece);
        loop {
            match decoder.decode(&mut inbox) {
                Ok(None) => break,
                Ok(Some(request)) => {
                    check_limits(&request);
                    let last = !request.keep_alive || request.is_exit();
                    events.push(Ok(request));
                    if last {
                        return events;
                    }
                }
                Err(error) => {
                    let last = error.closes_connection();
                    events.push(Err(error));
                    if last {
                        return events;
                    }
                }
            }
        }
    }
    events.extend(decoder.truncated(&inbox).map(Err));
    events
}

/// The decoder's own limits hold for every request it lets through: what a server keeps
/// per request is bounded whatever the client sends.
pub fn check_limits(request: &Request) {
    assert!(request.body.len() <= MAX_BODY, "body of {} bytes", request.body.len());
    assert!(request.headers.len() <= MAX_HEADERS, "{} headers", request.headers.len());
    let head: usize = request.target.len()
        + request.method.len()
        + request.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
    assert!(head <= MAX_HEAD, "a head of {head} bytes got through");
}
