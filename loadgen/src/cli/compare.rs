//! `loadgen compare`: every version through the suite, then the report's files.

use std::path::PathBuf;

use loadgen::compare::{self, ScenarioId};
use loadgen::peers::Peer;
use loadgen::report;
use loadgen::serve::Version;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shorter runs, 1,000 instead of 10,000 connections, and four lines in the overload
    /// sweep instead of fourteen: a few minutes instead of twelve
    #[arg(long)]
    pub quick: bool,
    /// Only these scenarios (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<ScenarioId>,
    /// Only these versions (comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = Version::parser())]
    pub versions: Vec<Version>,
    /// Also run the reference servers through the scenarios they answer, apart from the
    /// versions: nginx (v5's design), Tomcat's NIO connector with 10 and with 200 threads
    /// (v4's), hyper (v6's). Alone, all four; or a comma-separated list. One not installed
    /// is skipped, with the package to install
    #[arg(long, value_enum, value_delimiter = ',', num_args = 0.., value_name = "PEERS")]
    pub peers: Option<Vec<Peer>>,
    /// Where to write the report [default: target/compare]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut suite = compare::suite(args.quick);
    if !args.only.is_empty() {
        suite.only(&args.only);
    }
    let versions = if args.versions.is_empty() { Version::all() } else { args.versions.clone() };
    super::raise_fd_limit(suite.connections())?;
    let out = args.out.unwrap_or_else(default_out_dir);
    let peers = match args.peers {
        Some(peers) if peers.is_empty() => Peer::ALL.to_vec(),
        Some(peers) => peers,
        None => Vec::new(),
    };
    let comparison = compare::run(&suite, &versions, &peers, args.quick, &out)?;
    print!("{}", report::terminal(&comparison));
    let written = report::write_all(&comparison, &super::command_line(), &out)?;
    println!();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `target/compare` beside the `loadgen` binary, wherever the command was run from.
fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|target| target.join("compare")))
        .unwrap_or_else(|| PathBuf::from("target/compare"))
}
