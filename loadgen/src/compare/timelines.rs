//! The report's "What each thread did": every version's timeline under the teaching
//! workload, a row of figures each (threads, connections, on how many threads a
//! connection was served, hand-offs, the newcomer's wait), the sentence that reads each
//! picture, and the pictures, which are also files beside the report
//! (`timeline-<version>.svg`).

use std::path::Path;

use serde::Serialize;

use super::experiment::Table;
use crate::serve::Version;
use crate::timeline::workload::Workload;
use crate::timelines::{self, Taken};

/// A version's picture, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Drawn {
    pub version: Version,
    #[serde(flatten)]
    pub taken: Option<Taken>,
    pub error: Option<String>,
}

/// Takes every version's timeline in turn, the traces kept in `out/timelines/`.
pub fn run(versions: &[Version], out: &Path) -> Vec<Drawn> {
    let dir = out.join("timelines");
    versions
        .iter()
        .map(|&version| {
            eprintln!("timeline of {}", version.name());
            let args = timelines::teaching_args(version);
            match timelines::take(version, &args, &dir) {
                Ok(taken) => Drawn { version, taken: Some(taken), error: None },
                Err(e) => Drawn { version, taken: None, error: Some(format!("{e:#}")) },
            }
        })
        .collect()
}

/// What the section says of its settings.
pub fn settings() -> String {
    let workload = Workload::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).describe();
    format!(
        "{workload}; each version started with --trace and the options in its row (v3 with a \
         pool of four, so that the seven connections outnumber it), its trace cut to the \
         workload's moments"
    )
}

/// The figures of every picture, a row per version.
pub fn tables(drawn: &[Drawn]) -> Vec<Table> {
    let header = [
        "version",
        "options",
        "threads (worked)",
        "connections",
        "threads per connection, at most",
        "hand-offs",
        "threads that ran handlers",
        "most completions per reap",
        "newcomer waited",
    ];
    let rows = drawn
        .iter()
        .map(|d| {
            let Some(t) = &d.taken else {
                let mut row = vec![d.version.name().to_owned(), "not drawn".to_owned()];
                row.resize(header.len(), "-".into());
                return row;
            };
            let s = &t.summary;
            vec![
                d.version.name().to_owned(),
                t.args.join(" "),
                format!("{} ({})", s.lanes, s.busy_lanes),
                s.connections.to_string(),
                s.most_lanes_per_connection.to_string(),
                s.handoffs.to_string(),
                s.handler_lanes.to_string(),
                s.most_reaped.map_or("-".into(), |n| n.to_string()),
                t.newcomer_ms.map_or("no answer".into(), |ms| format!("{ms:.1} ms")),
            ]
        })
        .collect();
    vec![("What each thread did", header.map(str::to_owned).to_vec(), rows)]
}

/// The sentence that reads each picture, and what kept a picture from being drawn.
pub fn notes(drawn: &[Drawn]) -> Vec<String> {
    drawn
        .iter()
        .map(|d| match (&d.taken, &d.error) {
            (Some(t), _) if !t.failures.is_empty() => {
                format!(
                    "{}: {} (clients that gave up: {})",
                    d.version.name(),
                    t.caption,
                    t.failures.join("; ")
                )
            }
            (Some(t), _) => format!("{}: {}", d.version.name(), t.caption),
            (None, error) => {
                format!(
                    "{}: no picture: {}",
                    d.version.name(),
                    error.as_deref().unwrap_or("no trace")
                )
            }
        })
        .collect()
}

/// The pictures, each with its file's name.
pub fn chart_files(drawn: &[Drawn]) -> Vec<(String, String)> {
    drawn
        .iter()
        .filter_map(|d| {
            let t = d.taken.as_ref()?;
            Some((format!("timeline-{}.svg", d.version.name()), t.svg.clone()))
        })
        .collect()
}
