//! The table printed at the end of a comparison: each scenario's tables with aligned
//! columns, then each experiment's, then the calibration.

use std::fmt::Write as _;

use super::{calibration, split, tables};
use crate::compare::{Comparison, ExperimentResult, ScenarioResult};
use crate::render::md_table;

/// The table printed at the end of a comparison.
pub fn terminal(comparison: &Comparison) -> String {
    let mut out = String::new();
    for scenario in &comparison.scenarios {
        self::scenario(&mut out, scenario);
    }
    for experiment in &comparison.experiments {
        self::experiment(&mut out, experiment);
    }
    let _ = writeln!(out, "\n{}", calibration(comparison));
    out
}

fn scenario(out: &mut String, scenario: &ScenarioResult) {
    if let Some(why) = &scenario.skipped {
        let _ = writeln!(out, "\n{}: not run: {why}", scenario.title);
        return;
    }
    let _ = writeln!(out, "\n{}  ({})", scenario.title, scenario.settings);
    for (title, header, rows) in tables(scenario) {
        if !title.is_empty() {
            let _ = writeln!(out, "{title}:");
        }
        out.push_str(&aligned(&header, &rows));
    }
    if let (Some(paragraph), lines) = split::notes(scenario) {
        let _ = writeln!(out, "{paragraph}");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// Columns padded to their widest cell, two spaces apart.
fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ")
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn experiment(out: &mut String, experiment: &ExperimentResult) {
    let _ = writeln!(out, "\n{}  ({})", experiment.title, experiment.settings);
    for (title, header, rows) in experiment.findings.tables() {
        let _ = write!(out, "{title}\n{}", md_table(&header, &rows));
    }
    for note in experiment.findings.notes() {
        let _ = writeln!(out, "- {note}");
    }
}
