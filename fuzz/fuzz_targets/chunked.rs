//! The chunked body decoder against a second, independent reading of RFC 9112 §7.1
//! written here from the grammar: on any bytes after a chunked head, in any reads, both
//! agree whether the body is whole, incomplete or malformed, on its bytes, and on where
//! the next request begins.

#![no_main]

use common::codec::{Decoder, Inbox, MAX_BODY, MAX_HEAD, Request};
use common_fuzz::Delivery;
use libfuzzer_sys::fuzz_target;

const HEAD: &[u8] = b"POST /echo HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";
/// The codec's limit on a chunk-size line, extensions included (not public: a property of
/// the framing this oracle restates).
const MAX_CHUNK_LINE: usize = 1024;

/// What a chunked body's bytes amount to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body, and how many bytes of the stream it took.
    Whole(Vec<u8>, usize),
    Incomplete,
    Malformed,
}

fuzz_target!(|input: &[u8]| {
    let delivery = Delivery::from_input(input);
    let expected = oracle(delivery.stream);
    let mut decoder = Decoder::new();
    let mut inbox = Inbox::new();
    inbox.extend(HEAD);
    assert_eq!(decoder.decode(&mut inbox), Ok(None), "the head alone is not a request");
    let mut got = Outcome::Incomplete;
    let mut fed = 0;
    for piece in delivery.pieces() {
        inbox.extend(piece);
        fed += piece.len();
        match decoder.decode(&mut inbox) {
            Ok(None) => continue,
            Ok(Some(Request { body, .. })) => got = Outcome::Whole(body, fed - inbox.len()),
            Err(_) => got = Outcome::Malformed,
        }
        break;
    }
    assert_eq!(got, expected, "cut at {:?}", delivery.cuts);
});

/// `chunked-body = *chunk last-chunk trailer-section CRLF`, with the codec's limits: a
/// chunk-size line within [`MAX_CHUNK_LINE`], the body within [`MAX_BODY`], trailers within
/// [`MAX_HEAD`], extensions and trailer lines well-formed.
fn oracle(stream: &[u8]) -> Outcome {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line = match crlf_line(&stream[at..], MAX_CHUNK_LINE) {
            Line::Ends(line) => line,
            Line::NotYet => return Outcome::Incomplete,
            Line::Bad => return Outcome::Malformed,
        };
        let Some(size) = chunk_size(line) else { return Outcome::Malformed };
        at += line.len() + 2;
        if size.saturating_add(body.len() as u64) > MAX_BODY as u64 {
            return Outcome::Malformed;
        }
        if size == 0 {
            break;
        }
        let size = size as usize;
        let Some(data) = stream.get(at..at + size) else { return Outcome::Incomplete };
        body.extend_from_slice(data);
        at += size;
        match stream.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            None if stream[at..] == *b"" || stream[at..] == *b"\r" => return Outcome::Incomplete,
            _ => return Outcome::Malformed,
        }
    }
    let mut trailers = 0;
    loop {
        match crlf_line(&stream[at..], MAX_HEAD - trailers) {
            Line::Ends([]) => return Outcome::Whole(body, at + 2),
            Line::Ends(line) if !field_line(line) => return Outcome::Malformed,
            Line::Ends(line) => {
                trailers += line.len() + 2;
                at += line.len() + 2;
            }
            Line::NotYet => return Outcome::Incomplete,
            Line::Bad => return Outcome::Malformed,
        }
    }
}

enum Line<'a> {
    Ends(&'a [u8]),
    NotYet,
    Bad,
}

/// The line at the front of `bytes`, which must end in CRLF within `limit` bytes (the CRLF
/// counted): a bare LF is malformed.
fn crlf_line(bytes: &[u8], limit: usize) -> Line<'_> {
    match bytes.iter().take(limit).position(|&b| b == b'\n') {
        Some(lf) if lf > 0 && bytes[lf - 1] == b'\r' => Line::Ends(&bytes[..lf - 1]),
        Some(_) => Line::Bad,
        None if bytes.len() >= limit => Line::Bad,
        None => Line::NotYet,
    }
}

/// `1*HEXDIG [ chunk-ext ]`: the size, saturating (any size past the limit is too big).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || !extensions_parse(&line[digits..]) {
        return None;
    }
    let hex = std::str::from_utf8(&line[..digits]).ok()?;
    Some(u64::from_str_radix(hex, 16).unwrap_or(u64::MAX))
}

/// Where an extension parser is in `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
#[derive(Clone, Copy, PartialEq)]
enum Ext {
    /// Before a `;` (whitespace allowed), or at the end.
    Start,
    /// After `;`, before the name.
    Semi,
    Name,
    /// After the name and whitespace: `;`, `=` or more whitespace.
    AfterName,
    /// After `=`, before the value.
    Equals,
    Token,
    Quoted,
    Escape,
    /// After a token value and whitespace: only `;` or more whitespace.
    AfterValue,
}

/// The extension grammar of RFC 9112 §7.1.1 as a state machine, one byte at a time
/// (the codec parses it by descent: two readings of the same grammar).
fn extensions_parse(bytes: &[u8]) -> bool {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let ws = |b: u8| b == b' ' || b == b'\t';
    let qtext = |b: u8| ws(b) || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut state = Ext::Start;
    for &b in bytes {
        state = match (state, b) {
            (Ext::Start | Ext::Name | Ext::AfterName | Ext::AfterValue, b';') => Ext::Semi,
            (Ext::Start, b) if ws(b) => Ext::Start,
            (Ext::Semi, b) if ws(b) => Ext::Semi,
            (Ext::Semi | Ext::Name, b) if tchar(b) => Ext::Name,
            (Ext::Name | Ext::AfterName, b) if ws(b) => Ext::AfterName,
            (Ext::Name | Ext::AfterName, b'=') => Ext::Equals,
            (Ext::Equals, b) if ws(b) => Ext::Equals,
            (Ext::Equals, b'"') => Ext::Quoted,
            (Ext::Equals | Ext::Token, b) if tchar(b) => Ext::Token,
            (Ext::Token | Ext::AfterValue, b) if ws(b) => Ext::AfterValue,
            (Ext::Token, b';') => Ext::Semi,
            (Ext::Quoted, b'"') => Ext::AfterValue,
            (Ext::Quoted, b'\\') => Ext::Escape,
            (Ext::Quoted | Ext::Escape, b) if qtext(b) => Ext::Quoted,
            _ => return false,
        };
    }
    // Whitespace may only come before a `;` or `=`: `5 ` and `5;a ` are not whole.
    let trailing_space = bytes.last().is_some_and(|&b| ws(b));
    matches!(state, Ext::Start | Ext::Name | Ext::Token | Ext::AfterValue) && !trailing_space
}

/// A trailer line: a token, `:`, then no control byte but a tab.
fn field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else { return false };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    !name.is_empty()
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}
