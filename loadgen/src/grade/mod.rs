//! `loadgen grade`: what a server is, told from how it behaves, for a server in any
//! language. The grader starts it (a command with `{addr}` or `{port}` in it, or a
//! workspace version) or talks to one already running, then:
//!
//! 1. [`transcript`]: does it speak the protocol? Each conversation that fails shows the
//!    bytes sent, expected and received; `GET /hello` in either protocol is the least a
//!    server needs to be graded further.
//! 2. [`fingerprint`]: what model is it? Serial or concurrent (with a silent first
//!    client, so the backlog cannot fake it), threads or processes per connection (from
//!    `/proc`), a pool and its size, an event loop beside a thousand silent clients,
//!    where a slow handler runs, what a crash takes down; and the closest workspace
//!    version, the first whose registry entry describes that model, with the reason.
//! 3. [`matrix`]: what does it survive? The workspace's fault matrix, a fresh server per
//!    fault, each expectation chosen from the model the fingerprint found.
//! 4. [`versus`]: how does it compare? Two of `compare`'s scenarios against it and the
//!    closest version, by turns in one run, as ratios.
//! 5. [`knee`]: where does it stop keeping up? It and the closest version swept through
//!    the same rising rates, open loop: each one's knee, beside Little's law's.
//!
//! Beside stage 2, [`threads`]: what each of its threads did under the timeline's small
//! workload, read from /proc, drawn as the chapters draw each version.
//!
//! [`scorecard`] shows the [`Grade`] on a terminal and as a page (`--html`); `--json`
//! prints it as it is. [`wire`] is the client every stage talks through. This file runs
//! the stages, each of which may be skipped with the reason, and starts the servers.

pub mod fingerprint;
pub mod knee;
pub mod matrix;
pub mod scorecard;
pub mod threads;
pub mod transcript;
pub mod versus;
pub mod wire;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use common::testkit::ChildServer;
use serde::Serialize;

use crate::serve::Version;
use fingerprint::Fingerprint;
use transcript::{Check, Protocol, Verdict};

/// How long a started server may take before it accepts connections.
const START_WAIT: Duration = Duration::from_secs(15);

/// What is graded.
#[derive(Debug, Clone)]
pub enum Target {
    /// A workspace version, started with these options besides its address.
    Version(Version, Vec<String>),
    /// A command; `{addr}` and `{port}` in its words stand for a free loopback address.
    Command(Vec<String>),
    /// A server already running: nothing of `/proc`, and nothing that would crash it.
    Running(SocketAddr),
}

/// The whole grade, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Grade {
    pub target: String,
    pub addr: SocketAddr,
    pub transcripts: Vec<Check>,
    /// The protocol the rest was asked in; none when the server could not be graded.
    pub protocol: Option<Protocol>,
    pub fingerprint: Option<Fingerprint>,
    pub closest: Option<&'static str>,
    pub why: String,
    /// The fault matrix's rows, when it ran.
    pub matrix: Vec<matrix::Row>,
    /// Why it did not, when it did not.
    pub matrix_skipped: Option<String>,
    /// The closest version to compare with, as it was started.
    pub versus_version: Option<String>,
    pub versus: Vec<versus::Versus>,
    pub idle: Option<versus::Idle>,
    pub versus_skipped: Option<String>,
    /// Its knee and the closest version's, when they were swept.
    pub knees: Option<knee::Knees>,
    /// Why they were not, when they were not.
    pub knees_skipped: Option<String>,
    /// What each of its threads did under the timeline's workload, from /proc.
    pub threads: Option<threads::Threads>,
    /// Why that was not drawn, when it was not.
    pub threads_skipped: Option<String>,
    /// Where the server's own output went, when the grader started it.
    pub server_log: Option<PathBuf>,
}

impl Grade {
    /// Every required stage passed: it speaks the protocol well enough to be graded, and
    /// the fingerprint could be taken.
    pub fn passed(&self) -> bool {
        self.protocol.is_some() && self.fingerprint.is_some()
    }
}

/// A server the grader started (stopped, with everything it started, when dropped).
struct Started {
    child: ChildServer,
}

/// What a grade includes besides the required stages.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Run the fault matrix (a minute or two: a fresh server per fault).
    pub matrix: bool,
    /// Run two scenarios against it and the closest version (a few seconds each).
    pub versus: bool,
    /// Sweep it and the closest version for their knees (half a minute at most); only with
    /// `versus`, as it runs beside the closest version too.
    pub knee: bool,
}

/// Why a stage was not run (or, for the required ones, why the server could not be
/// graded), in words for the scorecard.
#[derive(Debug, Clone)]
struct Skipped(String);

impl Skipped {
    fn because(why: &str) -> Self {
        Self(why.to_owned())
    }

