//! The scorecard of a grade made up to hold every kind of row, in both renderings.

use std::net::SocketAddr;

use super::super::fingerprint::{Answer, Fingerprint};
use super::super::knee::{Knee, Knees};
use super::super::matrix::{Row, RowOutcome, Weight};
use super::super::threads::Threads;
use super::super::transcript::{Check, Failure, Protocol, Verdict};
use super::super::versus::{Idle, Run, Versus};
use super::super::{Grade, versus};
use super::{html, terminal};
use crate::timeline::summary::Summary;

fn run(requests_per_sec: f64, cpu: Option<f64>, answered: usize, bound: bool) -> Run {
    Run {
        requests_per_sec,
        cpu_us_per_request: cpu,
        clients_answered: answered,
        clients: 64,
        errors: 0,
        generator_bound: bound,
    }
}

/// A sweep whose steps offered `rates`, the last one over the SLO.
fn knee(rates: &[f64], generator_bound: bool) -> Knee {
    let steps: Vec<_> = rates
        .iter()
        .enumerate()
        .map(|(i, &offered)| crate::sweep::Step {
            offered,
            due: offered as u64,
            sent: offered as u64,
            throughput: offered,
            goodput: offered,
            good: offered as u64,
            latency_us: crate::measure::Percentiles {
                p99: if i + 1 == rates.len() { 900_000 } else { 24_000 },
                ..Default::default()
            },
            errors: Default::default(),
            unavailable: 0,
            send_lag_p99_us: 0,
            generator_share: 0.1,
            connections_max: 1,
            generator_bound: false,
            generator_bound_reason: None,
            server: Default::default(),
        })
        .collect();
    let knee = crate::sweep::knee(&steps, 100_000);
    Knee { knee, steps, generator_bound }
}

fn transcripts() -> Vec<Check> {
    let check = |protocol, name, outcome| Check { protocol, name, outcome };
    let failure = Failure {
        sent: "GET /hello HTTP/1.1\\r\\n\\r\\n".into(),
        expected: "200, with Content-Length".into(),
        received: "\"HTTP/1.1 200 OK\\r\\n\\r\\nHello\" <no length>".into(),
    };
    vec![
        check(Protocol::Line, "GET /hello is answered", Verdict::Pass),
        check(Protocol::Line, "exit", Verdict::NotServed { why: "404 for exit".into() }),
        check(Protocol::Http, "GET /hello over HTTP/1.1", Verdict::Fail(failure)),
        check(Protocol::Http, "keep-alive", Verdict::NotRun),
    ]
}

fn matrix() -> Vec<Row> {
    let row = |fault, outcome: RowOutcome| {
        let why = match &outcome {
            RowOutcome::Fail { why } => Some(why.clone()),
            _ => None,
        };
        let weight = Weight::of(fault, why.as_deref());
        Row { fault, describe: fault, expected: "others wait".into(), outcome, weight }
    };
    let fail = |why: &str| RowOutcome::Fail { why: why.into() };
    let crash = "the server stopped answering (a crash): connection refused";
    vec![
        row("slowloris", RowOutcome::Pass),
        row("smuggling_obs_fold", fail("served")),
        row("silent_connection", fail("held for good\n> GET /")),
        row("panicking_handler", RowOutcome::Skipped { why: "a route it does not serve".into() }),
        row("chunked_upload", fail(crash)),
    ]
}

