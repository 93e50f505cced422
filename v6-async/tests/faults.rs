//! The fault matrix (`common::testkit::faults`) against the `v6-async` binary: each
//! fault's outcome must be the one the matrix expects of this version, and the server
//! must answer a new client afterwards.

common::fault_matrix_tests!(env!("CARGO_BIN_EXE_v6-async"), "v6-async");
