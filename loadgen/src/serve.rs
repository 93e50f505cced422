//! The server versions as the load generator knows them, and `loadgen serve`, which runs
//! one of them in this process. `compare` starts each version as `loadgen serve <version>`
//! in a child process of its own: every version is built with loadgen, in the same
//! profile, and /proc's figures for that process are the server's alone.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::ChildServer;
use common::cli::ServerArgs;
use serde::Serialize;

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
}

impl Version {
    pub const ALL: [Version; 5] = [
        Version::V1Blocking,
        Version::V2ThreadPerConn,
        Version::V2ProcessPerConn,
        Version::V3ThreadPool,
        Version::V4Nio,
    ];

    /// The crate name, which is also what the server puts in its `Server` header.
    pub fn name(self) -> &'static str {
        match self {
            Version::V1Blocking => v1_blocking::SERVER,
            Version::V2ThreadPerConn => v2_thread_per_conn::SERVER,
            Version::V2ProcessPerConn => v2_process_per_conn::SERVER,
            Version::V3ThreadPool => v3_thread_pool::SERVER,
            Version::V4Nio => v4_nio::SERVER,
        }
    }

    pub fn forks(self) -> bool {
        self == Version::V2ProcessPerConn
    }
}

/// How `loadgen serve` runs a version.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    #[command(flatten)]
    pub server: ServerArgs,
    /// v3's pool size and v4's worker count (each version's own default otherwise)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs `version` in this process until it is killed.
pub fn serve(version: Version, options: &ServeOptions) -> anyhow::Result<()> {
    let (listener, dispatcher, server) = if version.forks() {
        common::cli::start_single_threaded(version.name(), &options.server)?
    } else {
        common::cli::start(version.name(), &options.server)?
    };
    match version {
        Version::V1Blocking => v1_blocking::run(listener, dispatcher, server)?,
        Version::V2ThreadPerConn => v2_thread_per_conn::run(listener, dispatcher, server)?,
        Version::V2ProcessPerConn => v2_process_per_conn::run(listener, dispatcher, server)?,
        Version::V3ThreadPool => {
            let threads = options.threads.unwrap_or(v3_thread_pool::DEFAULT_THREADS);
            v3_thread_pool::run(listener, dispatcher, v3_thread_pool::Config { server, threads })?
        }
        Version::V4Nio => {
            let workers = options.threads.unwrap_or(v4_nio::DEFAULT_WORKERS);
            let config = v4_nio::Config { server, workers, ..Default::default() };
            v4_nio::run(listener, dispatcher, config)?
        }
    }
    Ok(())
}

/// Starts `version` as `loadgen serve` in a child process on a free port, its log
/// appended to `log`.
pub fn spawn(version: Version, log: Option<std::fs::File>) -> std::io::Result<ChildServer> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", version.name(), "--addr", "127.0.0.1:0"]);
    command.stderr(log.map_or_else(Stdio::null, Stdio::from));
    ChildServer::spawn(command)
}

/// A server address from the command line.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8085"))
}