    /// A stage's findings (none when it was skipped), and why it was skipped.
    fn split<T: Default>(stage: Result<T, Skipped>) -> (T, Option<String>) {
        match stage {
            Ok(found) => (found, None),
            Err(Skipped(why)) => (T::default(), Some(why)),
        }
    }
}

/// What the first two stages found: the model, and the workspace version closest to it.
struct Identified {
    protocol: Protocol,
    fingerprint: Fingerprint,
    closest: Option<&'static registry::Version>,
    /// Why it is that version, or none.
    why: String,
}

/// The closest version, as it was started beside the server, and how the runs went.
struct Compared {
    against: String,
    runs: anyhow::Result<(Vec<versus::Versus>, Option<versus::Idle>)>,
}

/// Grades `target`: the four stages, each skipped with its reason when an earlier one
/// leaves it nothing to ask.
pub fn grade(target: &Target, options: Options) -> anyhow::Result<Grade> {
    let (mut started, addr, log, name) = start(target)?;
    let transcripts = transcript::run(addr);
    let protocol = speaks(&transcripts, started.as_mut(), addr);
    let model = protocol.clone().and_then(|p| identify(addr, p, started.as_mut()));
    let pid = started.as_ref().map(|s| s.child.pid());
    let http = transcripts
        .iter()
        .find(|c| c.protocol == Protocol::Http)
        .is_some_and(|c| matches!(c.outcome, Verdict::Pass));
    let threads = match &model {
        Ok(_) => watch_threads(target, started.as_mut(), addr, http, pid),
        Err(_) => Err("the server could not be graded this far".to_owned()),
    };
    // The last two stages start servers of their own: this one has been asked all it will be.
    drop(started);
    let found = model.as_ref().ok();
    let matrix = survives(target, options.matrix, found, log.as_deref());
    let compared = compares(target, options.versus, found, &transcripts, log.as_deref());
    let knees = sweeps(target, options, found, &transcripts, log.as_deref());

    // As `--json` has always shown it: each stage's findings, or why it was skipped.
    let (why, fingerprint, closest) = match model {
        Ok(m) => (m.why, Some(m.fingerprint), m.closest.map(|v| v.name)),
        Err(Skipped(why)) => (why, None, None),
    };
    let (matrix, matrix_skipped) = Skipped::split(matrix);
    let (versus_version, runs) = match compared {
        Ok(Compared { against, runs }) => {
            (Some(against), runs.map_err(|e| Skipped(format!("a run failed: {e:#}"))))
        }
        Err(skipped) => (None, Err(skipped)),
    };
    let ((versus, idle), versus_skipped) = Skipped::split(runs);
    let (knees, knees_skipped) = match knees {
        Ok(Ok(knees)) => (Some(knees), None),
        Ok(Err(e)) => (None, Some(format!("a sweep failed: {e:#}"))),
        Err(Skipped(why)) => (None, Some(why)),
    };
    Ok(Grade {
        target: name,
        addr,
        transcripts,
        protocol: protocol.ok(),
        fingerprint,
        closest,
        why,
        matrix,
        matrix_skipped,
        versus_version,
        versus,
        idle,
        versus_skipped,
        knees,
        knees_skipped,
        threads: threads.as_ref().ok().cloned(),
        threads_skipped: threads.err(),
        server_log: log,
    })
}

/// The threads stage, on the server graded so far, or on a fresh one when the model
/// question's last probe (`GET /abort`) ended it: a server the grader started itself, and
/// so can start again. (Run on the dead one, every such server read "Connection refused".)
fn watch_threads(
    target: &Target,
    started: Option<&mut Started>,
    addr: SocketAddr,
    http: bool,
    pid: Option<u32>,
) -> Result<threads::Threads, String> {
    let Some(exit) = started.and_then(Started::exited) else {
        return threads::run(addr, http, pid);
    };
    match start(target) {
        Ok((fresh, addr, _log, _name)) => {
            let pid = fresh.as_ref().map(|s| s.child.pid());
            threads::run(addr, http, pid)
        }
        Err(e) => Err(format!(
            "the server exited ({exit}) after the crash question, and a fresh one did not start: {e:#}"
        )),
    }
}

/// Stage 1's verdict: the protocol the rest can be asked in, or why there is none.
fn speaks(
    transcripts: &[Check],
    started: Option<&mut Started>,
    addr: SocketAddr,
) -> Result<Protocol, Skipped> {
    if let Some(exit) = started.and_then(Started::exited) {
        // A server that died cannot be asked anything more; say where it died.
        let first_failed = transcripts.iter().find(|c| matches!(c.outcome, Verdict::Fail(_)));
        return Err(Skipped(match first_failed {
            Some(check) => format!(
                "the server exited ({exit}) during the protocol checks, at \"{}\" or just before: a bad request must cost only its own answer",
                check.name
            ),
            None => format!("the server exited ({exit}) during the protocol checks"),
        }));
    }
    transcript::usable(transcripts).ok_or_else(|| Skipped(transcript::diagnose_silence(addr)))
}

