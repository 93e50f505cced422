//! A grade's picture of what each thread of the server did: the timeline's teaching
//! workload run against it while /proc is read every few milliseconds (a server in any
//! language records no trace the grader could read), drawn as the timeline draws a
//! version's, so a student sets their server's lanes beside the chapters' pictures.

use std::net::SocketAddr;

use serde::Serialize;

use crate::timeline::summary::{self, Summary};
use crate::timeline::workload::Workload;
use crate::timeline::{draw, sampled};
use crate::timelines::with_load;

/// What the sampler saw.
#[derive(Debug, Clone, Serialize)]
pub struct Threads {
    pub summary: Summary,
    /// Requests answered, and what the clients could not get.
    pub answered: u64,
    pub failures: Vec<String>,
    /// How long the newcomer waited for its answer, in milliseconds.
    pub newcomer_ms: Option<f64>,
    pub caption: String,
    /// The picture, for the page (not in `--json`: it is drawing, not data).
    #[serde(skip)]
    pub svg: String,
}

/// Runs the workload against the server at `addr` (process `pid`, when the grader started
/// it; `http` when its first HTTP conversation went well) and draws its threads; why not,
/// when it cannot.
pub fn run(addr: SocketAddr, http: bool, pid: Option<u32>) -> Result<Threads, String> {
    if !http {
        return Err("the workload's clients speak HTTP, which this server does not".into());
    }
    // A server the grader did not start is asked nothing of /proc (see `Target::Running`).
    let pid = pid.ok_or(
        "the grader reads /proc only of a server it started, and this one was running already",
    )?;
    let workload = Workload::new(addr);
    let (timeline, ran) =
        sampled::under_workload(pid, &workload).map_err(|e| format!("the workload failed: {e}"))?;
    let caption = sampled::caption(&timeline.process);
    let title = format!("{} (pid {pid}, sampled): what each thread did", timeline.process);
    Ok(Threads {
        summary: summary::summarize(&timeline),
        answered: ran.answered,
        failures: ran.failures,
        newcomer_ms: ran.newcomer_waited.map(|d| d.as_secs_f64() * 1000.0),
        svg: draw::svg(&timeline, &title, &with_load(&caption, &workload.describe())),
        caption,
    })
}
