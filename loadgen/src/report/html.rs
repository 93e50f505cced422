//! `report.html`: the same content as the Markdown, with a scenario's charts after its
//! tables, in one file that needs nothing else to open.

use std::fmt::Write as _;

use super::{PEERS_INTRO, calibration, charts, intro, limits_matrix, peer_notes, split, tables};
use crate::compare::{Comparison, ExperimentResult, ScenarioResult};
use crate::render::{PAGE_END, escape_html, html_table, page_start};

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
        peers(&mut html, comparison);
    }
    for scenario in &comparison.scenarios {
        self::scenario(&mut html, scenario);
    }
    for experiment in &comparison.experiments {
        self::experiment(&mut html, experiment);
    }
    html + PAGE_END
}

/// What the reference servers are, and their limits matrix.
fn peers(html: &mut String, comparison: &Comparison) {
    let _ = write!(html, "<h2>Reference servers</h2><p>{}</p><ul>", escape_html(PEERS_INTRO));
    for note in peer_notes(comparison) {
        let _ = write!(html, "<li>{}</li>", escape_html(&note));
    }
    *html += "</ul>";
    let (header, rows) = limits_matrix(comparison, true);
    if !rows.is_empty() {
        *html += &html_table(&header, &rows);
    }
}

/// A section's heading, lesson and settings.
fn heading(html: &mut String, title: &str, lesson: &str, settings: &str) {
    let _ = write!(
        html,
        "<h2>{}</h2><p class=\"lesson\">{}</p><p>Settings: {}.</p>",
        escape_html(title),
        escape_html(lesson),
        escape_html(settings)
    );
}

fn scenario(html: &mut String, scenario: &ScenarioResult) {
    heading(html, &scenario.title, &scenario.lesson, &scenario.settings);
    if let Some(why) = &scenario.skipped {
        let _ = write!(html, "<p>Not run here: {}.</p>", escape_html(why));
    } else {
        for (title, header, rows) in tables(scenario) {
            if !title.is_empty() {
                let _ = write!(html, "<p>{}:</p>", escape_html(title));
            }
            *html += &html_table(&header, &rows);
        }
        if let (Some(paragraph), lines) = split::notes(scenario) {
            let _ = write!(html, "<p>{}</p><ul>", escape_html(&paragraph));
            for line in lines {
                let _ = write!(html, "<li>{}</li>", escape_html(&line));
            }
            *html += "</ul>";
        }
    }
    for chart in charts(scenario) {
        *html += &chart;
    }
}

fn experiment(html: &mut String, experiment: &ExperimentResult) {
    heading(html, &experiment.title, &experiment.lesson, &experiment.settings);
    for (title, header, rows) in experiment.findings.tables() {
        let _ = write!(html, "<p>{title}:</p>{}", html_table(&header, &rows));
    }
    let notes = experiment.findings.notes();
    if !notes.is_empty() {
        *html += "<ul>";
        for note in notes {
            let _ = write!(html, "<li>{}</li>", escape_html(&note));
        }
        *html += "</ul>";
    }
    for chart in experiment.findings.charts() {
        *html += &chart;
    }
}
