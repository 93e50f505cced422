//! The overload experiment on the page: the table of knees beside Little's law, every
//! step, the sentences that read them (the order of the knees, which curves are the
//! generator's, what shedding kept), and two charts per workload: p99 against offered
//! load with the SLO drawn, and goodput against offered load; knees marked.

use plotters::prelude::*;
use serde::Serialize;

use super::model::{self, curve_generator_bound, generator_bound, why_it_differs};
use super::{Curve, WorkloadResult};
use crate::compare::experiment::Table;
use crate::measure::fmt_us;
use crate::render::{LogAxis, axis_number, beside_legend, svg};

/// What the experiment found: each workload's curves, and what the run left out.
#[derive(Debug, Clone, Serialize)]
pub struct Overload {
    pub workloads: Vec<WorkloadResult>,
    /// The cores the predictions counted.
    pub cores: usize,
    /// What was cut to fit the time, in a sentence; empty when nothing was.
    pub cut: String,
}

/// `1,234` req/s without the noise: whole numbers.
fn rate(r: f64) -> String {
    format!("{r:.0}")
}

/// The goodput at the step offering about twice `knee`, as a share of the goodput at the
/// step offering `knee`: with the rate of that step.
pub fn kept_at_twice(curve: &Curve, knee: Option<f64>) -> Option<(f64, f64)> {
    let knee = knee?;
    let at_knee = curve.steps.iter().find(|s| s.offered == knee)?;
    let twice = curve
        .steps
        .iter()
        .filter(|s| s.offered >= 1.9 * knee)
        .min_by(|a, b| a.offered.total_cmp(&b.offered))?;
    (at_knee.goodput > 0.0).then(|| (twice.offered, twice.goodput / at_knee.goodput))
}

/// The knee a line's goodput past it is measured from: its own, or, for a line with
/// shedding, the same version's without (the knee of a line that sheds is where its 503s
/// began, which the plain line's shows with no refusal in it).
pub fn reference_knee(w: &WorkloadResult, c: &Curve) -> Option<f64> {
    let plain = || w.curves.iter().find(|p| !p.shedding && p.version == c.version);
    match plain() {
        Some(p) if c.shedding => p.knee.filter(|_| p.bent(w.slo_us)),
        _ => c.knee.filter(|_| c.bent(w.slo_us)),
    }
}

impl Overload {
    /// The knees, a row per line, and every step.
    pub fn tables(&self) -> Vec<Table> {
        if self.workloads.iter().all(|w| w.curves.is_empty()) {
            return Vec::new();
        }
        vec![self.knees(), self.steps()]
    }

    fn knees(&self) -> Table {
        let header = [
            "workload",
            "line",
            "serves at once",
            "knee (req/s)",
            "Little's law",
            "measured / predicted",
            "goodput at 2× knee",
            "why they differ (> 25%)",
        ];
        let mut rows = Vec::new();
        for w in &self.workloads {
            for c in &w.curves {
                let mut row = vec![w.name.clone(), c.label.clone(), c.concurrency.what.clone()];
                if let Some(why) = &c.skipped {
                    row.extend([format!("not run: {why}"), String::new(), String::new()]);
                    row.extend([String::new(), String::new()]);
                    rows.push(row);
                    continue;
                }
                row.push(match c.knee {
                    Some(knee) if c.bent(w.slo_us) => rate(knee),
                    Some(knee) => format!("≥ {} (no step missed the SLO)", rate(knee)),
                    None => "none".to_owned(),
                });
                row.push(match c.prediction.rate {
                    Some(r) => format!("{} ({})", rate(r), c.prediction.from),
                    None => c.prediction.from.clone(),
                });
                let at_least = if c.bent(w.slo_us) { "" } else { "≥ " };
                row.push(model::ratio(c).map_or_else(String::new, |r| format!("{at_least}{r:.2}")));
                let knee = reference_knee(w, c);
                row.push(kept_at_twice(c, knee).map_or_else(String::new, |(offered, share)| {
                    let at = knee.map_or_else(String::new, rate);
                    format!("{:.0}% of its goodput at {at} (at {})", share * 100.0, rate(offered))
                }));
                row.push(why_it_differs(c, w.slo_us, w.close, self.cores).unwrap_or_default());
                rows.push(row);
            }
        }
        ("Knees: measured, and what Little's law predicts", header.map(String::from).into(), rows)
    }

