//! `report.md`: the machine and the calibration, the limits matrix, the reference servers,
//! then a section per scenario and per experiment.

use std::fmt::Write as _;

use super::{PEERS_INTRO, calibration, intro, limits_matrix, peer_notes, split, tables};
use crate::compare::{Comparison, ExperimentResult, ScenarioResult};
use crate::render::md_table;

/// `report.md`.
pub fn markdown(comparison: &Comparison, command: &str) -> String {
    let mut md = String::from("# Versioned servers, side by side\n\n");
    let _ = writeln!(md, "{}\n", intro(comparison, command));
    let _ = writeln!(md, "{}\n", calibration(comparison));
    md += "## Which version hit which limit\n\n";
    let (header, rows) = limits_matrix(comparison, false);
    md += &md_table(&header, &rows);
    if !comparison.peers.is_empty() {
        let _ = write!(md, "\n## Reference servers\n\n{PEERS_INTRO}\n\n");
        for note in peer_notes(comparison) {
            let _ = writeln!(md, "- {note}");
        }
        let (header, rows) = limits_matrix(comparison, true);
        if !rows.is_empty() {
            let _ = write!(md, "\n{}", md_table(&header, &rows));
        }
    }
    for scenario in &comparison.scenarios {
        self::scenario(&mut md, scenario);
    }
    for experiment in &comparison.experiments {
        self::experiment(&mut md, experiment);
    }
    md
}

/// A section's heading, lesson and settings.
fn heading(md: &mut String, title: &str, lesson: &str, settings: &str) {
    let _ = write!(md, "\n## {title}\n\n{lesson}\n\nSettings: {settings}.\n\n");
}

fn scenario(md: &mut String, scenario: &ScenarioResult) {
    heading(md, &scenario.title, &scenario.lesson, &scenario.settings);
    if let Some(why) = &scenario.skipped {
        let _ = writeln!(md, "Not run here: {why}.");
        return;
    }
    for (title, header, rows) in tables(scenario) {
        if !title.is_empty() {
            let _ = write!(md, "\n{title}:\n\n");
        }
        *md += &md_table(&header, &rows);
    }
    if let (Some(paragraph), lines) = split::notes(scenario) {
        let _ = writeln!(md, "\n{paragraph}\n");
        for line in lines {
            let _ = writeln!(md, "- {line}");
        }
    }
}

fn experiment(md: &mut String, experiment: &ExperimentResult) {
    heading(md, &experiment.title, &experiment.lesson, &experiment.settings);
    for (title, header, rows) in experiment.findings.tables() {
        let _ = write!(md, "{title}:\n\n{}\n", md_table(&header, &rows));
    }
    for note in experiment.findings.notes() {
        let _ = writeln!(md, "- {note}");
    }
    for (file, _) in experiment.findings.chart_files() {
        let _ = write!(md, "\n![{file}]({file})\n");
    }
}
