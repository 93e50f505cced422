//! The `v3-thread-pool` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V3_THREAD_POOL;
    Ok(common::cli::main(name, addr, help, hints, v3_thread_pool::serve)?)
}