/// Stage 2: the fingerprint, and the closest version.
fn identify(
    addr: SocketAddr,
    protocol: Protocol,
    started: Option<&mut Started>,
) -> Result<Identified, Skipped> {
    let pid = started.as_ref().map(|s| s.child.pid());
    let server = fingerprint::Server { addr, protocol, pid, may_crash: started.is_some() };
    match fingerprint::run(&server) {
        Ok(fingerprint) => {
            let (closest, why) = fingerprint::closest(&fingerprint);
            Ok(Identified { protocol, fingerprint, closest, why })
        }
        Err(e) => Err(Skipped(match started.and_then(Started::exited) {
            Some(exit) => {
                format!("the server exited ({exit}) while it was being asked what model it is")
            }
            None => format!("the questions stopped: {e}"),
        })),
    }
}

/// Stage 3: the fault matrix, against fresh servers of `target`.
fn survives(
    target: &Target,
    asked: bool,
    model: Option<&Identified>,
    log: Option<&Path>,
) -> Result<Vec<matrix::Row>, Skipped> {
    if !asked {
        return Err(Skipped::because("not asked for (--no-matrix)"));
    }
    let Some(model) = model else { return Err(Skipped::because("the model is not known")) };
    let Some(log) = log else {
        return Err(Skipped::because(
            "the matrix starts a fresh server for each fault, and this one was running already",
        ));
    };
    if model.protocol == Protocol::Http {
        return Err(Skipped::because(
            "the matrix's clients speak the line protocol too, which this server does not",
        ));
    }
    // A version is started with `--allow-abort`; another server showed whether it crashes
    // when asked.
    let serves_abort =
        matches!(target, Target::Version(..)) || model.fingerprint.crash_isolated.is_some();
    Ok(matrix::run(target, &model.fingerprint, log, serves_abort))
}

/// Stage 4: runs against the closest version, started as the fingerprint saw the server.
fn compares(
    target: &Target,
    asked: bool,
    model: Option<&Identified>,
    transcripts: &[Check],
    log: Option<&Path>,
) -> Result<Compared, Skipped> {
    if !asked {
        return Err(Skipped::because("not asked for (--no-versus)"));
    }
    let closest = Closest::of(model, transcripts, log)?;
    let against = closest.against();
    let Closest { version, args, http, sleeps, log } = closest;
    let runs = versus::run(target, version, &args, http, sleeps, log);
    Ok(Compared { against, runs })
}

/// Stage 5: its knee and the closest version's, started as the fingerprint saw the server.
fn sweeps(
    target: &Target,
    options: Options,
    model: Option<&Identified>,
    transcripts: &[Check],
    log: Option<&Path>,
) -> Result<anyhow::Result<knee::Knees>, Skipped> {
    if !options.knee {
        return Err(Skipped::because("not asked for (--no-knee)"));
    }
    // Its sweeps run beside the closest version too, which --no-versus leaves out.
    if !options.versus {
        return Err(Skipped::because(
            "not asked for (--no-versus: no run beside the closest version)",
        ));
    }
    let Closest { version, args, http, sleeps, log } = Closest::of(model, transcripts, log)?;
    Ok(knee::run(target, version, &args, http, sleeps, log))
}

/// The closest version and how to run it beside the server: what stages 4 and 5 share.
struct Closest<'a> {
    version: Version,
    /// Its options: a pool of the size found, where the version has one.
    args: Vec<String>,
    /// Whether the server's first HTTP conversation went well.
    http: bool,
    /// Whether its slow route is `/sleep`.
    sleeps: bool,
    log: &'a Path,
}

impl<'a> Closest<'a> {
    fn of(
        model: Option<&Identified>,
        transcripts: &[Check],
        log: Option<&'a Path>,
    ) -> Result<Self, Skipped> {
        let closest = model.and_then(|m| {
            let entry = m.closest?;
            Some((m, entry, Version::named(entry.name)?))
        });
        let Some((model, entry, version)) = closest else {
            return Err(Skipped::because("no workspace version is close enough"));
        };
        let Some(log) = log else {
            return Err(Skipped::because("it needs a server the grader starts afresh"));
        };
        let f = &model.fingerprint;
        let args = f.pool.and_then(|size| entry.pool_options(size)).unwrap_or_default();
        let http = transcripts
            .iter()
            .find(|c| c.protocol == Protocol::Http)
            .is_some_and(|c| matches!(c.outcome, Verdict::Pass));
        Ok(Closest { version, args, http, sleeps: f.slow_route == Some("/sleep"), log })
    }

