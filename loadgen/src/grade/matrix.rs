//! Stage 3: what does it survive? The workspace's fault matrix (`harness`), every fault
//! against a fresh server, with what is expected of each chosen from the model the
//! fingerprint found, not from a name: a serial server is expected to keep others waiting
//! behind a client that trickles its request, a pool of four to keep a fifth client
//! waiting, an event loop neither.

use std::path::Path;
use std::sync::Mutex;

use harness::faults::{FAULTS, Fault, Setup, check_with};
use registry::{AtOnce, Behaviour};
use serde::Serialize;

use super::fingerprint::Fingerprint;
use super::{Launch, Target, launch};

/// How many faults run at once: each has a server of its own, but their probes time
/// their servers' answers, and two cores are all some machines have.
const AT_ONCE: usize = 2;

/// One fault's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub fault: &'static str,
    pub describe: &'static str,
    /// What a server of the model found should do.
    pub expected: String,
    #[serde(flatten)]
    pub outcome: RowOutcome,
    /// What a failure of this row means for the model.
    pub weight: Weight,
}

// ANCHOR: weight
/// What a failed row means for the model, most serious first: the order the scorecard
/// lists failures in, so that a tiny server's first fixes are the ones its model's
/// lesson rests on, and HTTP's finer points come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weight {
    /// The server died, or a client lost an answer it was owed.
    CrashOrLostData,
    /// What it does with slow, idle, silent or too many clients: the model's own lesson.
    Concurrency,
    /// HTTP's finer points: strict parsing, request smuggling, half-closes, `Expect`.
    ProtocolDetail,
}

impl Weight {
    /// The words the scorecard tags a row with.
    pub fn words(self) -> &'static str {
        match self {
            Weight::CrashOrLostData => "crash or lost data",
            Weight::Concurrency => "concurrency",
            Weight::ProtocolDetail => "protocol detail",
        }
    }

    /// What a failure of `fault` means; a server that stopped answering is a crash
    /// whatever the fault (`why` is the row's complaint, if it failed).
    pub fn of(fault: &str, why: Option<&str>) -> Weight {
        if why.is_some_and(|why| why.contains(harness::faults::STOPPED_ANSWERING)) {
            return Weight::CrashOrLostData;
        }
        match fault {
            "out_of_file_descriptors"
            | "panicking_handler"
            | "aborting_handler"
            | "reset_mid_response"
            | "binary_echo"
            | "error_while_uploading"
            | "connection_close_with_input_pending"
            | "exit_with_input_pending"
            | "connection_churn" => Weight::CrashOrLostData,
            "trickle"
            | "slowloris"
            | "silent_connection"
            | "more_clients_than_it_takes"
            | "client_stops_reading"
            | "steady_pipelining"
            | "slow_upload"
            | "sends_after_an_error" => Weight::Concurrency,
            _ => Weight::ProtocolDetail,
        }
    }
}
// ANCHOR_END: weight

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RowOutcome {
    Pass,
    Fail { why: String },
    Skipped { why: String },
}

/// What the matrix expects of the model the fingerprint found.
pub fn behaviour(f: &Fingerprint) -> Behaviour {
    let at_once = if f.serial == Some(true) {
        AtOnce::One
    } else if let Some(size) = f.pool {
        AtOnce::Capped(size)
    } else {
        AtOnce::Unbounded
    };
    Behaviour { at_once, isolates_crashes: f.crash_isolated == Some(true) }
}

/// Runs every fault against a fresh server of `target`, [`AT_ONCE`] at a time.
/// `serves_abort`: whether `GET /abort` crashes it (so the crash row can be asked).
pub fn run(target: &Target, f: &Fingerprint, log: &Path, serves_abort: bool) -> Vec<Row> {
    run_faults(target, f, log, serves_abort, &FAULTS.iter().collect::<Vec<_>>())
}

