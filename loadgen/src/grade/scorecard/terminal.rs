//! The scorecard as plain text: a row of a table on a line of its own (its mark, tag and
//! leads), with what does not fit there indented under it; in colour when `color` is set.

use std::fmt::Write as _;

use super::{Cell, Column, Finding, Kind, Mark, Scorecard, Shown};

/// How far a failure's detail, and its every line, is indented.
const DETAIL_INDENT: &str = "\n      ";

/// ANSI colours, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn paint(self, code: &str, text: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    fn glyph(self, kind: Kind) -> String {
        match kind {
            Kind::Pass => self.paint("32", kind.glyph()),
            Kind::Fail => self.paint("31", kind.glyph()),
            Kind::Skipped | Kind::NotRun => kind.glyph().to_owned(),
        }
    }
}

pub(super) fn render(card: &Scorecard, color: bool) -> String {
    let paint = Paint(color);
    let mut out = format!("Grading {} (on {})\n", card.target, card.addr);
    for section in &card.sections {
        let _ = write!(out, "\n{}\n", section.title);
        let found = match &section.found {
            Ok(found) => found,
            Err(why) => {
                let _ = writeln!(out, "  not asked: {why}.");
                continue;
            }
        };
        for note in &found.notes {
            let _ = writeln!(out, "  ({})", note.replace('\n', "\n   "));
        }
        for table in &found.tables {
            for cells in &table.rows {
                out += &row(&table.columns, cells, paint);
            }
        }
        if !found.pictures.is_empty() {
            out += "  (its picture is on the page `--html` writes)\n";
        }
        if !found.findings.is_empty() {
            out += "\n";
        }
        for Finding { before, strong, after } in &found.findings {
            let strong = if strong.is_empty() { String::new() } else { paint.paint("1", strong) };
            let _ = writeln!(out, "  {before}{strong}{after}");
        }
    }
    if let Some(log) = &card.server_log {
        let _ = write!(out, "\nThe server's own output: {}\n", log.display());
    }
    out + if card.passed { "\nGraded.\n" } else { "\nNot gradable: see the first ✘ above.\n" }
}

/// One row: a line, then what goes under it.
fn row(columns: &[Column], cells: &[Cell], paint: Paint) -> String {
    let mut line = String::from("  ");
    let mut leads = Vec::new();
    let mut verdict = None;
    let mut detail = "";
    let mut under = String::new();
    for (column, cell) in columns.iter().zip(cells) {
        let text = match cell {
            Cell::Mark(v) => {
                let _ = write!(line, "{} ", paint.glyph(v.kind));
                verdict = Some(*v);
                continue;
            }
            Cell::Text(text) => text.as_str(),
        };
        match column.shown {
            Shown::Mark => {}
            Shown::Tag if text.is_empty() => {}
            Shown::Tag => {
                let _ = write!(line, "[{text}] ");
            }
            Shown::Lead => leads.push(text),
            Shown::Detail => detail = text,
            _ if text.is_empty() => {}
            Shown::Under => {
                let _ = write!(under, "\n    {text}");
            }
            Shown::Aside => {
                let _ = write!(under, "\n    ({text})");
            }
            Shown::Titled => {
                let _ = write!(under, "\n    {}: {text}", column.title);
            }
        }
    }
    line += &leads.join(": ");
    if let Some(verdict) = verdict {
        line += &beside(verdict, detail);
    }
    line + &under + "\n"
}

/// What a verdict rests on, as it follows the row's line: nothing for a pass, the whole
/// story under a failure, the reason in brackets for the rest.
fn beside(mark: Mark, detail: &str) -> String {
    match mark.kind {
        Kind::Pass => String::new(),
        Kind::Fail => format!("{DETAIL_INDENT}{}", detail.replace('\n', DETAIL_INDENT)),
        Kind::Skipped | Kind::NotRun => format!(" ({}: {detail})", mark.word),
    }
}
