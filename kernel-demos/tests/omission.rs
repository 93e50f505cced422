//! Coordinated omission, asserted: against one server stall, a closed loop records the
//! stall in one request and an open loop in every request that fell due during it.

use std::time::Duration;

use kernel_demos::omission::{self, Loop, Options};

#[test]
fn the_closed_loop_records_the_stall_once_and_the_open_loop_in_each_request_it_delayed() {
    // About a second: two loops of 8 requests due 50 ms apart, a 200 ms stall on #1.
    let options = Options::default();
    let ms = Duration::from_millis;
    let closed = omission::run(Loop::Closed, &options).expect("the closed loop");
    let open = omission::run(Loop::Open, &options).expect("the open loop");
    let show = format!("closed {closed:#?}\nopen {open:#?}");
    // Load can only make a reply later, never earlier than the stall.
    assert!(closed[1].from_send() >= ms(190), "{show}");
    // Sent late, once the stalled reply was in, so each is timed as fast: the stall is
    // not in them. 100 ms is half the stall, far above a loaded machine's scheduling.
    for request in &closed[2..=4] {
        assert!(request.sent >= closed[1].received, "{show}");
        assert!(request.from_send() < ms(100), "{show}");
    }
    // Due at 100, 150 and 200 ms, answered only after the stall ends (250 ms or later).
    for (request, at_least) in open[2..=4].iter().zip([140, 90, 40]) {
        assert!(request.from_due() >= ms(at_least), "{show}");
    }
}
