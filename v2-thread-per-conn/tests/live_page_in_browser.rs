//! The live page at `/`, as a real browser renders it after its scripts ran: headless
//! Chromium loads it from v2 holding 20 idle connections, and the thread count the page
//! draws is the idle server's plus those 20 (and the browser's own connection); the
//! connection threads are drawn as the level they are, about 20 from first to last.

use std::time::Duration;

use common::procfs;
use common::testkit::{
    TIMEOUT, browser_or_skip, hold_idle, render_in_browser, spawn_binary, wait_until,
};

/// The figure the page draws for `name`: its markup, up to the end of its `<figure>`.
fn figure<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let figure = &dom[dom.find(&format!("data-name=\"{name}\""))?..];
    Some(&figure[..figure.find("</figure>")?])
}

/// The number the page shows for figure `name` (`data-value` of its `.now`).
fn shown(dom: &str, name: &str) -> Option<f64> {
    let figure = figure(dom, name)?;
    let value = &figure[figure.find("data-value=\"")? + "data-value=\"".len()..];
    value[..value.find('"')?].parse().ok()
}

/// The lowest value the chart of `name` has drawn (the label at its bottom).
fn lowest(dom: &str, name: &str) -> Option<f64> {
    let figure = figure(dom, name)?;
    let labels: Vec<&str> = figure.split("<text class=\"range\"").skip(1).collect();
    let bottom = labels.get(1)?;
    let text = &bottom[bottom.find('>')? + 1..bottom.find("</text>")?];
    text.replace(',', "").parse().ok()
}

#[test]
fn the_live_page_shows_threads_growing_with_idle_connections() {
    if !browser_or_skip("the_live_page_shows_threads_growing_with_idle_connections") {
        return;
    }
    let server = spawn_binary(env!("CARGO_BIN_EXE_v2-thread-per-conn"), &[]);
    let threads = || procfs::status(Some(server.pid())).map(|s| s.threads).unwrap_or(0);
    // At rest: the accepting thread and the one that waits for signals.
    let idle_server = 2;
    assert!(wait_until(TIMEOUT, || threads() == idle_server), "threads: {}", threads());
    let idle = hold_idle(server.addr(), 20).unwrap();
    assert!(wait_until(TIMEOUT, || threads() == idle_server + 20), "threads: {}", threads());

    let url = format!("http://{}/", server.addr());
    let dom = render_in_browser(&url, Duration::from_secs(3)).unwrap_or_else(|e| panic!("{e}"));
    let seen = |name| {
        shown(&dom, name).unwrap_or_else(|| panic!("no figure {name:?}; the browser saw:\n{dom}"))
    };
    assert!(dom.contains("<h1 id=\"server\">v2-thread-per-conn</h1>"), "the browser saw:\n{dom}");
    assert!(dom.contains("A new thread for every connection"), "no model sentence:\n{dom}");
    let grown = seen("threads") - idle_server as f64;
    // 20 idle clients, and the browser's own connection (one or two).
    assert!((20.0..=22.0).contains(&grown), "the page shows threads grown by {grown}:\n{dom}");
    assert!(seen("open connections") >= 20.0, "the browser saw:\n{dom}");
    // A level is drawn as a level: the 20 idle clients' threads, and nothing per second
    // (a rate would read 0 while they sit there). They were there from the first sample,
    // so the line never dipped below them.
    let threads = seen("connection_threads");
    assert!((20.0..=22.0).contains(&threads), "connection_threads shows {threads}:\n{dom}");
    let low = lowest(&dom, "connection_threads").expect("a range label");
    assert!(low >= 20.0, "the connection_threads line dips to {low}:\n{dom}");
    assert!(!dom.contains("connection_threads per second"), "drawn as a rate:\n{dom}");
    // The kernel's side: v2 accepts at once, so nothing waits in its queue (the backlog of
    // 1,024 is the default); the browser's and the idle clients' connections are not closed,
    // so no TIME_WAIT yet on the server's side.
    assert_eq!(seen("kernel: accept queue (cap 1,024)"), 0.0);
    assert_eq!(seen("kernel: TIME_WAIT on the server's side"), 0.0);
    assert!(dom.contains("kernel: listen overflows (namespace) per second"), "{dom}");
    drop(idle);
}
