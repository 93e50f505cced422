//! `loadgen waits`, and the kernel-waits experiment of `compare`'s suite: the kernel
//! interfaces side by side, in the spirit of libevent's benchmark (bench.c: many idle
//! descriptors, a few active, time per round for each backend), on real TCP.
//!
//! For each API of v4-syscalls and each number of idle connections, a fresh server is
//! started, the idle connections are opened and left silent, and a few keep-alive
//! clients drive it. The server's own `/stats` says how many waits it made and how long
//! it spent inside them, so the report shows the cost of one wait as the idle crowd
//! grows: select and poll scan every watched descriptor on every call, epoll and
//! io_uring only what is ready.

use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;
use common::testkit::{Client, TIMEOUT, wait_until};
use plotters::prelude::*;
use serde::Serialize;
use v4_syscalls::Api;

use crate::bench::{self, BenchConfig};
use crate::compare::experiment::Table;
use crate::measure::{Percentiles, fmt_us, parse_duration};
use crate::render::{
    PAGE_END, axis_number, beside_legend, escape_html, html_table, linear_chart, md_table,
    page_start, svg,
};
use crate::sample;
use crate::serve::{self, Version};

/// What to sweep; also `loadgen waits`' options, whose help is the doc of each field.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitsConfig {
    /// The interfaces to measure (comma-separated) [default: all five]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub apis: Vec<Api>,
    /// Idle connections to hold in each run (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "0,500,1000,5000,10000")]
    pub idle: Vec<usize>,
    /// Keep-alive clients driving the server beside the idle ones
    #[arg(long, default_value_t = 4)]
    pub active: usize,
    /// How long each run drives the server
    #[arg(long, short = 'd', default_value = "3s", value_parser = parse_duration)]
    pub duration: Duration,
}

impl WaitsConfig {
    /// The interfaces to measure: those named, or all five.
    pub fn apis(&self) -> &[Api] {
        if self.apis.is_empty() { &Api::ALL } else { &self.apis }
    }
}

/// One API with one number of idle connections.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub api: &'static str,
    pub idle: usize,
    /// Why this point was not measured (select past FD_SETSIZE), if it was not.
    pub skipped: Option<String>,
    pub requests_per_sec: f64,
    pub latency_us: Percentiles,
    /// Calls to the wait during the run.
    pub waits: u64,
    /// Mean time inside one wait, in microseconds: the kernel's work plus any sleep (for
    /// io_uring, the sends and receives its one call submits, too). Mostly sleep when the
    /// loop is not busy: not the cost of a wait.
    pub us_per_wait: f64,
    /// The server's CPU time (user and system, from /proc) over the run, per wait: what a
    /// wait and the serving around it cost, asleep not counted.
    pub cpu_us_per_wait: f64,
    /// The same per request answered.
    pub cpu_us_per_request: f64,
    /// Mean events (or completions) one wait returned.
    pub events_per_wait: f64,
}

/// A server's wait counters, read from its `/stats`.
#[derive(Debug, Clone, Copy, Default)]
struct Waits {
    waits: u64,
    events: u64,
    secs: f64,
    watched: u64,
}

fn read_waits(client: &mut Client) -> anyhow::Result<Waits> {
    let answer = client.get("/stats").context("asking /stats")?;
    let stats: serde_json::Value = serde_json::from_slice(&answer.body).context("/stats JSON")?;
    let model = &stats["model"];
    let count = |name: &str| model[name].as_u64().unwrap_or(0);
    Ok(Waits {
        waits: count("waits"),
        events: count("events"),
        secs: model["wait_secs"].as_f64().unwrap_or(0.0),
        watched: count("watched"),
    })
}

/// The most descriptors a select loop can watch, leaving room for the listener, the
/// standard streams and the clients that drive it.
const SELECT_ROOM: usize = 1024 - 16;

/// Runs the sweep, printing a line per point as it goes.
pub fn run(config: &WaitsConfig) -> anyhow::Result<Vec<Point>> {
    let mut points = Vec::new();
    for &api in config.apis() {
        for &idle in &config.idle {
            eprint!("  {:<9} {idle:>6} idle  ", api.name());
            let point = if api == Api::Select && idle + config.active > SELECT_ROOM {
                let why = format!("{idle} idle connections do not fit under FD_SETSIZE (1,024)");
                Point::skipped(api, idle, why)
            } else {
                measure(api, idle, config)?
            };
            match &point.skipped {
                Some(why) => eprintln!("skipped: {why}"),
                None => eprintln!(
                    "{:>8.0} req/s  p99 {:>8}  {:>7.1} µs per wait  {:.2} events per wait",
                    point.requests_per_sec,
                    fmt_us(point.latency_us.p99),
                    point.us_per_wait,
                    point.events_per_wait
                ),
            }
            points.push(point);
        }
    }
    Ok(points)
}

