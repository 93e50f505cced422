//! The verdict on a row: the limits the version hit (timeouts, refusals, starvation,
//! threads or processes that grew with the connections), in words, and what about the run
//! was not as assumed.

use super::{Outcome, Verdict};
use crate::measure::fmt_us;

/// Growth in threads or processes past this many counts as "exploded".
const GROWTH_LIMIT: u64 = 100;

/// Reads the limits off an outcome (timeouts, refusals, starvation, threads or processes
/// that grew with the connections), and says what about the run was not as assumed.
pub fn verdict(outcome: &Outcome) -> Verdict {
    let mut verdict = limits(outcome);
    if !outcome.assumptions.is_empty() {
        verdict.text += &format!(" ⚠ {}", outcome.assumptions.join("; "));
    }
    verdict
}

// ANCHOR: never_accepted
/// What a connection that "timed out connecting" was, from the kernel's counts: a handshake
/// that never completed. When the accept queue is full, the kernel drops the client's SYN
/// (or its last ACK) and counts a listen overflow; the client sends it again, a second
/// apart for the first five retries on Linux 6.5 and later (`tcp_syn_linear_timeouts`),
/// then doubling, and gives up when its own timeout comes first.
fn never_accepted(connections: u64, outcome: &Outcome) -> String {
    let what = format!("{connections} connections never accepted in time");
    match &outcome.listen {
        Some(l) if l.overflows > 0 => format!(
            "{what}: their handshakes never completed, because the accept queue (cap {}) was \
             full and the kernel dropped {} SYNs or ACKs (listen overflows), which the \
             clients kept resending until their connect timeout",
            l.cap, l.overflows
        ),
        Some(_) => format!("{what}; the kernel counted no listen overflow, so not a full queue"),
        None => what,
    }
}
// ANCHOR_END: never_accepted

fn limits(outcome: &Outcome) -> Verdict {
    let mut limits = Vec::new();
    if let Some(b) = &outcome.bench {
        let e = &b.errors;
        if e.timeout > 0 {
            limits.push(format!("{} requests timed out", e.timeout));
        }
        if e.connect_timeout > 0 {
            limits.push(never_accepted(e.connect_timeout, outcome));
        }
        if e.refused > 0 {
            limits.push(format!("{} connections refused", e.refused));
        }
        if e.reset + e.closed > 0 {
            limits.push(format!("{} connections reset or closed", e.reset + e.closed));
        }
        if e.bad_status + e.other > 0 {
            limits.push(format!("{} bad answers", e.bad_status + e.other));
        }
    }
    let p = &outcome.server;
    if p.max_processes.saturating_sub(p.before.processes) >= GROWTH_LIMIT {
        limits.push(format!("processes grew to {}", p.max_processes));
    } else if p.max_threads.saturating_sub(p.before.threads) >= GROWTH_LIMIT {
        limits.push(format!("threads grew to {}", p.max_threads));
    }
    if let Some(h) = &outcome.hold {
        let answer = match h.answered_in_us {
            None => format!("starved: no answer in {}", fmt_us(h.timeout_us)),
            Some(us) => format!("answered in {}", fmt_us(us)),
        };
        let limit_hit = h.starved() || !limits.is_empty();
        limits.insert(0, answer);
        return Verdict { limit_hit, text: limits.join("; ") };
    }
    match (limits.is_empty(), &outcome.bench) {
        (true, Some(b)) => {
            Verdict { limit_hit: false, text: format!("ok, {:.0} req/s", b.requests_per_sec) }
        }
        (true, None) => Verdict { limit_hit: false, text: "ok".into() },
        (false, _) => Verdict { limit_hit: true, text: limits.join("; ") },
    }
}
