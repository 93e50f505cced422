//! The `v4-nio` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V4_NIO;
    Ok(common::cli::main(name, addr, help, hints, v4_nio::serve)?)
}