impl Point {
    fn skipped(api: Api, idle: usize, why: String) -> Self {
        Point {
            api: api.name(),
            idle,
            skipped: Some(why),
            requests_per_sec: 0.0,
            latency_us: Percentiles::default(),
            waits: 0,
            us_per_wait: 0.0,
            cpu_us_per_wait: 0.0,
            cpu_us_per_request: 0.0,
            events_per_wait: 0.0,
        }
    }
}

fn measure(api: Api, idle: usize, config: &WaitsConfig) -> anyhow::Result<Point> {
    let args = ["--api", api.name(), "--backlog", "4096", "--idle-timeout", "600"];
    let server = serve::spawn_with(Version::V4_SYSCALLS, &args, None)
        .with_context(|| format!("starting v4-syscalls --api {}", api.name()))?;
    let held: Vec<TcpStream> = (0..idle)
        .map(|_| TcpStream::connect_timeout(&server.addr(), TIMEOUT))
        .collect::<Result<_, _>>()
        .with_context(|| format!("opening {idle} idle connections"))?;
    let mut observer = Client::connect(server.addr())?;
    // Every idle connection, the observer and the listener, watched before the clock.
    let all_in = wait_until(TIMEOUT, || {
        read_waits(&mut observer).is_ok_and(|w| w.watched >= idle as u64 + 2)
    });
    anyhow::ensure!(all_in, "v4-syscalls --api {} never watched all {idle}", api.name());
    let before = read_waits(&mut observer)?;
    let cpu_before = sample::cpu_ms(server.pid(), false);
    let load = BenchConfig::new(server.addr(), config.active, config.duration, "/hello");
    let summary = bench::run(&load)?;
    let cpu_us = sample::cpu_ms(server.pid(), false).saturating_sub(cpu_before) as f64 * 1000.0;
    let after = read_waits(&mut observer)?;
    drop(held);
    let waits = after.waits.saturating_sub(before.waits).max(1);
    Ok(Point {
        api: api.name(),
        idle,
        skipped: None,
        requests_per_sec: summary.requests_per_sec,
        latency_us: summary.latency_us,
        waits,
        us_per_wait: (after.secs - before.secs) * 1e6 / waits as f64,
        cpu_us_per_wait: cpu_us / waits as f64,
        cpu_us_per_request: cpu_us / summary.requests.max(1) as f64,
        events_per_wait: after.events.saturating_sub(before.events) as f64 / waits as f64,
    })
}

/// The APIs and idle counts of a sweep, in the order they were run.
fn axes(points: &[Point]) -> (Vec<&'static str>, Vec<usize>) {
    let (mut apis, mut idle) = (Vec::new(), Vec::new());
    for p in points {
        if !apis.contains(&p.api) {
            apis.push(p.api);
        }
        if !idle.contains(&p.idle) {
            idle.push(p.idle);
        }
    }
    (apis, idle)
}

/// A table per figure (requests per second, server CPU per request and per wait, the
/// CPU each watched descriptor adds to a wait, time inside a wait, p99): a row per API,
/// a column per number of idle connections.
pub fn tables(points: &[Point]) -> Vec<Table> {
    type Cell = fn(&Point, Option<&Point>) -> String;
    let figures: [(&str, Cell); 6] = [
        ("Requests per second", |p, _| format!("{:.0}", p.requests_per_sec)),
        ("Server CPU µs per request", |p, _| format!("{:.1}", p.cpu_us_per_request)),
        ("Server CPU µs per wait (asleep not counted)", |p, _| {
            format!("{:.1}", p.cpu_us_per_wait)
        }),
        // What each idle descriptor adds to one wait's CPU: O(watched) measured, not
        // inferred. Against the same API's run with no idle connections.
        ("CPU ns per wait per idle descriptor", |p, none| match none {
            Some(none) if p.idle > 0 => {
                format!(
                    "{:.2}",
                    (p.cpu_us_per_wait - none.cpu_us_per_wait) * 1000.0 / p.idle as f64
                )
            }
            _ => "".to_owned(),
        }),
        ("µs inside one wait (asleep included)", |p, _| format!("{:.1}", p.us_per_wait)),
        ("p99 latency", |p, _| fmt_us(p.latency_us.p99)),
    ];
    if points.is_empty() {
        return Vec::new();
    }
    let (apis, idle) = axes(points);
    let mut header = vec!["api".to_owned()];
    header.extend(idle.iter().map(|n| format!("{n} idle")));
    figures
        .into_iter()
        .map(|(title, cell)| {
            let rows = apis
                .iter()
                .map(|api| {
                    let mut row = vec![(*api).to_owned()];
                    let none =
                        points.iter().find(|p| p.api == *api && p.idle == 0 && p.skipped.is_none());
                    row.extend(points.iter().filter(|p| p.api == *api).map(|p| {
                        if p.skipped.is_some() {
                            "past FD_SETSIZE".to_owned()
                        } else {
                            cell(p, none)
                        }
                    }));
                    row
                })
                .collect();
            (title, header.clone(), rows)
        })
        .collect()
}

