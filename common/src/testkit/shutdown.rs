//! The graceful shutdown every version promises, checked against its binary: the two
//! checks, and `shutdown_tests!`, which makes them a version's two tests.

use std::io;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::sockets::{connections_to, listening_sockets_on, server_has_read};
use super::{ChildServer, Client, TIMEOUT, wait_for, wait_until};

/// How long the graceful check gives the server to accept a silent client before it
/// signals: far beyond what a server that accepts while busy needs, and well inside the
/// request in flight, which the signal must still find running. v1, busy with that
/// request, never accepts the client; for v1 this wait runs out, as it should.
const ACCEPT_WAIT: Duration = Duration::from_millis(500);

/// The graceful shutdown every version promises, checked against a server binary. A
/// request is in flight (`/sleep?ms=1500`, being served) and a second client is connected
/// but silent. A SIGTERM must let the request finish with its full answer, close the
/// silent client (v1, which never accepted it, leaves that to the kernel when it exits),
/// and end the process with success within the shutdown deadline.
pub fn check_graceful_shutdown(mut server: ChildServer) -> Result<(), String> {
    let fail = |what: &str, e: io::Error| format!("{what}: {e}");
    let port = server.addr().port();
    let mut busy = Client::connect(server.addr()).map_err(|e| fail("connect", e))?;
    busy.send(b"GET /sleep?ms=1500\n").map_err(|e| fail("send", e))?;
    // The signal must come after the server has read the request: what a server has read
    // it serves before it stops. Nothing but the kernel shows it (v1 cannot even answer
    // /stats now).
    read_by_server(&busy)?;
    let mut idle = Client::connect(server.addr()).map_err(|e| fail("connect", e))?;
    // Accepted before the signal, so that the server, not the kernel, has it to close.
    let _ = wait_until(ACCEPT_WAIT, || {
        crate::kernel::accept_queue(port).is_ok_and(|queue| queue.queued == 0)
    });
    server.signal(Signal::SIGTERM).map_err(|e| fail("SIGTERM", e))?;

    let answer = busy.read_line().map_err(|e| fail("the request in flight lost its answer", e))?;
    if answer != "200 slept 1500 ms" {
        return Err(format!("the request in flight got {answer:?}"));
    }
    if !idle.is_closed_by_server() {
        return Err("the silent connection was not closed".into());
    }
    let deadline = crate::shutdown::DEADLINE + Duration::from_secs(2);
    match server.wait_timeout(deadline).map_err(|e| fail("wait", e))? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("the server exited with {status}")),
        None => Err(format!("the server was still running {deadline:?} after SIGTERM")),
    }
}

/// A second SIGTERM ends the server at once, even with a request in flight.
pub fn check_second_signal_exits_at_once(mut server: ChildServer) -> Result<(), String> {
    let port = server.addr().port();
    let mut busy = Client::connect(server.addr()).map_err(|e| e.to_string())?;
    busy.send(b"GET /sleep?ms=8000\n").map_err(|e| e.to_string())?;
    read_by_server(&busy)?;
    let before = connections_to(port).map_err(|e| e.to_string())?;
    server.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    // Two signals sent before the server takes the first are one pending signal to the
    // kernel. It has taken the first once it acts on it, which shows outside: it stops
    // listening, or (the versions that wake their accept loop with a connection of their
    // own) it connects to itself.
    wait_for(TIMEOUT, "the server to act on the first SIGTERM", || {
        listening_sockets_on(port).is_ok_and(|n| n == 0)
            || connections_to(port).is_ok_and(|n| n > before)
    })?;
    server.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    match server.wait_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err("the server was still running 2 s after the second SIGTERM".into()),
    }
}

/// Waits until the server has read everything `client` sent.
fn read_by_server(client: &Client) -> Result<(), String> {
    wait_for(TIMEOUT, "the server to read the request", || {
        server_has_read(client.stream()).unwrap_or(false)
    })
}

/// The two graceful-shutdown tests for a version's binary: `common::shutdown_tests!(BINARY);`
/// in the version's `tests/shutdown.rs`.
#[macro_export]
macro_rules! shutdown_tests {
    ($binary:expr) => {
        $crate::shutdown_tests!($binary, &[]);
    };
    ($binary:expr, $args:expr) => {
        use $crate::testkit::{
            check_graceful_shutdown, check_second_signal_exits_at_once, spawn_binary,
        };

        #[test]
        fn sigterm_finishes_the_request_in_flight_and_closes_idle_clients() {
            assert_eq!(check_graceful_shutdown(spawn_binary($binary, $args)), Ok(()));
        }

        #[test]
        fn a_second_sigterm_exits_at_once() {
            assert_eq!(check_second_signal_exits_at_once(spawn_binary($binary, $args)), Ok(()));
        }
    };
}

/// Starts a server binary on a free port with extra arguments.
pub fn spawn_binary(program: &str, args: &[&str]) -> ChildServer {
    let mut command = std::process::Command::new(program);
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    ChildServer::spawn(command).expect("start the server binary")
}
