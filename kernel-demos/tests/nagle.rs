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

/// The recorded round trips draw the stall: with Nagle on, the body is held in the
/// server's kernel for the delayed ACK; with TCP_NODELAY nothing is held.
#[test]
fn the_sequence_diagram_holds_the_body_only_with_nagle() {
    use kernel_demos::sequence::Item;
    let figure = nagle::sequence(2).expect("record the round trips");
    let held = |panel: usize| {
        figure.panels[panel].items.iter().find_map(|item| match item {
            Item::Span { start, end, .. } => Some(*end - *start),
            _ => None,
        })
    };
    let text = figure.text();
    // The delayed-ACK floor is 40 ms; 30 ms keeps a margin, as above.
    assert!(held(0).is_some_and(|d| d >= Duration::from_millis(30)), "{text}");
    assert_eq!(held(1), None, "TCP_NODELAY held the body\n{text}");
    assert!(figure.svg().contains("delayed ACK of the header"), "{text}");
}
