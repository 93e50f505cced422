//! The server versions as the load generator knows them, and `loadgen serve`, which runs
//! one of them in this process. `compare` starts each version as `loadgen serve <version>`
//! in a child process of its own: every version is built with loadgen, in the same
//! profile, and /proc's figures for that process are the server's alone.
//!
//! The versions are the registry's (`registry/src/lib.rs`); what loadgen adds is how to run
//! each in this process, in [`RUNNERS`]. [`Subject`] is what `compare` runs: a version, or
//! one of the reference servers of [`crate::peers`].

use std::process::{Command, Stdio};

use anyhow::Context as _;
use common::testkit::ChildServer;
use serde::Serialize;

use crate::peers::Peer;

/// A version of the series: its registry entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Version(&'static registry::Version);

impl Version {
    pub const V1_BLOCKING: Version = Version(&registry::V1_BLOCKING);
    pub const V2_THREAD_PER_CONN: Version = Version(&registry::V2_THREAD_PER_CONN);
    pub const V2_PROCESS_PER_CONN: Version = Version(&registry::V2_PROCESS_PER_CONN);
    pub const V3_THREAD_POOL: Version = Version(&registry::V3_THREAD_POOL);
    pub const V4_NIO: Version = Version(&registry::V4_NIO);
    pub const V4_SYSCALLS: Version = Version(&registry::V4_SYSCALLS);
    pub const V5_REACTOR_PER_CORE: Version = Version(&registry::V5_REACTOR_PER_CORE);
    pub const V6_ASYNC: Version = Version(&registry::V6_ASYNC);
    pub const V7_URING_PER_CORE: Version = Version(&registry::V7_URING_PER_CORE);

    /// Every version, in the order of the series.
    pub fn all() -> Vec<Version> {
        registry::VERSIONS.iter().map(Version).collect()
    }

    /// The version called `name`, if there is one.
    pub fn named(name: &str) -> Option<Version> {
        registry::find(name).map(Version)
    }

    /// The crate name, which is also what the server puts in its `Server` header.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn entry(self) -> &'static registry::Version {
        self.0
    }

    pub fn forks(self) -> bool {
        self.0.per_connection == Some(registry::PerConnection::Process)
    }

    /// Whether each connection gets a thread or a process of its own, which ends with it.
    pub fn spawns_per_connection(self) -> bool {
        self.0.per_connection.is_some()
    }

    /// A command-line parser of version names, offering the registry's.
    pub fn parser() -> impl clap::builder::TypedValueParser<Value = Version> {
        use clap::builder::TypedValueParser as _;
        let names = registry::VERSIONS.iter().map(|v| v.name);
        clap::builder::PossibleValuesParser::new(names)
            .try_map(|name| Version::named(&name).ok_or_else(|| format!("{name} is not a version")))
    }
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Runs a server in this process from its own command-line options (the words after
/// its name), until it is stopped.
type Runner = fn(&'static str, &[String]) -> anyhow::Result<()>;

/// How `loadgen serve` runs each version: with exactly the options its own binary takes,
/// by the same function its own `main` calls, so nothing here can fall behind a version's
/// command line. A test checks that every version of the registry has its line.
pub const RUNNERS: &[(&str, Runner)] = &[
    (v1_blocking::SERVER, |name, args| run(name, args, v1_blocking::serve)),
    (v2_thread_per_conn::SERVER, |name, args| run(name, args, v2_thread_per_conn::serve)),
    (v2_process_per_conn::SERVER, |name, args| run(name, args, v2_process_per_conn::serve)),
    (v3_thread_pool::SERVER, |name, args| run(name, args, v3_thread_pool::serve)),
    (v4_nio::SERVER, |name, args| run(name, args, v4_nio::serve)),
    (v4_syscalls::SERVER, |name, args| run(name, args, v4_syscalls::serve)),
    (v5_reactor_per_core::SERVER, |name, args| run(name, args, v5_reactor_per_core::serve)),
    (v6_async::SERVER, |name, args| run(name, args, v6_async::serve)),
    (v7_uring_per_core::SERVER, |name, args| run(name, args, v7_uring_per_core::serve)),
    // The hyper reference server (not a version): see `compare --peers`.
    (peer_hyper::SERVER, |name, args| run(name, args, peer_hyper::serve)),
];

/// Parses `args` as the server `name`'s options `A` (printing its help for `--help`),
/// then serves with them.
fn run<A, E>(
    name: &'static str,
    args: &[String],
    serve: fn(&A) -> Result<(), E>,
) -> anyhow::Result<()>
where
    A: clap::Args + clap::FromArgMatches,
    E: Into<anyhow::Error>,
{
    let command = A::augment_args(clap::Command::new(name));
    let matches = command
        .try_get_matches_from(std::iter::once(name.to_owned()).chain(args.iter().cloned()))
        .unwrap_or_else(|e| e.exit());
    let options = A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    serve(&options).map_err(Into::into)
}

/// `loadgen serve <server> [its options]`.
#[derive(Debug, Clone, clap::Args)]
pub struct Serve {
    /// The version (or `peer-hyper`) to run
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(RUNNERS.iter().map(|r| r.0)))]
    pub server: String,
    /// Its own options, as its binary takes them (`--help` lists them)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl Serve {
    /// Runs the server in this process until it is stopped.
    pub fn run(&self) -> anyhow::Result<()> {
        let (name, runner) = RUNNERS
            .iter()
            .find(|(name, _)| *name == self.server)
            .with_context(|| format!("{} is not a server loadgen can run", self.server))?;
        runner(name, &self.args)
    }
}