    fn steps(&self) -> Table {
        let header = [
            "workload",
            "line",
            "offered",
            "answered / s",
            "goodput / s",
            "p50",
            "p99",
            "errors",
            "503s",
            "server queues (max)",
            "server CPU (drain included)",
            "loadgen late (p99)",
            "generator-bound",
        ];
        let mut rows = Vec::new();
        for w in &self.workloads {
            for c in &w.curves {
                for s in &c.steps {
                    let queues: Vec<String> =
                        s.server.queues_max.iter().map(|(n, v)| format!("{n} {v}")).collect();
                    rows.push(vec![
                        w.name.clone(),
                        c.label.clone(),
                        rate(s.offered),
                        rate(s.throughput),
                        rate(s.goodput),
                        fmt_us(s.latency_us.p50),
                        fmt_us(s.latency_us.p99),
                        s.errors.describe(),
                        s.unavailable.to_string(),
                        queues.join(", "),
                        c.server_cpu_ms
                            .get(
                                c.steps
                                    .iter()
                                    .position(|t| std::ptr::eq(t, s))
                                    .unwrap_or(usize::MAX),
                            )
                            .map_or_else(String::new, |ms| format!("{ms} ms")),
                        fmt_us(s.send_lag_p99_us),
                        if generator_bound(s, w.slo_us) { "yes".into() } else { String::new() },
                    ]);
                }
            }
        }
        ("Every step", header.map(String::from).into(), rows)
    }

    /// The sentences that read the tables: per workload, the order of the knees, the
    /// curves the generator shaped, what shedding kept; then what was cut.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for w in self.workloads.iter().filter(|w| !w.curves.is_empty()) {
            let ran: Vec<&Curve> = w.curves.iter().filter(|c| c.skipped.is_none()).collect();
            if w.service_us.is_some() {
                let curves: Vec<Curve> = ran.iter().map(|c| (*c).clone()).collect();
                notes.push(format!("{}: {}", w.name, model::order(&curves)));
            }
            let bound: Vec<&str> = ran
                .iter()
                .filter(|c| curve_generator_bound(c, w.slo_us))
                .map(|c| c.label.as_str())
                .collect();
            notes.push(format!(
                "{}: {}",
                w.name,
                if bound.is_empty() {
                    "no curve is generator-bound: where each first missed the SLO, loadgen's \
                     thread was short of a full core and its lateness was not the miss."
                        .to_owned()
                } else {
                    format!(
                        "generator-bound (where the SLO was first missed, loadgen's thread was \
                         near a full core or its own lateness was the miss; the knee is at most \
                         the generator's): {}.",
                        bound.join(", ")
                    )
                }
            ));
            notes.extend(shedding(w, &ran));
        }
        if !self.cut.is_empty() {
            notes.push(self.cut.clone());
        }
        notes
    }

    /// Two charts per workload: p99 and goodput against offered load.
    pub fn charts(&self) -> Vec<String> {
        self.chart_files().into_iter().map(|(_, chart)| chart).collect()
    }

    /// The charts with the names of the files `compare` writes them to beside the report
    /// (`overload-1-p99.svg`: the first workload's), so `report.md` can show them too.
    pub fn chart_files(&self) -> Vec<(String, String)> {
        let mut drawn = Vec::new();
        for (n, w) in self.workloads.iter().enumerate() {
            if w.curves.iter().all(|c| c.steps.is_empty()) {
                continue;
            }
            for (what, chart) in [("p99", p99_chart(w)), ("goodput", goodput_chart(w))] {
                match chart {
                    Ok(chart) => drawn.push((format!("overload-{}-{what}.svg", n + 1), chart)),
                    Err(e) => eprintln!("a chart was left out: {e}"),
                }
            }
        }
        drawn
    }
}

/// For each line with shedding, its goodput at twice the knee (the version's without
/// shedding) beside the same version's without.
fn shedding(w: &WorkloadResult, ran: &[&Curve]) -> Vec<String> {
    let kept = |c: &Curve| {
        kept_at_twice(c, reference_knee(w, c)).map_or_else(
            || "not measured (no knee, or no step at twice it)".to_owned(),
            |(offered, share)| format!("{:.0}% at {}", share * 100.0, rate(offered)),
        )
    };
    ran.iter()
        .filter(|c| c.shedding)
        .map(|shed| {
            let plain = ran.iter().find(|c| !c.shedding && c.version == shed.version);
            format!(
                "{}: {}'s goodput at twice the knee, as a share of its goodput at the knee: {} \
                 with shedding ({}){}.",
                w.name,
                shed.version.name(),
                kept(shed),
                shed.args.join(" "),
                plain.map_or_else(String::new, |p| format!(", {} without", kept(p)))
            )
        })
        .collect()
}

/// The x axis every chart of a workload shares: its grid, log scale.
fn x_axis(w: &WorkloadResult) -> LogAxis {
    let low = w.grid.first().copied().unwrap_or(1.0);
    let high = w.grid.last().copied().unwrap_or(10.0);
    LogAxis::new(low / 1.2, high * 1.2)
}

/// The lines of a workload that ran, with their palette index, for the legend; a line the
/// generator bent rather than the server is marked `*`, which the caption explains.
fn entries(w: &WorkloadResult) -> Vec<(String, usize)> {
    let mark = |c: &Curve| if curve_generator_bound(c, w.slo_us) { " *" } else { "" };
    w.curves.iter().enumerate().map(|(i, c)| (format!("{}{}", c.label, mark(c)), i)).collect()
}

/// The legend's entries as [`beside_legend`] takes them.
fn borrowed(entries: &[(String, usize)]) -> Vec<(&str, usize)> {
    entries.iter().map(|(name, i)| (name.as_str(), *i)).collect()
}

