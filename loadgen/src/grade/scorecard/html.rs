//! The scorecard as a page: the compare report's page shell, the verdict as its headline,
//! then a heading per stage and its tables, a failed verdict's cell marked for the style
//! sheet. Every text is escaped, quotes included.

use std::fmt::Write as _;

use super::{Cell, Finding, Kind, Scorecard, Table};
use crate::render::{escape_html, page_start};

/// Text made safe anywhere in a page, in an attribute too.
fn escape(text: &str) -> String {
    escape_html(text).replace('"', "&quot;")
}

pub(super) fn render(card: &Scorecard) -> String {
    let mut html = page_start(&format!("Grade: {}", card.target));
    let _ = write!(
        html,
        "<p><strong>{}</strong></p><p>Graded on {}.</p>",
        escape(&card.verdict),
        escape(&card.addr.to_string())
    );
    for section in &card.sections {
        let _ = write!(html, "<h2>{}</h2>", escape(section.title));
        let found = match &section.found {
            Ok(found) => found,
            Err(why) => {
                let _ = write!(html, "<p>Not asked: {}.</p>", escape(why));
                continue;
            }
        };
        for note in &found.notes {
            let mut sentence = note.chars();
            let capital = sentence.next().map(|c| c.to_uppercase().collect::<String>());
            let _ = write!(
                html,
                "<p>{}{}.</p>",
                escape(&capital.unwrap_or_default()),
                escape(sentence.as_str())
            );
        }
        for table in &found.tables {
            html += &self::table(table);
        }
        for picture in &found.pictures {
            html += picture;
        }
        for Finding { before, strong, after } in &found.findings {
            let strong = if strong.is_empty() {
                String::new()
            } else {
                format!("<strong>{}</strong>", escape(strong))
            };
            let _ = write!(html, "<p>{}{strong}{}</p>", escape(before), escape(after));
        }
    }
    html + "</body></html>\n"
}

/// A table; a failed verdict's cell is marked `limit`, as the compare report marks a limit
/// reached.
fn table(table: &Table) -> String {
    let mut html = String::from("<table><thead><tr>");
    for column in &table.columns {
        let _ = write!(html, "<th>{}</th>", escape(&column.title));
    }
    html += "</tr></thead><tbody>";
    for row in &table.rows {
        html += "<tr>";
        for cell in row {
            let (class, text) = match cell {
                Cell::Text(text) => ("", escape(text)),
                Cell::Mark(v) => {
                    let class = if v.kind == Kind::Fail { " class=\"limit\"" } else { "" };
                    let word = match v.kind {
                        Kind::Pass | Kind::Fail => format!("{} {}", v.kind.glyph(), v.word),
                        Kind::Skipped | Kind::NotRun => v.word.to_owned(),
                    };
                    (class, escape(&word))
                }
            };
            let _ = write!(html, "<td{class}>{text}</td>");
        }
        html += "</tr>";
    }
    html + "</tbody></table>\n"
}