/// Starts `version` as `loadgen serve` in a child process on a free port, its log
/// appended to `log`.
pub fn spawn(version: Version, log: Option<std::fs::File>) -> std::io::Result<ChildServer> {
    spawn_with(version, &[], log)
}

/// [`spawn`], with options for the version besides the address.
pub fn spawn_with(
    version: Version,
    args: &[&str],
    log: Option<std::fs::File>,
) -> std::io::Result<ChildServer> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", version.name(), "--addr", "127.0.0.1:0"]).args(args);
    command.stderr(log.map_or_else(Stdio::null, Stdio::from));
    ChildServer::spawn(command)
}

/// What `compare` measures: a version of the series, or a reference server beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Subject {
    Version(Version),
    Peer(Peer),
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Version(v) => v.name(),
            Subject::Peer(p) => p.name(),
        }
    }

    /// Whether the server is several processes (the fork version, nginx's workers), so
    /// that /proc must be read for its children too and memory summed as PSS.
    pub fn processes(self) -> bool {
        match self {
            Subject::Version(v) => v.forks(),
            Subject::Peer(p) => p.worker_processes(),
        }
    }

    /// Whether each connection gets a thread or a process of its own, which ends with it.
    pub fn spawns_per_connection(self) -> bool {
        matches!(self, Subject::Version(v) if v.spawns_per_connection())
    }

    /// The version, if it is one.
    pub fn version(self) -> Option<Version> {
        match self {
            Subject::Version(v) => Some(v),
            Subject::Peer(_) => None,
        }
    }
}

impl From<Version> for Subject {
    fn from(version: Version) -> Self {
        Subject::Version(version)
    }
}

impl From<Peer> for Subject {
    fn from(peer: Peer) -> Self {
        Subject::Peer(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_of_the_registry_can_be_run() {
        for v in registry::VERSIONS {
            assert!(
                RUNNERS.iter().any(|(name, _)| *name == v.name),
                "no runner for {0}: add {0} to loadgen's [dependencies] and its line to RUNNERS \
                 in loadgen/src/serve.rs",
                v.name
            );
        }
        for (name, _) in RUNNERS {
            assert!(
                registry::find(name).is_some() || *name == peer_hyper::SERVER,
                "{name} runs, but the registry does not know it"
            );
        }
    }
}
