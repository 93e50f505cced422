//! Sequence diagrams drawn from measured timestamps, as SVG: a few vertical lifelines
//! (client, kernel, server...), messages as arrows between them at the times they were
//! sent and received, states held over time as bars on a lifeline, and instants as dots.
//!
//! The demonstrations record their own clocks (`Instant`s taken around each system call)
//! and hand the times to a [`Figure`]; [`Figure::svg`] draws it and [`Figure::text`] lists
//! the same times, so the stored picture always has its numbers beside it. A figure may
//! hold several panels side by side (the stall and its fix), each on its own time axis.
//!
//! Time runs downwards. The gaps that teach (a 40 ms delayed ACK, a one-second SYN retry)
//! are thousands of times longer than the ones around them (microseconds on loopback), so
//! the vertical distance between two consecutive times grows with the logarithm of the gap
//! rather than in proportion: every event stays legible and a longer wait is still drawn
//! longer. The measured time of each event is written at the left.

use std::fmt::Write as _;
use std::time::Duration;

/// One diagram: what it shows, the sentence saying what to see, and its panels.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub title: String,
    /// What to see in it, in one or two sentences; drawn under the panels.
    pub caption: String,
    pub panels: Vec<Panel>,
}

/// One time axis with its lifelines. Times are measured from the panel's own origin.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub lifelines: Vec<String>,
    pub items: Vec<Item>,
    /// Draw time in proportion, this many pixels per millisecond (plus a line of text between
    /// events that would touch), where proportion is the lesson; else by the logarithm of
    /// each gap.
    pub px_per_ms: Option<f64>,
}

/// How a bar on a lifeline is coloured: what kind of holding it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shade {
    /// Something waits: a segment held back, a program blocked, a request delayed.
    Waiting,
    /// The kernel holds something of the program's (a buffer lent, a socket in TIME_WAIT).
    Kernel,
    /// The program is busy with it (a handler running, a buffer being read).
    Busy,
}

/// What happens on a panel.
#[derive(Debug, Clone)]
pub enum Item {
    /// An arrow from lifeline `from` at `sent` to lifeline `to` at `received`; a `lost` one
    /// ends in a cross halfway (a SYN the kernel dropped).
    Message {
        from: usize,
        to: usize,
        sent: Duration,
        received: Duration,
        label: String,
        lost: bool,
    },
    /// A state held on lifeline `on` from `start` to `end`.
    Span { on: usize, start: Duration, end: Duration, label: String, shade: Shade },
    /// An instant on lifeline `on` (a call returning, a count read).
    Mark { on: usize, at: Duration, label: String },
}

impl Item {
    /// An arrow that arrived.
    pub fn message(
        from: usize,
        to: usize,
        sent: Duration,
        received: Duration,
        label: &str,
    ) -> Item {
        Item::Message { from, to, sent, received, label: label.to_owned(), lost: false }
    }

    /// An arrow that never arrived, drawn at the time it was sent.
    pub fn lost(from: usize, to: usize, sent: Duration, label: &str) -> Item {
        Item::Message { from, to, sent, received: sent, label: label.to_owned(), lost: true }
    }

    pub fn span(on: usize, start: Duration, end: Duration, label: &str, shade: Shade) -> Item {
        Item::Span { on, start, end: end.max(start), label: label.to_owned(), shade }
    }

    pub fn mark(on: usize, at: Duration, label: &str) -> Item {
        Item::Mark { on, at, label: label.to_owned() }
    }

    /// When it begins, which orders the listing and the drawing.
    pub fn start(&self) -> Duration {
        match self {
            Item::Message { sent, .. } => *sent,
            Item::Span { start, .. } => *start,
            Item::Mark { at, .. } => *at,
        }
    }

    /// When it ends (its start, for an instant or a lost message).
    pub fn end(&self) -> Duration {
        match self {
            Item::Message { received, .. } => *received,
            Item::Span { end, .. } => *end,
            Item::Mark { at, .. } => *at,
        }
    }

