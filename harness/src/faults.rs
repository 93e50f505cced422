//! The fault matrix: every fault declared once, in [`FAULTS`] (its name, its description,
//! the probe that commits it, and the outcome a model leads to), and checked against a
//! server's binary by [`check`].
//!
//! Teaching code that falls over teaches the wrong lesson, so after every fault the
//! server must still be running and answer a new client. Where a model's limit is the
//! very thing its chapter shows (a server that serves one client at a time makes others
//! wait behind a slow one), the matrix expects that outcome, and the check proves the
//! server recovers once the fault ends. One row crashes on purpose: a handler that aborts
//! the process, served only with `--allow-abort`, shows what processes isolate and
//! threads do not.
//!
//! Expectations follow from what a model does ([`Behaviour`]), never from which version
//! it is, so the same table judges a server the workspace did not write.

use std::io;
use std::process::Command;
use std::time::Duration;

use common::testkit::{ChildServer, TIMEOUT, answered_within, transcript};
use registry::{AtOnce, Behaviour};

pub use crate::outcome::{Outcome, Setup};
use crate::probes;

/// One way a client can misbehave (or a server can run short), or a real client's way of
/// speaking HTTP that a server must get right.
#[derive(Clone, Copy)]
pub struct Fault {
    /// The test's name: `cargo test -p v1-blocking --test faults -- slowloris`.
    pub name: &'static str,
    /// The matrix's row, as the book prints it.
    pub describe: &'static str,
    /// Commits the fault against a running server and says what happened.
    pub probe: fn(&ChildServer) -> io::Result<Outcome>,
    /// What a server of this behaviour is expected to do about it.
    pub expect: fn(&Behaviour) -> Outcome,
    /// How the server must be started for it.
    pub setup: Setup,
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

// ANCHOR: behaviour
/// A client that holds its connection without finishing a request (a trickler, one that
/// stops reading) is cut off at a deadline by every model; a server that serves one
/// client at a time serves nobody else until then.
fn others_wait_if_one_at_a_time(b: &Behaviour) -> Outcome {
    match b.at_once {
        AtOnce::One => Outcome::CutOffOthersWaited,
        _ => Outcome::CutOff,
    }
}

/// A blocked write holds a blocking server's only thread until the write timeout; every
/// other model goes on serving, and gives up on the client at its deadline.
fn blocked_write(b: &Behaviour) -> Outcome {
    match b.at_once {
        AtOnce::One => Outcome::OthersWaited,
        _ => Outcome::CutOff,
    }
}

/// Past its cap (one, or `--max-connections`), a newcomer waits in the backlog until a
/// place frees; a thread or a process per connection has no cap. The probe holds
/// [`probes::OVER_CAP`] clients, so a cap above that is not reached.
fn past_the_cap(b: &Behaviour) -> Outcome {
    match b.at_once {
        AtOnce::One => Outcome::OthersWaited,
        AtOnce::Capped(cap) if cap <= probes::OVER_CAP => Outcome::OthersWaited,
        AtOnce::Capped(_) | AtOnce::Unbounded => Outcome::Served,
    }
}

/// What a process isolates: a process per connection loses the one connection whose
/// child died; a server of one process loses everyone.
fn crash(b: &Behaviour) -> Outcome {
    if b.isolates_crashes { Outcome::Dropped } else { Outcome::Died }
}
// ANCHOR_END: behaviour

/// The faults, in the matrix's order.
pub const FAULTS: &[Fault] = &[
    Fault {
        name: "trickle",
        describe: "request sent one byte at a time",
        probe: probes::trickle,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "slowloris",
        describe: "headers trickled, never finished (slowloris)",
        probe: |s| probes::slowloris(s.addr()),
        expect: others_wait_if_one_at_a_time,
        setup: Setup::Plain,
    },
    Fault {
        name: "silent_connection",
        describe: "a client that connects and says nothing",
        probe: probes::silent,
        expect: |_| Outcome::CutOff,
        setup: Setup::Plain,
    },
    Fault {
        name: "more_clients_than_it_takes",
        describe: "more clients than it serves at once",
        probe: probes::over_cap,
        expect: past_the_cap,
        setup: Setup::Plain,
    },
    Fault {
        name: "out_of_file_descriptors",
        describe: "out of file descriptors (limit 64, 100 clients)",
        probe: probes::fd_exhaustion,
        expect: |_| Outcome::Recovered,
        setup: Setup::FdLimit(64),
    },
    Fault {
        name: "panicking_handler",
        describe: "a handler that panics",
        probe: probes::panicking_handler,
        expect: |_| Outcome::Answered(500),
        setup: Setup::Plain,
    },
    Fault {
        name: "aborting_handler",
        describe: "a handler that aborts the process (`--allow-abort`)",
        probe: probes::aborting_handler,
        expect: crash,
        setup: Setup::AllowAbort,
    },
    Fault {
        name: "reset_mid_response",
        describe: "a client that resets mid-answer",
        probe: probes::reset_mid_response,
        expect: |_| Outcome::Dropped,
        setup: Setup::Plain,
    },
    Fault {
        name: "client_stops_reading",
        describe: "a client that stops reading a large answer",
        probe: probes::stops_reading,
        expect: blocked_write,
        setup: Setup::Plain,
    },
    Fault {
        name: "error_while_uploading",
        describe: "413 while the client is still uploading",
        probe: probes::error_while_uploading,
        expect: |_| Outcome::Rejected(413),
        setup: Setup::Plain,
    },
    Fault {
        name: "blank_lines_then_a_request",
        describe: "4 KiB of blank lines, then a request",
        probe: probes::blank_lines,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "a_flood_of_blank_lines",
        describe: "64 KiB of blank lines",
        probe: probes::blank_flood,
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "binary_echo",
        describe: "64 KiB of random bytes to `POST /echo`",
        probe: |s| probes::binary_echo(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "connection_close_with_input_pending",
        describe: "1 MiB echo with `Connection: close`, more pipelined behind it",
        probe: |s| probes::close_with_input_pending(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "exit_with_input_pending",
        describe: "150 lines, `exit`, more lines behind it",
        probe: |s| probes::exit_with_input_pending(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "steady_pipelining",
        describe: "requests pipelined steadily for longer than the request timeout",
        probe: |s| probes::steady_pipelining(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "slow_upload",
        describe: "a body uploaded slowly but steadily",
        probe: |s| probes::slow_upload(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "sends_after_an_error",
        describe: "a byte every 300 ms after an error reply",
        probe: |s| probes::sends_after_error(s.addr()),
        expect: |_| Outcome::CutOff,
        setup: Setup::Plain,
    },
    Fault {
        name: "expect_100_continue",
        describe: "`Expect: 100-continue`",
        probe: |s| probes::expect_continue(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "expect_100_continue_too_large",
        describe: "`Expect: 100-continue` with a body over the limit",
        probe: probes::expect_continue_too_large,
        expect: |_| Outcome::Rejected(413),
        setup: Setup::Plain,
    },
    Fault {
        name: "chunked_upload",
        describe: "a chunked upload",
        probe: probes::chunked_upload,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "absolute_form",
        describe: "`GET http://host/path` (absolute form)",
        probe: probes::absolute_form,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    // Every model notices the client's close, however it arrives.
    Fault {
        name: "half_close_after_a_line_request",
        describe: "a line request and a half-close at once",
        probe: probes::half_close_after_line,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "half_close_after_an_http_request",
        describe: "an HTTP request and a half-close at once",
        probe: probes::half_close_after_http,
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "half_close_mid_head",
        describe: "a half-close in the middle of a head",
        probe: probes::half_close_mid_head,
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "half_close_mid_body",
        describe: "a half-close before the body is whole",
        probe: probes::half_close_mid_body,
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "connection_churn",
        describe: "200 connections: request, half-close, close",
        probe: |s| probes::churn(s.addr()),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    // Request shapes that proxies and servers have disagreed about, to request
    // smuggling's profit, or that are simply not HTTP.
    Fault {
        name: "smuggling_content_length_and_transfer_encoding",
        describe: "Content-Length with Transfer-Encoding",
        probe: |s| {
            probes::smuggle(
                s,
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            )
        },
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_differing_content_lengths",
        describe: "two differing Content-Length headers",
        probe: |s| {
            probes::smuggle(
                s,
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
            )
        },
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_plus_content_length",
        describe: "`Content-Length: +5`",
        probe: |s| {
            probes::smuggle(s, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello")
        },
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_obs_fold",
        describe: "a header folded onto a second line (obs-fold)",
        probe: |s| {
            probes::smuggle(s, b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n")
        },
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_space_before_colon",
        describe: "a space before a header's colon",
        probe: |s| probes::smuggle(s, b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n"),
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    // RFC 9112 lets a server accept a bare LF as a line end; httparse does.
    Fault {
        name: "smuggling_bare_lf",
        describe: "bare LF line ends in an HTTP head",
        probe: |s| probes::smuggle(s, b"GET /hello HTTP/1.1\nHost: t\n\n"),
        expect: |_| Outcome::Served,
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_nul",
        describe: "a NUL byte in a header value",
        probe: |s| probes::smuggle(s, b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Nul: a\0b\r\n\r\n"),
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_non_utf8_path",
        describe: "a byte that is not UTF-8 in the path",
        probe: |s| probes::smuggle(s, b"GET /hel\xfflo HTTP/1.1\r\nHost: t\r\n\r\n"),
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_trailing_space_after_version",
        describe: "`GET /hello HTTP/1.1 ` (a trailing space)",
        probe: |s| probes::smuggle(s, b"GET /hello HTTP/1.1 \r\nHost: t\r\n\r\n"),
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_lower_case_version",
        describe: "`GET /hello http/1.1`",
        probe: |s| probes::smuggle(s, b"GET /hello http/1.1\r\nHost: t\r\n\r\n"),
        expect: |_| Outcome::Rejected(400),
        setup: Setup::Plain,
    },
    Fault {
        name: "smuggling_unknown_transfer_coding",
        describe: "`Transfer-Encoding: gzip, chunked`",
        probe: |s| {
            probes::smuggle(
                s,
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            )
        },
        expect: |_| Outcome::Rejected(501),
        setup: Setup::Plain,
    },
];

/// The arguments every server runs with in the matrix: idle connections closed after
/// 2 s, and 2 s for a request head to arrive whole (or between two pieces of a body).
pub const MATRIX_ARGS: [&str; 4] = ["--idle-timeout", "2", "--request-timeout", "2"];

/// [`MATRIX_ARGS`] under its former name, which the load generator's grader still uses.
pub const SHARED: [&str; 4] = MATRIX_ARGS;

/// The matrix as a Markdown table, rows of faults, columns of the registry's versions:
/// the book shows exactly this (a test keeps the two the same).
pub fn markdown() -> String {
    let versions = registry::VERSIONS;
    let mut md = String::from("| fault |");
    for v in versions {
        md += &format!(" {} |", v.name);
    }
    md += &format!("\n|---|{}\n", "---|".repeat(versions.len()));
    for fault in FAULTS {
        md += &format!("| {} |", fault.describe);
        for v in versions {
            md += &format!(" {} |", (fault.expect)(&v.matrix.behaviour).label());
        }
        md += "\n";
    }
    md
}

/// A server for the matrix to start: its binary, the options that give it the matrix's
/// setup, and what its model does.
#[derive(Debug, Clone)]
pub struct Subject {
    /// What the test reports call it: `v4-syscalls --api poll`.
    pub label: String,
    pub binary: String,
    pub args: Vec<String>,
    pub behaviour: Behaviour,
}

/// Runs `fault` against `subject` and checks the outcome against what its behaviour
/// leads to, then that the server still answers a new client.
pub fn check(subject: &Subject, fault: &Fault) -> Result<(), String> {
    let start = |setup: Setup| {
        let mut command = Command::new(&subject.binary);
        command.args(["--addr", "127.0.0.1:0"]).args(MATRIX_ARGS).args(&subject.args);
        if setup == Setup::AllowAbort {
            command.arg("--allow-abort");
        }
        prepare(&mut command, setup);
        ChildServer::spawn(command)
    };
    check_with(&subject.label, &subject.behaviour, fault, start)
}

/// Sets the limits `setup` asks for on a server's command: the descriptor limit, and no
/// core dump from an abort (not into the source tree). Options like `--allow-abort` are
/// the caller's: a server the workspace did not write has its own.
pub fn prepare(command: &mut Command, setup: Setup) {
    match setup {
        Setup::Plain => {}
        Setup::FdLimit(limit) => {
            limit_rlimit(command, nix::sys::resource::Resource::RLIMIT_NOFILE, limit);
        }
        Setup::AllowAbort => {
            limit_rlimit(command, nix::sys::resource::Resource::RLIMIT_CORE, 0);
        }
    }
}

/// [`check`] for any server: `start` starts a fresh one for the fault's setup (a
/// version, or a student's command), `label` names it in the verdict, and `behaviour`
/// is what its model does (for a student's server, what `grade` found).
pub fn check_with(
    label: &str,
    behaviour: &Behaviour,
    fault: &Fault,
    start: impl Fn(Setup) -> io::Result<ChildServer>,
) -> Result<(), String> {
    let mut server = start(fault.setup).map_err(|e| format!("start {label}: {e}"))?;
    // What the probe's clients exchanged, to show with a failure.
    let (observed, log) = transcript::recording(|| (fault.probe)(&server));
    let bytes = || {
        let lines = transcript::render(&log, 160);
        if lines.is_empty() { String::new() } else { format!("\n{}", lines.join("\n")) }
    };
    let expected = (fault.expect)(behaviour);
    // A server that died during the probe explains whatever the probe saw (a newcomer
    // unanswered, a read cut short): the row says it crashed, not what a live server's
    // answer would have meant.
    let as_expected = observed.as_ref().is_ok_and(|o| *o == expected);
    if !as_expected
        && expected != Outcome::Died
        && let Some(crash) = stopped_answering(&mut server)
    {
        return Err(format!("{label}, {}: {crash}", fault.name));
    }
    let observed = observed.map_err(|e| format!("{label}, {}: {e}{}", fault.name, bytes()))?;
    if observed != expected {
        return Err(format!(
            "{label}, {}: expected \"{}\", saw \"{}\"{}",
            fault.describe,
            expected.label(),
            observed.label(),
            bytes()
        ));
    }
    let exited = |server: &mut ChildServer, within| {
        server.wait_timeout(within).map_err(|e| format!("wait for {label}: {e}"))
    };
    if observed == Outcome::Died {
        return match exited(&mut server, TIMEOUT)? {
            Some(_) => Ok(()),
            None => Err(format!("{label} said to have died, but runs")),
        };
    }
    if exited(&mut server, Duration::ZERO)?.is_some() {
        return Err(format!("{label} exited after {}", fault.name));
    }
    if !answered_within(server.addr(), TIMEOUT) {
        return Err(format!("{label} stopped serving after {}", fault.name));
    }
    Ok(())
}

/// How a row whose server died begins its complaint.
pub const STOPPED_ANSWERING: &str = "the server stopped answering";

/// Whether `server` has stopped answering for good: its process exited, or its port
/// refuses connections. What it says names the crash in a student's terms.
fn stopped_answering(server: &mut ChildServer) -> Option<String> {
    if let Ok(Some(status)) = server.wait_timeout(Duration::ZERO) {
        return Some(format!("{STOPPED_ANSWERING} (a crash): its process exited ({status})"));
    }
    // A refusal comes back at once; a full accept queue only delays the connect, and a
    // second of it is enough to tell the port is still open.
    match std::net::TcpStream::connect_timeout(&server.addr(), Duration::from_secs(1)) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Some(format!("{STOPPED_ANSWERING} (a crash): connection refused"))
        }
        _ => None,
    }
}

fn limit_rlimit(command: &mut Command, resource: nix::sys::resource::Resource, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
    // touches nothing of the parent's.
    unsafe {
        command.pre_exec(move || {
            nix::sys::resource::setrlimit(resource, limit, limit).map_err(io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_own_name() {
        for (i, fault) in FAULTS.iter().enumerate() {
            assert!(
                fault
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}: a test name is snake_case",
                fault.name
            );
            assert!(FAULTS[i + 1..].iter().all(|f| f.name != fault.name), "{} twice", fault.name);
        }
    }

    #[test]
    fn expectations_follow_the_behaviour() {
        let one = Behaviour { at_once: AtOnce::One, isolates_crashes: false };
        let forks = Behaviour { at_once: AtOnce::Unbounded, isolates_crashes: true };
        let capped = Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false };
        let expect = |name: &str, b: &Behaviour| {
            let fault = FAULTS.iter().find(|f| f.name == name).expect("a fault of that name");
            (fault.expect)(b)
        };
        assert_eq!(expect("slowloris", &one), Outcome::CutOffOthersWaited);
        assert_eq!(expect("slowloris", &capped), Outcome::CutOff);
        assert_eq!(expect("more_clients_than_it_takes", &forks), Outcome::Served);
        assert_eq!(expect("more_clients_than_it_takes", &capped), Outcome::OthersWaited);
        assert_eq!(expect("aborting_handler", &forks), Outcome::Dropped);
        assert_eq!(expect("aborting_handler", &one), Outcome::Died);
        assert_eq!(expect("client_stops_reading", &one), Outcome::OthersWaited);
        assert_eq!(expect("client_stops_reading", &forks), Outcome::CutOff);
    }
}
