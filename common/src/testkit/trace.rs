//! Traces in tests: a version started with `--trace` as a child process, stopped, its file
//! read into typed events, and the checks every version's trace test calls: the format
//! (what Perfetto and `loadgen timeline` rely on), spans per thread, the threads that ran
//! handlers, the threads each connection was served on, spans that must not overlap.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Map, Value};

use super::{ChildServer, TIMEOUT, spawn_binary};
use crate::shutdown::DEADLINE;

/// A thread of a traced server: its process id and kernel thread id.
pub type Thread = (u32, u32);

/// A server binary started with `--trace FILE` (a file of its own in the temporary
/// directory, removed when this is dropped), on 127.0.0.1:0.
#[derive(Debug)]
pub struct TracedServer {
    /// Always some until dropped: taken first there, so that no child of the fork version
    /// writes its piece after the pieces are cleared.
    server: Option<ChildServer>,
    file: PathBuf,
}

impl TracedServer {
    /// Starts `binary` with `args` and `--trace` into a new file.
    pub fn start(binary: &str, args: &[&str]) -> Self {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let name = Path::new(binary).file_name().map_or("server".into(), |n| n.to_string_lossy());
        let file = std::env::temp_dir().join(format!(
            "trace-{name}-{}-{}.json",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&file);
        let path = file.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--trace", &path]);
        Self { server: Some(spawn_binary(binary, &all)), file }
    }

    fn server(&self) -> &ChildServer {
        // Taken only by `drop`.
        self.server.as_ref().expect("the server runs until dropped")
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server().addr()
    }

    pub fn pid(&self) -> u32 {
        self.server().pid()
    }

    /// Where the trace is written.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Stops the server gracefully (SIGTERM: it finishes what is in flight, then writes the
    /// trace) and reads its trace, checked against the format.
    pub fn stop(mut self) -> Result<Trace, String> {
        let server = self.server.as_mut().ok_or("the server is gone")?;
        server.signal(Signal::SIGTERM).map_err(|e| format!("SIGTERM: {e}"))?;
        let exited = server.wait_timeout(DEADLINE + TIMEOUT).map_err(|e| e.to_string())?;
        match exited {
            Some(status) if status.success() => Trace::read(&self.file),
            Some(status) => Err(format!("the server exited with {status}")),
            None => Err("the server was still running long after SIGTERM".into()),
        }
    }

    /// Waits until the server has written its trace by itself (a bound was reached), and
    /// reads it; the server goes on running.
    pub fn trace_written(&self, timeout: Duration) -> Result<Trace, String> {
        if !super::wait_until(timeout, || self.file.exists()) {
            return Err(format!("no trace at {} after {timeout:?}", self.file.display()));
        }
        Trace::read(&self.file)
    }
}

impl Drop for TracedServer {
    fn drop(&mut self) {
        // Killed (with its children) before the files go.
        drop(self.server.take());
        let _ = std::fs::remove_file(&self.file);
        // Pieces the fork version's children wrote that no parent merged (it was killed).
        let (Some(dir), Some(name)) = (self.file.parent(), self.file.file_name()) else { return };
        let prefix = format!("{}.child-", name.to_string_lossy());
        for entry in std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// One event of a trace, as the file has it (times in microseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    pub ph: String,
    pub cat: String,
    pub name: String,
    pub ts: f64,
    /// A span's length; 0 for anything else.
    pub dur: f64,
    pub pid: u32,
    pub tid: u32,
    /// A hand-off arrow's id.
    pub id: Option<u64>,
    pub args: Map<String, Value>,
}

impl TraceEvent {
    /// The connection it was for, if one.
    pub fn conn(&self) -> Option<u64> {
        self.args.get("conn").and_then(Value::as_u64)
    }

    pub fn thread(&self) -> Thread {
        (self.pid, self.tid)
    }

    pub fn end(&self) -> f64 {
        self.ts + self.dur
    }

    /// A count argument (`bytes`, `ready`, `count`, `child`).
    pub fn count(&self, key: &str) -> Option<u64> {
        self.args.get(key).and_then(Value::as_u64)
    }

