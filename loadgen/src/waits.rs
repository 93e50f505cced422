//! `loadgen waits`: the kernel interfaces side by side, in the spirit of libevent's
//! benchmark (bench.c: many idle descriptors, a few active, time per round for each
//! backend), on real TCP.
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
use crate::measure::{Percentiles, fmt_us};
use crate::report::{axis_number, legend, svg};
use crate::serve::{self, Version};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct WaitsConfig {
    pub apis: Vec<Api>,
    /// Idle connections held during each run.
    pub idle: Vec<usize>,
    /// Keep-alive clients driving the server.
    pub active: usize,
    pub duration: Duration,
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
    /// Mean time inside one wait, in microseconds: the kernel's work plus any sleep.
    pub us_per_wait: f64,
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
    for &api in &config.apis {
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
            events_per_wait: 0.0,
        }
    }
}

fn measure(api: Api, idle: usize, config: &WaitsConfig) -> anyhow::Result<Point> {
    let args = ["--api", api.name(), "--backlog", "4096", "--idle-timeout", "600"];
    let server = serve::spawn_with(Version::V4Syscalls, &args, None)
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
    let load = BenchConfig::new(server.addr(), config.active, config.duration, "/hello");
    let summary = bench::run(&load)?;
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
        events_per_wait: after.events.saturating_sub(before.events) as f64 / waits as f64,
    })
}

/// The table: a row per API, a column per number of idle connections.
pub fn markdown(points: &[Point], config: &WaitsConfig, command: &str) -> String {
    let mut md = format!(
        "# How the kernel waits: one loop, five interfaces\n\nProduced by `{command}`: v4-syscalls \
         with each `--api`, {} keep-alive clients asking `GET /hello` for {:?}, beside idle \
         connections that never send a byte. Time per wait is measured by the server around \
         its wait call (kernel work and any sleep); read the numbers as ratios between \
         interfaces in this one run.\n",
        config.active, config.duration
    );
    for (title, cell) in [
        (
            "Requests per second",
            (|p: &Point| format!("{:.0}", p.requests_per_sec)) as fn(&Point) -> String,
        ),
        ("Microseconds per wait", |p: &Point| format!("{:.1}", p.us_per_wait)),
        ("p99 latency", |p: &Point| fmt_us(p.latency_us.p99)),
    ] {
        md += &format!("\n## {title}\n\n| api |");
        for idle in &config.idle {
            md += &format!(" {idle} idle |");
        }
        md += &format!("\n|---|{}\n", "---:|".repeat(config.idle.len()));
        for api in &config.apis {
            md += &format!("| {} |", api.name());
            for p in points.iter().filter(|p| p.api == api.name()) {
                let text = if p.skipped.is_some() { "past FD_SETSIZE".into() } else { cell(p) };
                md += &format!(" {text} |");
            }
            md += "\n";
        }
    }
    md
}

/// Two charts, one line per API across the idle counts: requests per second, and time
/// per wait.
pub fn html(points: &[Point], config: &WaitsConfig, command: &str) -> anyhow::Result<String> {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>How the kernel \
         waits</title><style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem \
         auto;padding:0 1rem}svg{max-width:100%;height:auto}pre{white-space:pre-wrap}</style>\
         </head><body>",
    );
    html += "<pre>";
    html += &markdown(points, config, command).replace('&', "&amp;").replace('<', "&lt;");
    html += "</pre>";
    type Pick = fn(&Point) -> f64;
    let charts: [(&str, Pick); 2] = [
        ("requests per second, by idle connections held", |p| p.requests_per_sec),
        ("microseconds inside one wait, by idle connections held", |p| p.us_per_wait),
    ];
    for (caption, pick) in charts {
        let chart = svg((960, 380), |root| {
            let measured = || points.iter().filter(|p| p.skipped.is_none());
            let right = config.idle.iter().copied().max().unwrap_or(1).max(1) as f64;
            let top = measured().map(pick).fold(1.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(root)
                .caption(caption, ("sans-serif", 16))
                .margin(10)
                .margin_right(30)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..right, 0.0..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("idle connections")
                .x_label_formatter(&|x| axis_number(*x))
                .y_label_formatter(&|y| axis_number(*y))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, api) in config.apis.iter().enumerate() {
                let color = Palette99::pick(i).stroke_width(2);
                let line: Vec<(f64, f64)> = measured()
                    .filter(|p| p.api == api.name())
                    .map(|p| (p.idle as f64, pick(p)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color))
                    .map_err(|e| e.to_string())?
                    .label(api.name())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
                chart
                    .draw_series(line.into_iter().map(|xy| Circle::new(xy, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            legend(&mut chart)
        })
        .map_err(anyhow::Error::msg)?;
        html += &chart;
    }
    Ok(html + "</body></html>\n")
}
