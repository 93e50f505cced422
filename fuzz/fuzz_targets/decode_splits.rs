//! The decoder on arbitrary bytes in arbitrary reads: it never panics, what it lets
//! through is within its limits, and it makes the same requests and errors of a stream
//! however the stream is split (whole, at the cuts the input asks for, a byte at a time).

#![no_main]

use common_fuzz::{Delivery, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let delivery = Delivery::from_input(input);
    let whole = decode(&[delivery.stream]);
    let split = decode(&delivery.pieces());
    assert_eq!(whole, split, "cut at {:?}", delivery.cuts);
    let bytes: Vec<&[u8]> = delivery.stream.chunks(1).collect();
    let trickled = decode(&bytes);
    assert_eq!(whole, trickled, "delivered a byte at a time");
});
