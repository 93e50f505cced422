//! Graceful shutdown of v4-syscalls' binary, once per kernel interface (see
//! `common::testkit::check_graceful_shutdown`).

mod select {
    common::shutdown_tests!(env!("CARGO_BIN_EXE_v4-syscalls"), &["--api", "select"]);
}
mod poll {
    common::shutdown_tests!(env!("CARGO_BIN_EXE_v4-syscalls"), &["--api", "poll"]);
}
mod epoll {
    common::shutdown_tests!(env!("CARGO_BIN_EXE_v4-syscalls"), &["--api", "epoll"]);
}
mod epoll_et {
    common::shutdown_tests!(env!("CARGO_BIN_EXE_v4-syscalls"), &["--api", "epoll-et"]);
}
mod io_uring {
    common::shutdown_tests!(env!("CARGO_BIN_EXE_v4-syscalls"), &["--api", "io-uring"]);
}
