//! Graceful shutdown of v5's binary (see `common::testkit::check_graceful_shutdown`).

common::shutdown_tests!(env!("CARGO_BIN_EXE_v5-reactor-per-core"));
