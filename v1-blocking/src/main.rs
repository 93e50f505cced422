//! The `v1-blocking` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V1_BLOCKING;
    Ok(common::cli::main(name, addr, help, hints, v1_blocking::serve)?)
}