    fn label(&self) -> &str {
        match self {
            Item::Message { label, .. } | Item::Span { label, .. } | Item::Mark { label, .. } => {
                label
            }
        }
    }
}

/// Pixels: the least distance between two distinct times, and how much more a gap adds
/// per factor of ten over [`UNIT`].
const ROW: f64 = 24.0;
const DECADE: f64 = 26.0;
/// The least distance between two distinct times on a proportional panel: a line of text.
const TOUCH: f64 = 13.0;
/// Gaps below this are drawn as one row: loopback's transit times and a call's own cost.
const UNIT: Duration = Duration::from_micros(10);
/// The time column at the left of a panel, the distance between lifelines, the header.
const TIME_COLUMN: f64 = 70.0;
const LANE: f64 = 270.0;
const HEADER: f64 = 58.0;
/// How far from its sender's lifeline a message's label starts: past four bars.
const LABEL_OFFSET: f64 = 54.0;
/// Room right of the last lifeline's half lane for the labels written beside it.
const RIGHT: f64 = 60.0;
const FONT: f64 = 11.0;

/// Where each distinct time of a panel is drawn: the times sorted, with their heights.
#[derive(Debug, Clone)]
pub struct Scale {
    rows: Vec<(Duration, f64)>,
}

impl Scale {
    /// The scale of `panel`: every start and end of its items gets a row, ROW below the
    /// previous one plus DECADE per factor of ten the gap exceeds UNIT by.
    pub fn of(panel: &Panel) -> Scale {
        let mut times: Vec<Duration> =
            panel.items.iter().flat_map(|item| [item.start(), item.end()]).collect();
        times.sort_unstable();
        times.dedup();
        let mut rows = Vec::with_capacity(times.len());
        let mut y = HEADER + ROW;
        let mut previous: Option<Duration> = None;
        for time in times {
            if let Some(before) = previous {
                let gap = time - before;
                y += match panel.px_per_ms {
                    Some(px) => TOUCH + px * gap.as_secs_f64() * 1e3,
                    None => {
                        ROW + DECADE * (gap.as_secs_f64() / UNIT.as_secs_f64()).max(1.0).log10()
                    }
                };
            }
            rows.push((time, y));
            previous = Some(time);
        }
        Scale { rows }
    }

    /// The height at which `time` is drawn (it must be one of the panel's times; any other
    /// falls on the row of the first time after it).
    pub fn y(&self, time: Duration) -> f64 {
        let index = self.rows.partition_point(|(t, _)| *t < time);
        self.rows.get(index).or(self.rows.last()).map_or(HEADER + ROW, |(_, y)| *y)
    }

    /// The lowest row.
    pub fn bottom(&self) -> f64 {
        self.rows.last().map_or(HEADER + ROW, |(_, y)| *y)
    }
}

/// `text` with the five characters XML gives meaning to escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A time for the left column and the listing: microseconds below a millisecond, then
/// milliseconds, then seconds.
pub fn show(time: Duration) -> String {
    let us = time.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.3} s", us / 1e6)
    }
}

impl Panel {
    /// The panel's width in pixels.
    fn width(&self) -> f64 {
        TIME_COLUMN + LANE * self.lifelines.len() as f64 + RIGHT
    }

    fn x(&self, lifeline: usize) -> f64 {
        TIME_COLUMN + LANE * (lifeline as f64 + 0.5)
    }

    /// The items in time order (ties keep the order they were given in).
    pub fn ordered(&self) -> Vec<&Item> {
        let mut items: Vec<&Item> = self.items.iter().collect();
        items.sort_by_key(|item| item.start());
        items
    }

