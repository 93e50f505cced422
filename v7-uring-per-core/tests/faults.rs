//! The fault matrix (the `harness` crate) against the `v7-uring-per-core` binary: each
//! fault's outcome must be the one its model leads to, and the server must answer a new
//! client afterwards. Run as the registry sets v7 up (receive bundles on), then again with
//! direct descriptors, with incremental buffers, and with bundles off (their trials named
//! `direct_descriptors::…`, `buffer_inc::…`, `plain_receives::…`): a rung
//! changes how bytes reach a connection, never what the connection does about a fault.

/// The rungs the matrix runs again with, each alone on top of the defaults.
const RUNGS: &[(&str, &[&str])] = &[
    ("direct_descriptors", &["--direct-descriptors", "true"]),
    ("buffer_inc", &["--buffer-inc", "true"]),
    // Bundles are the default: the matrix once more with one buffer per completion.
    ("plain_receives", &["--recv-bundle", "false"]),
];

/// Trials ignored: none (the over-cap probe once waited for sockets in `/proc/<pid>/fd`,
/// where direct descriptors never appear; it now reads the kernel's accept queues).
const IGNORED: &[(&str, &str)] = &[];

fn main() -> std::process::ExitCode {
    harness::fault_matrix_with(
        "v7-uring-per-core",
        env!("CARGO_BIN_EXE_v7-uring-per-core"),
        RUNGS,
        IGNORED,
    )
}
