//! `loadgen compare`: every version, one scenario at a time, side by side.
//!
//! For each scenario and each version, a fresh server is started in a process of its own
//! (`loadgen serve`), sampled from /proc while the load runs, and stopped. Each scenario
//! says what it teaches; each outcome says whether the version hit a limit, and which.
//! An experiment (the kernel-waits sweep, the overload sweep) is run once and brings its
//! own tables and charts.
//!
//! This file holds what a comparison is made of and yields; the rest, a file each:
//! [`suite`](mod@suite) (what is run), [`run`](mod@run) (the runner, one server per row),
//! [`calibrate`] (loadgen against wrk), [`assumptions`] (what each version's registry
//! entry promises, checked against its `/stats`), [`verdict`](mod@verdict) (the limits a
//! row hit, in words), [`experiment`] (runs that are not a row per version), [`overload`]
//! (the knee of every version, and its goodput past it), [`timelines`](mod@timelines) (what
//! each thread of every version did).

pub mod assumptions;
pub mod calibrate;
pub mod experiment;
pub mod overload;
pub mod run;
pub mod split;
pub mod suite;
pub mod timelines;
pub mod verdict;

use serde::Serialize;

use crate::bench::BenchConfig;
use crate::census;
use crate::hold::{HoldConfig, HoldResult};
use crate::measure::Summary;
use crate::peers::Peer;
use crate::sample::{Listen, Peak, Timed};
use crate::serve::Subject;

pub use assumptions::check_assumptions;
pub use calibrate::Calibration;
pub use experiment::{Experiment, ExperimentResult, Findings, Sweep};
pub use run::run;
pub use suite::{Suite, suite};
pub use verdict::verdict;

/// What `--only` picks: the scenarios, then the experiments, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    KeepAlive,
    ConnPerRequest,
    IdleClients,
    SlowHandler,
    CpuHandler,
    C10k,
    Pipelining,
    /// Keep-alive load with every system call the server makes counted (perf, or strace).
    Syscalls,
    /// v4-syscalls' kernel interfaces under growing idle crowds (not one run per version).
    KernelWaits,
    /// Every version swept through rising offered rates: its knee, and its goodput past it.
    Overload,
    /// Every version's timeline under a small fixed workload: what each thread did.
    Timelines,
}

/// What a scenario does to a server.
#[derive(Debug, Clone)]
pub enum Load {
    Bench(BenchConfig),
    Hold(HoldConfig),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: ScenarioId,
    pub title: &'static str,
    /// What the scenario teaches, in one or two sentences.
    pub lesson: &'static str,
    pub load: Load,
}

impl Scenario {
    /// The scenario's part of its result, with nothing measured yet.
    pub(crate) fn result(&self) -> ScenarioResult {
        ScenarioResult {
            id: self.id,
            title: self.title.to_owned(),
            lesson: self.lesson.to_owned(),
            settings: self.settings(),
            outcomes: Vec::new(),
            peers: Vec::new(),
            skipped: None,
        }
    }

    /// The requests it sends, so that a reference server that does not serve them sits
    /// it out.
    pub fn path(&self) -> &str {
        match &self.load {
            Load::Bench(b) => &b.path,
            Load::Hold(h) => &h.path,
        }
    }

    /// The most connections it opens at once.
    pub fn connections(&self) -> usize {
        match &self.load {
            Load::Bench(b) => b.connections,
            Load::Hold(h) => h.connections,
        }
    }

    /// The settings, as the report prints them.
    pub fn settings(&self) -> String {
        match &self.load {
            Load::Bench(b) => {
                let mut text =
                    format!("{} connections, GET {}, {:?}", b.connections, b.path, b.duration);
                if b.pipeline > 1 {
                    text += &format!(", {} pipelined per connection", b.pipeline);
                }
                if b.close {
                    text += ", a new connection per request";
                }
                text += &format!(", timeout {:?}", b.timeout);
                match b.rate {
                    Some(rate) => {
                        text += &format!(
                            ". Open loop at {rate} requests/s in all: each latency counts from \
                             when its request was due, so a stall shows in full"
                        );
                    }
                    None => {
                        text += ". Closed loop: each connection sends its next request when \
                                 the last is answered, so a server that stalls is sent fewer \
                                 requests, and its percentiles understate what a client on a \
                                 schedule would see (coordinated omission)";
                    }
                }
                text + ". A request never answered is in the percentiles at the timeout (≥)"
            }
            Load::Hold(h) => format!(
                "{} idle connections held, then one new client's GET {} given {:?}",
                h.connections, h.path, h.timeout
            ),
        }
    }
}

