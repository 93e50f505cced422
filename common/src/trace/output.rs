//! The trace as a JSON document: the whole file, the live window, and the fork version's
//! pieces (each child writes `FILE.child-PID`; the parent merges them into `FILE` and
//! deletes them).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::event::{Event, process_name, thread_name};
use super::lanes::Lane;
use super::recorder::{self, Setup};

/// The names the lanes are drawn under: a thread's own name, numbered when several
/// threads of a process share it (the `threadpool` crate names every worker alike:
/// `worker-1`, `worker-2`, in the order they first recorded).
fn lane_names(lanes: &[Arc<Lane>]) -> Vec<String> {
    let mut count: HashMap<(u32, &str), usize> = HashMap::new();
    for lane in lanes {
        *count.entry((lane.pid, lane.name.as_str())).or_default() += 1;
    }
    let mut seen: HashMap<(u32, &str), usize> = HashMap::new();
    lanes
        .iter()
        .map(|lane| {
            let key = (lane.pid, lane.name.as_str());
            if count.get(&key).is_none_or(|&n| n == 1) {
                return lane.name.clone();
            }
            let n = seen.entry(key).or_default();
            *n += 1;
            format!("{}-{n}", lane.name)
        })
        .collect()
}

/// The events of `lanes` stamped from `from` on (all: 0), with each lane's name and each
/// process's, and the waits still going on at `to`, drawn up to `to`.
///
/// Every lane's events are copied first, then written as JSON: writing is the slow part
/// (a second or more for a full window in a debug build), and a busy server goes on
/// recording meanwhile, its lanes letting go of what the full window no longer keeps. Had
/// each lane been written as it was read, the last lanes read would have lost the moments
/// the window was asked for (a v6 test found its handler's span gone that way).
fn events(setup: &Setup, lanes: &[Arc<Lane>], from: u64, to: u64) -> Vec<Value> {
    let copied: Vec<(Vec<Event>, Option<Event>)> = lanes
        .iter()
        .map(|lane| {
            let inner = lane.lock();
            let recent = inner.events.iter().filter(|e| e.ts + e.dur >= from).copied().collect();
            let open = inner.open.map(|open| Event { dur: to.saturating_sub(open.ts), ..open });
            (recent, open)
        })
        .collect();
    let mut out = Vec::new();
    let mut pids = Vec::new();
    for ((lane, name), (recent, open)) in lanes.iter().zip(lane_names(lanes)).zip(copied) {
        if !pids.contains(&lane.pid) {
            pids.push(lane.pid);
            out.push(process_name(lane.pid, setup.server));
        }
        out.push(thread_name(lane.pid, lane.tid, &name));
        out.extend(recent.iter().map(|e| e.json(lane.pid, lane.tid, false)));
        if let Some(open) = open {
            out.push(open.json(lane.pid, lane.tid, true));
        }
    }
    out
}

/// The document around `events`: `otherData` says what was recorded and why it stopped.
fn wrap(setup: &Setup, events: Vec<Value>) -> Value {
    let recorded = events.iter().filter(|e| e["ph"] != "M").count();
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "version": setup.server,
            "command": setup.command,
            "clock": "CLOCK_MONOTONIC",
            "events": recorded,
            "dropped": recorder::dropped(),
            "limit": recorder::limit(),
        },
    })
}

/// The whole trace: every lane's events and the children's `pieces`, as at `now`.
pub(crate) fn document(setup: &Setup, lanes: &[Arc<Lane>], pieces: &[Value], now: u64) -> Value {
    let mut all = events(setup, lanes, 0, now);
    all.extend(pieces.iter().cloned());
    wrap(setup, all)
}

/// The events of the last moments, `from` to `to`: what `GET /trace` answers.
pub(crate) fn window(setup: &Setup, lanes: &[Arc<Lane>], from: u64, to: u64) -> Value {
    let mut recent = events(setup, lanes, from, to);
    // An arrow whose start fell before the window has no start to be drawn from.
    let starts: std::collections::HashSet<u64> =
        recent.iter().filter(|e| e["ph"] == "s").filter_map(|e| e["id"].as_u64()).collect();
    recent.retain(|e| e["ph"] != "f" || e["id"].as_u64().is_some_and(|id| starts.contains(&id)));
    let mut document = wrap(setup, recent);
    document["otherData"]["window"] =
        json!({"from": from as f64 / 1000.0, "to": to as f64 / 1000.0});
    document
}

/// Writes `document` to `file` through a temporary file renamed over it, so that a reader
/// never finds half a trace.
pub(crate) fn write_atomically(file: &Path, document: &Value) -> io::Result<()> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut out = io::BufWriter::new(std::fs::File::create(&partial)?);
    serde_json::to_writer(&mut out, document)?;
    out.flush()?;
    drop(out);
    std::fs::rename(&partial, file)
}

/// Where the forked child `pid` writes its part of `file`.
fn piece_path(file: &Path, pid: u32) -> PathBuf {
    let mut piece = file.as_os_str().to_owned();
    piece.push(format!(".child-{pid}"));
    PathBuf::from(piece)
}

/// The pieces of `file` the children have written: their paths.
fn pieces(file: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { return vec![] };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}.child-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // One still being written is `….partial`, renamed when whole.
            name.starts_with(&prefix) && !name.ends_with(".partial")
        })
        .map(|entry| entry.path())
        .collect()
}

pub(crate) fn has_pieces(file: &Path) -> bool {
    !pieces(file).is_empty()
}

/// Reads and deletes every piece of `file`: their events, to merge.
pub(crate) fn take_pieces(file: &Path) -> Vec<Value> {
    let mut merged = Vec::new();
    for piece in pieces(file) {
        let read = std::fs::read(&piece)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()));
        match read {
            Ok(Value::Object(mut doc)) => {
                if let Some(Value::Array(events)) = doc.remove("traceEvents") {
                    merged.extend(events);
                }
            }
            Ok(_) => tracing::warn!("{}: not a trace; left out", piece.display()),
            // A piece is renamed into place whole, so this is a disk error, not a race.
            Err(e) => tracing::warn!("{}: {e}; left out", piece.display()),
        }
        let _ = std::fs::remove_file(&piece);
    }
    merged
}

/// A forked child's part of `file`: its own lane, written whole for the parent to merge.
pub(crate) fn write_piece(
    setup: &Setup,
    file: &Path,
    lanes: &[Arc<Lane>],
    now: u64,
) -> io::Result<()> {
    let piece = piece_path(file, std::process::id());
    let document = json!({"traceEvents": events(setup, lanes, 0, now)});
    // Renamed into place: the parent lists pieces by name and must not read half of one.
    let mut partial = piece.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, serde_json::to_vec(&document)?)?;
    std::fs::rename(&partial, &piece)
}
