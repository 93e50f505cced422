//! The verdict on a row: the limits the version hit (timeouts, refusals, starvation,
//! threads or processes that grew with the connections), in words, and what about the run
//! was not as assumed.

use super::{Outcome, Verdict};
use crate::measure::{Summary, fmt_us};

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
        if let Some(few) = few_answered(b) {
            limits.push(few);
        } else if e.timeout > 0 {
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
        (true, Some(b)) => match knife_edge(b) {
            Some(Edge::AtTheTimeout(text)) => Verdict { limit_hit: true, text },
            Some(Edge::Near(text)) => Verdict {
                limit_hit: false,
                text: format!("ok, {:.0} req/s, ⚠ {text}", b.requests_per_sec),
            },
            None => {
                Verdict { limit_hit: false, text: format!("ok, {:.0} req/s", b.requests_per_sec) }
            }
        },
        (true, None) => Verdict { limit_hit: false, text: "ok".into() },
        (false, _) => Verdict { limit_hit: true, text: limits.join("; ") },
    }
}

// ANCHOR: few_answered
/// Where the requests went when fewer than half of those sent were answered: a row that
/// answers 0 beside a neighbour's 10 says why, from the errors by kind. A request still
/// unanswered when the run ended (sent less than a timeout before its end) is neither
/// answered nor timed out: it is counted apart, so that answered and lost add up to sent.
fn few_answered(b: &Summary) -> Option<String> {
    if b.sent == 0 || b.requests * 2 >= b.sent {
        return None;
    }
    let e = &b.errors;
    let mut lost = Vec::new();
    if e.timeout > 0 {
        lost.push(format!(
            "{} got no answer within the {} timeout",
            e.timeout,
            fmt_us(b.timeout_us)
        ));
    }
    if e.bad_status > 0 {
        lost.push(format!("{} an error status", e.bad_status));
    }
    let waiting = b.sent.saturating_sub(b.requests + e.timeout + e.bad_status);
    if waiting > 0 {
        lost.push(format!("{waiting} were still waiting when the run ended"));
    }
    let dropped = e.refused + e.reset + e.closed;
    let held = if dropped == 0 && e.timeout > 0 {
        "; none was refused, reset or closed: the server held the requests and answered too late"
    } else {
        ""
    };
    Some(format!("answered {} of {} sent: {}{held}", b.requests, b.sent, lost.join(", ")))
}
// ANCHOR_END: few_answered

/// How close a run without a timeout came to one.
enum Edge {
    /// The median answer took the timeout or longer: half the answers were as late as
    /// the ones that time out, and the next run's ✔ or ✘ is a toss of a coin.
    AtTheTimeout(String),
    /// The median answer took most of the timeout: a ✔ that a slower run loses.
    Near(String),
}

/// Whether a run with no timeouts passed on a knife edge: its median answer at the
/// timeout (not awarded ✔) or within a fifth of it (awarded, and said so).
fn knife_edge(b: &Summary) -> Option<Edge> {
    let (p50, timeout) = (b.latency_us.p50, b.timeout_us);
    if timeout == 0 || timeout == u64::MAX || p50 * 5 < timeout * 4 {
        return None;
    }
    let (median, limit) = (fmt_us(p50), fmt_us(timeout));
    Some(if p50 >= timeout {
        Edge::AtTheTimeout(format!(
            "at the timeout: no request timed out, but the median answer took {median} \
             against a {limit} timeout, so the next run may time out half of them"
        ))
    } else {
        Edge::Near(format!(
            "a knife edge: the median answer took {median}, {:.0}% of the {limit} timeout",
            p50 as f64 * 100.0 / timeout as f64
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Errors, new_histogram};
    use std::time::Duration;

    /// A run's summary: `answered` requests of `sent`, each answered in `latency_us`, with
    /// `errors`, under a 500 ms timeout.
    fn run(answered: u64, sent: u64, latency_us: u64, errors: Errors) -> Summary {
        let mut histogram = new_histogram();
        histogram.record(latency_us).expect("within the histogram's bounds");
        let mut summary = Summary::new(answered, Duration::from_secs(1), &histogram, errors, 50);
        summary.sent = sent;
        summary.timeout_us = 500_000;
        summary
    }

    #[test]
    fn a_median_at_the_timeout_is_no_pass_and_one_near_it_is_a_knife_edge() {
        // The quick run's v4-nio on the slow handler: 50 clients ÷ 10 workers × 100 ms.
        let at = run(100, 100, 500_700, Errors::default());
        let Some(Edge::AtTheTimeout(text)) = knife_edge(&at) else { panic!("not at the edge") };
        assert!(text.contains("500.7 ms against a 500.0 ms timeout"), "{text}");
        let Some(Edge::Near(text)) = knife_edge(&run(100, 100, 450_000, Errors::default())) else {
            panic!("450 ms of 500 is near the edge");
        };
        assert!(text.contains("90% of the 500.0 ms timeout"), "{text}");
        assert!(knife_edge(&run(100, 100, 100_000, Errors::default())).is_none());
    }

    #[test]
    fn a_row_that_answers_almost_nothing_says_where_the_requests_went() {
        // v7 beside v5 in the quick run: 0 answered, every request held past its timeout,
        // and the ones sent in the run's last half-second still waiting at its end.
        let errors = Errors { timeout: 50, ..Errors::default() };
        let text = few_answered(&run(0, 100, 500_000, errors)).expect("none answered");
        assert_eq!(
            text,
            "answered 0 of 100 sent: 50 got no answer within the 500.0 ms timeout, 50 were \
             still waiting when the run ended; none was refused, reset or closed: the server \
             held the requests and answered too late"
        );
        assert!(few_answered(&run(90, 100, 1_000, Errors::default())).is_none());
    }
}
