//! harness: the fault matrix, above the versions.
//!
//! - [`faults`]: every fault once (name, description, probe, expectation by behaviour),
//!   the book's table, and [`faults::check`], which runs one fault against one binary.
//! - `probes`: the clients that commit the faults.
//! - `outcome`: what a fault needs ([`faults::Setup`]) and what a server did about it
//!   ([`faults::Outcome`]), which both of the above speak in.
//! - [`fault_matrix`]: a version's whole matrix as a test binary, one trial per fault
//!   (and per variant, for a binary with several), so a version's `tests/faults.rs` is:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     harness::fault_matrix("v1-blocking", env!("CARGO_BIN_EXE_v1-blocking"))
//! }
//! ```
//!
//! with `harness = false` for that test in the version's `Cargo.toml`. What each version
//! runs with and what its model does come from the registry, so no version is named here.

pub mod faults;
mod outcome;
mod probes;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

use faults::{FAULTS, Subject};

/// Runs every fault against the registry's version `name`, whose binary is `binary`, as
/// cargo test would run a test each: `cargo test -p v1-blocking --test faults -- slowloris`
/// picks one, `-- --list` lists them. A binary with variants (v4-syscalls' `--api`) runs
/// the whole matrix once per variant, each trial named `variant::fault`.
pub fn fault_matrix(name: &str, binary: &str) -> ExitCode {
    fault_matrix_with(name, binary, &[], &[])
}

/// [`fault_matrix`], and the whole matrix again for each of `more`: a setup of the
/// version's own switches on top of its defaults (v7's ladder rungs), its trials named
/// `setup::fault`. `ignored` lists `(setup, fault)` trials that run as ignored (listed, not
/// dropped); the caller says why beside it.
pub fn fault_matrix_with(
    name: &str,
    binary: &str,
    more: &[(&str, &[&str])],
    ignored: &[(&str, &str)],
) -> ExitCode {
    let args = Arguments::from_args();
    let Some(version) = registry::find(name) else {
        eprintln!("{name} is not a version of registry/src/lib.rs: add its entry there");
        return ExitCode::FAILURE;
    };
    let mut setups: Vec<(Option<&str>, Vec<&str>)> = if version.variants.is_empty() {
        vec![(None, Vec::new())]
    } else {
        version.variants.iter().map(|v| (Some(v.name), v.args.to_vec())).collect()
    };
    setups.extend(more.iter().map(|&(setup, extra)| (Some(setup), extra.to_vec())));
    let mut trials = Vec::new();
    for (setup, extra) in setups {
        let args: Vec<String> =
            version.matrix.args.iter().chain(&extra).map(|a| (*a).to_owned()).collect();
        let label = [name.to_owned(), extra.join(" ")].join(" ").trim_end().to_owned();
        let subject =
            Subject { label, binary: binary.to_owned(), args, behaviour: version.matrix.behaviour };
        for fault in FAULTS {
            let subject = subject.clone();
            let trial_name = match setup {
                Some(setup) => format!("{}::{}", setup.replace('-', "_"), fault.name),
                None => fault.name.to_owned(),
            };
            let skip = setup.is_some_and(|setup| ignored.contains(&(setup, fault.name)));
            let trial = Trial::test(trial_name, move || {
                faults::check(&subject, fault).map_err(Failed::from)
            });
            trials.push(trial.with_ignored_flag(skip));
        }
    }
    if libtest_mimic::run(&args, trials).has_failed() {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}