    fn from_json(event: &Value) -> Self {
        let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
        let number = |key: &str| event[key].as_u64().and_then(|n| u32::try_from(n).ok());
        Self {
            ph: text("ph"),
            cat: text("cat"),
            name: text("name"),
            ts: event["ts"].as_f64().unwrap_or_default(),
            dur: event["dur"].as_f64().unwrap_or_default(),
            pid: number("pid").unwrap_or_default(),
            tid: number("tid").unwrap_or_default(),
            id: event["id"].as_u64(),
            args: event["args"].as_object().cloned().unwrap_or_default(),
        }
    }
}

/// A trace read from a file: its events (metadata apart) and what names the lanes.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Every event but the metadata, in the file's order.
    pub events: Vec<TraceEvent>,
    /// `otherData`: version, command, clock, events, dropped, limit.
    pub other: Value,
    thread_names: HashMap<Thread, String>,
    process_names: HashMap<u32, String>,
}

impl Trace {
    /// Reads `file` and checks it against the format ([`check_format`]).
    pub fn read(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        Self::parse(&text)
    }

    /// A trace from its JSON text, checked against the format.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        check_format(&document)?;
        let mut trace = Trace {
            events: Vec::new(),
            other: document["otherData"].clone(),
            thread_names: HashMap::new(),
            process_names: HashMap::new(),
        };
        for event in document["traceEvents"].as_array().into_iter().flatten() {
            let parsed = TraceEvent::from_json(event);
            let named = event["args"]["name"].as_str().unwrap_or_default().to_owned();
            match (parsed.ph.as_str(), parsed.name.as_str()) {
                ("M", "thread_name") => {
                    trace.thread_names.insert(parsed.thread(), named);
                }
                ("M", _) => {
                    trace.process_names.insert(parsed.pid, named);
                }
                _ => trace.events.push(parsed),
            }
        }
        Ok(trace)
    }

    /// The spans (complete events) of category `cat`.
    pub fn spans<'a>(&'a self, cat: &'a str) -> impl Iterator<Item = &'a TraceEvent> + 'a {
        self.events.iter().filter(move |e| e.ph == "X" && e.cat == cat)
    }

    /// The instants of category `cat`.
    pub fn instants<'a>(&'a self, cat: &'a str) -> impl Iterator<Item = &'a TraceEvent> + 'a {
        self.events.iter().filter(move |e| e.ph == "i" && e.cat == cat)
    }

    /// The lane's name, as the version named the thread.
    pub fn thread_name(&self, thread: Thread) -> Option<&str> {
        self.thread_names.get(&thread).map(String::as_str)
    }

    /// The process's name (the version).
    pub fn process_name(&self, pid: u32) -> Option<&str> {
        self.process_names.get(&pid).map(String::as_str)
    }

    /// Every thread's spans, in time order.
    pub fn spans_per_thread(&self) -> BTreeMap<Thread, Vec<&TraceEvent>> {
        let mut lanes: BTreeMap<Thread, Vec<&TraceEvent>> = BTreeMap::new();
        for span in self.events.iter().filter(|e| e.ph == "X") {
            lanes.entry(span.thread()).or_default().push(span);
        }
        for spans in lanes.values_mut() {
            spans.sort_by(|a, b| a.ts.total_cmp(&b.ts));
        }
        lanes
    }

    /// The threads that ran a handler.
    pub fn handler_threads(&self) -> BTreeSet<Thread> {
        self.spans("handle").map(TraceEvent::thread).collect()
    }

    /// For each connection, the threads its spans of categories `cats` ran on
    /// (`["read", "handle", "write"]`: the threads that served it).
    pub fn threads_per_conn(&self, cats: &[&str]) -> BTreeMap<u64, BTreeSet<Thread>> {
        let mut served: BTreeMap<u64, BTreeSet<Thread>> = BTreeMap::new();
        for event in self.events.iter().filter(|e| e.ph == "X" && cats.contains(&e.cat.as_str())) {
            if let Some(conn) = event.conn() {
                served.entry(conn).or_default().insert(event.thread());
            }
        }
        served
    }

    /// The hand-off arrows: each start (`s`) with its end (`f`), by id; an arrow whose end
    /// is missing (a job queued when recording stopped) is left out.
    pub fn handoffs(&self) -> Vec<(&TraceEvent, &TraceEvent)> {
        let ends: HashMap<u64, &TraceEvent> =
            self.events.iter().filter(|e| e.ph == "f").filter_map(|e| Some((e.id?, e))).collect();
        self.events
            .iter()
            .filter(|e| e.ph == "s")
            .filter_map(|start| Some((start, *ends.get(&start.id?)?)))
            .collect()
    }
}

