//! SYN retries, asserted end to end: against a full accept queue the client's SYNs are
//! dropped and sent again on the client's timer, the connection is made only by a SYN
//! after the server frees a slot, and the recorded diagram draws exactly that.

use std::time::Duration;

use kernel_demos::syn_retries::{self, Options};

#[test]
fn a_full_queue_drops_syns_until_a_slot_frees_and_the_diagram_shows_it() {
    // About 3 s: two retries a second apart, then the one that gets in.
    let outcome = syn_retries::run(&Options { drops: 2, backlog: 1 }).expect("run");
    println!("{outcome}");
    assert_eq!(outcome.queued, 2, "Linux queues one more than the backlog\n{outcome}");
    assert!(outcome.retries.len() >= 3, "two drops, then the SYN that got in\n{outcome}");
    // The retransmission timer starts at 1 s (TCP_TIMEOUT_INIT); a loaded machine can
    // only make it later. 0.9 s leaves room for the millisecond polling.
    assert!(outcome.retries[0] >= Duration::from_millis(900), "{outcome}");
    let (_, accepted) = outcome.accept;
    let last = *outcome.retries.last().unwrap();
    assert!(last >= accepted, "the SYN that got in came after the slot freed\n{outcome}");
    assert!(outcome.connected >= last, "{outcome}");
    // No connection while the queue was full: the one that completed came a retry later.
    assert!(outcome.connected >= accepted + Duration::from_millis(500), "{outcome}");

    let figure = outcome.figure();
    let svg = figure.svg();
    for lifeline in ["client", "kernel: accept queue", "server"] {
        assert!(svg.contains(&format!(">{lifeline}</text>")), "no lifeline {lifeline}");
    }
    assert_eq!(svg.matches(r#"class="message lost""#).count(), outcome.retries.len());
    let text = figure.text();
    assert!(text.contains("SYN again: queued") && text.contains("accept(): a slot frees"));
}
