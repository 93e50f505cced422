//! Finding where one answer ends in what a server sent, in either protocol, so the engine
//! can time each request and keep the stream in step.

use super::Wire;

/// One answer found at the front of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) len: usize,
    pub(crate) status: u16,
    /// The server will close the connection after it (`Connection: close`).
    pub(crate) closes: bool,
}

/// The complete answer at the front of `buf`, if there is one; `Err` if it cannot be an
/// answer of the protocol at all.
pub(crate) fn parse_answer(wire: Wire, buf: &[u8]) -> Result<Option<Answer>, ()> {
    match wire {
        Wire::Line => {
            let Some(lf) = buf.iter().position(|&b| b == b'\n') else { return Ok(None) };
            let status =
                buf.get(..3).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.parse().ok());
            status.map(|status| Some(Answer { len: lf + 1, status, closes: false })).ok_or(())
        }
        Wire::Http => {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let head_len = match response.parse(buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err(()),
            };
            let mut body_len = 0;
            let mut closes = false;
            for header in response.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    body_len = std::str::from_utf8(header.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .ok_or(())?;
                } else if header.name.eq_ignore_ascii_case("connection") {
                    closes |= header.value.eq_ignore_ascii_case(b"close");
                }
            }
            let len = head_len + body_len;
            let status = response.code.ok_or(())?;
            Ok((buf.len() >= len).then_some(Answer { len, status, closes }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_framed_in_both_protocols() {
        let http = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHelloHTTP/1.1 404";
        assert_eq!(
            parse_answer(Wire::Http, http),
            Ok(Some(Answer { len: 43, status: 200, closes: false }))
        );
        assert_eq!(parse_answer(Wire::Http, &http[..40]), Ok(None));
        let close = b"HTTP/1.1 503 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_answer(Wire::Http, close).unwrap().map(|a| (a.status, a.closes)),
            Some((503, true))
        );
        assert_eq!(parse_answer(Wire::Http, b"garbage\r\n\r\n"), Err(()));
        assert_eq!(
            parse_answer(Wire::Line, b"200 Hello\n404"),
            Ok(Some(Answer { len: 10, status: 200, closes: false }))
        );
        assert_eq!(parse_answer(Wire::Line, b"200 Hel"), Ok(None));
        assert_eq!(parse_answer(Wire::Line, b"oops\n"), Err(()));
    }
}
