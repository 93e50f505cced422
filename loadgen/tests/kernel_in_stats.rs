//! Every version's `/stats` shows the kernel's side of its port, the same way whoever
//! answers (the fork version's child has closed the listener, and still reads it): the
//! accept queue against the backlog it was given, TIME_WAIT after the server closed
//! first, the namespace's listen overflows, the process's context switches.

use std::process::Command;

use common::testkit::{ChildServer, Client, TIMEOUT, wait_until};
use serde_json::Value;

fn stats(server: &ChildServer) -> Value {
    let mut client = Client::connect(server.addr()).expect("connect for /stats");
    let answer = client.get("/stats").expect("GET /stats");
    assert_eq!(answer.status, 200);
    serde_json::from_slice(&answer.body).expect("/stats is JSON")
}

#[test]
fn every_version_shows_its_accept_queue_and_time_wait() {
    for version in registry::VERSIONS {
        let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
        command.args(["serve", version.name, "--addr", "127.0.0.1:0", "--backlog", "64"]);
        command.stderr(std::process::Stdio::null());
        let server = ChildServer::spawn(command).unwrap();
        let kernel = stats(&server)["kernel"].clone();
        let queue = &kernel["accept_queue"];
        let listeners = queue["listeners"].as_u64().unwrap();
        // v5 opens a socket per loop on the port, each with the backlog it was given.
        assert!(listeners >= 1, "{}: {kernel}", version.name);
        assert_eq!(queue["cap"].as_u64(), Some(64 * listeners), "{}: {kernel}", version.name);
        assert_eq!(queue["queued"].as_u64(), Some(0), "{}: {kernel}", version.name);
        assert!(kernel["listen_overflows"].is_u64(), "{}: {kernel}", version.name);
        assert!(kernel["context_switches"]["voluntary"].is_u64(), "{}: {kernel}", version.name);

        // `Connection: close`: the server closes first, so the TIME_WAIT is on its side.
        for _ in 0..5 {
            let mut client = Client::connect(server.addr()).unwrap();
            let request = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            client.send(request.as_bytes()).unwrap();
            assert_eq!(client.read_response().unwrap().status, 200);
            assert!(client.is_closed_by_server(), "{}", version.name);
        }
        let server_side = || stats(&server)["kernel"]["time_wait"]["server_side"].as_u64();
        assert!(
            wait_until(TIMEOUT, || server_side() >= Some(5)),
            "{}: TIME_WAIT on the server's side: {:?}",
            version.name,
            server_side()
        );
    }
}
