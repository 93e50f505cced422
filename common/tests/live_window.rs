//! The live window full, in a process of its own (a process records once): a thread that
//! has recorded nothing yet still gets its event in. The window makes room by letting
//! every thread's oldest events go, not only the appending thread's, which for a quiet
//! thread are none.

use std::time::Duration;

use common::trace::{self, Cat, Settings};

const ROOM: usize = 100;

#[test]
fn a_full_live_window_takes_a_quiet_thread_s_event() {
    let settings =
        Settings { file: None, live: true, duration: Duration::from_secs(60), max_events: ROOM };
    trace::start("test", settings, false).expect("start the recorder");
    // A busy thread fills the window exactly: each span records one event as it drops.
    std::thread::spawn(|| {
        for _ in 0..ROOM {
            drop(trace::span(Cat::Read, "busy"));
        }
    })
    .join()
    .expect("the busy thread");
    let full = trace::window(Duration::from_secs(3)).expect("recording");
    assert_eq!(full["otherData"]["events"].as_u64(), Some(ROOM as u64), "{}", full["otherData"]);
    // A quiet thread's first event finds the window full.
    std::thread::spawn(|| drop(trace::span(Cat::Handle, "quiet")))
        .join()
        .expect("the quiet thread");
    let window = trace::window(Duration::from_secs(3)).expect("recording");
    let events = window["traceEvents"].as_array().expect("traceEvents");
    let quiet = events.iter().filter(|e| e["name"] == "quiet").count();
    assert_eq!(quiet, 1, "the quiet thread's event was refused: {}", window["otherData"]);
    let held = window["otherData"]["events"].as_u64().expect("a count");
    assert!(held < ROOM as u64, "the busy thread's oldest went to make room: {held} held");
}
