//! The `v5-reactor-per-core` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V5_REACTOR_PER_CORE;
    Ok(common::cli::main(name, addr, help, hints, v5_reactor_per_core::serve)?)
}
