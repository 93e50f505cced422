//! The fault matrix (see `common::testkit::faults`) against v4-syscalls' binary, once for
//! each kernel interface: the five loops must behave alike, whatever they wait with.

mod select {
    common::fault_matrix_tests!(
        env!("CARGO_BIN_EXE_v4-syscalls"),
        "v4-syscalls",
        &["--api", "select"]
    );
}
mod poll {
    common::fault_matrix_tests!(
        env!("CARGO_BIN_EXE_v4-syscalls"),
        "v4-syscalls",
        &["--api", "poll"]
    );
}
mod epoll {
    common::fault_matrix_tests!(
        env!("CARGO_BIN_EXE_v4-syscalls"),
        "v4-syscalls",
        &["--api", "epoll"]
    );
}
mod epoll_et {
    common::fault_matrix_tests!(
        env!("CARGO_BIN_EXE_v4-syscalls"),
        "v4-syscalls",
        &["--api", "epoll-et"]
    );
}
mod io_uring {
    common::fault_matrix_tests!(
        env!("CARGO_BIN_EXE_v4-syscalls"),
        "v4-syscalls",
        &["--api", "io-uring"]
    );
}