/// The categories a span or instant may have: the drawing colours by them.
pub const CATEGORIES: [&str; 11] = [
    "wait", "accept", "read", "decode", "handle", "write", "handoff", "spawn", "poll", "reap",
    "close",
];

/// Checks a trace document against the format every version writes: `traceEvents`, each
/// event's `ph`, `name`, `pid`, and for all but metadata `ts`, `tid` and a known `cat`;
/// spans with a `dur`; arrows whose every end has its start; a name for every lane and
/// process; `otherData` with the clock and the counts.
pub fn check_format(document: &Value) -> Result<(), String> {
    let events = document["traceEvents"].as_array().ok_or("no traceEvents array")?;
    let other = &document["otherData"];
    if other["clock"] != "CLOCK_MONOTONIC" || !other["version"].is_string() {
        return Err(format!("otherData: {other}"));
    }
    if !(other["limit"].is_null() || other["limit"].is_string()) || !other["dropped"].is_u64() {
        return Err(format!("otherData's limit or dropped: {other}"));
    }
    let mut named = BTreeSet::new();
    let mut processes = BTreeSet::new();
    let mut lanes = BTreeSet::new();
    let mut starts = BTreeSet::new();
    let mut ends = Vec::new();
    for event in events {
        let fail = |what: &str| Err(format!("{what}: {event}"));
        let (Some(ph), Some(_), Some(pid)) =
            (event["ph"].as_str(), event["name"].as_str(), event["pid"].as_u64())
        else {
            return fail("an event without ph, name or pid");
        };
        if ph == "M" {
            match (event["name"].as_str(), event["args"]["name"].as_str(), event["tid"].as_u64()) {
                (Some("thread_name"), Some(_), Some(tid)) => named.insert((pid, tid)),
                (Some("process_name"), Some(_), _) => processes.insert(pid),
                _ => return fail("metadata that names no thread or process"),
            };
            continue;
        }
        let (Some(ts), Some(tid), Some(cat)) =
            (event["ts"].as_f64(), event["tid"].as_u64(), event["cat"].as_str())
        else {
            return fail("an event without ts, tid or cat");
        };
        if ts < 0.0 || !CATEGORIES.contains(&cat) {
            return fail("a negative time or an unknown category");
        }
        lanes.insert((pid, tid));
        match ph {
            "X" if event["dur"].as_f64().is_some_and(|d| d >= 0.0) => {}
            "i" if event["s"] == "t" => {}
            "s" if cat == "handoff" => {
                let Some(id) = event["id"].as_u64() else { return fail("an arrow with no id") };
                if !starts.insert(id) {
                    return fail("two arrows with one id");
                }
            }
            "f" if cat == "handoff" && event["bp"] == "e" => {
                ends.push(event["id"].as_u64().ok_or("an arrow's end with no id")?);
            }
            _ => return fail("not a span, instant or arrow of the format"),
        }
    }
    if let Some(lane) = lanes.difference(&named).next() {
        return Err(format!("thread {lane:?} has events but no thread_name"));
    }
    if let Some((pid, _)) = lanes.iter().find(|(pid, _)| !processes.contains(pid)) {
        return Err(format!("process {pid} has events but no process_name"));
    }
    if let Some(id) = ends.iter().find(|id| !starts.contains(id)) {
        return Err(format!("an arrow ends (id {id}) that never started"));
    }
    let recorded = events.iter().filter(|e| e["ph"] != "M").count() as u64;
    if other["events"].as_u64() != Some(recorded) {
        return Err(format!("otherData.events is {}, the file has {recorded}", other["events"]));
    }
    Ok(())
}

/// Checks that no two of `spans` overlap in time (one thread's handlers, one after the
/// other); names the first two that do.
pub fn check_no_overlap(spans: &[&TraceEvent]) -> Result<(), String> {
    let mut sorted = spans.to_vec();
    sorted.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    for pair in sorted.windows(2) {
        if pair[1].ts < pair[0].end() {
            return Err(format!("{:?} overlaps {:?}", pair[0], pair[1]));
        }
    }
    Ok(())
}
