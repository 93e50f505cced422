//! An experiment: a part of the suite that is not a row per version. It runs once, whatever
//! the versions (the kernel-waits sweep starts v4-syscalls once per interface and crowd),
//! and its findings bring their own tables and charts, which the runner and every renderer
//! handle alike, knowing no experiment by name.

use std::path::Path;

use serde::Serialize;

use super::ScenarioId;
use super::overload::{self, OverloadConfig, show::Overload};
use super::timelines::{self, Drawn};
use crate::serve::Version;
use crate::waits::{self, WaitsConfig};

/// An experiment of the suite: what it is and what it teaches, and its sweep.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Its name for `--only`, beside the scenarios'.
    pub id: ScenarioId,
    pub title: &'static str,
    /// What the experiment teaches, in one or two sentences.
    pub lesson: &'static str,
    pub sweep: Sweep,
}

/// What an experiment runs.
#[derive(Debug, Clone)]
pub enum Sweep {
    /// The sweep of `loadgen waits`.
    Waits(WaitsConfig),
    /// Every version swept through rising offered rates, open loop.
    Overload(OverloadConfig),
    /// Every version's timeline under the teaching workload.
    Timelines,
}

/// What an experiment found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Findings {
    /// The kernel-waits sweep's points.
    Waits(Vec<waits::Point>),
    /// Each workload's curves.
    Overload(Overload),
    /// Each version's picture.
    Timelines(Vec<Drawn>),
}

/// A titled table: its title, header and rows.
pub type Table = (&'static str, Vec<String>, Vec<Vec<String>>);

/// One experiment's result, in the report after the scenarios'.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentResult {
    pub id: ScenarioId,
    pub title: String,
    pub lesson: String,
    pub settings: String,
    /// Written under its own name (`waits`, `overload`) in `results.json`.
    #[serde(flatten)]
    pub findings: Findings,
}

impl Experiment {
    /// Runs it against those of `versions` it uses, printing its progress, each server's
    /// log in `out/logs/`.
    pub fn run(&self, versions: &[Version], out: &Path) -> anyhow::Result<ExperimentResult> {
        let findings = match &self.sweep {
            Sweep::Waits(config) => Findings::Waits(waits::run(config)?),
            Sweep::Overload(config) => Findings::Overload(Overload {
                workloads: overload::run(config, versions, out)?,
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                cut: config.cut.clone(),
            }),
            Sweep::Timelines => Findings::Timelines(timelines::run(versions, out)),
        };
        Ok(ExperimentResult {
            id: self.id,
            title: self.title.to_owned(),
            lesson: self.lesson.to_owned(),
            settings: self.settings(),
            findings,
        })
    }

    /// The settings, as the report prints them.
    pub fn settings(&self) -> String {
        match &self.sweep {
            Sweep::Waits(w) => format!(
                "v4-syscalls with each --api; {:?} idle connections held; {} keep-alive clients \
                 for {:?} beside them",
                w.idle, w.active, w.duration
            ),
            Sweep::Overload(o) => overload::settings(o),
            Sweep::Timelines => timelines::settings(),
        }
    }

    /// The most connections it opens at once.
    pub fn connections(&self) -> usize {
        match &self.sweep {
            Sweep::Waits(w) => w.idle.iter().max().copied().unwrap_or(0) + w.active,
            // Overloaded servers leave many connections waiting at once.
            Sweep::Overload(_) => overload::MAX_CONNECTIONS,
            // The teaching workload's seven.
            Sweep::Timelines => 7,
        }
    }
}

impl Findings {
    /// Its tables, each titled.
    pub fn tables(&self) -> Vec<Table> {
        match self {
            Findings::Waits(points) => waits::tables(points),
            Findings::Overload(o) => o.tables(),
            Findings::Timelines(drawn) => timelines::tables(drawn),
        }
    }

    /// The sentences that read its tables, after them.
    pub fn notes(&self) -> Vec<String> {
        match self {
            Findings::Waits(_) => Vec::new(),
            Findings::Overload(o) => o.notes(),
            Findings::Timelines(drawn) => timelines::notes(drawn),
        }
    }

    /// The charts that are also files beside the report, each with its file's name.
    pub fn chart_files(&self) -> Vec<(String, String)> {
        match self {
            Findings::Waits(_) => Vec::new(),
            Findings::Overload(o) => o.chart_files(),
            Findings::Timelines(drawn) => timelines::chart_files(drawn),
        }
    }

    /// Its charts, as SVG.
    pub fn charts(&self) -> Vec<String> {
        match self {
            Findings::Waits(points) => waits::charts(points),
            Findings::Overload(o) => o.charts(),
            Findings::Timelines(drawn) => {
                timelines::chart_files(drawn).into_iter().map(|(_, svg)| svg).collect()
            }
        }
    }
}
