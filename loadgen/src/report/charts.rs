//! A scenario's charts, as SVG: bars per server, the latency distribution by percentile,
//! and threads and memory over the run; reference servers drawn apart (faded bars, dashed
//! lines).

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use crate::compare::{Outcome, ScenarioId, ScenarioResult};
use crate::measure::{fmt_us, nines};
use crate::render::{Area, LogAxis, NinesAxis, axis_number, beside_legend, linear_chart, svg};
use crate::sample::Timed;
use crate::serve::Subject;

/// A scenario's charts: bars per version, the latency distribution when requests were
/// timed, and threads and memory over the run where a model's cost grows with clients.
pub fn charts(scenario: &ScenarioResult) -> Vec<String> {
    // The census is read in its table; it times nothing a chart would add.
    if scenario.rows().any(|o| o.syscalls.is_some()) {
        return Vec::new();
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
pub(crate) fn chart_label(o: &Outcome) -> String {
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
            let seconds = |s: &f64| format!("{s:.1}");
            let mut chart =
                linear_chart(&area, caption, (end, top), "seconds into the run", &seconds)?;
            for (i, o) in scenario.rows().enumerate() {
                draw_line(&mut chart, i, is_peer(o), o.series.iter().map(|t| (t.secs, pick(t))))?;
            }
        }
        Ok(())
    })
}
