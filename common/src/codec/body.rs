//! Request bodies, taken off the inbox as they arrive: by `Content-Length`, or in chunks
//! (RFC 9112 §7.1), which is how curl's `-T -` and Python's `http.client` send a body
//! whose length they do not know in advance.
//!
//! Each call moves what has arrived into the request's body and remembers where it
//! stopped, so a body trickled in one byte at a time is looked at once, and memory never
//! exceeds [`MAX_BODY`] plus one read.

use super::{Inbox, MAX_BODY, MAX_HEAD, ProtocolError};

/// Longest chunk-size line accepted, extensions included. Extensions are ignored, so a
/// long one can only be an attempt to make the server buffer it.
const MAX_CHUNK_LINE: usize = 1024;

/// How a body is framed, and how far it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    /// `Content-Length`: this many bytes still to come.
    Length { remaining: usize },
    /// `Transfer-Encoding: chunked`; `searched` is how much of an incomplete line has been
    /// looked at already.
    Chunked { at: Chunk, searched: usize },
}

/// Where in the chunked framing the next byte belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// A chunk-size line: hex digits, maybe `;extensions`, CRLF.
    Size,
    /// Chunk data, this many bytes still to come.
    Data { remaining: usize },
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero-size) chunk: trailer lines, skipped, then an empty line.
    /// `bytes` counts the trailer bytes so far against [`MAX_HEAD`].
    Trailers { bytes: usize },
}

impl Body {
    pub(super) fn chunked() -> Self {
        Self::Chunked { at: Chunk::Size, searched: 0 }
    }

    /// Moves what has arrived of the body from `inbox` into `body`. True once the body is
    /// complete; then nothing of the next request has been taken.
    pub(super) fn read(
        &mut self,
        inbox: &mut Inbox,
        body: &mut Vec<u8>,
    ) -> Result<bool, ProtocolError> {
        match self {
            Self::Length { remaining } => {
                let take = (*remaining).min(inbox.len());
                body.extend_from_slice(&inbox.as_slice()[..take]);
                inbox.consume(take);
                *remaining -= take;
                Ok(*remaining == 0)
            }
            Self::Chunked { at, searched } => loop {
                match *at {
                    Chunk::Size => {
                        let Some(line) = next_line(inbox, searched, MAX_CHUNK_LINE)? else {
                            return Ok(false);
                        };
                        let size = chunk_size(&inbox.as_slice()[..line])?;
                        inbox.consume(line + 2);
                        // Saturating: a size of 2^64 - 1 after any data must not wrap to a
                        // small total (the limit would pass, and the chunk never end).
                        let total = (body.len() as u64).saturating_add(size);
                        if total > MAX_BODY as u64 {
                            return Err(ProtocolError::BodyTooLarge { length: total });
                        }
                        // Not above MAX_BODY, so it fits a usize.
                        let size = size as usize;
                        *at = if size == 0 {
                            Chunk::Trailers { bytes: 0 }
                        } else {
                            Chunk::Data { remaining: size }
                        };
                    }
                    Chunk::Data { remaining } => {
                        let take = remaining.min(inbox.len());
                        if take == 0 {
                            return Ok(false);
                        }
                        body.extend_from_slice(&inbox.as_slice()[..take]);
                        inbox.consume(take);
                        *at = if take == remaining {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data { remaining: remaining - take }
                        };
                    }
                    Chunk::DataEnd => match inbox.as_slice() {
                        [b'\r', b'\n', ..] => {
                            inbox.consume(2);
                            *at = Chunk::Size;
                        }
                        [] | [b'\r'] => return Ok(false),
                        _ => return Err(bad("chunk data not followed by CRLF")),
                    },
                    Chunk::Trailers { bytes } => {
                        let limit = MAX_HEAD.saturating_sub(bytes);
                        let line = match next_line(inbox, searched, limit) {
                            Ok(Some(line)) => line,
                            Ok(None) => return Ok(false),
                            Err(_) => return Err(ProtocolError::HeadTooLarge),
                        };
                        // A trailer field is allowed and ignored: nothing here reads one.
                        if line > 0 && !is_field_line(&inbox.as_slice()[..line]) {
                            return Err(bad("malformed trailer field"));
                        }
                        inbox.consume(line + 2);
                        if line == 0 {
                            return Ok(true);
                        }
                        *at = Chunk::Trailers { bytes: bytes + line + 2 };
                    }
                }
            },
        }
    }
}

