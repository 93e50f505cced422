//! A [`Timeline`] drawn as SVG text: a lane per thread, named; a bar per span coloured by
//! what the thread was doing (waiting drawn thin and grey, so that work stands out); under
//! each bar a stripe in its connection's colour, and the connection's number where there
//! is room; an arrow per hand-off from the lane that queued the work to the lane that took
//! it; a time axis, a legend, and the caller's sentence saying what to see.
//!
//! Plain SVG rather than plotters: lanes, arrows and hover titles are a few elements each,
//! and a span narrower than a pixel is merged with its neighbours of the same kind, so a
//! busy half second stays a file a browser opens at once.

use std::fmt::Write as _;

use super::{Category, Span, Timeline};
use crate::render::escape_html;

const WIDTH: f64 = 1000.0;
const LABELS: f64 = 130.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 58.0;
const LANE: f64 = 22.0;
const BAR: f64 = 14.0;
/// How many characters of the caption fit on a line at its size.
const CAPTION_CHARS: usize = 150;

/// The picture's style, every rule under `svg.timeline` so that a page holding the
/// picture inline keeps its own.
const STYLE: &str = "svg.timeline text{font-family:sans-serif;font-size:12px;fill:#222} \
    svg.timeline .tl-title{font-size:15px;font-weight:bold} \
    svg.timeline .tl-tick{font-size:10px;fill:#555} svg.timeline .tl-conn{font-size:9px;fill:#fff} \
    svg.timeline .tl-caption{font-size:13px} svg.timeline .tl-note{font-size:11px;fill:#555} \
    svg.timeline .tl-flow{stroke:#333;stroke-width:0.8;opacity:0.55} svg.timeline .tl-grid{stroke:#eee} \
    svg.timeline .tl-mark{stroke:#444;stroke-dasharray:4 3} svg.timeline .tl-marklabel{font-size:10px;fill:#444}";

/// The colour a category is drawn in.
pub fn colour(cat: Category) -> &'static str {
    match cat {
        Category::Wait => "#cccccc",
        Category::Accept => "#8c564b",
        Category::Read => "#1f77b4",
        Category::Decode => "#17becf",
        Category::Handle => "#2ca02c",
        Category::Write => "#ff7f0e",
        Category::Handoff => "#9467bd",
        Category::Spawn => "#e377c2",
        Category::Poll => "#bcbd22",
        Category::Reap => "#d62728",
        Category::Close => "#555555",
        Category::Running => "#d4a017",
        Category::Other => "#999999",
    }
}

/// The colour of connection `n`'s stripe: ten that tell neighbours apart, in turn.
pub fn conn_colour(n: u64) -> &'static str {
    const COLOURS: [&str; 10] = [
        "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#666666",
        "#66c2a5", "#b8860b",
    ];
    COLOURS[(n as usize).wrapping_sub(1) % COLOURS.len()]
}

/// The picture of `timeline`, titled `title`, with `caption` (one sentence saying what to
/// see) under it.
pub fn svg(timeline: &Timeline, title: &str, caption: &str) -> String {
    let plot = WIDTH - LABELS - RIGHT;
    let length = timeline.length_us.max(1.0);
    let x = |us: f64| LABELS + us / length * plot;
    let lanes_bottom = TOP + LANE * timeline.lanes.len() as f64;
    // Several pictures inline in one page must not share an id: the arrow head's is the
    // title's, hashed.
    let marker = format!(
        "tl-arrow-{:x}",
        title.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b))
            .wrapping_mul(0x100_0000_01b3))
    );
    let mut body = String::new();
    axis(&mut body, length, lanes_bottom, &x);
    for (i, lane) in timeline.lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let _ = write!(
            body,
            r##"<text class="tl-lane" x="{}" y="{}" text-anchor="end">{}</text>"##,
            LABELS - 6.0,
            y + LANE / 2.0 + 4.0,
            escape_html(&lane.name)
        );
        let spans: Vec<&Span> = timeline.spans.iter().filter(|s| s.lane == i).collect();
        bars(&mut body, &spans, y, &x);
    }
    let lane_y = |lane: usize| TOP + LANE * lane as f64 + LANE / 2.0;
    for flow in &timeline.flows {
        let _ = write!(
            body,
            r##"<line class="tl-flow" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" marker-end="url(#{marker})"/>"##,
            x(flow.from_us),
            lane_y(flow.from),
            x(flow.to_us),
            lane_y(flow.to)
        );
    }
    for mark in &timeline.marks {
        let px = x(mark.at_us);
        let _ = write!(
            body,
            r##"<line class="tl-mark" x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{:.1}"/><text class="tl-marklabel" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP - 2.0,
            lanes_bottom + 2.0,
            lanes_bottom + 14.0,
            escape_html(&mark.label)
        );
    }
    let bottom = legend(&mut body, timeline, &marker, lanes_bottom + 40.0);
    let bottom = text_block(&mut body, caption, bottom + 8.0, "tl-caption");
    let bottom = match notes(timeline) {
        Some(note) => text_block(&mut body, &note, bottom, "tl-note"),
        None => bottom,
    };
    let height = bottom + 10.0;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" class="timeline" data-lanes="{lanes}"><style>{STYLE}</style><defs><marker id="{marker}" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#333"/></marker></defs><rect width="100%" height="100%" fill="white"/><text class="tl-title" x="10" y="22">{title}</text>{body}</svg>"##,
        lanes = timeline.lanes.len(),
        title = escape_html(title),
    )
}