/// What was run, in one paragraph.
fn intro(config: &WaitsConfig, command: &str) -> String {
    format!(
        "Produced by `{command}`: v4-syscalls \
         with each `--api`, {} keep-alive clients asking `GET /hello` for {:?}, beside idle \
         connections that never send a byte. The server's CPU time (from /proc) per request \
         and per wait is what the waiting costs; the time inside one wait, measured by the \
         server around its call, is mostly sleep when the loop has little to do, and for \
         io_uring includes the sends and receives its one call submits. Read the numbers \
         as ratios between interfaces in this one run.",
        config.active, config.duration
    )
}

/// `report.md` of `loadgen waits`.
pub fn markdown(points: &[Point], config: &WaitsConfig, command: &str) -> String {
    let mut md = format!(
        "# How the kernel waits: one loop, five interfaces\n\n{}\n",
        intro(config, command)
    );
    for (title, header, rows) in tables(points) {
        md += &format!("\n## {title}\n\n{}", md_table(&header, &rows));
    }
    md
}

/// `report.html` of `loadgen waits`: the tables and the charts.
pub fn html(points: &[Point], config: &WaitsConfig, command: &str) -> String {
    let mut html = page_start("How the kernel waits");
    html += &format!("<p>{}</p>", escape_html(&intro(config, command)));
    for (title, header, rows) in tables(points) {
        html += &format!("<h2>{title}</h2>{}", html_table(&header, &rows));
    }
    for chart in charts(points) {
        html += &chart;
    }
    html + PAGE_END
}

/// Two charts, one line per API across the idle counts: requests per second, and time
/// per wait.
pub fn charts(points: &[Point]) -> Vec<String> {
    type Pick = fn(&Point) -> f64;
    let charts: [(&str, Pick); 2] = [
        ("requests per second, by idle connections held", |p| p.requests_per_sec),
        ("server CPU µs per wait (asleep not counted), by idle connections held", |p| {
            p.cpu_us_per_wait
        }),
    ];
    let (apis, idle) = axes(points);
    let mut drawn = Vec::new();
    for (caption, pick) in charts {
        let entries: Vec<(&str, usize)> =
            apis.iter().enumerate().map(|(i, api)| (*api, i)).collect();
        let chart = svg((960, 380), |root| {
            let plot = beside_legend(root, &entries)?;
            let measured = || points.iter().filter(|p| p.skipped.is_none());
            let right = idle.iter().copied().max().unwrap_or(1).max(1) as f64;
            let top = measured().map(pick).fold(1.0, f64::max) * 1.15;
            let idle_axis = |x: &f64| axis_number(*x);
            let mut chart =
                linear_chart(&plot, caption, (right, top), "idle connections", &idle_axis)?;
            for (i, api) in apis.iter().enumerate() {
                let color = Palette99::pick(i).stroke_width(2);
                let line: Vec<(f64, f64)> = measured()
                    .filter(|p| p.api == *api)
                    .map(|p| (p.idle as f64, pick(p)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(line.into_iter().map(|xy| Circle::new(xy, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        match chart {
            Ok(chart) => drawn.push(chart),
            Err(e) => eprintln!("a chart was left out: {e}"),
        }
    }
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(api: Api, idle: usize, rate: f64) -> Point {
        let mut p = Point::skipped(api, idle, String::new());
        (p.skipped, p.requests_per_sec, p.us_per_wait) = (None, rate, idle as f64 / 10.0);
        // 2 µs of CPU per wait, and 0.3 ns more per idle descriptor.
        p.cpu_us_per_wait = 2.0 + idle as f64 * 0.0003;
        p
    }

    #[test]
    fn tables_have_a_row_per_api_and_a_column_per_crowd() {
        let points = [
            point(Api::Poll, 0, 1000.0),
            point(Api::Poll, 1000, 100.0),
            point(Api::Epoll, 0, 900.0),
            point(Api::Epoll, 1000, 900.0),
            Point::skipped(Api::Select, 0, "why".into()),
            Point::skipped(Api::Select, 1000, "why".into()),
        ];
        let tables = tables(&points);
        let (title, header, rows) = &tables[0];
        assert_eq!(*title, "Requests per second");
        assert_eq!(header, &["api", "0 idle", "1000 idle"]);
        assert_eq!(rows[0], ["poll", "1000", "100"]);
        assert_eq!(rows[2], ["select", "past FD_SETSIZE", "past FD_SETSIZE"]);
        let table = |title: &str| &tables.iter().find(|t| t.0 == title).expect(title).2;
        assert_eq!(table("µs inside one wait (asleep included)")[0], ["poll", "0.0", "100.0"]);
        assert_eq!(table("Server CPU µs per wait (asleep not counted)")[0], ["poll", "2.0", "2.3"]);
        // What each idle descriptor adds, against the same API with none idle.
        assert_eq!(table("CPU ns per wait per idle descriptor")[0], ["poll", "", "0.30"]);
        assert_eq!(charts(&points).len(), 2);
        assert!(super::tables(&[]).is_empty());
    }
}
