//! The thread-per-connection program answers `GET /hello`, serves a second client while
//! the first holds its connection, and does it with a thread per client: the process's
//! threads grow by one per held connection and shrink back when the clients leave.

mod support;

use support::{Server, threads, wait_until};

#[test]
fn each_client_gets_a_thread_of_its_own() {
    let server = Server::start(env!("CARGO_BIN_EXE_thread"), &[]);
    let at_rest = threads(server.pid()).len();
    assert_eq!(at_rest, 1, "only the accepting thread before any client");
    let first = server.client_answered_twice();
    let second = server.client_answered_twice(); // answered while the first holds
    wait_until("a thread per held connection", || threads(server.pid()).len() == at_rest + 2);
    drop((first, second));
    wait_until("the threads end with their clients", || threads(server.pid()).len() == at_rest);
}