/// [`run`], for only the `faults` given: the rows a test asks about.
pub fn run_faults(
    target: &Target,
    f: &Fingerprint,
    log: &Path,
    serves_abort: bool,
    faults: &[&Fault],
) -> Vec<Row> {
    let behaviour = behaviour(f);
    let label = "the server";
    let rows = Mutex::new(Vec::new());
    let next = Mutex::new(faults.iter().copied().enumerate());
    std::thread::scope(|scope| {
        for _ in 0..AT_ONCE {
            scope.spawn(|| {
                loop {
                    let Some((i, fault)) = next.lock().unwrap_or_else(|e| e.into_inner()).next()
                    else {
                        break;
                    };
                    let row = row(target, fault, &behaviour, label, log, serves_abort);
                    rows.lock().unwrap_or_else(|e| e.into_inner()).push((i, row));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, row)| row).collect()
}

fn row(
    target: &Target,
    fault: &Fault,
    behaviour: &Behaviour,
    label: &str,
    log: &Path,
    serves_abort: bool,
) -> Row {
    let expected = (fault.expect)(behaviour).label();
    let outcome = if fault.setup == Setup::AllowAbort && !serves_abort {
        RowOutcome::Skipped { why: "GET /abort does not crash it".into() }
    } else {
        let start = |setup| {
            launch(target, Launch::Fault(setup), log)
                .map_err(|e| std::io::Error::other(format!("{e:#}")))
        };
        match check_with(label, behaviour, fault, start) {
            Ok(()) => RowOutcome::Pass,
            // Some probes ask for the workspace's routes (`/echo?msg=`, `/panic`); a 404
            // for one is a route this server does not serve, not a fault it mishandled.
            // (A 404 where a 400 was owed, for a bad path, is still a failure.)
            Err(why) if is_not_served(&why) => {
                RowOutcome::Skipped { why: "a route it does not serve (404)".into() }
            }
            Err(why) => {
                let why = why.strip_prefix(&format!("{label}, ")).unwrap_or(&why);
                RowOutcome::Fail { why: plainly(why) }
            }
        }
    };
    let why = match &outcome {
        RowOutcome::Fail { why } => Some(why.as_str()),
        _ => None,
    };
    let weight = Weight::of(fault.name, why);
    Row { fault: fault.name, describe: fault.describe, expected, outcome, weight }
}

/// A complaint in a student's terms: a probe's raw socket read that gave up waiting says
/// so, not the kernel's name for it (the probes' `Client` reads already say "no answer
/// within 10s").
fn plainly(why: &str) -> String {
    why.replace("Resource temporarily unavailable (os error 11)", "no answer in time")
}

/// Whether a probe's complaint is that the server has no such route.
fn is_not_served(why: &str) -> bool {
    ["\"Not Found\"", "got 404", "saw \"404", "404 \"Not Found\""].iter().any(|p| why.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault the model's lesson rests on is named, so a fault added to the matrix
    /// later falls to the last rank only if it is an HTTP detail: these are the ones
    /// that must not.
    #[test]
    fn no_row_says_only_os_error_11() {
        let raw =
            "client_stops_reading: Resource temporarily unavailable (os error 11) after 8 bytes";
        assert_eq!(plainly(raw), "client_stops_reading: no answer in time after 8 bytes");
    }

    #[test]
    fn the_faults_that_matter_for_the_model_rank_first() {
        let names: Vec<&str> = FAULTS.iter().map(|f| f.name).collect();
        for named in ["out_of_file_descriptors", "exit_with_input_pending", "slowloris", "trickle"]
        {
            assert!(names.contains(&named), "{named} is no longer a fault");
        }
        assert_eq!(Weight::of("out_of_file_descriptors", None), Weight::CrashOrLostData);
        assert_eq!(Weight::of("silent_connection", None), Weight::Concurrency);
        assert_eq!(Weight::of("smuggling_obs_fold", None), Weight::ProtocolDetail);
        let crashed = format!(
            "{}: connection refused after chunked_upload",
            harness::faults::STOPPED_ANSWERING
        );
        assert_eq!(Weight::of("chunked_upload", Some(&crashed)), Weight::CrashOrLostData);
        let by_rank = FAULTS.iter().filter(|f| Weight::of(f.name, None) != Weight::ProtocolDetail);
        assert!(by_rank.count() >= 17, "a named fault was renamed: its rank fell to the last");
    }
}
