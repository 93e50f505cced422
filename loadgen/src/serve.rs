//! The server versions as the load generator knows them, and `loadgen serve`, which runs
//! one of them in this process. `compare` starts each version as `loadgen serve <version>`
//! in a child process of its own: every version is built with loadgen, in the same
//! profile, and /proc's figures for that process are the server's alone.
//!
//! A new version plugs in here with its `Version` and `Serve` entries. [`Subject`] is what
//! `compare` runs: a version, or one of the reference servers of [`crate::peers`].

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::testkit::ChildServer;
use serde::Serialize;

use crate::peers::Peer;

/// The versions, in the order of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
pub enum Version {
    #[value(name = "v1-blocking")]
    #[serde(rename = "v1-blocking")]
    V1Blocking,
    #[value(name = "v2-thread-per-conn")]
    #[serde(rename = "v2-thread-per-conn")]
    V2ThreadPerConn,
    #[value(name = "v2-process-per-conn")]
    #[serde(rename = "v2-process-per-conn")]
    V2ProcessPerConn,
    #[value(name = "v3-thread-pool")]
    #[serde(rename = "v3-thread-pool")]
    V3ThreadPool,
    #[value(name = "v4-nio")]
    #[serde(rename = "v4-nio")]
    V4Nio,
    #[value(name = "v4-syscalls")]
    #[serde(rename = "v4-syscalls")]
    V4Syscalls,
    #[value(name = "v5-reactor-per-core")]
    #[serde(rename = "v5-reactor-per-core")]
    V5ReactorPerCore,
    #[value(name = "v6-async")]
    #[serde(rename = "v6-async")]
    V6Async,
}

impl Version {
    pub const ALL: [Version; 8] = [
        Version::V1Blocking,
        Version::V2ThreadPerConn,
        Version::V2ProcessPerConn,
        Version::V3ThreadPool,
        Version::V4Nio,
        Version::V4Syscalls,
        Version::V5ReactorPerCore,
        Version::V6Async,
    ];

    /// The crate name, which is also what the server puts in its `Server` header.
    pub fn name(self) -> &'static str {
        match self {
            Version::V1Blocking => v1_blocking::SERVER,
            Version::V2ThreadPerConn => v2_thread_per_conn::SERVER,
            Version::V2ProcessPerConn => v2_process_per_conn::SERVER,
            Version::V3ThreadPool => v3_thread_pool::SERVER,
            Version::V4Nio => v4_nio::SERVER,
            Version::V4Syscalls => v4_syscalls::SERVER,
            Version::V5ReactorPerCore => v5_reactor_per_core::SERVER,
            Version::V6Async => v6_async::SERVER,
        }
    }

    pub fn forks(self) -> bool {
        self == Version::V2ProcessPerConn
    }

    /// Whether each connection gets a thread or a process of its own, which ends with it.
    pub fn spawns_per_connection(self) -> bool {
        matches!(self, Version::V2ThreadPerConn | Version::V2ProcessPerConn)
    }
}

/// `loadgen serve <version> [its options]`: each version with exactly the options its own
/// binary takes, run by the same function its own `main` calls, so nothing here can fall
/// behind a version's command line.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Serve {
    #[command(name = "v1-blocking")]
    V1Blocking(v1_blocking::Args),
    #[command(name = "v2-thread-per-conn")]
    V2ThreadPerConn(v2_thread_per_conn::Args),
    #[command(name = "v2-process-per-conn")]
    V2ProcessPerConn(v2_process_per_conn::Args),
    #[command(name = "v3-thread-pool")]
    V3ThreadPool(v3_thread_pool::Args),
    #[command(name = "v4-nio")]
    V4Nio(v4_nio::Args),
    #[command(name = "v4-syscalls")]
    V4Syscalls(v4_syscalls::Args),
    #[command(name = "v5-reactor-per-core")]
    V5ReactorPerCore(v5_reactor_per_core::Args),
    #[command(name = "v6-async")]
    V6Async(v6_async::Args),
    /// The hyper reference server (not a version): see `compare --peers`.
    #[command(name = "peer-hyper")]
    PeerHyper(peer_hyper::Args),
}

impl Serve {
    /// Runs the version in this process until it is stopped.
    pub fn run(&self) -> anyhow::Result<()> {
        match self {
            Serve::V1Blocking(args) => v1_blocking::serve(args)?,
            Serve::V2ThreadPerConn(args) => v2_thread_per_conn::serve(args)?,
            Serve::V2ProcessPerConn(args) => v2_process_per_conn::serve(args)?,
            Serve::V3ThreadPool(args) => v3_thread_pool::serve(args)?,
            Serve::V4Nio(args) => v4_nio::serve(args)?,
            Serve::V4Syscalls(args) => v4_syscalls::serve(args)?,
            Serve::V5ReactorPerCore(args) => v5_reactor_per_core::serve(args)?,
            Serve::V6Async(args) => v6_async::serve(args)?,
            Serve::PeerHyper(args) => peer_hyper::serve(args)?,
        }
        Ok(())
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

    /// Starts it on a free loopback port: a version as `loadgen serve`, a peer as
    /// [`Peer::spawn`] does (`dir` is where it may write its files), its log in `log`.
    pub fn spawn(self, dir: &std::path::Path, log: std::fs::File) -> anyhow::Result<ChildServer> {
        match self {
            Subject::Version(v) => Ok(spawn(v, Some(log))?),
            Subject::Peer(p) => p.spawn(dir, log),
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

/// A server address from the command line.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8085"))
}
