//! `loadgen waits`: the kernel-waits sweep alone, with its own report in `target/waits`.

use std::path::PathBuf;
use std::time::Duration;

use loadgen::waits::{self, WaitsConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: WaitsConfig,
    /// One second per run instead of the --duration
    #[arg(long)]
    pub quick: bool,
    /// Where to write the report [default: target/waits]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = args.config;
    if args.quick {
        config.duration = Duration::from_secs(1);
    }
    config.apis = config.apis().to_vec();
    super::raise_fd_limit(config.idle.iter().copied().max().unwrap_or(0) + config.active)?;
    let command = super::command_line();
    eprintln!(
        "v4-syscalls, {} clients beside the idle ones, {:?} per run:",
        config.active, config.duration
    );
    let points = waits::run(&config)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("target/waits"));
    std::fs::create_dir_all(&out)?;
    let markdown = waits::markdown(&points, &config, &command);
    println!("{markdown}");
    for (name, text) in [
        ("results.json", serde_json::to_string_pretty(&points)?),
        ("report.md", markdown),
        ("report.html", waits::html(&points, &config, &command)),
    ] {
        std::fs::write(out.join(name), text)?;
        eprintln!("wrote {}", out.join(name).display());
    }
    Ok(())
}