    /// Draws the panel with its left edge at `left`; returns its SVG and its height.
    fn svg(&self, left: f64) -> (String, f64) {
        let scale = Scale::of(self);
        let bottom = scale.bottom() + ROW;
        let mut out = String::new();
        let _ = writeln!(out, r#"<g class="panel" transform="translate({left:.1},0)">"#);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="20" class="panel-title">{}</text>"#,
            self.width() / 2.0,
            escape(&self.title)
        );
        for (index, name) in self.lifelines.iter().enumerate() {
            let x = self.x(index);
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" class="lifeline-name">{}</text><line class="lifeline" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}"/>"#,
                HEADER - 16.0,
                escape(name),
                HEADER - 8.0
            );
        }
        self.time_column(&scale, &mut out);
        let (slots, widest) = self.span_slots();
        for (index, item) in self.ordered().into_iter().enumerate() {
            let slot = slots.get(&index).copied().unwrap_or(0);
            self.item_svg(item, &scale, (slot, &widest), &mut out);
        }
        out.push_str("</g>\n");
        (out, bottom)
    }

    /// The measured times at the left, each start of an item, skipping one that would be
    /// written over the previous.
    fn time_column(&self, scale: &Scale, out: &mut String) {
        let mut last_y = f64::MIN;
        for item in self.ordered() {
            let y = scale.y(item.start());
            if y - last_y >= FONT + 2.0 {
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" class="time">{}</text>"#,
                    TIME_COLUMN - 10.0,
                    y + 4.0,
                    show(item.start())
                );
                last_y = y;
            }
        }
    }

    /// For each span (by its index in [`Panel::ordered`]), how far to the side of its
    /// lifeline it is drawn, so that spans that overlap in time on one lifeline sit side by
    /// side: the lowest slot whose last span has ended.
    /// Also returns, per lifeline, the highest slot used, past which labels are written.
    fn span_slots(&self) -> (std::collections::HashMap<usize, usize>, Vec<usize>) {
        let mut ends: Vec<Vec<Duration>> = vec![Vec::new(); self.lifelines.len()];
        let mut slots = std::collections::HashMap::new();
        for (index, item) in self.ordered().into_iter().enumerate() {
            if let Item::Span { on, start, end, .. } = item {
                let Some(lane) = ends.get_mut(*on) else { continue };
                let slot = lane.iter().position(|e| e <= start).unwrap_or(lane.len());
                if slot == lane.len() {
                    lane.push(*end);
                } else {
                    lane[slot] = *end;
                }
                slots.insert(index, slot);
            }
        }
        let widest = ends.iter().map(|lane| lane.len().saturating_sub(1)).collect();
        (slots, widest)
    }

    /// Where the label of a bar or dot at `x` (of width `width`) on lifeline `on` goes:
    /// to the left of the first lifeline, where no arrow comes from, else to the right.
    fn label_side(&self, on: usize, x: f64, width: f64) -> (f64, &'static str) {
        if on == 0 && self.lifelines.len() > 1 {
            (x - 4.0, "end")
        } else {
            (x + width + 4.0, "start")
        }
    }

    fn item_svg(
        &self,
        item: &Item,
        scale: &Scale,
        (slot, widest): (usize, &[usize]),
        out: &mut String,
    ) {
        match item {
            Item::Message { from, to, sent, received, label, lost } => {
                let (x1, x2) = (self.x(*from), self.x(*to));
                let (y1, y2) = (scale.y(*sent), scale.y(*received));
                // The label starts at the sender, clear of the bars beside its lifeline:
                // above an arrow going right, below one going left, so that two messages
                // crossing at one time (an ACK one way, data the other) keep theirs apart.
                let (right, reach) = (x2 >= x1, LABEL_OFFSET.min((x2 - x1).abs() / 2.0));
                let tx = if right { x1 + reach } else { x1 - reach };
                let slope = if x2 == x1 { 0.0 } else { (y2 - y1) / (x2 - x1).abs() };
                let ty = y1 + slope * reach + if right { -5.0 } else { FONT + 3.0 };
                let anchor = if right { "start" } else { "end" };
                if *lost {
                    let xm = (x1 + x2) / 2.0;
                    let _ = writeln!(
                        out,
                        r#"<g class="message lost" data-sent-us="{}"><line x1="{x1:.1}" y1="{y1:.1}" x2="{xm:.1}" y2="{y1:.1}"/><path d="M{:.1},{:.1} l10,10 m0,-10 l-10,10"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}">{}</text></g>"#,
                        sent.as_micros(),
                        xm - 5.0,
                        y1 - 5.0,
                        escape(label)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        r#"<g class="message" data-sent-us="{}"><line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" marker-end="url(#arrow)"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}">{}</text></g>"#,
                        sent.as_micros(),
                        escape(label)
                    );
                }
            }
            Item::Span { on, start, end, label, shade } => {
                let x = self.x(*on) - 5.0 + 12.0 * slot as f64;
                let widest =
                    self.x(*on) - 5.0 + 12.0 * widest.get(*on).copied().unwrap_or(0) as f64;
                let (y1, y2) = (scale.y(*start), scale.y(*end));
                let class = match shade {
                    Shade::Waiting => "waiting",
                    Shade::Kernel => "kernel",
                    Shade::Busy => "busy",
                };
                let (tx, anchor) = if *on == 0 && self.lifelines.len() > 1 {
                    self.label_side(*on, self.x(*on) - 5.0, 10.0)
                } else {
                    self.label_side(*on, widest, 10.0)
                };
                let _ = writeln!(
                    out,
                    r#"<g class="span {class}"><rect x="{x:.1}" y="{y1:.1}" width="10" height="{:.1}"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text></g>"#,
                    (y2 - y1).max(2.0),
                    // At the bar's top, where what it holds begins; a dot further down
                    // on the same lifeline keeps its label clear.
                    (y1 + 12.0).min((y1 + y2) / 2.0 + 4.0),
                    escape(label)
                );
            }
            Item::Mark { on, at, label } => {
                let (x, y) = (self.x(*on), scale.y(*at));
                let (tx, anchor) = self.label_side(*on, x - 4.0, 8.0);
                let _ = writeln!(
                    out,
                    r#"<g class="mark"><circle cx="{x:.1}" cy="{y:.1}" r="3.5"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text></g>"#,
                    y + 4.0,
                    escape(label)
                );
            }
        }
    }
}

