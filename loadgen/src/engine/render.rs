//! Rendering that knows nothing of what it renders: Markdown and HTML tables, the page
//! shell, an SVG drawn with plotters, a legend beside the plot, axis numbers for people, a
//! log axis and a percentile axis, and the check that a chart's labels do not cover each
//! other. The compare report, the kernel-waits sweep and the grader's scorecard all draw
//! with it.

use std::fmt::Write as _;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// The start of a page that needs nothing else to open: its title, and the style every
/// page loadgen writes shares (the compare report, the waits sweep, a grade). The shell and
/// its style sheet are files of their own (`render/page_start.html.tt`, `render/page.css`),
/// as criterion keeps its report's, so the CSS is written as CSS. Two placeholders need no
/// template engine: a `replace` each. The style's lines are joined, so every page carries
/// it on one line.
pub(crate) fn page_start(title: &str) -> String {
    const SHELL: &str = include_str!("render/page_start.html.tt");
    const STYLE: &str = include_str!("render/page.css");
    let style: String = STYLE.lines().collect();
    SHELL.replace("{style}", &style).replace("{title}", &escape_html(title))
}

/// The end of every page [`page_start`] began.
pub(crate) const PAGE_END: &str = "</body></html>\n";

/// A Markdown table; `|` in a cell is escaped.
pub(crate) fn md_table<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut md = format!(
        "| {} |\n",
        header.iter().map(|h| escape(h.as_ref())).collect::<Vec<_>>().join(" | ")
    );
    md += &format!("|{}\n", "---|".repeat(header.len()));
    for row in rows {
        md += &format!("| {} |\n", row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | "));
    }
    md
}

/// Text made safe to put in HTML, in an element or in a quoted attribute.
pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An HTML table; a cell that starts with ✘ (a limit reached) is marked for the style sheet.
pub(crate) fn html_table<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(html, "<th>{}</th>", escape_html(h.as_ref()));
    }
    html += "</tr></thead><tbody>";
    for row in rows {
        html += "<tr>";
        for cell in row {
            let class = if cell.starts_with('✘') { " class=\"limit\"" } else { "" };
            let _ = write!(html, "<td{class}>{}</td>", escape_html(cell));
        }
        html += "</tr>";
    }
    html + "</tbody></table>\n"
}

/// What a chart draws on.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws on an SVG of `size` and returns its text.
pub(crate) fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

/// A logarithmic axis with a tick at 1, 2 and 5 of every decade and a label at each
/// decade only, so labels never crowd into the top decade; when fewer than two decades
/// are in range, every tick is labelled, so there is always something to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogAxis {
    low: f64,
    high: f64,
}

impl LogAxis {
    pub(crate) fn new(low: f64, high: f64) -> Self {
        let low = low.max(f64::MIN_POSITIVE);
        Self { low, high: high.max(low * 10.0) }
    }

    fn ticks(&self) -> Vec<f64> {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(self.low.log10().floor());
        while decade <= self.high {
            for step in [1.0, 2.0, 5.0] {
                let tick = decade * step;
                if (self.low..=self.high).contains(&tick) {
                    ticks.push(tick);
                }
            }
            decade *= 10.0;
        }
        ticks
    }

    fn is_decade(value: f64) -> bool {
        let exponent = value.log10();
        (exponent - exponent.round()).abs() < 1e-9
    }

    /// Whether the tick at `value` carries a label.
    pub(crate) fn labelled(&self, value: f64) -> bool {
        let decades = self.ticks().into_iter().filter(|&t| Self::is_decade(t)).count();
        decades < 2 || Self::is_decade(value)
    }
}

impl Ranged for LogAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (low, high) = (self.low.log10(), self.high.log10());
        let share = (value.max(self.low).log10() - low) / (high - low);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

/// The percentile axis: linear in nines (see [`crate::measure::nines`]), with a tick at
/// each of `0`'s percentiles.
pub(crate) struct NinesAxis(pub(crate) [f64; 5]);

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

impl plotters::coord::ranged1d::ValueFormatter<f64> for LogAxis {
    fn format(value: &f64) -> String {
        axis_number(*value)
    }
}

/// Width of the legend column on a chart's right.
const LEGEND_WIDTH: u32 = 180;

/// Splits off a column on the right of `root` and draws there a legend of `entries`
/// (a name, and the palette index of its line); returns the rest, to plot in. Outside the
/// plot, the legend hides none of the lines it names.
pub(crate) fn beside_legend<'a>(
    root: &Area<'a>,
    entries: &[(&str, usize)],
) -> Result<Area<'a>, String> {
    let width = root.dim_in_pixel().0;
    let (plot, column) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    for (row, &(name, i)) in entries.iter().enumerate() {
        let y = 40 + 20 * row as i32;
        let color = Palette99::pick(i).stroke_width(2);
        column.draw(&PathElement::new([(8, y), (28, y)], color)).map_err(|e| e.to_string())?;
        let text = Text::new(name.to_owned(), (34, y - 7), ("sans-serif", 13));
        column.draw(&text).map_err(|e| e.to_string())?;
    }
    Ok(plot)
}

