//! The `v4-syscalls` binary: its command line, as the registry describes it, then serve.

fn main() -> anyhow::Result<()> {
    let registry::Version { name, addr, help, hints, .. } = registry::V4_SYSCALLS;
    Ok(common::cli::main(name, addr, help, hints, v4_syscalls::serve)?)
}