/// The length of the CRLF-ended line at the front of `inbox` (CRLF not counted), if it
/// has arrived. `searched` carries how far an incomplete line was looked at, between
/// calls. A line must end within `limit` bytes, and with CRLF: a bare LF in the chunked
/// framing is one of the differences between parsers that request smuggling exploits.
fn next_line(
    inbox: &Inbox,
    searched: &mut usize,
    limit: usize,
) -> Result<Option<usize>, ProtocolError> {
    let bytes = inbox.as_slice();
    let window = bytes.len().min(limit);
    let Some(lf) = bytes[*searched..window].iter().position(|&b| b == b'\n') else {
        *searched = window;
        return if bytes.len() >= limit { Err(bad("chunk-size line too long")) } else { Ok(None) };
    };
    let lf = *searched + lf;
    *searched = 0;
    match lf.checked_sub(1).map(|cr| bytes[cr]) {
        Some(b'\r') => Ok(Some(lf - 1)),
        _ => Err(bad("line in the chunked framing not ended by CRLF")),
    }
}

/// `1*HEXDIG [ chunk-ext ]` (RFC 9112 §7.1): the size. Extensions are ignored, but must
/// follow their grammar: a parser that reads them loosely (a bare CR, a stray space, a
/// quote left open) is a parser another may disagree with about where the chunk begins.
fn chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad("chunk size is not a hexadecimal number"));
    }
    if !is_chunk_ext(&line[digits..]) {
        return Err(bad("chunk size is not a hexadecimal number, or its extension is malformed"));
    }
    // Any size over the limit is as good as infinite: saturate rather than overflow.
    let size = line[..digits]
        .iter()
        .fold(0u64, |n, &d| n.saturating_mul(16).saturating_add(u64::from(super::hex_value(d))));
    Ok(size)
}

/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, the name a
/// token, the value a token or a quoted string (RFC 9112 §7.1.1). Whitespace is allowed
/// only before a `;` or `=` and after them, so `5 ` alone is not a size.
fn is_chunk_ext(mut rest: &[u8]) -> bool {
    while !rest.is_empty() {
        let Some(after) = skip_bws(rest).strip_prefix(b";") else {
            return false;
        };
        let after = skip_bws(after);
        let name = token_len(after);
        if name == 0 {
            return false;
        }
        rest = &after[name..];
        if let Some(value) = skip_bws(rest).strip_prefix(b"=") {
            let value = skip_bws(value);
            let len = match value.first() {
                Some(b'"') => quoted_string_len(value),
                _ => token_len(value),
            };
            if len == 0 {
                return false;
            }
            rest = &value[len..];
        }
    }
    true
}

fn skip_bws(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &bytes[spaces..]
}

/// The length of the token at the front of `bytes` (RFC 9110 §5.6.2), 0 if none.
fn token_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| is_tchar(b)).count()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The length of the quoted string at the front of `bytes`, closing quote included
/// (RFC 9110 §5.6.4), 0 if it is not one or does not close.
fn quoted_string_len(bytes: &[u8]) -> usize {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i + 1,
            b'\\' if bytes.get(i + 1).is_some_and(|&escaped| text(escaped)) => i += 2,
            b'\\' => return 0,
            b if text(b) => i += 1,
            _ => return 0,
        }
    }
    0
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5): a token, a colon, then no control
/// byte but a tab. A trailer is skipped, not read, but a malformed one is an error, as
/// it would be in the head.
fn is_field_line(line: &[u8]) -> bool {
    let name = token_len(line);
    match line[name..].split_first() {
        Some((b':', value)) if name > 0 => {
            value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        }
        _ => false,
    }
}

fn bad(why: &str) -> ProtocolError {
    ProtocolError::BadRequest(why.into())
}
