//! The `v2-process-per-conn` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V2_PROCESS_PER_CONN;
    Ok(common::cli::main(name, addr, help, hints, v2_process_per_conn::serve)?)
}
