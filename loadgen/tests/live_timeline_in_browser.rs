//! The live page's timeline panel as headless Chromium renders it: from v3 started with
//! `--trace-live` while a client asks `/hello` every few milliseconds, the panel draws a
//! lane per thread (the acceptor and the pool's workers, named) with handler bars; from
//! a server that records nothing, it says how to start the recorder instead.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::testkit::{ChildServer, Client, browser_or_skip, render_in_browser};

fn v3(args: &[&str]) -> ChildServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    // Threads to spare: the browser opens connections of its own beside the page's, and
    // each holds a worker of the pool for as long as it stays open.
    command.args(["serve", "v3-thread-pool", "--addr", "127.0.0.1:0", "--threads", "8"]);
    command.args(args);
    ChildServer::spawn(command).expect("start v3")
}

/// The panel's SVG, as far as the browser drew it (in its place: the page's script holds
/// the same markup as a template).
fn panel(dom: &str) -> Option<&str> {
    let start = dom.find("<div id=\"lanes\"><svg class=\"timeline-live\"")?;
    let panel = &dom[start..];
    Some(&panel[..panel.find("</svg>")?])
}

#[test]
fn the_live_page_draws_each_thread_of_a_recording_server() {
    if !browser_or_skip("the_live_page_draws_each_thread_of_a_recording_server") {
        return;
    }
    let server = v3(&["--trace-live"]);
    let addr = server.addr();
    // Load throughout the rendering, so that the last second always holds requests.
    let stop = Arc::new(AtomicBool::new(false));
    let asking = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> std::io::Result<u32> {
            let mut client = Client::connect(addr)?;
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(client.get("/hello")?.status, 200);
                answered += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(answered)
        })
    };
    let dom = render_in_browser(&format!("http://{addr}/"), Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let answered = asking.join().expect("the client's thread").expect("the client");
    let dom = dom.unwrap_or_else(|e| panic!("{e}"));
    assert!(answered > 0);
    let panel = panel(&dom).unwrap_or_else(|| panic!("no timeline panel; the browser saw:\n{dom}"));
    let lanes: usize = panel
        .split("data-lanes=\"")
        .nth(1)
        .and_then(|rest| rest[..rest.find('"')?].parse().ok())
        .expect("the panel says its lanes");
    // The acceptor and a worker at least (the signal thread may record nothing).
    assert!(lanes >= 2, "{lanes} lanes:\n{panel}");
    for drawn in [">main</text>", "class=\"span handle\"", "class=\"span wait\"", "GET /hello"] {
        assert!(panel.contains(drawn), "no {drawn:?} in the panel:\n{panel}");
    }
    assert!(dom.contains("data-recording=\"yes\""), "{dom}");
}

#[test]
fn the_live_page_says_how_to_start_the_recorder() {
    if !browser_or_skip("the_live_page_says_how_to_start_the_recorder") {
        return;
    }
    let server = v3(&[]);
    let dom = render_in_browser(&format!("http://{}/", server.addr()), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(dom.contains("data-recording=\"no\""), "the browser saw:\n{dom}");
    assert!(dom.contains("--trace-live"), "no way to start it; the browser saw:\n{dom}");
    assert!(panel(&dom).is_none(), "lanes drawn for a server that records nothing");
}
