//! The fault matrix (the `harness` crate) against the `v7-uring-per-core` binary: each
//! fault's outcome must be the one its model leads to, and the server must answer a new
//! client afterwards. Run as the registry sets v7 up (receive bundles on), then again with
//! direct descriptors, with incremental buffers, and with bundles off (their trials named
//! `direct_descriptors::…`, `buffer_inc::…`, `plain_receives::…`): a rung
//! changes how bytes reach a connection, never what the connection does about a fault.

use harness::faults::{FAULTS, Subject, check};
use libtest_mimic::{Arguments, Failed, Trial};

/// The rungs the matrix runs again with, each alone on top of the defaults.
const RUNGS: &[(&str, &[&str])] = &[
    ("direct_descriptors", &["--direct-descriptors", "true"]),
    ("buffer_inc", &["--buffer-inc", "true"]),
    // Bundles are the default: the matrix once more with one buffer per completion.
    ("plain_receives", &["--recv-bundle", "false"]),
];

/// Trials ignored (listed as such, not dropped), with why. The over-cap probe waits until
/// the server holds its four clients as sockets in its descriptor table
/// (`/proc/<pid>/fd`); a direct descriptor is in the ring's table, never there, so the
/// probe waits its whole second before the newcomer connects, and the matrix's 2 s idle
/// timeout then frees a place under it. The cap itself holds with direct descriptors:
/// `tests/rungs.rs`'s `the_cap_holds_a_newcomer_until_a_place_is_free` checks it by
/// `/stats`.
const IGNORED: &[(&str, &str)] = &[("direct_descriptors", "more_clients_than_it_takes")];

fn main() -> std::process::ExitCode {
    let name = "v7-uring-per-core";
    let version = registry::find(name).expect("v7 is in the registry (its own crate names it)");
    let binary = env!("CARGO_BIN_EXE_v7-uring-per-core");
    let mut trials = Vec::new();
    let setups = std::iter::once((None, &[][..])).chain(RUNGS.iter().map(|&(n, a)| (Some(n), a)));
    for (rung, extra) in setups {
        let args: Vec<String> =
            version.matrix.args.iter().chain(extra).map(|a| (*a).to_owned()).collect();
        let label = [name.to_owned(), extra.join(" ")].join(" ").trim_end().to_owned();
        let subject =
            Subject { label, binary: binary.to_owned(), args, behaviour: version.matrix.behaviour };
        for fault in FAULTS {
            let subject = subject.clone();
            let trial = match rung {
                Some(rung) => format!("{rung}::{}", fault.name),
                None => fault.name.to_owned(),
            };
            let ignored = rung.is_some_and(|rung| IGNORED.contains(&(rung, fault.name)));
            let run = move || check(&subject, fault).map_err(Failed::from);
            trials.push(Trial::test(trial, run).with_ignored_flag(ignored));
        }
    }
    if libtest_mimic::run(&Arguments::from_args(), trials).has_failed() {
        std::process::ExitCode::from(101)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
