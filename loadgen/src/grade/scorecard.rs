//! Stage 5: the scorecard, for a terminal (in colour when it is one) and as a page that
//! needs nothing else to open, in the style of the compare report.

use std::fmt::Write as _;

use super::transcript::{Outcome, Protocol};
use super::{Grade, matrix, versus};
use crate::render::{escape_html, html_table, page_start};

/// The scorecard for a terminal (plain text; `color` adds ✔/✘ in colour).
pub fn terminal(grade: &Grade, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    };
    let mut out =
        format!("Grading {} (on {})\n\n1. Does it speak the protocol?\n", grade.target, grade.addr);
    for check in &grade.transcripts {
        let protocol = match check.protocol {
            Protocol::Line => "line",
            Protocol::Http => "HTTP",
        };
        let (mark, note) = match &check.outcome {
            Outcome::Pass => (paint("32", "✔"), String::new()),
            Outcome::Fail(failure) => (
                paint("31", "✘"),
                format!(
                    "\n      sent:     {}\n      expected: {}\n      received: {}",
                    failure.sent, failure.expected, failure.received
                ),
            ),
            Outcome::NotServed { why } => ("–".to_owned(), format!(" (not served: {why})")),
            Outcome::NotRun => ("·".to_owned(), " (not run: an earlier one failed)".to_owned()),
        };
        out += &format!("  {mark} [{protocol}] {}{note}\n", check.name);
    }
    out += "\n2. What model is it?\n";
    match &grade.fingerprint {
        None => out += &format!("  not asked: {}.\n", grade.why),
        Some(f) => {
            for a in &f.answers {
                out += &format!("  {}\n    {}\n", a.question, a.answer);
                if !a.evidence.is_empty() {
                    out += &format!("    ({})\n", a.evidence);
                }
            }
            out += &match grade.closest {
                Some(name) => format!("\n  Behaves like {}: {}.\n", paint("1", name), grade.why),
                None => format!("\n  Like no workspace version: {}.\n", grade.why),
            };
        }
    }
    out += "\n3. What does it survive?\n";
    match &grade.matrix_skipped {
        Some(why) => out += &format!("  not asked: {why}.\n"),
        None => {
            out += "  (each fault against a fresh server; the rows about slow clients expect it to close an idle\n   connection, or a request that has not arrived whole, within a few seconds)\n";
            for row in &grade.matrix {
                let (mark, note) = match &row.outcome {
                    matrix::RowOutcome::Pass => (paint("32", "✔"), String::new()),
                    matrix::RowOutcome::Fail { why } => {
                        (paint("31", "✘"), format!("\n      {}", why.replace('\n', "\n      ")))
                    }
                    matrix::RowOutcome::Skipped { why } => {
                        ("–".to_owned(), format!(" (not asked: {why})"))
                    }
                };
                out += &format!("  {mark} {}: {}{note}\n", row.describe, row.expected);
            }
            let asked: Vec<_> = grade
                .matrix
                .iter()
                .filter(|r| !matches!(r.outcome, matrix::RowOutcome::Skipped { .. }))
                .collect();
            let passed =
                asked.iter().filter(|r| matches!(r.outcome, matrix::RowOutcome::Pass)).count();
            out += &format!(
                "  {passed} of the {} faults asked handled as its model should\n",
                asked.len()
            );
        }
    }
    out += "\n4. How does it compare?\n";
    match (&grade.versus_skipped, &grade.versus_version) {
        (Some(why), _) => out += &format!("  not asked: {why}.\n"),
        (None, Some(version)) => {
            out += &format!(
                "  (against {version}, by turns in this run: only the ratios mean anything beyond this machine)\n"
            );
            for v in &grade.versus {
                let cpu = |run: &versus::Run| {
                    run.cpu_us_per_request.map_or("–".to_owned(), |us| format!("{us:.1} µs"))
                };
                let starved = |run: &versus::Run| {
                    let mut notes = String::new();
                    if run.clients_answered < run.clients {
                        notes += &format!(
                            ", {} of {} clients answered",
                            run.clients_answered, run.clients
                        );
                    }
                    if run.generator_bound {
                        notes += ", loadgen's thread was busy: the rate may be its limit";
                    }
                    notes
                };
                out += &format!(
                    "  {}\n    it: {:.0} req/s, {} CPU per request{}\n    {version}: {:.0} req/s, {} CPU per request{}\n    {} the requests per second, {} the CPU per request\n",
                    v.scenario,
                    v.graded.requests_per_sec,
                    cpu(&v.graded),
                    starved(&v.graded),
                    v.version.requests_per_sec,
                    cpu(&v.version),
                    starved(&v.version),
                    versus::ratio(v.graded.requests_per_sec, v.version.requests_per_sec),
                    match (v.graded.cpu_us_per_request, v.version.cpu_us_per_request) {
                        (Some(a), Some(b)) => versus::ratio(a, b),
                        _ => "–".to_owned(),
                    },
                );
            }
        }
        (None, None) => {}
    }
    if let (Some(idle), Some(version)) = (&grade.idle, &grade.versus_version) {
        out += &format!(
            "  idle clients and a newcomer: {} silent connections, then GET /hello given {:?}\n    it: {}\n    {version}: {}\n",
            versus::IDLE,
            versus::NEWCOMER_WAIT,
            newcomer(idle.graded_us),
            newcomer(idle.version_us),
        );
    }
    if let Some(log) = &grade.server_log {
        out += &format!("\nThe server's own output: {}\n", log.display());
    }
    out +=
        if grade.passed() { "\nGraded.\n" } else { "\nNot gradable: see the first ✘ above.\n" };
    out
}