    /// The version as it was started: its name and options.
    fn against(&self) -> String {
        std::iter::once(self.version.name().to_owned())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Started {
    /// How the server ended, if it has. One that no longer accepts connections is given
    /// a moment to finish dying, so its exit is seen and reported as such.
    fn exited(&mut self) -> Option<String> {
        let listening =
            TcpStream::connect_timeout(&self.child.addr(), Duration::from_secs(1)).is_ok();
        let patience = if listening { Duration::ZERO } else { Duration::from_secs(2) };
        let status = self.child.wait_timeout(patience).ok().flatten()?;
        Some(match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => status.to_string(),
        })
    }
}

fn start(
    target: &Target,
) -> anyhow::Result<(Option<Started>, SocketAddr, Option<PathBuf>, String)> {
    if let Target::Running(addr) = target {
        TcpStream::connect_timeout(addr, Duration::from_secs(3)).with_context(|| {
            format!("nothing accepts connections on {addr}; is the server running?")
        })?;
        return Ok((None, *addr, None, format!("the server on {addr}")));
    }
    if let Target::Command(words) = target
        && !words.iter().any(|w| w.contains("{addr}") || w.contains("{port}"))
    {
        bail!(
            "the command must say where to listen: put {{addr}} (or {{port}}) where the address goes, e.g. `loadgen grade -- ./my-server --addr {{addr}}`"
        );
    }
    let name = match target {
        Target::Version(version, args) => std::iter::once(version.name())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        Target::Command(words) => words.join(" "),
        Target::Running(_) => unreachable!("returned above"),
    };
    let log = log_path();
    std::fs::File::create(&log)?;
    // The grader owns this server, so it may crash it on purpose.
    let child = launch(target, Launch::Grade, &log)?;
    let addr = child.addr();
    Ok((Some(Started { child }), addr, Some(log), name))
}

/// What a server is started for: the grade's questions, or one fault of the matrix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Launch {
    Grade,
    Fault(harness::faults::Setup),
}

/// Starts a fresh server for `target`, its output appended to `log`: a version with
/// `--allow-abort` (and, for the matrix, its short timeouts), or the command on a free
/// port, as the leader of a process group of its own so that everything it starts goes
/// with it.
pub(crate) fn launch(
    target: &Target,
    purpose: Launch,
    log: &std::path::Path,
) -> anyhow::Result<ChildServer> {
    use harness::faults::{SHARED, Setup, prepare};
    let setup = match purpose {
        Launch::Grade => Setup::Plain,
        Launch::Fault(setup) => setup,
    };
    let output = || std::fs::OpenOptions::new().append(true).open(log);
    match target {
        Target::Version(version, args) => {
            let mut command = Command::new(std::env::current_exe()?);
            command.args(["serve", version.name(), "--addr", "127.0.0.1:0"]);
            if matches!(purpose, Launch::Fault(_)) {
                command.args(SHARED);
            }
            command.args(args).arg("--allow-abort").stderr(output()?);
            prepare(&mut command, setup);
            ChildServer::spawn(command).with_context(|| format!("starting {}", version.name()))
        }
        Target::Command(words) => {
            let Some((program, rest)) = words.split_first() else { bail!("no command to start") };
            let port = free_port()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let fill = |w: &String| {
                w.replace("{addr}", &addr.to_string()).replace("{port}", &port.to_string())
            };
            let mut command = Command::new(program);
            command
                .args(rest.iter().map(fill))
                .stdin(Stdio::null())
                .stdout(output()?)
                .stderr(output()?);
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            prepare(&mut command, setup);
            let mut child = command.spawn().with_context(|| format!("starting `{program}`"))?;
            let ready = wait_for_listener(addr, || matches!(child.try_wait(), Ok(Some(_))));
            let child = ChildServer::adopt_group(child, addr);
            if let Err(why) = ready {
                bail!("{why}; its output is in {}", log.display());
            }
            Ok(child)
        }
        Target::Running(addr) => bail!("the server on {addr} was not started by the grader"),
    }
}

/// A loopback port free at this instant (the kernel picks it; the socket is then closed).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn log_path() -> PathBuf {
    std::env::temp_dir().join(format!("grade-{}-server.log", std::process::id()))
}

/// Waits until `addr` accepts a connection, the process has exited, or [`START_WAIT`].
fn wait_for_listener(addr: SocketAddr, mut exited: impl FnMut() -> bool) -> Result<(), String> {
    let mut gone = false;
    let listening = common::testkit::wait_until(START_WAIT, || {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        gone = exited();
        gone
    });
    match (listening, gone) {
        (_, true) => Err(format!("the server exited before it listened on {addr}")),
        (true, false) => Ok(()),
        (false, false) => Err(format!("nothing listened on {addr} within {START_WAIT:?}")),
    }
}
