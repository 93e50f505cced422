//! The comparison's outputs: a table on the terminal, `report.md`, a self-contained
//! `report.html` with SVG charts, and the raw `results.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use crate::compare::{Comparison, Outcome, ScenarioId, ScenarioResult};
use crate::measure::{fmt_bytes, fmt_us, nines};
use crate::render::{
    Area, LogAxis, axis_number, beside_legend, escape_html, html_table, md_table, page_start, svg,
};
use crate::sample::Timed;
use crate::serve::Subject;

/// Writes the three files into `dir` and returns their paths.
pub fn write_all(
    comparison: &Comparison,
    command: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("results.json", serde_json::to_string_pretty(comparison)?),
        ("report.md", markdown(comparison, command)),
        ("report.html", html(comparison, command)),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

/// A table's title (none for the versions'), header and rows.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// A scenario's table in the report: the versions', and apart from them the reference
/// servers', with the same columns.
fn tables(scenario: &ScenarioResult) -> Vec<Table> {
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
const PEERS_TITLE: &str = "Reference servers, not versions: production servers of the same designs";

/// The columns of a scenario's table, a row for each of `outcomes`.
fn table(scenario: &ScenarioResult, outcomes: &[Outcome]) -> (Vec<&'static str>, Vec<Vec<String>>) {
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

/// The table printed at the end of a comparison.
pub fn terminal(comparison: &Comparison) -> String {
    let mut out = String::new();
    for scenario in &comparison.scenarios {
        if !scenario.waits.is_empty() {
            let _ = writeln!(out, "\n{}  ({})", scenario.title, scenario.settings);
            for (title, header, rows) in crate::waits::tables(&scenario.waits) {
                let _ = write!(out, "{title}\n{}", md_table(&header, &rows));
            }
            continue;
        }
        if let Some(why) = &scenario.skipped {
            let _ = writeln!(out, "\n{}: not run: {why}", scenario.title);
            continue;
        }
        let _ = writeln!(out, "\n{}  ({})", scenario.title, scenario.settings);
        for (title, header, rows) in tables(scenario) {
            let widths: Vec<usize> = (0..header.len())
                .map(|c| {
                    rows.iter()
                        .map(|r| r[c].chars().count())
                        .chain([header[c].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            if !title.is_empty() {
                let _ = writeln!(out, "{title}:");
            }
            let _ = writeln!(out, "{}", line(header.clone()));
            for row in &rows {
                let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
    let _ = writeln!(out, "\n{}", calibration(comparison));
    out
}

fn intro(comparison: &Comparison, command: &str) -> String {
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

/// `report.md`.
pub fn markdown(comparison: &Comparison, command: &str) -> String {
    let mut md = String::from("# Versioned servers, side by side\n\n");
    let _ = writeln!(md, "{}\n", intro(comparison, command));
    let _ = writeln!(md, "{}\n", calibration(comparison));
    md += "## Which version hit which limit\n\n";
    let (header, rows) = limits_matrix(comparison, false);
    md += &md_table(&header, &rows);
    if !comparison.peers.is_empty() {
        let _ = write!(md, "\n## Reference servers\n\n{PEERS_INTRO}\n\n");
        for note in peer_notes(comparison) {
            let _ = writeln!(md, "- {note}");
        }
        let (header, rows) = limits_matrix(comparison, true);
        if !rows.is_empty() {
            let _ = write!(md, "\n{}", md_table(&header, &rows));
        }
    }
    for scenario in &comparison.scenarios {
        let _ = write!(
            md,
            "\n## {}\n\n{}\n\nSettings: {}.\n\n",
            scenario.title, scenario.lesson, scenario.settings
        );
        if let Some(why) = &scenario.skipped {
            let _ = writeln!(md, "Not run here: {why}.");
        } else if scenario.waits.is_empty() {
            for (title, header, rows) in tables(scenario) {
                if !title.is_empty() {
                    let _ = write!(md, "\n{title}:\n\n");
                }
                md += &md_table(&header, &rows);
            }
        }
        for (title, header, rows) in crate::waits::tables(&scenario.waits) {
            let _ = write!(md, "{title}:\n\n{}\n", md_table(&header, &rows));
        }
    }
    md
}

/// The calibration's sentence, or why there is none.
fn calibration(comparison: &Comparison) -> String {
    match &comparison.calibration {
        Ok(c) => c.describe(),
        Err(why) => format!("{why}."),
    }
}

/// Scenarios down, versions (or, with `peers`, the reference servers) across: the
/// verdict in each cell.
fn limits_matrix(comparison: &Comparison, peers: bool) -> (Vec<String>, Vec<Vec<String>>) {
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
fn peer_notes(comparison: &Comparison) -> Vec<String> {
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
const PEERS_INTRO: &str = "Production servers built on the designs of the series, run after the \
     versions, one at a time, through the scenarios whose requests they serve, each \
     configured by the files in the repository's peers/ folder. They are not versions: \
     their rows are here to show how far each design can go, not to rank them with the \
     versions. nginx and hyper start fresh for each scenario, as the versions do; each \
     Tomcat is started once, loaded for 12 s unmeasured (a fresh JVM interprets its code \
     until it has compiled what runs hot, and serves a tenth of its rate in its first \
     second here), and kept through its scenarios, as a JVM server runs in production: \
     its memory and threads carry over from one scenario to the next.";

/// `report.html`: the same content as the Markdown, with a chart per scenario, in one
/// file that needs nothing else to open.
pub fn html(comparison: &Comparison, command: &str) -> String {
    let mut html = page_start("Versioned servers, side by side");
    let _ = write!(
        html,
        "<p>{}</p><p>{}</p><h2>Which version hit which limit</h2>",
        escape_html(&intro(comparison, command)),
        escape_html(&calibration(comparison))
    );
    let (header, rows) = limits_matrix(comparison, false);
    html += &html_table(&header, &rows);
    if !comparison.peers.is_empty() {
        let _ = write!(html, "<h2>Reference servers</h2><p>{}</p><ul>", escape_html(PEERS_INTRO));
        for note in peer_notes(comparison) {
            let _ = write!(html, "<li>{}</li>", escape_html(&note));
        }
        html += "</ul>";
        let (header, rows) = limits_matrix(comparison, true);
        if !rows.is_empty() {
            html += &html_table(&header, &rows);
        }
    }
    for scenario in &comparison.scenarios {
        let _ = write!(
            html,
            "<h2>{}</h2><p class=\"lesson\">{}</p><p>Settings: {}.</p>",
            escape_html(&scenario.title),
            escape_html(&scenario.lesson),
            escape_html(&scenario.settings)
        );
        if let Some(why) = &scenario.skipped {
            let _ = write!(html, "<p>Not run here: {}.</p>", escape_html(why));
        } else if scenario.waits.is_empty() {
            for (title, header, rows) in tables(scenario) {
                if !title.is_empty() {
                    let _ = write!(html, "<p>{}:</p>", escape_html(title));
                }
                html += &html_table(&header, &rows);
            }
        }
        for (title, header, rows) in crate::waits::tables(&scenario.waits) {
            let _ = write!(html, "<p>{title}:</p>{}", html_table(&header, &rows));
        }
        for chart in charts(scenario) {
            html += &chart;
        }
    }
    html + "</body></html>\n"
}

/// A scenario's charts: bars per version, the latency distribution when requests were
/// timed, and threads and memory over the run where a model's cost grows with clients.
pub fn charts(scenario: &ScenarioResult) -> Vec<String> {
    // The census is read in its table; it times nothing a chart would add.
    if scenario.rows().any(|o| o.syscalls.is_some()) {
        return Vec::new();
    }
    if !scenario.waits.is_empty() {
        return crate::waits::charts(&scenario.waits);
    }
    let grows = matches!(scenario.id, ScenarioId::IdleClients | ScenarioId::C10k);
    [Some(bar_chart(scenario)), latency_chart(scenario), grows.then(|| growth_chart(scenario))]
        .into_iter()
        .flatten()
        .filter_map(|chart| chart.map_err(|e| eprintln!("a chart was left out: {e}")).ok())
        .collect()
}

/// A bar per version: requests per second, or for the idle-clients scenario the
/// newcomer's wait; and beside it the threads each version peaked at.
fn bar_chart(scenario: &ScenarioResult) -> Result<String, String> {
    let hold = scenario.rows().any(|o| o.hold.is_some());
    let (caption, values): (&str, Vec<f64>) = if hold {
        let waits = scenario.rows().map(|o| {
            o.hold
                .as_ref()
                .map_or(0.0, |h| h.answered_in_us.unwrap_or(h.timeout_us) as f64 / 1000.0)
        });
        ("newcomer's wait, ms (a full bar: no answer at all)", waits.collect())
    } else {
        let rates = scenario.rows().map(|o| o.bench.as_ref().map_or(0.0, |b| b.requests_per_sec));
        ("requests per second", rates.collect())
    };
    let threads: Vec<f64> = scenario.rows().map(|o| o.server.max_threads as f64).collect();
    let labels: Vec<String> = scenario.rows().map(chart_label).collect();
    let faded: Vec<bool> = scenario.rows().map(is_peer).collect();
    let height = 90 + 28 * labels.len() as u32;
    svg((960, height), |root| {
        let (left, right) = root.split_horizontally(480);
        bars(&left, caption, &labels, &values, &faded)?;
        bars(&right, "threads (max)", &labels, &threads, &faded)
    })
}

/// A server's name on a chart: a reference server's marked as one.
fn chart_label(o: &Outcome) -> String {
    match o.subject {
        Subject::Version(v) => v.name().to_owned(),
        Subject::Peer(p) => format!("ref. {}", p.name()),
    }
}

fn is_peer(o: &Outcome) -> bool {
    matches!(o.subject, Subject::Peer(_))
}

/// A line for the `i`th server of a chart: a reference server's dashed, apart from the
/// versions' solid lines.
fn draw_line<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    i: usize,
    peer: bool,
    points: impl Iterator<Item = (f64, f64)> + Clone,
) -> Result<(), String> {
    let style = Palette99::pick(i).stroke_width(2);
    let drawn = if peer {
        chart.draw_series(DashedLineSeries::new(points, 6, 4, style)).map(|_| ())
    } else {
        chart.draw_series(LineSeries::new(points, style)).map(|_| ())
    };
    drawn.map_err(|e| e.to_string())
}

/// Horizontal bars, the versions' full names beside them, the first at the top: a row
/// per version leaves each name room to be read, which names under upright bars lack.
/// A `faded` bar is a reference server's.
fn bars(
    area: &Area<'_>,
    caption: &str,
    labels: &[String],
    values: &[f64],
    faded: &[bool],
) -> Result<(), String> {
    let top = values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    let rows = labels.len();
    // Row 0 is drawn at the bottom; the first version belongs at the top.
    let row = |i: usize| rows - 1 - i;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(30)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..top, (0..rows).into_segmented())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(5)
        .y_labels(rows)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(r) if *r < rows => labels[row(*r)].clone(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| axis_number(*x))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(values.iter().enumerate().map(|(i, &v)| {
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(row(i))), (v, SegmentValue::Exact(row(i) + 1))],
                if faded.get(i) == Some(&true) {
                    Palette99::pick(i).mix(0.4).filled()
                } else {
                    Palette99::pick(i).filled()
                },
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Latency against percentile, one line per version: x in nines (50 → 99.99), y on a log
/// scale, since one version's tail can be a thousand times another's median.
fn latency_chart(scenario: &ScenarioResult) -> Option<Result<String, String>> {
    let curves: Vec<(usize, &Outcome, &[[f64; 2]])> = scenario
        .rows()
        .enumerate()
        .filter_map(|(i, o)| Some((i, o, o.bench.as_ref()?.latency_curve_us.as_slice())))
        .filter(|(_, _, curve)| !curve.is_empty())
        .collect();
    let all = || curves.iter().flat_map(|(_, _, curve)| curve.iter().map(|p| p[1].max(1.0)));
    let low = all().fold(f64::INFINITY, f64::min);
    let high = all().fold(0.0, f64::max);
    if curves.is_empty() {
        return None;
    }
    let ticks = [50.0, 90.0, 99.0, 99.9, 99.99];
    let names: Vec<String> = curves.iter().map(|(_, o, _)| chart_label(o)).collect();
    let entries: Vec<(&str, usize)> =
        curves.iter().zip(&names).map(|(&(i, _, _), name)| (name.as_str(), i)).collect();
    let axis = LogAxis::new(low / 1.5, high * 1.5);
    Some(svg((960, 380), |root| {
        let plot = beside_legend(root, &entries)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption("latency by percentile (each version's own requests)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(NinesAxis(ticks.map(nines)), axis)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .y_label_formatter(&|us| {
                if axis.labelled(*us) { fmt_us(us.round() as u64) } else { String::new() }
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for &(i, o, curve) in &curves {
            let points = curve.iter().map(|p| (nines(p[0]), p[1].max(1.0)));
            draw_line(&mut chart, i, is_peer(o), points)?;
        }
        Ok(())
    }))
}

/// The percentile axis: linear in nines, with a tick at each of `0`'s percentiles.
struct NinesAxis([f64; 5]);

impl Ranged for NinesAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (low, high) = (self.0[0], self.0[4]);
        let share = (value - low) / (high - low);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.0.to_vec()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0[0]..self.0[4]
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for NinesAxis {
    /// `99.9%` for 3 nines.
    fn format(nines: &f64) -> String {
        let percentile = 100.0 * (1.0 - 10f64.powf(-nines));
        format!("{}%", (percentile * 100.0).round() / 100.0)
    }
}

/// Threads and resident memory over the run, one line per version: flat for the models
/// that watch connections, climbing for those that give each one a thread or a process.
fn growth_chart(scenario: &ScenarioResult) -> Result<String, String> {
    type Pick = fn(&Timed) -> f64;
    let panels: [(&str, Pick); 2] = [
        ("threads (all processes)", |t| t.reading.threads as f64),
        ("resident memory, MiB", |t| t.reading.rss_bytes as f64 / f64::from(1 << 20)),
    ];
    let names: Vec<String> = scenario.rows().map(chart_label).collect();
    let entries: Vec<(&str, usize)> =
        names.iter().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
    svg((960, 340), |root| {
        let plot = beside_legend(root, &entries)?;
        let width = plot.dim_in_pixel().0;
        let (left, right) = plot.split_horizontally(width / 2);
        for ((caption, pick), area) in panels.into_iter().zip([left, right]) {
            let points = || scenario.rows().flat_map(|o| o.series.iter());
            let end = points().map(|t| t.secs).fold(0.1, f64::max);
            let top = points().map(pick).fold(1.0, f64::max) * 1.1;
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end, 0.0..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("seconds into the run")
                .x_label_formatter(&|s| format!("{s:.1}"))
                .y_label_formatter(&|y| axis_number(*y))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, o) in scenario.rows().enumerate() {
                draw_line(&mut chart, i, is_peer(o), o.series.iter().map(|t| (t.secs, pick(t))))?;
            }
        }
        Ok(())
    })
}

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
                    waits: Vec::new(),
                    skipped: None,
                },
                ScenarioResult {
                    id: ScenarioId::IdleClients,
                    title: "Idle clients".into(),
                    lesson: "Another lesson.".into(),
                    settings: "100 idle".into(),
                    outcomes: vec![starved, grown],
                    peers: Vec::new(),
                    waits: Vec::new(),
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
}
