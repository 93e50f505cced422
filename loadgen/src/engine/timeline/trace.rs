//! Reading a trace in the Chrome trace event format (what `--trace FILE` writes, what
//! Perfetto opens) into a [`Timeline`]: complete events (`X`) and instants (`i`) become
//! spans, thread names (`M`) name the lanes, flow events (`s`, `f`) paired by id become
//! hand-offs. Other phases (counters, begin/end pairs) are skipped: the format the
//! servers write has none, and another tool's extras should not stop a drawing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use super::{Category, Flow, Lane, Source, Span, Timeline};

/// What is wrong with a trace, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// The index of the event in `traceEvents`, when one event is at fault.
    pub event: Option<usize>,
    pub what: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event {
            Some(i) => write!(f, "not a trace the timeline can draw: event {i}: {}", self.what),
            None => write!(f, "not a trace the timeline can draw: {}", self.what),
        }
    }
}

impl std::error::Error for TraceError {}

fn whole(what: impl Into<String>) -> TraceError {
    TraceError { event: None, what: what.into() }
}

/// A span as read, before lanes have their numbers and times their origin.
struct Raw {
    key: (u32, u32),
    cat: Category,
    name: String,
    ts: f64,
    dur: f64,
    conn: Option<u64>,
    count: Option<u64>,
}

/// Reads a trace: the JSON object form (`{"traceEvents": [...]}`) or the bare array.
pub fn read(text: &str) -> Result<Timeline, TraceError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        whole(format!("it is not JSON ({e}); a trace written in full ends with `]}}`"))
    })?;
    let (events, other) = match &root {
        Value::Array(events) => (events, None),
        Value::Object(object) => match object.get("traceEvents") {
            Some(Value::Array(events)) => (events, object.get("otherData")),
            Some(_) => return Err(whole("`traceEvents` is not an array")),
            None => return Err(whole("a JSON object without `traceEvents`")),
        },
        _ => return Err(whole("neither an object with `traceEvents` nor an array of events")),
    };
    let mut reader = Reader::default();
    for (i, event) in events.iter().enumerate() {
        let Value::Object(event) = event else {
            return Err(TraceError { event: Some(i), what: "not a JSON object".into() });
        };
        reader.event(event).map_err(|what| TraceError { event: Some(i), what })?;
    }
    Ok(reader.finish(other))
}

/// A thread, as the trace names it: (pid, tid).
type Key = (u32, u32);

/// A hand-off as read: who queued and when, who took and when.
type RawFlow = (Key, f64, Key, f64);

#[derive(Default)]
struct Reader {
    names: HashMap<(u32, u32), String>,
    processes: HashMap<u32, String>,
    raw: Vec<Raw>,
    /// Flow starts by id: the sending thread and when.
    sent: HashMap<String, ((u32, u32), f64)>,
    /// Arrows' ends (`f`) read before their starts.
    taken: HashMap<String, ((u32, u32), f64)>,
    flows: Vec<RawFlow>,
}

impl Reader {
    fn event(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        let ph = event.get("ph").and_then(Value::as_str).ok_or("no `ph` (phase)")?;
        match ph {
            "M" => self.metadata(event),
            "X" | "i" | "I" => self.span(event, ph),
            "s" | "f" => self.flow(event, ph),
            _ => Ok(()),
        }
    }

