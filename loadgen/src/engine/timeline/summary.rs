//! A timeline in a few figures, for a table beside the pictures and for tests that hold a
//! version to its model: how many threads worked, how many connections, on how many
//! threads one connection was served, how many hand-offs, how many completions one reap
//! took.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Category, Timeline};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Threads drawn (a lane each).
    pub lanes: usize,
    /// Threads seen doing something other than waiting.
    pub busy_lanes: usize,
    /// Connections seen.
    pub connections: usize,
    /// The most threads any one connection's reads, handlers and writes ran on.
    pub most_lanes_per_connection: usize,
    /// Handler spans, and the threads they ran on.
    pub handlers: usize,
    pub handler_lanes: usize,
    /// Hand-offs between threads (flow arrows).
    pub handoffs: usize,
    /// The most completions one reap took (v7, io_uring), if any reaped.
    pub most_reaped: Option<u64>,
    /// Of the busy threads' time in the window, the share spent waiting (0 to 1).
    pub waiting_share: f64,
}

/// What a connection's own work is: the spans that say it was served there.
fn serves(cat: Category) -> bool {
    matches!(
        cat,
        Category::Read | Category::Decode | Category::Handle | Category::Write | Category::Poll
    )
}

/// The figures of `timeline`.
pub fn summarize(timeline: &Timeline) -> Summary {
    let mut by_conn: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    let mut busy = BTreeSet::new();
    let mut handler_lanes = BTreeSet::new();
    let (mut handlers, mut waited, mut worked) = (0, 0.0, 0.0);
    for span in &timeline.spans {
        if let Some(conn) = span.conn {
            let lanes = by_conn.entry(conn).or_default();
            if serves(span.cat) {
                lanes.insert(span.lane);
            }
        }
        if span.cat == Category::Wait {
            waited += span.dur_us;
        } else {
            busy.insert(span.lane);
            worked += span.dur_us;
        }
        if span.cat == Category::Handle {
            handlers += 1;
            handler_lanes.insert(span.lane);
        }
    }
    let most_reaped =
        timeline.spans.iter().filter(|s| s.cat == Category::Reap).filter_map(|s| s.count).max();
    Summary {
        lanes: timeline.lanes.len(),
        busy_lanes: busy.len(),
        connections: by_conn.len(),
        most_lanes_per_connection: by_conn.values().map(BTreeSet::len).max().unwrap_or(0),
        handlers,
        handler_lanes: handler_lanes.len(),
        handoffs: timeline.flows.len(),
        most_reaped,
        waiting_share: if waited + worked > 0.0 { waited / (waited + worked) } else { 0.0 },
    }
}
