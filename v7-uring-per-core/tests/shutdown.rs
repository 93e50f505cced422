//! Graceful shutdown of v7's binary (see `common::testkit::check_graceful_shutdown`).

common::shutdown_tests!(env!("CARGO_BIN_EXE_v7-uring-per-core"));
