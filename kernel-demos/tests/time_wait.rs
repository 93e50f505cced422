//! TIME_WAIT, asserted: it stays with the side that closes first.

use kernel_demos::time_wait::{self, Closer, Options};

#[test]
fn the_side_that_closes_first_keeps_the_time_wait() {
    let connections = 200;
    let outcome = time_wait::run(&Options { connections }).expect("run the connections");
    println!("{outcome}");
    let (most, few) = (connections as u64 * 9 / 10, connections as u64 / 10);
    let server = outcome.run(Closer::Server).unwrap().count;
    assert!(server.local >= most && server.remote <= few, "server first\n{outcome}");
    let client = outcome.run(Closer::Client).unwrap().count;
    assert!(client.remote >= most && client.local <= few, "client first\n{outcome}");
}
