//! The fork program answers `GET /hello`, serves a second client while the first holds its
//! connection, and does it with a process per client: a child of the server per held
//! connection, each gone (reaped, not a zombie) once its client leaves.

mod support;

use support::{Server, children, threads, wait_until};

#[test]
fn each_client_gets_a_process_of_its_own() {
    let server = Server::start(env!("CARGO_BIN_EXE_fork"), &[]);
    assert!(children(server.pid()).is_empty());
    let first = server.client_answered_twice();
    let second = server.client_answered_twice(); // answered while the first holds
    wait_until("a child process per held connection", || children(server.pid()).len() == 2);
    assert_eq!(threads(server.pid()).len(), 1, "processes, not threads");
    drop((first, second));
    wait_until("the children exit and are reaped", || children(server.pid()).is_empty());
}
