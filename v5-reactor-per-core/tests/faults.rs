//! The fault matrix against v5's binary (see `common::testkit::faults`).

common::fault_matrix_tests!(env!("CARGO_BIN_EXE_v5-reactor-per-core"), "v5-reactor-per-core");
