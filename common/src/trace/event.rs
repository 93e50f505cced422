//! One recorded event, of a fixed size, and its JSON in the Chrome trace event format.
//!
//! Fixed-size so that a thread's buffer is a plain array of them and the memory a recording
//! may take is its event limit times [`std::mem::size_of::<Event>()`]: the name is copied into
//! a small inline buffer, the arguments are at most two, keyed by static strings.

use serde_json::{Map, Value, json};

/// What a span or instant is about; the drawing colours by it. A fixed set, shared by every
/// version, so that a timeline of v1 and one of v7 read alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    /// Blocked; the name says in what (`accept`, `read`, `epoll_wait`, `queue`, ...).
    Wait,
    /// A connection taken from the listen queue (`conn` is the new connection).
    Accept,
    /// Bytes in (`bytes`).
    Read,
    /// A request parsed.
    Decode,
    /// A handler ran; the name is the method and path, `GET /hello`.
    Handle,
    /// Bytes out (`bytes`).
    Write,
    /// A connection or request queued for another thread (`queued`) or taken (`taken`).
    Handoff,
    /// A thread or process started for a connection (`thread`, `fork`; `child`).
    Spawn,
    /// A tokio task polled (v6).
    Poll,
    /// Completions taken from a ring (`count`).
    Reap,
    /// A connection closed (`why`).
    Close,
}

impl Cat {
    /// Every category, in the order the format lists them.
    pub const ALL: [Cat; 11] = [
        Cat::Wait,
        Cat::Accept,
        Cat::Read,
        Cat::Decode,
        Cat::Handle,
        Cat::Write,
        Cat::Handoff,
        Cat::Spawn,
        Cat::Poll,
        Cat::Reap,
        Cat::Close,
    ];

    /// The category as the trace file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cat::Wait => "wait",
            Cat::Accept => "accept",
            Cat::Read => "read",
            Cat::Decode => "decode",
            Cat::Handle => "handle",
            Cat::Write => "write",
            Cat::Handoff => "handoff",
            Cat::Spawn => "spawn",
            Cat::Poll => "poll",
            Cat::Reap => "reap",
            Cat::Close => "close",
        }
    }
}

/// The kind of event (Chrome's `ph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ph {
    /// A complete span: `ts` and `dur`.
    Complete,
    /// A moment with no length.
    Instant,
    /// The start of a hand-off arrow, on the thread that queued.
    FlowOut,
    /// Its end, on the thread that took.
    FlowIn,
}

/// An argument's value: a count, or one of a few fixed words (`why: "eof"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue {
    Count(u64),
    Word(&'static str),
}

impl From<u64> for ArgValue {
    fn from(n: u64) -> Self {
        ArgValue::Count(n)
    }
}

impl From<usize> for ArgValue {
    fn from(n: usize) -> Self {
        ArgValue::Count(n as u64)
    }
}

impl From<u32> for ArgValue {
    fn from(n: u32) -> Self {
        ArgValue::Count(u64::from(n))
    }
}

impl From<&'static str> for ArgValue {
    fn from(word: &'static str) -> Self {
        ArgValue::Word(word)
    }
}

