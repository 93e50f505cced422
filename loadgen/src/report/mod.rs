//! The comparison's outputs: a table on the terminal ([`terminal()`]), `report.md`
//! ([`markdown()`]), a self-contained `report.html` with SVG charts ([`html()`],
//! [`charts()`]), and the raw `results.json`. This file holds what the three formats share:
//! the tables of a scenario, the limits matrix, the sentences around them.
//!
//! Each format walks the scenarios, then the experiments; an experiment's tables and
//! charts are its own ([`crate::compare::Findings`]), drawn alike whatever it is.

mod charts;
mod html;
mod markdown;
mod split;
mod terminal;

use std::path::{Path, PathBuf};

use crate::compare::{Comparison, Outcome, ScenarioResult};
use crate::measure::{fmt_bytes, fmt_us};
use crate::serve::Subject;

pub use charts::charts;
pub use html::html;
pub use markdown::markdown;
pub use terminal::terminal;

/// Writes the three files, and the experiments' charts that `report.md` shows, into `dir`
/// and returns their paths.
pub fn write_all(
    comparison: &Comparison,
    command: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = vec![
        ("results.json".to_owned(), serde_json::to_string_pretty(comparison)?),
        ("report.md".to_owned(), markdown(comparison, command)),
        ("report.html".to_owned(), html(comparison, command)),
    ];
    // The charts report.md shows, as files of their own.
    files.extend(comparison.experiments.iter().flat_map(|e| e.findings.chart_files()));
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

/// A table's title (none for the versions'), header and rows.
pub(crate) type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// A scenario's table in the report: the versions', and apart from them the reference
/// servers', with the same columns.
pub(crate) fn tables(scenario: &ScenarioResult) -> Vec<Table> {
    let mut tables = Vec::new();
    for (title, outcomes) in [("", &scenario.outcomes), (PEERS_TITLE, &scenario.peers)] {
        if !outcomes.is_empty() {
            let (mut header, rows) = table(scenario, outcomes);
            if !title.is_empty() {
                header[0] = "server";
            }
            tables.push((title, header, rows));
        }
    }
    tables
}

/// What the reference servers' tables and charts are headed with.
pub(crate) const PEERS_TITLE: &str =
    "Reference servers, not versions: production servers of the same designs";

/// The columns of a scenario's table, a row for each of `outcomes`.
pub(crate) fn table(
    scenario: &ScenarioResult,
    outcomes: &[Outcome],
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    if scenario.rows().any(|o| o.syscalls.is_some()) {
        return census_table(outcomes);
    }
    let hold = scenario.rows().any(|o| o.hold.is_some());
    let cpu = scenario.rows().any(|o| o.cpu_us_per_connection.is_some());
    let mut header = vec!["version"];
    if hold {
        header.extend(["idle held", "newcomer's answer"]);
    } else {
        header.extend(["req/s", "answered / sent", "clients answered", "p50", "p99", "p99.9"]);
        header.push("errors");
    }
    if cpu {
        header.push("server CPU / connection");
    }
    if !hold {
        header.extend(["server CPU / request", "switches / request"]);
    }
    header.extend(["threads (max)", "memory (max)", "accept queue (max seen / cap)"]);
    header.extend(["listen overflows", "verdict"]);
    let rows = outcomes
        .iter()
        .map(|o| {
            let mut row = vec![o.subject.name().to_owned()];
            if let Some(h) = &o.hold {
                row.push(h.held.to_string());
                row.push(h.answered_in_us.map_or_else(|| "none".to_owned(), fmt_us));
            } else if let Some(b) = &o.bench {
                let l = &b.latency_us;
                let bound = if b.generator_bound() { " (generator-bound?)" } else { "" };
                row.push(format!("{:.0}{bound}", b.requests_per_sec));
                row.push(format!("{} / {}", b.requests, b.sent));
                row.push(format!("{} / {}", b.clients_answered, b.clients));
                row.extend([b.fmt_latency(l.p50), b.fmt_latency(l.p99), b.fmt_latency(l.p999)]);
                row.push(b.errors.describe());
            }
            if cpu {
                row.push(
                    o.cpu_us_per_connection.map_or_else(String::new, |us| format!("{us:.0} µs")),
                );
            }
            if !hold {
                row.push(cpu_per_request(o));
                // Read from /proc, the switches of threads and processes that exited during
                // the run are lost with them: what is left is a lower bound.
                let lost = o.subject.spawns_per_connection() && !o.switches_from_stats;
                let at_least = if lost { "≥ " } else { "" };
                row.push(
                    o.switches_per_request
                        .map_or_else(String::new, |s| format!("{at_least}{s:.2}")),
                );
            }
            row.push(threads(o));
            let pss = if o.subject.processes() { " (PSS)" } else { "" };
            row.push(format!("{}{pss}", fmt_bytes(o.server.max_rss_bytes)));
            row.extend(accept_queue(o));
            row.push(o.verdict.text.clone());
            row
        })
        .collect();
    (header, rows)
}

/// The server's CPU per request, or, when the kernel's clock ticked not once for the
/// whole run, the bound that leaves: under one tick (10 ms) spread over the requests.
fn cpu_per_request(o: &Outcome) -> String {
    match (o.cpu_us_per_request, &o.bench) {
        (Some(_), Some(b)) if o.cpu_ms == 0 => {
            format!("< {:.0} µs", TICK_US / b.requests.max(1) as f64)
        }
        (Some(us), _) => format!("{us:.1} µs"),
        (None, _) => String::new(),
    }
}

/// The kernel's CPU accounting clock, in microseconds per tick (USER_HZ is 100 on Linux).
const TICK_US: f64 = 10_000.0;

/// The census: a row per server, its calls per request in all and by name.
fn census_table(outcomes: &[Outcome]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header =
        vec!["version", "req/s", "system calls / request", "by name, per request", "counted by"];
    let rows = outcomes
        .iter()
        .map(|o| {
            let mut row = vec![o.subject.name().to_owned()];
            row.push(
                o.bench.as_ref().map_or_else(String::new, |b| format!("{:.0}", b.requests_per_sec)),
            );
            match &o.syscalls {
                Some(c) => {
                    row.extend([format!("{:.2}", c.per_request()), c.by_name()]);
                }
                None => row.extend([String::new(), String::new()]),
            }
            // No CPU per request here: counting every call makes each one dearer (by a
            // third or more here), so the other scenarios' figure is the one to read.
            row.push(o.syscalls.as_ref().map_or("", |c| c.tool.name()).to_owned());
            row
        })
        .collect();
    (header, rows)
}

/// The accept queue's longest length in the samples (every 100 ms: a shorter burst can
/// fill it unseen, which the overflows then show) against its cap, and the handshakes the
/// namespace's listeners refused during the run (empty where the kernel was not read).
fn accept_queue(o: &Outcome) -> [String; 2] {
    match &o.listen {
        Some(l) => [format!("{} / {}", o.server.max_accept_queue, l.cap), l.overflows.to_string()],
        None => [String::new(), String::new()],
    }
}

/// `12`, or for a server of several processes `12 in 3 processes`.
fn threads(o: &Outcome) -> String {
    if o.subject.processes() {
        format!("{} in {} processes", o.server.max_threads, o.server.max_processes)
    } else {
        o.server.max_threads.to_string()
    }
}

pub(crate) fn intro(comparison: &Comparison, command: &str) -> String {
    let m = &comparison.machine;
    format!(
        "Produced by `{command}` on {} cores ({}), {} of memory, Linux {}. The load generator \
         and the servers share these cores, so read the numbers as ratios between versions \
         measured in this one run, not as absolute speeds. Each version ran in a fresh process \
         for each scenario; threads and memory were sampled from /proc while the load ran (for \
         the fork version, summed over its processes, memory as PSS, so that pages shared \
         copy-on-write with the parent count once).",
        m.cores, m.cpu, m.memory, m.kernel
    )
}

/// The calibration's sentence, or why there is none.
pub(crate) fn calibration(comparison: &Comparison) -> String {
    match &comparison.calibration {
        Ok(c) => c.describe(),
        Err(why) => format!("{why}."),
    }
}

/// Scenarios down, versions (or, with `peers`, the reference servers) across: the
/// verdict in each cell.
pub(crate) fn limits_matrix(
    comparison: &Comparison,
    peers: bool,
) -> (Vec<String>, Vec<Vec<String>>) {
    let pick = |s: &ScenarioResult| if peers { s.peers.clone() } else { s.outcomes.clone() };
    let mut columns: Vec<Subject> = Vec::new();
    for outcome in comparison.scenarios.iter().flat_map(pick) {
        if !columns.contains(&outcome.subject) {
            columns.push(outcome.subject);
        }
    }
    let mut header = vec!["scenario".to_owned()];
    header.extend(columns.iter().map(|c| c.name().to_owned()));
    let rows = comparison
        .scenarios
        .iter()
        .filter(|s| !pick(s).is_empty())
        .map(|s| {
            let mut row = vec![s.title.clone()];
            let outcomes = pick(s);
            row.extend(columns.iter().map(|&c| match outcomes.iter().find(|o| o.subject == c) {
                Some(o) => {
                    let mark = if o.verdict.limit_hit { "✘" } else { "✔" };
                    format!("{mark} {}", o.verdict.text)
                }
                None => "not run: it does not serve these requests".to_owned(),
            }));
            row
        })
        .collect();
    (header, rows)
}

/// The reference servers asked for: what each is, or why it did not run; one line each.
pub(crate) fn peer_notes(comparison: &Comparison) -> Vec<String> {
    comparison
        .peers
        .iter()
        .map(|n| match &n.note {
            Ok(design) => format!("{}: {design}.", n.peer.name()),
            Err(why) => format!("{why}."),
        })
        .collect()
}

/// What the reference servers are, for a reader of the report.
pub(crate) const PEERS_INTRO: &str = "Production servers built on the designs of the series, run after the \
     versions, one at a time, through the scenarios whose requests they serve, each \
     configured by the files in the repository's peers/ folder. They are not versions: \
     their rows are here to show how far each design can go, not to rank them with the \
     versions. nginx and hyper start fresh for each scenario, as the versions do; each \
     Tomcat is started once, loaded for 12 s unmeasured (a fresh JVM interprets its code \
     until it has compiled what runs hot, and serves a tenth of its rate in its first \
     second here), and kept through its scenarios, as a JVM server runs in production: \
     its memory and threads carry over from one scenario to the next.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PeerNote;
    use crate::compare::{Machine, ScenarioId, Verdict, verdict};
    use crate::hold::HoldResult;
    use crate::measure::{Errors, Summary, new_histogram};
    use crate::peers::Peer;
    use crate::render::{labels, overlapping_labels};
    use crate::sample::{Listen, Peak, Reading, Timed};
    use crate::serve::Version;
    use std::time::Duration;

    fn outcome(subject: impl Into<Subject>, timeouts: u64, max_threads: u64) -> Outcome {
        let mut histogram = new_histogram();
        histogram.record(1500).unwrap();
        let errors = Errors { timeout: timeouts, ..Errors::default() };
        let mut o = Outcome {
            subject: subject.into(),
            bench: Some(Summary::new(1000, Duration::from_secs(1), &histogram, errors, 64)),
            hold: None,
            server: Peak {
                before: Reading { processes: 1, threads: 1, rss_bytes: 4 << 20, accept_queue: 0 },
                max_processes: 1,
                max_threads,
                max_rss_bytes: 6 << 20,
                max_accept_queue: 3,
            },
            listen: Some(Listen { cap: 1024, overflows: 0, drops: 0 }),
            series: (0..=10)
                .map(|i| Timed {
                    secs: i as f64 / 10.0,
                    reading: Reading {
                        processes: 1,
                        threads: 1 + (max_threads - 1) * i / 10,
                        rss_bytes: 4 << 20,
                        accept_queue: 0,
                    },
                })
                .collect(),
            cpu_ms: 10,
            cpu_us_per_connection: None,
            switches_per_request: Some(0.25),
            switches_from_stats: true,
            cpu_us_per_request: Some(10.0),
            syscalls: None,
            assumptions: Vec::new(),
            verdict: Verdict { limit_hit: false, text: String::new() },
            split: None,
        };
        o.verdict = verdict(&o);
        o
    }

    fn comparison() -> Comparison {
        let mut starved = outcome(Version::V3_THREAD_POOL, 0, 11);
        starved.bench = None;
        starved.hold = Some(HoldResult {
            held: 100,
            failed: Errors::default(),
            answered_in_us: None,
            status: None,
            timeout_us: 3_000_000,
        });
        starved.verdict = verdict(&starved);
        let mut grown = outcome(Version::V2_THREAD_PER_CONN, 0, 101);
        grown.bench = None;
        grown.hold = Some(HoldResult {
            answered_in_us: Some(800),
            status: Some(200),
            ..starved.hold.clone().unwrap()
        });
        grown.verdict = verdict(&grown);
        Comparison {
            quick: true,
            machine: Machine {
                cores: 2,
                cpu: "Test CPU".into(),
                memory: "1 kB".into(),
                kernel: "6.1".into(),
            },
            started_at: 0,
            experiments: Vec::new(),
            calibration: Err("no calibration in this test".into()),
            peers: Vec::new(),
            scenarios: vec![
                ScenarioResult {
                    id: ScenarioId::KeepAlive,
                    title: "Keep-alive throughput".into(),
                    lesson: "A lesson.".into(),
                    settings: "64 connections".into(),
                    outcomes: vec![
                        outcome(Version::V1_BLOCKING, 63, 1),
                        outcome(Version::V4_NIO, 0, 13),
                    ],
                    peers: Vec::new(),
                    skipped: None,
                },
                ScenarioResult {
                    id: ScenarioId::IdleClients,
                    title: "Idle clients".into(),
                    lesson: "Another lesson.".into(),
                    settings: "100 idle".into(),
                    outcomes: vec![starved, grown],
                    peers: Vec::new(),
                    skipped: None,
                },
            ],
        }
    }

    #[test]
    fn a_connect_timeout_is_explained_by_the_kernel_s_counts() {
        let mut o = outcome(Version::V1_BLOCKING, 0, 1);
        o.bench.as_mut().unwrap().errors.connect_timeout = 40;
        o.server.max_accept_queue = 1025;
        o.listen = Some(Listen { cap: 1024, overflows: 371, drops: 371 });
        let text = verdict(&o).text;
        assert!(
            text.starts_with("40 connections never accepted in time: their handshakes"),
            "{text}"
        );
        assert!(text.contains("the accept queue (cap 1024) was full"), "{text}");
        assert!(text.contains("dropped 371 SYNs or ACKs"), "{text}");
        o.listen = Some(Listen { cap: 1024, overflows: 0, drops: 0 });
        assert!(verdict(&o).text.ends_with("no listen overflow, so not a full queue"));
        let (header, rows) = table(&comparison().scenarios[0], &[o]);
        let column = header.iter().position(|h| *h == "accept queue (max seen / cap)").unwrap();
        assert_eq!(rows[0][column], "1025 / 1024");
        assert_eq!(rows[0][column + 1], "0");
    }

    #[test]
    fn verdicts_name_the_limit() {
        let c = comparison();
        let keep_alive = &c.scenarios[0].outcomes;
        assert_eq!(
            keep_alive[0].verdict,
            Verdict { limit_hit: true, text: "63 requests timed out".into() }
        );
        assert_eq!(
            keep_alive[1].verdict,
            Verdict { limit_hit: false, text: "ok, 1000 req/s".into() }
        );
        let idle = &c.scenarios[1].outcomes;
        assert_eq!(idle[0].verdict.text, "starved: no answer in 3.00 s");
        assert_eq!(
            idle[1].verdict,
            Verdict { limit_hit: true, text: "answered in 800 µs; threads grew to 101".into() }
        );
    }

    #[test]
    fn markdown_has_the_matrix_and_a_table_per_scenario() {
        let md = markdown(&comparison(), "loadgen compare --quick");
        assert!(md.contains("Produced by `loadgen compare --quick` on 2 cores (Test CPU)"), "{md}");
        assert!(md.contains("| scenario | v1-blocking | v4-nio |"), "{md}");
        assert!(
            md.contains("| Keep-alive throughput | ✘ 63 requests timed out | ✔ ok, 1000 req/s |"),
            "{md}"
        );
        assert!(md.contains("## Idle clients\n\nAnother lesson."), "{md}");
        assert!(md.contains("| v3-thread-pool | 100 | none |"), "{md}");
        assert!(md.contains("| v1-blocking | 1000 | 1000 / 1063 | 0 / 0 | 1.5 ms |"), "{md}");
    }

    #[test]
    fn no_two_labels_of_a_chart_overlap_with_every_version_in_it() {
        let mut scenario = comparison().scenarios.remove(0);
        scenario.id = ScenarioId::C10k;
        scenario.outcomes = Version::all().into_iter().map(|v| outcome(v, 0, 10_000)).collect();
        let charts = charts(&scenario);
        assert_eq!(charts.len(), 3, "bars, latency, growth");
        for chart in &charts {
            assert!(labels(chart).iter().any(|l| l.text == "v2-process-per-conn"));
            assert_eq!(overlapping_labels(chart), Vec::<(String, String)>::new(), "{chart}");
        }
    }

    /// The comparison with reference servers: nginx in keep-alive only, Tomcat in both, one
    /// peer not installed.
    fn with_peers() -> Comparison {
        let mut c = comparison();
        c.peers = vec![
            PeerNote { peer: Peer::Nginx, note: Ok(Peer::Nginx.design()) },
            PeerNote { peer: Peer::TomcatNio200, note: Ok(Peer::TomcatNio200.design()) },
            PeerNote { peer: Peer::Hyper, note: Err("peer-hyper skipped: a test".into()) },
        ];
        c.scenarios[0].peers =
            vec![outcome(Peer::Nginx, 0, 3), outcome(Peer::TomcatNio200, 0, 230)];
        let mut tomcat = c.scenarios[1].outcomes[1].clone();
        tomcat.subject = Peer::TomcatNio200.into();
        c.scenarios[1].peers = vec![tomcat];
        c
    }

    #[test]
    fn reference_servers_are_reported_apart_from_the_versions() {
        let md = markdown(&with_peers(), "loadgen compare --peers");
        let versions = md.find("| scenario | v1-blocking | v4-nio |").expect("versions' matrix");
        let peers = md.find("| scenario | nginx | tomcat-nio-200 |").expect("peers' matrix");
        assert!(versions < peers, "{md}");
        assert!(md.contains("- peer-hyper skipped: a test."), "{md}");
        assert!(
            md.contains("| Idle clients | not run: it does not serve these requests | ✘ answered"),
            "{md}"
        );
        // Each scenario's table of versions, then its own table of reference servers.
        let keep_alive = &md[md.find("## Keep-alive throughput").expect("keep-alive")..];
        let table = keep_alive.find("| v4-nio | 1000").expect("v4-nio's row");
        let title = keep_alive.find(PEERS_TITLE).expect("the peers' table");
        let nginx = keep_alive.find("| nginx | 1000").expect("nginx's row");
        assert!(table < title && title < nginx, "{keep_alive}");
        assert!(!md.contains("| nginx | 100 |"), "nginx is not in the idle-clients scenario");
    }

    #[test]
    fn reference_servers_are_drawn_apart_and_every_label_reads() {
        let c = with_peers();
        let mut scenario = c.scenarios[0].clone();
        scenario.id = ScenarioId::C10k;
        scenario.outcomes = Version::all().into_iter().map(|v| outcome(v, 0, 10_000)).collect();
        scenario.peers = Peer::ALL.iter().map(|&p| outcome(p, 0, 200)).collect();
        let charts = charts(&scenario);
        assert_eq!(charts.len(), 3, "bars, latency, growth");
        for chart in &charts {
            assert!(labels(chart).iter().any(|l| l.text == "ref. tomcat-nio-200"), "{chart}");
            assert_eq!(overlapping_labels(chart), Vec::<(String, String)>::new(), "{chart}");
        }
        // The reference servers' bars are lighter than the versions'.
        assert!(charts[0].contains("opacity=\"0.4\""), "{}", charts[0]);
    }

    #[test]
    fn html_is_self_contained_with_its_charts() {
        let html = html(&comparison(), "loadgen compare");
        assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
        // Keep-alive: bars and latency; idle clients: bars and growth over time.
        assert_eq!(html.matches("<svg").count(), 4);
        let labels: Vec<&str> =
            html.split("</text>").filter_map(|t| Some(t.rsplit_once('>')?.1.trim())).collect();
        for label in
            ["99.99%", "99.9%", "50%", "1.0 ms", "seconds into the run", "v2-thread-per-conn"]
        {
            assert!(labels.contains(&label), "no {label:?} in the charts: {labels:?}");
        }
        assert!(html.contains("<td class=\"limit\">✘ 63 requests timed out</td>"));
        assert!(!html.contains("src=\"http"), "nothing loaded from elsewhere");
    }

    #[test]
    fn files_are_written_and_the_json_reads_back() {
        let dir = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
        let paths = write_all(&comparison(), "loadgen compare", &dir).unwrap();
        assert_eq!(paths.len(), 3);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(json["scenarios"][0]["outcomes"][0]["version"], "v1-blocking");
        assert_eq!(json["scenarios"][1]["id"], "idle-clients");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_experiment_is_reported_after_the_scenarios_in_every_format() {
        use crate::compare::{ExperimentResult, Findings};
        use crate::measure::Percentiles;
        use crate::waits::Point;
        let point = |idle| Point {
            api: "poll",
            idle,
            skipped: None,
            requests_per_sec: 1000.0,
            latency_us: Percentiles::default(),
            waits: 10,
            us_per_wait: 1.0,
            cpu_us_per_wait: 2.0,
            cpu_us_per_request: 3.0,
            events_per_wait: 1.0,
        };
        let mut c = comparison();
        c.experiments.push(ExperimentResult {
            id: ScenarioId::KernelWaits,
            title: "How the kernel waits".into(),
            lesson: "A third lesson.".into(),
            settings: "a sweep".into(),
            findings: Findings::Waits(vec![point(0), point(1000)]),
        });
        let md = markdown(&c, "loadgen compare");
        let at = md.find("## How the kernel waits\n\nA third lesson.\n\nSettings: a sweep.\n\n");
        let at = at.expect("the experiment's section");
        assert!(md.find("## Idle clients").is_some_and(|idle| idle < at), "{md}");
        assert!(md[at..].contains("Requests per second:\n\n| api | 0 idle | 1000 idle |"), "{md}");
        let text = terminal(&c);
        assert!(text.contains("How the kernel waits  (a sweep)\nRequests per second\n| api |"));
        let page = html(&c, "loadgen compare");
        assert!(page.contains("<p>Requests per second:</p><table>"), "{page}");
        // The scenarios' four charts, and the sweep's two.
        assert_eq!(page.matches("<svg").count(), 6);
        // results.json: one list of sections, the experiment last, its points by name.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["scenarios"][2]["id"], "kernel-waits");
        assert_eq!(json["scenarios"][2]["waits"][1]["idle"], 1000);
        assert_eq!(json["scenarios"][2]["outcomes"], serde_json::json!([]));
        assert!(json.get("experiments").is_none() && json.get("peers").is_none(), "{json}");
    }

    #[test]
    fn the_slow_handler_table_says_how_the_hash_split_the_clients_and_only_there() {
        let split = |accepted: Vec<u64>, list: &str| crate::compare::split::LoopSplit {
            list: list.into(),
            accepted,
            clients: 50,
            handler_ms: 100,
            timeout_ms: 2000,
        };
        let mut v5 = outcome(Version::V5_REACTOR_PER_CORE, 60, 4);
        v5.split = Some(split(vec![33, 53], "loops"));
        let mut v7 = outcome(Version::V7_URING_PER_CORE, 60, 4);
        v7.split = Some(split(vec![55, 55], "rings"));
        let mut c = comparison();
        c.scenarios.push(ScenarioResult {
            id: ScenarioId::SlowHandler,
            title: "A slow handler".into(),
            lesson: "A lesson.".into(),
            settings: "50 connections".into(),
            outcomes: vec![v5, v7],
            peers: Vec::new(),
            skipped: None,
        });
        let md = markdown(&c, "loadgen compare");
        let mut unsplit = c.clone();
        unsplit.scenarios[2].outcomes.iter_mut().for_each(|o| o.split = None);
        let before = markdown(&unsplit, "loadgen compare");
        assert!(!before.contains("How the clients fell"), "{before}");
        // The note is an addition after the table: without it, the report is as it was.
        const TAIL: &str = "- v7-uring-per-core's 2 rings: 55 / 55\n";
        let at = md.find("\nHow the clients fell").unwrap();
        let end = md.find(TAIL).unwrap() + TAIL.len();
        let section = &md[at..end];
        assert_eq!(format!("{}{}", &md[..at], &md[end..]), before);
        assert!(section.contains("v5-reactor-per-core and v7-uring-per-core spread"), "{section}");
        assert!(section.contains("20 within the 2 s timeout"), "{section}");
        assert!(section.contains("50 clients over 2 loops is 25 each on average"), "{section}");
        assert!(section.contains("\n- v5-reactor-per-core's 2 loops: 33 / 53\n"), "{section}");
        let json = serde_json::to_value(&c.scenarios[0].outcomes[0]).unwrap();
        assert!(json.get("split").is_none(), "absent, not null, where not measured: {json}");
    }
}
