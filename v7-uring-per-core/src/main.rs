//! The `v7-uring-per-core` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V7_URING_PER_CORE;
    Ok(common::cli::main(name, addr, help, hints, v7_uring_per_core::serve)?)
}
