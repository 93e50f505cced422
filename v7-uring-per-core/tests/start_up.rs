//! The address is announced only once every ring's socket listens, as in v5: a client
//! that connects the moment it reads `listening on` is spread over all the rings. And what
//! stops it before that: options the command line refuses, a kernel that refuses io_uring.

use std::process::Command;

use common::testkit::{
    check_refused_by_the_command_line, every_socket_listens_when_announced, run_to_exit,
};

const BINARY: &str = env!("CARGO_BIN_EXE_v7-uring-per-core");

#[test]
fn every_ring_listens_when_the_address_is_announced() {
    every_socket_listens_when_announced(BINARY, &["--rings", "2"], 2, 10);
}

/// A `--buffers` the kernel cannot index (not a power of two) is refused by the command
/// line, before anything starts.
#[test]
fn a_bad_buffer_count_is_refused_before_start() {
    let said = ["invalid value '100' for '--buffers <N>'", "100 is not a power of two"];
    check_refused_by_the_command_line(BINARY, &["--buffers", "100"], &said);
}

/// No ring, or a cap of no connection, is refused by the command line before anything
/// starts, instead of being taken for 1.
#[test]
fn zero_rings_or_connections_are_refused() {
    for option in ["--rings", "--max-connections"] {
        let said = format!("invalid value '0' for '{option} <N>'");
        check_refused_by_the_command_line(BINARY, &[option, "0"], &[&said]);
    }
}

/// Where the kernel refuses io_uring (here: a seccomp filter that fails `io_uring_setup`
/// with EPERM, as Docker's default profile does), v7 does not fall back to anything: it
/// exits with one line saying so and what to run instead, before announcing an address.
#[test]
fn a_kernel_that_refuses_io_uring_is_reported_in_one_line() {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(BINARY);
    command.args(["--addr", "127.0.0.1:0"]);
    // SAFETY: between fork and exec the closure builds the filter on its stack (no
    // allocation) and calls prctl, which is async-signal-safe.
    unsafe { command.pre_exec(refuse_io_uring_setup) };
    // Bounded: a binary that took io_uring anyway would be serving, not exiting.
    let out = run_to_exit(&mut command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("what the user sees: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains("io_uring is not available here"), "{stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(stderr.contains("run v5-reactor-per-core instead"), "{stderr}");
    assert!(out.stdout.is_empty(), "announced anyway: {}", String::from_utf8_lossy(&out.stdout));
}

/// Installs a seccomp filter on this process: `io_uring_setup` fails with EPERM, every
/// other system call is allowed.
fn refuse_io_uring_setup() -> std::io::Result<()> {
    const LOAD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS: the syscall number, offset 0
    const JUMP_EQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let filter = [
        libc::sock_filter { code: LOAD_NR, jt: 0, jf: 0, k: 0 },
        libc::sock_filter { code: JUMP_EQ, jt: 0, jf: 1, k: libc::SYS_io_uring_setup as u32 },
        libc::sock_filter { code: RETURN, jt: 0, jf: 0, k: ERRNO | libc::EPERM as u32 },
        libc::sock_filter { code: RETURN, jt: 0, jf: 0, k: ALLOW },
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: prctl with the documented arguments; `program` outlives the call, and the
    // kernel copies the filter.
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &raw const program) == 0
    };
    if installed { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
