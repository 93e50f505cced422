//! The fault matrix (the `harness` crate) against the `v7-uring-per-core` binary: each
//! fault's outcome must be the one its model leads to, and the server must answer a new
//! client afterwards.

fn main() -> std::process::ExitCode {
    harness::fault_matrix("v7-uring-per-core", env!("CARGO_BIN_EXE_v7-uring-per-core"))
}