/// An argument slot; an empty key is an unused slot.
pub(crate) type Arg = (&'static str, ArgValue);

pub(crate) const NO_ARG: Arg = ("", ArgValue::Count(0));

/// The longest name kept, in bytes: `GET /sleep` and its like fit; a longer path is cut.
pub const LABEL_BYTES: usize = 40;

/// A name copied inline, cut at [`LABEL_BYTES`] on a character boundary.
#[derive(Clone, Copy)]
pub struct Label {
    bytes: [u8; LABEL_BYTES],
    len: u8,
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Label {
    /// `parts` joined by single spaces.
    pub fn join(parts: &[&str]) -> Self {
        let mut label = Label { bytes: [0; LABEL_BYTES], len: 0 };
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                label.push(" ");
            }
            label.push(part);
        }
        label
    }

    fn push(&mut self, text: &str) {
        let mut len = usize::from(self.len);
        for c in text.chars() {
            let width = c.len_utf8();
            if len + width > LABEL_BYTES {
                break;
            }
            c.encode_utf8(&mut self.bytes[len..len + width]);
            len += width;
        }
        // At most LABEL_BYTES (40), which fits a u8.
        self.len = len as u8;
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

/// What a span, an instant or a hand-off's end is called: a static word, or a request's
/// method and path, copied only when the recorder is on.
pub trait Name {
    fn label(&self) -> Label;
}

impl Name for &str {
    fn label(&self) -> Label {
        Label::join(&[self])
    }
}

impl Name for (&str, &str) {
    fn label(&self) -> Label {
        Label::join(&[self.0, self.1])
    }
}

/// What one event takes in memory.
pub const EVENT_BYTES: usize = 144;

/// One recorded event. Times are nanoseconds on CLOCK_MONOTONIC; the file says
/// microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub ph: Ph,
    pub cat: Cat,
    pub name: Label,
    pub ts: u64,
    pub dur: u64,
    /// The connection served, 0 for none.
    pub conn: u64,
    /// A hand-off's arrow id, 0 for none.
    pub id: u64,
    pub args: [Arg; 2],
}

/// Nanoseconds as the format's microseconds, to the nanosecond.
fn micros(ns: u64) -> Value {
    json!(ns as f64 / 1000.0)
}

impl Event {
    /// The event as a JSON object of the trace, on thread `tid` of process `pid`; `open`
    /// marks a wait still going on when the trace was taken (its `dur` ends there).
    pub fn json(&self, pid: u32, tid: u32, open: bool) -> Value {
        let mut event = Map::new();
        let ph = match self.ph {
            Ph::Complete => "X",
            Ph::Instant => "i",
            Ph::FlowOut => "s",
            Ph::FlowIn => "f",
        };
        event.insert("ph".into(), json!(ph));
        event.insert("cat".into(), json!(self.cat.as_str()));
        event.insert("name".into(), json!(self.name.as_str()));
        event.insert("ts".into(), micros(self.ts));
        match self.ph {
            Ph::Complete => {
                event.insert("dur".into(), micros(self.dur));
            }
            Ph::Instant => {
                event.insert("s".into(), json!("t"));
            }
            Ph::FlowOut => {
                event.insert("id".into(), json!(self.id));
            }
            Ph::FlowIn => {
                event.insert("id".into(), json!(self.id));
                event.insert("bp".into(), json!("e"));
            }
        }
        event.insert("pid".into(), json!(pid));
        event.insert("tid".into(), json!(tid));
        let mut args = Map::new();
        if self.conn != 0 {
            args.insert("conn".into(), json!(self.conn));
        }
        for (key, value) in self.args.iter().filter(|(key, _)| !key.is_empty()) {
            let value = match value {
                ArgValue::Count(n) => json!(n),
                ArgValue::Word(word) => json!(word),
            };
            args.insert((*key).into(), value);
        }
        if open {
            args.insert("unfinished".into(), json!(true));
        }
        if !args.is_empty() {
            event.insert("args".into(), Value::Object(args));
        }
        Value::Object(event)
    }
}

/// The metadata that names a thread's lane.
pub(crate) fn thread_name(pid: u32, tid: u32, name: &str) -> Value {
    json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
}

/// The metadata that names a process.
pub(crate) fn process_name(pid: u32, name: &str) -> Value {
    json!({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_as_small_as_the_help_says() {
        // `--trace-events`' help and its default's memory are worked out from this.
        assert_eq!(std::mem::size_of::<Event>(), EVENT_BYTES);
    }

    #[test]
    fn labels_join_and_cut_on_a_character_boundary() {
        assert_eq!(("GET", "/hello").label().as_str(), "GET /hello");
        let long = format!("/{}", "é".repeat(40));
        let label = ("GET", long.as_str()).label();
        assert!(label.as_str().len() <= LABEL_BYTES && label.as_str().starts_with("GET /é"));
    }

    #[test]
    fn a_span_is_written_in_microseconds_with_its_connection() {
        let event = Event {
            ph: Ph::Complete,
            cat: Cat::Read,
            name: "read".label(),
            ts: 1_234_567,
            dur: 2_000,
            conn: 3,
            id: 0,
            args: [("bytes", 17u64.into()), NO_ARG],
        };
        let json = event.json(10, 11, false);
        assert_eq!(json["ts"], 1234.567);
        assert_eq!(json["dur"], 2.0);
        assert_eq!(json["args"], json!({"conn": 3, "bytes": 17}));
        assert_eq!((json["ph"].as_str(), json["cat"].as_str()), (Some("X"), Some("read")));
    }
}
