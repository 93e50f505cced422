//! The `loadgen` binary: the load scripts' command line, a file per subcommand in `cli/`.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run(clap::Parser::parse())
}
