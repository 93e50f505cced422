//! v6's load shedding, off by default: a client that closed while its task waited behind
//! a blocking handler is not served. (With `--blocking spawn` nothing holds its task back,
//! so no test can have it close before its turn without a race.)
//! (Its `--max-queue-wait` times from the task's wake-up, which comes only once a worker
//! is free to poll it: blind to the wait behind another task's handler, so no test here
//! can show it refusing one; v5's tests show the same rule where the loop can see.)

use common::overload::Shedding;
use common::testkit::TestServer;
use common::testkit::shedding::check_a_half_closed_client_is_not_served;
use v6_async::{Blocking, Config, Model, SERVER, run};

fn one_worker(blocking: Blocking) -> TestServer {
    let mut config = Config::new(Model { workers: 1, blocking, ..Model::default() });
    config.shedding = Shedding { skip_departed: true, ..Shedding::default() };
    TestServer::start(SERVER, config, run)
}

#[test]
fn a_client_that_closed_while_the_worker_was_busy_is_not_served() {
    check_a_half_closed_client_is_not_served(&one_worker(Blocking::Inline));
}
