//! The `v6-async` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V6_ASYNC;
    Ok(common::cli::main(name, addr, help, hints, v6_async::serve)?)
}
