//! Closing one of two SO_REUSEPORT listeners, asserted: with tcp_migrate_req = 0 its
//! queued connections are reset and the other listener's are untouched; with 1 (run
//! only where root may set it) they move to the other listener.

use kernel_demos::reuseport_close::{self, Options};

// One test, not two: the run with tcp_migrate_req = 1 changes it for the whole network
// namespace, which a test running beside it would see.
#[test]
fn closing_a_reuseport_listener_resets_its_queue_unless_migrated() {
    let outcome = reuseport_close::run(&Options::default()).expect("run the close");
    println!("{outcome}");
    let run = outcome.run(0).expect("a run with tcp_migrate_req = 0");
    assert!(run.queued_b >= 1, "the hash put nothing on B\n{outcome}");
    assert_eq!(run.reset, run.queued_b as usize, "reset != queued on B\n{outcome}");
    assert_eq!(run.accepted_a, run.queued_a as usize, "A lost or gained some\n{outcome}");
    assert_eq!(run.lost, 0, "{outcome}");
    match outcome.run(1) {
        Some(run) => {
            assert_eq!(run.reset, 0, "reset despite tcp_migrate_req = 1\n{outcome}");
            assert_eq!(run.accepted_a, run.connections, "not all reached A\n{outcome}");
            assert_eq!(run.migrated(), run.queued_b as usize, "{outcome}");
        }
        None => println!("skipped the run with tcp_migrate_req = 1: {:?}", outcome.skipped),
    }
}
