//! The tokio program answers `GET /hello`, and a task per connection holds no thread: with
//! two worker threads it serves 100 held connections and a newcomer, and its threads are
//! as many afterwards as before.

mod support;

use support::{Server, idle_clients, threads};

#[test]
fn a_hundred_connections_on_two_worker_threads() {
    let server = Server::start(env!("CARGO_BIN_EXE_tasks"), &["2"]);
    let at_rest = threads(server.pid()).len();
    assert_eq!(at_rest, 1 + 2, "the main thread and two workers: {:?}", threads(server.pid()));
    let _idle = idle_clients(&server, 100);
    let _newcomer = server.client_answered_twice();
    assert_eq!(threads(server.pid()).len(), at_rest, "{:?}", threads(server.pid()));
}