/// Millisecond ticks across the top, at a round step, with faint lines down the lanes.
fn axis(out: &mut String, length_us: f64, bottom: f64, x: &impl Fn(f64) -> f64) {
    let length_ms = length_us / 1000.0;
    let raw = length_ms / 8.0;
    let magnitude = 10f64.powf(raw.max(1e-3).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw);
    let step = step.unwrap_or(10.0 * magnitude);
    let mut t = 0.0;
    while t <= length_ms + 1e-9 {
        let px = x(t * 1000.0);
        let _ = write!(
            out,
            r##"<line class="tl-grid" x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{bottom}"/><text class="tl-tick" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP - 4.0,
            TOP - 8.0,
            tick(t, step)
        );
        t += step;
    }
    let _ =
        write!(out, r##"<text class="tl-tick" x="{}" y="{}">ms</text>"##, LABELS - 24.0, TOP - 8.0);
}

fn tick(ms: f64, step: f64) -> String {
    if step >= 1.0 { format!("{ms:.0}") } else { format!("{ms:.2}") }
}

/// A connection's number, to print over a bar wide enough: where, and the text.
struct Label {
    x0: f64,
    width: f64,
    y: f64,
    text: String,
}

/// One lane's spans: waits first (thin, under), then the rest; each run of spans of one
/// kind and connection narrower than a pixel apart drawn as one bar. Then the connections'
/// numbers, the bars drawn last (on top: a handler over the task poll that ran it) first,
/// none over another.
fn bars(out: &mut String, spans: &[&Span], y: f64, x: &impl Fn(f64) -> f64) {
    let mut labels = Vec::new();
    for waiting in [true, false] {
        let mut run: Option<(f64, f64, &Span, usize)> = None;
        let kept = spans.iter().filter(|s| (s.cat == Category::Wait) == waiting);
        for span in kept {
            let (x0, x1) = (x(span.start_us), x(span.end_us()));
            match &mut run {
                Some((_, end, first, n))
                    if first.cat == span.cat && first.conn == span.conn && x0 <= *end + 0.5 =>
                {
                    *end = end.max(x1);
                    *n += 1;
                }
                _ => {
                    if let Some(done) = run.take() {
                        bar(out, done, y, &mut labels);
                    }
                    run = Some((x0, x1, span, 1));
                }
            }
        }
        if let Some(done) = run {
            bar(out, done, y, &mut labels);
        }
    }
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for label in labels.iter().rev() {
        let (from, to) = (label.x0, label.x0 + label.width);
        if placed.iter().any(|&(a, b)| from < b && a < to) {
            continue;
        }
        placed.push((from, to));
        let _ = write!(
            out,
            r##"<text class="tl-conn" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            label.x0 + label.width / 2.0,
            label.y,
            label.text
        );
    }
}

fn bar(
    out: &mut String,
    (x0, x1, span, n): (f64, f64, &Span, usize),
    y: f64,
    labels: &mut Vec<Label>,
) {
    let width = (x1 - x0).max(1.0);
    let (top, height) = if span.cat == Category::Wait {
        (y + (LANE - 6.0) / 2.0, 6.0)
    } else {
        (y + (LANE - BAR) / 2.0 - 2.0, BAR)
    };
    let mut conn = span.conn.map(|c| format!(", connection {c}")).unwrap_or_default();
    if let Some(count) = span.count {
        // A reap's completions, a wait's ready events.
        conn += &format!(", {count} at once");
    }
    let what = if n > 1 {
        format!("{} × {} ({}){conn}", n, span.name, span.cat.name())
    } else {
        format!("{} ({}){conn}, {:.0} µs", span.name, span.cat.name(), span.dur_us)
    };
    let _ = write!(
        out,
        r##"<rect class="tl-span {cat}" x="{x0:.1}" y="{top:.1}" width="{width:.1}" height="{height}" fill="{fill}"><title>{title}</title></rect>"##,
        cat = span.cat.name(),
        fill = colour(span.cat),
        title = escape_html(&what),
    );
    let Some(c) = span.conn.filter(|_| span.cat != Category::Wait) else { return };
    let _ = write!(
        out,
        r##"<rect class="tl-stripe" x="{x0:.1}" y="{:.1}" width="{width:.1}" height="3" fill="{}"/>"##,
        top + height + 0.5,
        conn_colour(c)
    );
    let text = format!("c{c}");
    if width >= 6.0 * text.len() as f64 {
        labels.push(Label { x0, width, y: top + height - 3.5, text });
    }
}

/// The categories the picture uses, the hand-off arrow and the stripes; returns the y
/// below it.
fn legend(out: &mut String, timeline: &Timeline, marker: &str, y: f64) -> f64 {
    let used: Vec<Category> =
        Category::ALL.into_iter().filter(|c| timeline.spans.iter().any(|s| s.cat == *c)).collect();
    let mut items: Vec<(String, String)> = used
        .iter()
        .map(|c| {
            let swatch = format!(r##"<rect width="12" height="10" fill="{}"/>"##, colour(*c));
            (swatch, c.meaning().to_owned())
        })
        .collect();
    if !timeline.flows.is_empty() {
        let arrow = format!(
            r##"<line class="tl-flow" x1="0" y1="5" x2="12" y2="5" marker-end="url(#{marker})"/>"##
        );
        items.push((arrow, "a hand-off between threads".to_owned()));
    }
    if timeline.spans.iter().any(|s| s.conn.is_some()) {
        let stripes: String = (1..=3)
            .map(|c| {
                let x = (c - 1) * 4;
                format!(r##"<rect x="{x}" y="7" width="4" height="3" fill="{}"/>"##, conn_colour(c))
            })
            .collect();
        items.push((stripes, "stripe, cN: the connection served".to_owned()));
    }
    let (mut cx, mut cy) = (LABELS, y);
    let _ = write!(out, r##"<g class="tl-legend">"##);
    for (swatch, text) in items {
        let w = 20.0 + 6.2 * text.chars().count() as f64 + 16.0;
        if cx + w > WIDTH - RIGHT {
            cx = LABELS;
            cy += 18.0;
        }
        let _ = write!(
            out,
            r##"<g transform="translate({cx:.1},{:.1})">{swatch}<text x="18" y="10">{}</text></g>"##,
            cy - 10.0,
            escape_html(&text)
        );
        cx += w;
    }
    out.push_str("</g>");
    cy + 10.0
}

/// Text wrapped to the picture's width from `y`; returns the y below it.
fn text_block(out: &mut String, text: &str, y: f64, class: &str) -> f64 {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().map(|l| l.chars().count()).unwrap_or(0);
        if line > 0 && line + 1 + word.chars().count() > CAPTION_CHARS {
            lines.push(String::new());
        }
        if let Some(last) = lines.last_mut() {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    let mut y = y;
    for line in lines {
        y += 17.0;
        let _ = write!(
            out,
            r##"<text class="{class}" x="10" y="{y:.1}">{}</text>"##,
            escape_html(&line)
        );
    }
    y
}

/// What the reader should know of how the picture was taken: events lost, recording cut.
fn notes(timeline: &Timeline) -> Option<String> {
    let mut notes = Vec::new();
    if timeline.dropped > 0 {
        notes.push(format!(
            "The server could not record {} events (its buffers were full).",
            timeline.dropped
        ));
    }
    // A recording that ended because the server stopped covers all there was.
    if let Some(limit) = timeline.limit.as_deref().filter(|l| *l != "shutdown") {
        notes.push(format!("Recording stopped before the end: {limit}."));
    }
    (!notes.is_empty()).then(|| notes.join(" "))
}