const STYLE: &str = r##"<style>
text { font-family: sans-serif; font-size: 11px; fill: #222; }
.title { font-size: 15px; font-weight: bold; }
.panel-title { font-size: 13px; font-weight: bold; text-anchor: middle; }
.lifeline-name { font-weight: bold; text-anchor: middle; }
.lifeline { stroke: #888; stroke-dasharray: 4 3; }
.time { text-anchor: end; fill: #666; }
.message line { stroke: #1f4e99; stroke-width: 1.4; }
.message text { fill: #1f4e99; }
.message.lost line, .message.lost path { stroke: #c0392b; stroke-width: 1.6; fill: none; }
.message.lost text { fill: #c0392b; }
.span rect { stroke: none; }
.span.waiting rect { fill: #e67e22; }
.span.kernel rect { fill: #8e44ad; }
.span.busy rect { fill: #27ae60; }
.mark circle { fill: #222; }
.caption { fill: #333; }
</style>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f4e99"/></marker></defs>
"##;

impl Figure {
    /// The figure as a standalone SVG document.
    pub fn svg(&self) -> String {
        let mut body = String::new();
        let (mut left, mut height) = (0.0f64, 0.0f64);
        for panel in &self.panels {
            let (svg, bottom) = panel.svg(left);
            body.push_str(&svg);
            left += panel.width();
            height = height.max(bottom);
        }
        let width = left.max(600.0);
        let caption = crate::wrap(&self.caption);
        let lines: Vec<&str> = caption.lines().collect();
        let total = height + 30.0 + 16.0 * lines.len() as f64;
        let mut out = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{total:.0}" viewBox="0 -26 {width:.0} {:.0}" role="img">"#,
            total + 26.0
        );
        let _ = write!(out, "\n<title>{}</title>\n{STYLE}", escape(&self.title));
        let _ =
            writeln!(out, r#"<text x="10" y="-8" class="title">{}</text>"#, escape(&self.title));
        out.push_str(&body);
        for (index, line) in lines.iter().enumerate() {
            let y = height + 22.0 + 16.0 * index as f64;
            let _ =
                writeln!(out, r#"<text x="10" y="{y:.1}" class="caption">{}</text>"#, escape(line));
        }
        out.push_str("</svg>\n");
        out
    }

    /// The measured times as text, one line per item in time order, per panel.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n{}\n", self.title, crate::wrap(&self.caption));
        for panel in &self.panels {
            let _ = writeln!(out, "\n{}", panel.title);
            let name = |index: &usize| panel.lifelines.get(*index).map_or("?", String::as_str);
            for item in panel.ordered() {
                let what = match item {
                    Item::Message { from, to, lost: true, .. } => {
                        format!("{} -x {} (lost)", name(from), name(to))
                    }
                    Item::Message { from, to, received, .. } => {
                        format!("{} -> {} (arrives {})", name(from), name(to), show(*received))
                    }
                    Item::Span { on, end, .. } => format!("{} until {}", name(on), show(*end)),
                    Item::Mark { on, .. } => name(on).to_owned(),
                };
                // A bar drawn unlabelled beside one that says what they all are.
                let label = if item.label().is_empty() { "(as above)" } else { item.label() };
                let _ = writeln!(out, "{:>12}  {what}: {label}", show(item.start()));
            }
        }
        out
    }

    /// Writes the SVG to `path`.
    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        std::fs::write(path, self.svg()).with_context(|| format!("write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn sample() -> Figure {
        Figure {
            title: "A <test> & more".into(),
            caption: "What to see.".into(),
            panels: vec![Panel {
                title: "one".into(),
                lifelines: vec!["client".into(), "server".into()],
                // Given out of order: the drawing orders them.
                items: vec![
                    Item::message(1, 0, us(40_100), us(40_120), "body"),
                    Item::message(0, 1, us(0), us(20), "request"),
                    Item::span(1, us(60), us(40_100), "held", Shade::Waiting),
                    Item::lost(0, 1, us(30), "lost"),
                    Item::mark(0, us(40_200), "done"),
                ],
                px_per_ms: None,
            }],
        }
    }

    #[test]
    fn later_times_are_drawn_lower_and_longer_gaps_longer() {
        let panel = &sample().panels[0];
        let scale = Scale::of(panel);
        let ys: Vec<f64> = panel.ordered().iter().map(|item| scale.y(item.start())).collect();
        assert!(ys.windows(2).all(|pair| pair[0] < pair[1]), "{ys:?}");
        let short = scale.y(us(20)) - scale.y(us(0));
        let long = scale.y(us(40_100)) - scale.y(us(60));
        assert!(long > 2.0 * short, "a 40 ms gap drawn {long} against 20 µs {short}");
    }

    #[test]
    fn the_svg_has_every_lifeline_and_its_messages_in_time_order() {
        let svg = sample().svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for name in ["client", "server"] {
            assert!(svg.contains(&format!(r#"class="lifeline-name">{name}</text>"#)), "{name}");
        }
        assert!(svg.contains("A &lt;test&gt; &amp; more"), "title not escaped");
        let sent: Vec<u64> = svg
            .split(r#"data-sent-us=""#)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(sent, [0, 30, 40_100]);
        // A message's arrow goes down (or level), never back up in time.
        for line in svg.lines().filter(|line| line.contains(r#"class="message""#)) {
            let attr = |name: &str| -> f64 {
                let start = line.find(&format!(r#" {name}=""#)).unwrap() + name.len() + 3;
                line[start..].split('"').next().unwrap().parse().unwrap()
            };
            assert!(attr("y2") >= attr("y1"), "{line}");
        }
    }

    #[test]
    fn the_listing_gives_each_time() {
        let text = sample().text();
        let request = text.find("0 µs  client -> server (arrives 20 µs): request").unwrap();
        let body = text.find("40.10 ms  server -> client (arrives 40.12 ms): body").unwrap();
        assert!(request < body, "{text}");
        assert!(text.contains("client -x server (lost): lost"), "{text}");
    }
}