/// A grade with a row of every kind: passed, failed, not served, not run, not asked.
fn sample() -> Grade {
    let answer = |question, answer: &str, evidence: &str| Answer {
        question,
        answer: answer.into(),
        evidence: evidence.into(),
        asked: true,
    };
    let fingerprint = Fingerprint {
        serial: Some(false),
        pool: Some(4),
        answers: vec![
            answer("Is a second client answered?", "yes", "answered in 1.2 ms"),
            answer("Does a slow handler stall others?", "not asked: a pool", ""),
        ],
        ..Fingerprint::default()
    };
    Grade {
        target: "python3 <pool>.py --name \"four\"".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 4000)),
        transcripts: transcripts(),
        protocol: Some(Protocol::Line),
        fingerprint: Some(fingerprint),
        closest: Some("v3-thread-pool"),
        why: "a pool of 4".into(),
        matrix: matrix(),
        matrix_skipped: None,
        versus_version: Some("v3-thread-pool --threads 4".into()),
        versus: vec![Versus {
            scenario: "keep-alive",
            graded: run(1500.0, Some(20.0), 4, false),
            version: run(3000.0, None, 4, true),
        }],
        idle: Some(Idle { graded_us: Some(800), version_us: None }),
        versus_skipped: None,
        knees: Some(Knees {
            workload: "GET /sleep?ms=20, a new connection per request".into(),
            slo_us: 100_000,
            against: "v3-thread-pool --threads 4".into(),
            graded: knee(&[101.0, 127.0, 160.0], false),
            version: knee(&[101.0, 127.0, 160.0, 202.0, 254.0], true),
            predicted: Some(200.0),
            predicted_from: "4 / 20 ms".into(),
        }),
        knees_skipped: None,
        threads: Some(Threads {
            summary: Summary { lanes: 6, busy_lanes: 5, ..Summary::default() },
            answered: 82,
            failures: vec![],
            newcomer_ms: Some(225.8),
            caption: "Gold while on a CPU.".into(),
            svg: "<svg class=\"timeline\" data-lanes=\"6\"></svg>".into(),
        }),
        threads_skipped: None,
        server_log: Some("/tmp/grade-server.log".into()),
    }
}

#[test]
fn the_terminal_shows_every_row_with_its_mark_and_what_it_rests_on() {
    let text = terminal(&sample(), false);
    let wait = format!("{:?}", versus::NEWCOMER_WAIT);
    let expected = [
        "Grading python3 <pool>.py --name \"four\" (on 127.0.0.1:4000)",
        "",
        "1. Does it speak the protocol?",
        "  ✔ [line] GET /hello is answered",
        "  – [line] exit (not served: 404 for exit)",
        "  ✘ [HTTP] GET /hello over HTTP/1.1",
        "      sent:     GET /hello HTTP/1.1\\r\\n\\r\\n",
        "      expected: 200, with Content-Length",
        "      received: \"HTTP/1.1 200 OK\\r\\n\\r\\nHello\" <no length>",
        "  · [HTTP] keep-alive (not run: an earlier one failed)",
        "",
        "2. What model is it?",
        "  Is a second client answered?",
        "    yes",
        "    (answered in 1.2 ms)",
        "  Does a slow handler stall others?",
        "    not asked: a pool",
        "",
        "  Behaves like v3-thread-pool: a pool of 4.",
        "",
        "What each thread did",
        "  (four keep-alive clients asking /hello every 25 ms, one asking /sleep?ms=50, one idle connection and a newcomer half-way, for half a second)",
        "  (6 threads seen, 5 of them on a CPU at some point; 82 requests answered, the newcomer's in 225.8 ms)",
        "  (Gold while on a CPU)",
        "  (its picture is on the page `--html` writes)",
        "",
        "3. What does it survive?",
        "  (each fault against a fresh server; the rows about slow clients expect it to close an idle",
        "   connection, or a request that has not arrived whole, within a few seconds)",
        "  ✘ [crash or lost data] chunked_upload: others wait",
        "      the server stopped answering (a crash): connection refused",
        "  ✘ [concurrency] silent_connection: others wait",
        "      held for good",
        "      > GET /",
        "  ✘ [protocol detail] smuggling_obs_fold: others wait",
        "      served",
        "  ✔ slowloris: others wait",
        "  – panicking_handler: others wait (not asked: a route it does not serve)",
        "",
        "  1 of the 4 faults asked handled as its model should",
        "  Fix first the 1 that crash it or lose an answer a client was owed, then the 1 about slow, idle, silent or too many clients (what its model is about); the 1 about HTTP's finer points matter least for the model.",
        "",
        "4. How does it compare?",
        "  (against v3-thread-pool --threads 4, by turns in this run: only the ratios mean anything beyond this machine)",
        "  keep-alive",
        "    it: 1500 req/s, 20.0 µs CPU per request (4 of 64 clients answered)",
        "    v3-thread-pool --threads 4: 3000 req/s, – CPU per request (4 of 64 clients answered; loadgen's thread was busy: the rate may be its limit)",
        "    requests/s ratio: 0.50×",
        "    CPU/request ratio: –",
        &format!("  idle clients and a newcomer: {} silent connections, then GET /hello given {wait}", versus::IDLE),
        "    it: answered in 800 µs",
        &format!("    v3-thread-pool --threads 4: not answered within {wait}"),
        "",
        "5. Where does it stop keeping up?",
        "  (GET /sleep?ms=20, a new connection per request; the knee is the highest offered rate whose p99 stayed within 100.0 ms)",
        "  (beside v3-thread-pool --threads 4: Little's law predicts 200 req/s for it (4 / 20 ms))",
        "  it",
        "    127 req/s (p99 24.0 ms); 3 steps up to 160 req/s",
        "  v3-thread-pool --threads 4",
        "    202 req/s (p99 24.0 ms); 5 steps up to 254 req/s; generator-bound: the knee may be loadgen's",
        "",
        "  Its knee is 0.63× the closest version's.",
        "",
        "The server's own output: /tmp/grade-server.log",
        "",
        "Graded.",
        "",
    ]
    .join("\n");
    assert_eq!(text, expected, "\n{text}");
    let coloured = terminal(&sample(), true);
    assert!(coloured.contains("\x1b[31m✘\x1b[0m [HTTP]"), "{coloured}");
    assert!(coloured.contains("Behaves like \x1b[1mv3-thread-pool\x1b[0m: "), "{coloured}");
}

