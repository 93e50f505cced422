//! The context switch, asserted: a ping-pong round trip between two threads on one CPU
//! is two switches, and its cost is a real figure.

use kernel_demos::switch::{self, Options};

#[test]
fn a_round_trip_on_one_cpu_is_two_context_switches() {
    let outcome = switch::run(&Options { rounds: 20_000 }).expect("run the ping-pong");
    println!("{outcome}");
    let same = outcome.same_cpu().unwrap();
    // Two per round trip, measured 2.00: voluntary when a read sleeps, involuntary when
    // the woken thread preempts its waker first (about 0.8 of the two, on this kernel).
    assert!(same.switches_per_round() >= 1.5, "too few switches\n{outcome}");
    // Each round trip, the thread that answered sleeps in its next read.
    assert!(same.voluntary_per_round() >= 0.75, "too few voluntary switches\n{outcome}");
    let cost = same.ns_per_switch();
    assert!(cost.is_finite() && cost > 0.0, "cost {cost}\n{outcome}");
}