    fn metadata(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        let name = event.get("args").and_then(|a| a.get("name")).and_then(Value::as_str);
        let Some(name) = name else { return Ok(()) };
        let pid = id(event, "pid")?;
        match event.get("name").and_then(Value::as_str) {
            Some("thread_name") => {
                self.names.insert((pid, id(event, "tid")?), name.to_owned());
            }
            Some("process_name") => {
                self.processes.insert(pid, name.to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    fn span(&mut self, event: &Map<String, Value>, ph: &str) -> Result<(), String> {
        let key = (id(event, "pid")?, id(event, "tid")?);
        let ts = time(event, "ts")?;
        let dur = if ph == "X" { time(event, "dur")? } else { 0.0 };
        let arg = |name: &str| event.get("args").and_then(|a| a.get(name)).and_then(Value::as_u64);
        self.raw.push(Raw {
            key,
            cat: Category::named(event.get("cat").and_then(Value::as_str).unwrap_or("")),
            name: event.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
            ts,
            dur,
            conn: arg("conn"),
            count: arg("count").or_else(|| arg("ready")),
        });
        Ok(())
    }

    fn flow(&mut self, event: &Map<String, Value>, ph: &str) -> Result<(), String> {
        let key = (id(event, "pid")?, id(event, "tid")?);
        let ts = time(event, "ts")?;
        // Ids are numbers in the servers' traces; the format also allows strings.
        let flow_id = match event.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("a flow event without an `id`".into()),
        };
        // The two ends may come in either order: a server writes its trace lane by lane,
        // so an arrow from a later lane to an earlier one has its end first. An end
        // without its other is a window cut between the two: not drawn.
        if ph == "s" {
            match self.taken.remove(&flow_id) {
                Some((to, to_ts)) => self.flows.push((key, ts, to, to_ts)),
                None => {
                    self.sent.insert(flow_id, (key, ts));
                }
            }
        } else {
            match self.sent.remove(&flow_id) {
                Some((from, from_ts)) => self.flows.push((from, from_ts, key, ts)),
                None => {
                    self.taken.insert(flow_id, (key, ts));
                }
            }
        }
        Ok(())
    }

    fn finish(self, other: Option<&Value>) -> Timeline {
        let Reader { names, processes, raw, flows, .. } = self;
        let lanes = order_lanes(&names, &raw);
        let index: HashMap<(u32, u32), usize> =
            lanes.iter().enumerate().map(|(i, l)| ((l.pid, l.tid), i)).collect();
        let origin =
            raw.iter().map(|r| r.ts).chain(flows.iter().map(|f| f.1)).fold(f64::INFINITY, f64::min);
        let origin = if origin.is_finite() { origin } else { 0.0 };
        let mut spans: Vec<Span> = raw
            .into_iter()
            .map(|r| Span {
                lane: index[&r.key],
                cat: r.cat,
                name: r.name,
                start_us: r.ts - origin,
                dur_us: r.dur,
                conn: r.conn,
                count: r.count,
            })
            .collect();
        spans.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
        let flows: Vec<Flow> = flows
            .into_iter()
            .filter_map(|(from, from_us, to, to_us)| {
                Some(Flow {
                    from: *index.get(&from)?,
                    from_us: from_us - origin,
                    to: *index.get(&to)?,
                    to_us: to_us - origin,
                })
            })
            .collect();
        let length_us =
            spans.iter().map(Span::end_us).chain(flows.iter().map(|f| f.to_us)).fold(0.0, f64::max);
        let other = |name: &str| other.and_then(|o| o.get(name));
        let process = other("version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| lanes.first().and_then(|l| processes.get(&l.pid).cloned()))
            .unwrap_or_default();
        Timeline {
            source: Source::Trace,
            process,
            lanes,
            spans,
            flows,
            marks: vec![],
            origin_us: origin,
            length_us,
            dropped: other("dropped").and_then(Value::as_u64).unwrap_or(0),
            limit: other("limit").and_then(Value::as_str).map(str::to_owned),
        }
    }
}

/// The lanes: a process's threads together, processes in the order they first did
/// something (the parent before the children it forked), a process's threads in the
/// order the kernel numbered them, which is the order they were started in (the main
/// thread first, a thread per connection after the one before it). A thread named but
/// never seen at work is drawn too: an idle worker is part of the picture.
fn order_lanes(names: &HashMap<Key, String>, raw: &[Raw]) -> Vec<Lane> {
    let mut keys: BTreeMap<Key, ()> = names.keys().map(|k| (*k, ())).collect();
    let mut process_first: HashMap<u32, f64> = HashMap::new();
    for r in raw {
        keys.insert(r.key, ());
        let p = process_first.entry(r.key.0).or_insert(f64::INFINITY);
        *p = p.min(r.ts);
    }
    let first = |pid: u32| process_first.get(&pid).copied().unwrap_or(f64::INFINITY);
    let mut keys: Vec<Key> = keys.into_keys().collect();
    keys.sort_by(|a, b| first(a.0).total_cmp(&first(b.0)).then(a.cmp(b)));
    keys.into_iter()
        .map(|(pid, tid)| Lane {
            pid,
            tid,
            name: names.get(&(pid, tid)).cloned().unwrap_or_else(|| format!("tid {tid}")),
        })
        .collect()
}

/// A `pid` or `tid`: a whole number.
fn id(event: &Map<String, Value>, field: &str) -> Result<u32, String> {
    event
        .get(field)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("no `{field}`, or not a whole number"))
}

/// A `ts` or `dur`: microseconds, a number at or above zero.
fn time(event: &Map<String, Value>, field: &str) -> Result<f64, String> {
    match event.get(field).and_then(Value::as_f64) {
        Some(t) if t >= 0.0 && t.is_finite() => Ok(t),
        Some(t) => Err(format!("`{field}` is {t}, not a time")),
        None => Err(format!("no `{field}` (microseconds), or not a number")),
    }
}
