//! v5's timeline, read from its `--trace` file: the model is in the trace. Each loop waits
//! in `epoll_wait` on a lane of its own, and every connection is accepted, served and
//! closed by one loop for its whole life, however many loops there are.

use common::testkit::serving::every_connection_stays_on_one_of_two;

const BINARY: &str = env!("CARGO_BIN_EXE_v5-reactor-per-core");

#[test]
fn every_connection_lives_on_the_loop_that_accepted_it() {
    let (trace, _) =
        every_connection_stays_on_one_of_two(BINARY, &["--loops", "2"], "loop", "epoll_wait");
    assert_eq!(trace.other["version"], "v5-reactor-per-core");
}