/// What every chart of a workload says under its title: the request, how it was sent, the
/// SLO, and what the marks mean, so the picture stands alone.
fn subtitle(w: &WorkloadResult) -> String {
    let how = if w.close { "a new connection per request" } else { "kept-alive connections" };
    format!(
        "GET {}, {how}, open loop; SLO {}; large dots: knees; dashed lines: shedding on; \
         *: generator-bound",
        w.path,
        fmt_us(w.slo_us)
    )
}

/// Draws each curve's points `(offered, y)`, a shedding line dashed, its knee a large dot.
fn draw_curves<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<LogAxis, LogAxis>>,
    w: &WorkloadResult,
    y: &dyn Fn(&crate::sweep::Step) -> f64,
) -> Result<(), String> {
    for (i, c) in w.curves.iter().enumerate() {
        let style = Palette99::pick(i).stroke_width(2);
        let points: Vec<(f64, f64)> = c.steps.iter().map(|s| (s.offered, y(s))).collect();
        let line = if c.shedding {
            chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style)).map(|_| ())
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style)).map(|_| ())
        };
        line.map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 2, style.filled())))
            .map_err(|e| e.to_string())?;
        if let Some(knee) = c.knee_step().filter(|_| c.bent(w.slo_us)) {
            let dot = Circle::new((knee.offered, y(knee)), 6, style.filled());
            chart.draw_series(std::iter::once(dot)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The hockey stick: p99 against offered load, both on log scales, the SLO a line across.
fn p99_chart(w: &WorkloadResult) -> Result<String, String> {
    let all = || w.curves.iter().flat_map(|c| &c.steps).map(|s| s.latency_us.p99 as f64 / 1e3);
    let low = all().fold(w.slo_us as f64 / 1e3, f64::min).max(0.01);
    let high = all().fold(w.slo_us as f64 / 1e3, f64::max);
    let (x, y) = (x_axis(w), LogAxis::new(low / 1.5, high * 1.5));
    let caption = format!("{}: p99 latency (ms) by offered load", w.name);
    let entries = entries(w);
    svg((960, 400), |root| {
        let plot = beside_legend(root, &borrowed(&entries))?;
        let plot = under_subtitle(&plot, &subtitle(w))?;
        let mut chart = frame(&plot, &caption, x, y, "p99, ms")?;
        let slo = w.slo_us as f64 / 1e3;
        let edge = x.range();
        chart
            .draw_series(DashedLineSeries::new(
                [(edge.start, slo), (edge.end, slo)],
                8,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        draw_curves(&mut chart, w, &|s| s.latency_us.p99 as f64 / 1e3)
    })
}

/// Goodput against offered load: it follows the offered load to the knee, then holds or
/// collapses.
fn goodput_chart(w: &WorkloadResult) -> Result<String, String> {
    let high = w.curves.iter().flat_map(|c| &c.steps).map(|s| s.offered.max(s.goodput));
    let high = high.fold(1.0, f64::max);
    let low = w.grid.first().copied().unwrap_or(1.0) / 10.0;
    let (x, y) = (x_axis(w), LogAxis::new(low, high * 1.5));
    let caption =
        format!("{}: goodput (answers within the SLO per second) by offered load", w.name);
    let entries = entries(w);
    svg((960, 400), |root| {
        let plot = beside_legend(root, &borrowed(&entries))?;
        let plot = under_subtitle(&plot, &subtitle(w))?;
        let mut chart = frame(&plot, &caption, x, y, "goodput, req/s")?;
        // Where every answer came in time: goodput equal to the offered load, drawn only
        // where both axes reach, or its end would be pinned to the plot's edge.
        let from = x.range().start.max(y.range().start);
        let to = x.range().end.min(y.range().end);
        chart
            .draw_series(DashedLineSeries::new(
                [(from, from), (to, to)],
                3,
                5,
                BLACK.mix(0.4).into(),
            ))
            .map_err(|e| e.to_string())?;
        draw_curves(&mut chart, w, &|s| s.goodput.max(low))
    })
}

/// Writes `text` at the foot of `area` and returns the area above it, for the chart.
fn under_subtitle<'a>(
    area: &crate::render::Area<'a>,
    text: &str,
) -> Result<crate::render::Area<'a>, String> {
    let height = area.dim_in_pixel().1;
    let (chart, foot) = area.split_vertically(height.saturating_sub(18));
    let note = Text::new(text.to_owned(), (70, 2), ("sans-serif", 12));
    foot.draw(&note).map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Both axes logarithmic, labelled at their decades.
fn frame<'a, 'b>(
    area: &'a crate::render::Area<'b>,
    caption: &str,
    x: LogAxis,
    y: LogAxis,
    y_desc: &str,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogAxis, LogAxis>>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("offered load, requests per second")
        .y_desc(y_desc)
        .x_label_formatter(&|v| if x.labelled(*v) { axis_number(*v) } else { String::new() })
        .y_label_formatter(&|v| if y.labelled(*v) { axis_number(*v) } else { String::new() })
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}
