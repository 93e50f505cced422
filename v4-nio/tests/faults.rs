//! The fault matrix (the `harness` crate) against the `v4-nio` binary: each
//! fault's outcome must be the one its model leads to, and the server must answer a new
//! client afterwards.

fn main() -> std::process::ExitCode {
    harness::fault_matrix("v4-nio", env!("CARGO_BIN_EXE_v4-nio"))
}
