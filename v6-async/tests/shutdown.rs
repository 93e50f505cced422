//! Graceful shutdown of the `v6-async` binary: SIGTERM lets the request in flight finish,
//! closes idle clients and exits; a second SIGTERM exits at once.

common::shutdown_tests!(env!("CARGO_BIN_EXE_v6-async"));
