//! The fault matrix (the `harness` crate) against the `v3-thread-pool` binary: each
//! fault's outcome must be the one its model leads to, and the server must answer a new
//! client afterwards.

fn main() -> std::process::ExitCode {
    harness::fault_matrix("v3-thread-pool", env!("CARGO_BIN_EXE_v3-thread-pool"))
}