#[test]
fn the_page_holds_the_same_rows_escaped_with_failures_marked() {
    let page = html(&sample());
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</body></html>\n"));
    assert!(page.contains("<p><strong>Behaves like v3-thread-pool: a pool of 4.</strong></p>"));
    // Nothing the server sent, nor its command, can open a tag or close an attribute.
    assert!(!page.contains("<pool>") && !page.contains("<no length>"), "{page}");
    assert!(page.contains("received: &quot;HTTP/1.1 200 OK"), "{page}");
    // The picture of its threads, as it was drawn, under its heading.
    let threads = page.find("<h2>What each thread did</h2>").expect("the threads' heading");
    assert!(page[threads..].contains(r#"<svg class="timeline" data-lanes="6"></svg>"#), "{page}");
    for row in [
        "<tr><td>✔ pass</td><td>line</td><td>GET /hello is answered</td><td></td></tr>",
        "<tr><td>not served</td><td>line</td><td>exit</td><td>404 for exit</td></tr>",
        "<tr><td>not run</td><td>HTTP</td><td>keep-alive</td><td>an earlier one failed</td></tr>",
        "<td class=\"limit\">✘ not as expected</td><td>concurrency</td><td>silent_connection</td>",
        "<tr><td>not asked</td><td></td><td>panicking_handler</td>",
        "<th>v3-thread-pool --threads 4</th>",
        "<td>0.50×</td>",
        "<p>1 of the 4 faults asked handled as its model should</p>",
        "<p>Against v3-thread-pool --threads 4, by turns in this run: only the ratios mean anything beyond this machine.</p>",
        "<td>it</td><td>127 req/s (p99 24.0 ms); 3 steps up to 160 req/s</td>",
        "<p>Its knee is 0.63× the closest version's.</p>",
    ] {
        assert!(page.contains(row), "no {row:?} in\n{page}");
    }
    for stage in [
        "1. Does it speak",
        "2. What model",
        "3. What does it survive",
        "4. How does it",
        "5. Where does it stop",
    ] {
        assert_eq!(page.matches(stage).count(), 1, "{stage}");
    }
}

#[test]
fn a_server_that_cannot_be_graded_says_why_in_both() {
    let grade = Grade {
        protocol: None,
        fingerprint: None,
        closest: None,
        why: "it never answers".into(),
        matrix: Vec::new(),
        matrix_skipped: Some("the model is not known".into()),
        versus: Vec::new(),
        versus_version: None,
        idle: None,
        versus_skipped: Some("no workspace version is close enough".into()),
        knees: None,
        knees_skipped: Some("not asked for (--no-knee)".into()),
        ..sample()
    };
    let text = terminal(&grade, false);
    assert!(text.contains("2. What model is it?\n  not asked: it never answers.\n"), "{text}");
    assert!(text.contains("  not asked: the model is not known.\n"), "{text}");
    assert!(text.ends_with("\nNot gradable: see the first ✘ above.\n"), "{text}");
    let page = html(&grade);
    assert!(page.contains("<p><strong>Not gradable: it never answers.</strong></p>"), "{page}");
    assert!(page.contains("<p>Not asked: no workspace version is close enough.</p>"), "{page}");
    assert!(
        text.contains(
            "5. Where does it stop keeping up?\n  not asked: not asked for (--no-knee).\n"
        ),
        "{text}"
    );
}
