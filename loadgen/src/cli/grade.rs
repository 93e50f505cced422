//! `loadgen grade`: what a server is, told from its behaviour; the scorecard on the
//! terminal, as JSON, or as a page.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use loadgen::grade::{self, Target};
use loadgen::measure::parse_addr;
use loadgen::serve::Version;

pub const EXAMPLES: &str = "Examples:\n  \
    loadgen grade -- python3 my_server.py --port {port}\n  \
    loadgen grade -- ./target/release/my-server --addr {addr}\n  \
    loadgen grade --version v3-thread-pool -- --threads 4\n  \
    loadgen grade --addr 127.0.0.1:9000   (running already: no /proc, no crash test)";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Grade a workspace version, started on a free port (options for it after `--`)
    #[arg(long, value_parser = Version::parser(), conflicts_with = "addr")]
    version: Option<Version>,
    /// Grade a server already running there; what needs its /proc, or would crash it, is
    /// skipped and said so
    #[arg(long, value_parser = parse_addr)]
    addr: Option<SocketAddr>,
    /// Print the grade as JSON instead of the scorecard
    #[arg(long)]
    json: bool,
    /// Leave out the fault matrix (a fresh server per fault: a minute or two)
    #[arg(long)]
    no_matrix: bool,
    /// Leave out the runs against the closest version (two scenarios, a few seconds each,
    /// and the sweeps for the knees)
    #[arg(long)]
    no_versus: bool,
    /// Leave out the sweeps for its knee and the closest version's (rising open-loop
    /// load, half a minute at most)
    #[arg(long)]
    no_knee: bool,
    /// Also write the scorecard as a page that needs nothing else to open
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The command that starts your server (after `--`), with {addr} or {port} where its
    /// listening address or port goes; or a version's options, with --version
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = match (args.version, args.addr) {
        (Some(version), _) => Target::Version(version, args.command),
        (None, Some(addr)) if args.command.is_empty() => Target::Running(addr),
        (None, Some(_)) => bail!("give either --addr or a command to start, not both"),
        (None, None) if args.command.is_empty() => {
            bail!(
                "what should be graded? Give a command after `--` (with {{addr}} or {{port}}), --version NAME, or --addr HOST:PORT"
            )
        }
        (None, None) => Target::Command(args.command),
    };
    let grade = grade::grade(
        &target,
        grade::Options { matrix: !args.no_matrix, versus: !args.no_versus, knee: !args.no_knee },
    )?;
    if let Some(path) = &args.html {
        std::fs::write(path, grade::scorecard::html(&grade))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&grade)?);
    } else {
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
        print!("{}", grade::scorecard::terminal(&grade, color));
    }
    if !grade.passed() {
        std::process::exit(1);
    }
    Ok(())
}