/// A chart with two linear axes, as [`linear_chart`] frames it.
pub(crate) type Linear<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The charts' linear frame: `caption` above, both axes from 0 to `x_max` and `y_max`, the
/// x axis described by `x_desc` and labelled by `x_label`, the y axis by [`axis_number`].
pub(crate) fn linear_chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    (x_max, y_max): (f64, f64),
    x_desc: &str,
    x_label: &dyn Fn(&f64) -> String,
) -> Result<Linear<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(x_label)
        .y_label_formatter(&|y| axis_number(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// An axis label for people: `950`, `12k`, `1.5M`, `0.25`; never `120000.0`.
pub(crate) fn axis_number(value: f64) -> String {
    let magnitude = value.abs();
    let trim = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text
        }
    };
    if magnitude >= 1e6 {
        trim(format!("{:.1}", value / 1e6)) + "M"
    } else if magnitude >= 1e4 {
        trim(format!("{:.1}", value / 1e3)) + "k"
    } else if magnitude >= 10.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        trim(format!("{value:.2}"))
    }
}

/// A chart's label as its SVG places it, and the box it covers, estimated from its font
/// size (an average glyph is a little over half an em wide in a sans-serif face).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub text: String,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Label {
    fn overlaps(&self, other: &Label) -> bool {
        self.left < other.left + other.width
            && other.left < self.left + self.width
            && self.top < other.top + other.height
            && other.top < self.top + self.height
    }
}

/// Every horizontal, non-empty `<text>` of one chart's SVG (as written, or as a browser
/// renders it). Rotated ones, the y-axis title, are left out: their box is not where
/// their x and y say.
pub fn labels(svg: &str) -> Vec<Label> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..start + tag[start..].find('"')?].to_owned())
    };
    let mut labels = Vec::new();
    for piece in svg.split("<text").skip(1) {
        let Some(end) = piece.find('>') else { continue };
        let (tag, rest) = piece.split_at(end);
        let text = rest[1..rest.find("</text>").unwrap_or(rest.len())].trim().to_owned();
        if text.is_empty() || tag.contains("transform") {
            continue;
        }
        let number = |name| attr(tag, name).and_then(|v| v.parse::<f64>().ok());
        let (Some(x), Some(y), Some(size)) = (number("x"), number("y"), number("font-size")) else {
            continue;
        };
        let width = text.chars().count() as f64 * size * 0.55;
        let left = match attr(tag, "text-anchor").as_deref() {
            Some("middle") => x - width / 2.0,
            Some("end") => x - width,
            _ => x,
        };
        // plotters hangs a label below y (dy 0.76em), centres it on y (dy 0.5ex), or sits
        // it on y as on a baseline.
        let top = match attr(tag, "dy").as_deref() {
            Some("0.76em") => y,
            Some("0.5ex") => y - size / 2.0,
            _ => y - size,
        };
        labels.push(Label { text, left, top, width, height: size });
    }
    labels
}

/// The pairs of a chart's labels that cover each other, by text: none in a chart a
/// reader can read.
pub fn overlapping_labels(svg: &str) -> Vec<(String, String)> {
    let labels = labels(svg);
    let mut pairs = Vec::new();
    for (i, a) in labels.iter().enumerate() {
        pairs.extend(
            labels[i + 1..]
                .iter()
                .filter(|b| a.overlaps(b))
                .map(|b| (a.text.clone(), b.text.clone())),
        );
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_ticks_one_two_five_and_labels_decades() {
        let axis = LogAxis::new(30.0, 40_000.0);
        assert_eq!(axis.ticks(), [50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4]);
        let labelled: Vec<f64> = axis.ticks().into_iter().filter(|&t| axis.labelled(t)).collect();
        assert_eq!(labelled, [100.0, 1e3, 1e4]);
        // Within one decade every tick is labelled.
        let narrow = LogAxis::new(150.0, 1_600.0);
        assert!(narrow.ticks().iter().all(|&t| narrow.labelled(t)), "{:?}", narrow.ticks());
    }

    #[test]
    fn axis_labels_read_like_numbers() {
        let labels: Vec<String> =
            [0.0, 0.25, 3.0, 950.0, 12_000.0, 120_000.0, 1_500_000.0].map(axis_number).into();
        assert_eq!(labels, ["0", "0.25", "3", "950", "12k", "120k", "1.5M"]);
    }

    #[test]
    fn a_page_starts_with_its_style_on_one_line_and_its_title_escaped() {
        let page = page_start("a <b> \"c\" & d");
        assert!(
            page.starts_with("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        );
        assert!(page.contains("<title>a &lt;b&gt; &quot;c&quot; &amp; d</title>"), "{page}");
        assert!(page.contains("<style>body{font-family:system-ui"), "{page}");
        assert!(page.contains("white-space:pre-wrap;margin:0}</style>"), "{page}");
        assert!(page.ends_with("<h1>a &lt;b&gt; &quot;c&quot; &amp; d</h1>"), "{page}");
        assert!(!page.contains('\n'), "one line, as before the template: {page}");
    }
}