/// Whether a version hit a limit in a scenario, and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub limit_hit: bool,
    pub text: String,
}

/// One version (or reference server) in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Written `version` in `results.json`, a peer's name where it is one.
    #[serde(rename = "version")]
    pub subject: Subject,
    pub bench: Option<Summary>,
    pub hold: Option<HoldResult>,
    pub server: Peak,
    /// The accept queues' cap, and the handshakes refused on a full queue during the run.
    pub listen: Option<Listen>,
    /// The server's threads, processes and memory over the run, sampled from /proc.
    pub series: Vec<Timed>,
    /// Server CPU time during the run (user + system, reaped children included).
    pub cpu_ms: u64,
    /// Server CPU time per connection opened, for the connection-per-request scenario.
    pub cpu_us_per_connection: Option<f64>,
    /// Context switches of the server's threads during the run, per request answered:
    /// from the version's own `/stats` (`getrusage`, which keeps the counts of threads
    /// that have exited), or else from /proc, which loses them (the fork version's
    /// children, a reference server's threads).
    pub switches_per_request: Option<f64>,
    /// Whether the switches were counted by `/stats` (none lost) or from /proc.
    pub switches_from_stats: bool,
    /// Server CPU time per request answered, in microseconds: the cost that survives a
    /// noisy machine, where requests per second do not.
    pub cpu_us_per_request: Option<f64>,
    /// Every system call the server made during the run, for the census scenario.
    pub syscalls: Option<census::Census>,
    /// What the version's registry entry promises and `/stats` said was false (every
    /// loop or ring used, a pool's size), and any census not taken: each one makes the
    /// row misleading.
    pub assumptions: Vec<String>,
    pub verdict: Verdict,
    /// How a version that spreads by hash split the slow-handler scenario's clients
    /// between its loops or rings; absent everywhere else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<split::LoopSplit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: ScenarioId,
    pub title: String,
    pub lesson: String,
    pub settings: String,
    pub outcomes: Vec<Outcome>,
    /// The reference servers' outcomes (`--peers`), apart from the versions': only those
    /// that answer the scenario's requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Outcome>,
    /// Why the scenario was not run here, if it was not (no census tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl ScenarioResult {
    /// Every outcome: the versions', then the reference servers'.
    pub fn rows(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().chain(&self.peers)
    }
}

/// The machine the numbers come from: they mean little without it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

/// Everything a comparison measured; written as `results.json`.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub quick: bool,
    pub machine: Machine,
    /// Seconds since the Unix epoch when the comparison started.
    pub started_at: u64,
    pub scenarios: Vec<ScenarioResult>,
    /// The experiments' results, drawn after the scenarios.
    pub experiments: Vec<ExperimentResult>,
    /// The load generator checked against wrk in this run, or why it was not.
    pub calibration: Result<Calibration, String>,
    /// The reference servers asked for (`--peers`): what each is, or why it did not run.
    pub peers: Vec<PeerNote>,
}

/// A reference server in a comparison: what it is, or why it was left out.
#[derive(Debug, Clone, Serialize)]
pub struct PeerNote {
    pub peer: Peer,
    pub note: Result<&'static str, String>,
}

/// `results.json` keeps one list of sections in the report's order, `scenarios`: the
/// scenarios, then the experiments, each with its id, title, lesson, settings and
/// `outcomes`, which stays empty for an experiment (it has no row per version), so that a
/// script reading every section's rows reads the file as it always has.
impl Serialize for Comparison {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Section<'a> {
            Scenario(&'a ScenarioResult),
            Experiment {
                #[serde(flatten)]
                experiment: &'a ExperimentResult,
                outcomes: [Outcome; 0],
            },
        }
        let experiments = self
            .experiments
            .iter()
            .map(|experiment| Section::Experiment { experiment, outcomes: [] });
        let sections: Vec<Section<'_>> =
            self.scenarios.iter().map(Section::Scenario).chain(experiments).collect();
        let fields = if self.peers.is_empty() { 6 } else { 7 };
        let mut out = serializer.serialize_struct("Comparison", fields)?;
        out.serialize_field("quick", &self.quick)?;
        out.serialize_field("machine", &self.machine)?;
        out.serialize_field("started_at", &self.started_at)?;
        out.serialize_field("scenarios", &sections)?;
        out.serialize_field("calibration", &self.calibration)?;
        if !self.peers.is_empty() {
            out.serialize_field("peers", &self.peers)?;
        }
        out.end()
    }
}
