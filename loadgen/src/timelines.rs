//! Timelines of the workspace's versions: each started with `--trace` under the teaching
//! workload ([`crate::timeline::workload`]), its trace cut to the workload's moments and
//! drawn with a sentence saying what to see, taken from the version's registry entry (its
//! model, and where it runs its handlers), so that a version added to the registry gets
//! its sentence with its entry. `loadgen timeline --version`, the report's "What each
//! thread did" and `scripts/timelines.sh` all take their pictures here.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use registry::{Handlers, PerConnection};
use serde::Serialize;

use crate::serve::{self, Version};
use crate::timeline::summary::{self, Summary};
use crate::timeline::workload::{self, Ran, Workload};
use crate::timeline::{Timeline, draw, monotonic_us, trace};

/// How long a server may take to stop and write its trace once told to: a hang guard.
const STOP_GUARD: Duration = Duration::from_secs(15);

/// The options a version runs with for its picture: a pool of four where the model is a
/// pool of threads per connection (so that the workload's seven connections outnumber
/// it, and the starvation shows), else the options its registry entry suggests running
/// it with by hand (v5's two loops, v6's two workers, v7's two rings).
pub fn teaching_args(version: Version) -> Vec<String> {
    let entry = version.entry();
    entry.pool_options(4).unwrap_or_else(|| entry.example.iter().map(|&a| a.to_owned()).collect())
}

/// The one sentence under a version's picture: its model, then what to see of it in the
/// lanes, chosen by where the registry says it runs its handlers.
pub fn caption(version: Version) -> String {
    let entry = version.entry();
    let see = match (entry.handlers, entry.per_connection) {
        (_, Some(PerConnection::Process)) => {
            "a lane (a process) appears for each connection the parent accepts and forks for, \
             and ends when its connection closes, so no client waits for another"
        }
        (_, Some(PerConnection::Thread)) => {
            "a lane (a thread) appears for each connection accepted and ends when its \
             connection closes, so no client waits for another"
        }
        (Handlers::OnItsConnection, None) if entry.serial() => {
            "the one lane serves connection 1 until it leaves, and every other connection, the \
             newcomer's included, waits its turn in the backlog"
        }
        (Handlers::OnItsConnection, None) => {
            "each worker holds one connection for its whole life, busy or idle, and the \
             connections beyond the pool (the slow one, the idle one, the newcomer) wait in \
             the queue until one closes"
        }
        (Handlers::HandedToWorkers, _) => {
            "the poller waits for whichever connection is ready and hands each request to a \
             worker (the arrows), so the 50 ms /sleep holds one worker while the others \
             serve everyone else"
        }
        (Handlers::OneLoop, _) => {
            "one thread waits for whichever connection is ready and then reads, handles and \
             writes each in turn, so the 50 ms /sleep stops every other client for its length"
        }
        (Handlers::LoopPerCore, _) if entry.promises.spread.is_some_and(|s| s.list == "rings") => {
            "each ring keeps the connections it accepted for life and takes several \
             completions per wait, so the requests that arrive together are answered together, \
             while the /sleep stalls its own ring's connections only"
        }
        (Handlers::LoopPerCore, _) => {
            "each loop keeps the connections it accepted for life, handlers inline, so the \
             50 ms /sleep stalls its own loop's connections and not the other loop's"
        }
        (Handlers::RuntimeWorkers, _) => {
            "each connection's task is polled on whichever worker is free, so while the /sleep \
             holds one worker the other polls everyone else's tasks"
        }
    };
    let model = entry.model.replace('`', "");
    let mut model = model.chars();
    let first = model.next().map(|c| c.to_uppercase().to_string()).unwrap_or_default();
    format!("{first}{}: {see}.", model.as_str())
}

/// The sentence under a picture followed by the load it was taken under, so that the
/// picture alone says what was measured.
pub fn with_load(caption: &str, load: &str) -> String {
    format!("{caption} Load: {load}.")
}

/// A version's picture and what went into it.
#[derive(Debug, Clone, Serialize)]
pub struct Taken {
    pub version: Version,
    pub args: Vec<String>,
    pub workload: String,
    pub caption: String,
    pub summary: Summary,
    /// Requests answered, and what the clients could not get.
    pub answered: u64,
    pub failures: Vec<String>,
    /// How long the newcomer waited for its answer, in milliseconds.
    pub newcomer_ms: Option<f64>,
    #[serde(skip)]
    pub timeline: Timeline,
    #[serde(skip)]
    pub svg: String,
}

/// Starts `version` with `args` and `--trace` (the file in `dir`), runs the workload,
/// stops the server so that it writes its trace, and draws the workload's moments.
pub fn take(version: Version, args: &[String], dir: &Path) -> anyhow::Result<Taken> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("trace-{}.json", version.name()));
    // A trace left from another run must not be read as this one's.
    let _ = std::fs::remove_file(&file);
    let file_arg = file.to_string_lossy().into_owned();
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    // Recording bounded well past the workload: the server is stopped before.
    words.extend(["--trace", &file_arg, "--trace-for", "60s"]);
    let mut server = serve::spawn_with(version, &words, None)
        .with_context(|| format!("starting {}", version.name()))?;
    let load = Workload::new(server.addr());
    let began = monotonic_us();
    let ran =
        workload::run(&load).with_context(|| format!("the workload against {}", version.name()))?;
    // A moment for the server to record the last closes, then the window ends: what it
    // does once told to stop (a connection to itself that wakes its accept) is not the
    // workload's.
    std::thread::sleep(Duration::from_millis(10));
    let stopping = monotonic_us();
    server.signal(nix::sys::signal::Signal::SIGTERM)?;
    if server.wait_timeout(STOP_GUARD)?.is_none() {
        bail!(
            "{} did not stop within {STOP_GUARD:?} of SIGTERM, so wrote no trace",
            version.name()
        );
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("{} wrote no trace at {}", version.name(), file.display()))?;
    let mut whole = trace::read(&text).with_context(|| file.display().to_string())?;
    load.mark(&mut whole, began);
    Ok(picture(version, args, &load, ran, cut(&whole, began, stopping)))
}

/// The workload's moments of `whole`: from just before the first client asked to the
/// moment the server was told to stop.
pub fn cut(whole: &Timeline, began_us: f64, stopping_us: f64) -> Timeline {
    let from = (began_us - whole.origin_us - 2_000.0).max(0.0);
    let to = (stopping_us - whole.origin_us).min(whole.length_us);
    whole.window(from, to)
}

fn picture(
    version: Version,
    args: &[String],
    load: &Workload,
    ran: Ran,
    timeline: Timeline,
) -> Taken {
    let caption = caption(version);
    let title = title(version, args);
    let svg = draw::svg(&timeline, &title, &with_load(&caption, &load.describe()));
    Taken {
        version,
        args: args.to_vec(),
        workload: load.describe(),
        caption,
        summary: summary::summarize(&timeline),
        answered: ran.answered,
        failures: ran.failures,
        newcomer_ms: ran.newcomer_waited.map(|d| d.as_secs_f64() * 1000.0),
        timeline,
        svg,
    }
}

/// `v3-thread-pool --threads 4: what each thread did`.
pub fn title(version: Version, args: &[String]) -> String {
    let mut name = version.name().to_owned();
    for a in args {
        name.push(' ');
        name.push_str(a);
    }
    format!("{name}: what each thread did")
}