/// A newcomer's wait, for people.
fn newcomer(us: Option<u64>) -> String {
    match us {
        Some(us) if us < 1000 => format!("answered in {us} µs"),
        Some(us) => format!("answered in {:.1} ms", us as f64 / 1000.0),
        None => format!("not answered within {:?}", versus::NEWCOMER_WAIT),
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Line => "line",
        Protocol::Http => "HTTP",
    }
}

/// The scorecard as an HTML page: the same stages, as tables.
pub fn html(grade: &Grade) -> String {
    let mut html = page_start(&format!("Grade: {}", grade.target));
    let verdict = match grade.closest {
        Some(name) => format!("Behaves like {name}: {}.", grade.why),
        None if grade.passed() => format!("Like no workspace version: {}.", grade.why),
        None => format!("Not gradable: {}.", grade.why),
    };
    let _ = write!(
        html,
        "<p><strong>{}</strong></p><p>Graded on {}.</p>",
        escape_html(&verdict),
        grade.addr
    );

    html += "<h2>1. Does it speak the protocol?</h2>";
    let rows: Vec<Vec<String>> = grade
        .transcripts
        .iter()
        .map(|c| {
            let (mark, detail) = match &c.outcome {
                Outcome::Pass => ("✔ pass".to_owned(), String::new()),
                Outcome::Fail(f) => (
                    "✘ fail".to_owned(),
                    format!("sent: {}\nexpected: {}\nreceived: {}", f.sent, f.expected, f.received),
                ),
                Outcome::NotServed { why } => ("not served".to_owned(), why.clone()),
                Outcome::NotRun => ("not run".to_owned(), "an earlier one failed".to_owned()),
            };
            vec![mark, protocol_name(c.protocol).to_owned(), c.name.to_owned(), detail]
        })
        .collect();
    html += &html_table(&["", "protocol", "conversation", "bytes"], &rows);

    html += "<h2>2. What model is it?</h2>";
    match &grade.fingerprint {
        None => html += "<p>Not asked.</p>",
        Some(f) => {
            let rows: Vec<Vec<String>> = f
                .answers
                .iter()
                .map(|a| vec![a.question.to_owned(), a.answer.clone(), a.evidence.clone()])
                .collect();
            html += &html_table(&["question", "answer", "what was seen"], &rows);
        }
    }

    html += "<h2>3. What does it survive?</h2>";
    match &grade.matrix_skipped {
        Some(why) => {
            let _ = write!(html, "<p>Not asked: {}.</p>", escape_html(why));
        }
        None => {
            let rows: Vec<Vec<String>> = grade
                .matrix
                .iter()
                .map(|r| {
                    let (mark, note) = match &r.outcome {
                        matrix::RowOutcome::Pass => ("✔ as expected".to_owned(), String::new()),
                        matrix::RowOutcome::Fail { why } => {
                            ("✘ not as expected".to_owned(), why.clone())
                        }
                        matrix::RowOutcome::Skipped { why } => {
                            ("not asked".to_owned(), why.clone())
                        }
                    };
                    vec![mark, r.describe.to_owned(), r.expected.clone(), note]
                })
                .collect();
            html += &html_table(&["", "fault", "expected of its model", "what happened"], &rows);
        }
    }

    html += "<h2>4. How does it compare?</h2>";
    match (&grade.versus_skipped, &grade.versus_version) {
        (Some(why), _) => {
            let _ = write!(html, "<p>Not asked: {}.</p>", escape_html(why));
        }
        (None, Some(version)) => {
            let _ = write!(
                html,
                "<p>Against {}, by turns in this run: only the ratios mean anything beyond this machine.</p>",
                escape_html(version)
            );
            let cpu = |run: &versus::Run| {
                run.cpu_us_per_request.map_or("–".to_owned(), |us| format!("{us:.1} µs"))
            };
            let cell = |run: &versus::Run| {
                let bound = if run.generator_bound {
                    "; loadgen's thread was busy: the rate may be its limit"
                } else {
                    ""
                };
                format!(
                    "{:.0} req/s, {} ({} of {} clients answered{bound})",
                    run.requests_per_sec,
                    cpu(run),
                    run.clients_answered,
                    run.clients
                )
            };
            let rows: Vec<Vec<String>> = grade
                .versus
                .iter()
                .map(|v| {
                    vec![
                        v.scenario.to_owned(),
                        cell(&v.graded),
                        cell(&v.version),
                        versus::ratio(v.graded.requests_per_sec, v.version.requests_per_sec),
                        match (v.graded.cpu_us_per_request, v.version.cpu_us_per_request) {
                            (Some(a), Some(b)) => versus::ratio(a, b),
                            _ => "–".to_owned(),
                        },
                    ]
                })
                .collect();
            html += &html_table(
                &["scenario", "it", version.as_str(), "requests/s ratio", "CPU/request ratio"],
                &rows,
            );
        }
        (None, None) => {}
    }
    if let (Some(idle), Some(version)) = (&grade.idle, &grade.versus_version) {
        let rows = vec![vec![
            format!(
                "{} silent connections, then GET /hello given {:?}",
                versus::IDLE,
                versus::NEWCOMER_WAIT
            ),
            newcomer(idle.graded_us),
            newcomer(idle.version_us),
        ]];
        html += &html_table(&["idle clients and a newcomer", "it", version.as_str()], &rows);
    }
    html + "</body></html>\n"
}
