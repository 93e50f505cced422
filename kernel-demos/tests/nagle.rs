//! Nagle meets the delayed ACK, asserted: a reply in two writes stalls for the client's
//! delayed ACK unless the server sets TCP_NODELAY or writes it in one piece, or the
//! client acknowledges at once (TCP_QUICKACK).

use std::time::Duration;

use kernel_demos::nagle::{self, Case, Options};

#[test]
fn a_reply_in_two_writes_waits_for_the_delayed_ack_unless_nodelay() {
    let outcome = nagle::run(&Options { rounds: 20, warmup: 2 }).expect("run the round trips");
    println!("{outcome}");
    let [nagle, nodelay, one_write, quickack] =
        Case::ALL.map(|case| outcome.case(case).unwrap().median());
    // Linux delays an ACK at least 40 ms (HZ/25; measured 44 ms here, HZ=250); load can
    // only lengthen it. 30 ms keeps a margin below the kernel's floor.
    assert!(nagle >= Duration::from_millis(30), "no delayed-ACK stall\n{outcome}");
    assert!(nagle >= nodelay * 10, "Nagle not ten times slower\n{outcome}");
    // Tens of microseconds on loopback; 5 ms is a loaded machine's scheduling delay.
    assert!(nodelay < Duration::from_millis(5), "TCP_NODELAY stalled\n{outcome}");
    assert!(one_write < Duration::from_millis(5), "one write stalled\n{outcome}");
    // The client acknowledging at once removes the stall: it was its delayed ACK.
    assert!(quickack < Duration::from_millis(5), "QUICKACK stalled\n{outcome}");
}
