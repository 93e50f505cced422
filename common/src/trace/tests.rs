//! The recorder in this test process: bounded by events, the file written when the bound
//! is reached, what it holds. One test, since a process records once.

use std::time::Duration;

use super::*;

#[test]
fn a_recording_stops_at_its_event_bound_and_writes_a_file_in_the_format() {
    let file = std::env::temp_dir().join(format!("common-trace-test-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let settings = Settings {
        file: Some(file.clone()),
        live: false,
        duration: Duration::from_secs(60),
        max_events: 100,
    };
    start("test", settings, true).expect("start the recorder");
    assert!(on());
    let tid = nix::unistd::gettid().as_raw();
    {
        let _serving = serving(7);
        for n in 0..200u64 {
            let _read = span(Cat::Read, "read").with("bytes", n);
        }
    }
    assert!(!on(), "the 101st event stopped the recording");
    let written = crate::testkit::wait_until(crate::testkit::TIMEOUT, || file.exists());
    assert!(written, "no file at {}", file.display());
    let text = std::fs::read_to_string(&file).expect("read the trace");
    let _ = std::fs::remove_file(&file);
    let trace: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    let other = &trace["otherData"];
    assert!(other["limit"].as_str().is_some_and(|l| l.starts_with("events")), "{other}");
    assert!(other["events"].as_u64().is_some_and(|n| n <= 100), "{other}");
    // The one that found the recorder full; those after it found it off and were not counted.
    assert!(other["dropped"].as_u64().is_some_and(|n| n >= 1), "{other}");
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let mine = |e: &&serde_json::Value| e["tid"] == tid && e["ph"] == "X";
    let reads: Vec<_> = events.iter().filter(mine).collect();
    assert!(!reads.is_empty(), "none of this thread's spans in {text}");
    for read in &reads {
        assert_eq!((read["cat"].as_str(), read["args"]["conn"].as_u64()), (Some("read"), Some(7)));
    }
    let named = events.iter().any(|e| e["ph"] == "M" && e["tid"] == tid);
    assert!(named, "this thread has no thread_name");
}
