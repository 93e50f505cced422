//! `loadgen watch` draws v1's accept queue filling while v1 itself cannot answer: 200
//! clients against a backlog of 16, the queue at its cap plus one, the SYNs of the rest
//! dropped (listen overflows), all read from the kernel by port and drawn by the live page
//! in a real browser.

use std::process::{Command, Stdio};
use std::time::Duration;

use common::testkit::{ChildServer, Client, browser_or_skip, connect_all, render_in_browser};
use serde_json::Value;

fn loadgen(args: &[&str]) -> ChildServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(args).stderr(Stdio::null());
    ChildServer::spawn(command).expect("start loadgen")
}

fn stats(watch: &ChildServer) -> Value {
    let answer = Client::connect(watch.addr()).and_then(|mut c| c.get("/stats"));
    serde_json::from_slice(&answer.expect("the watch answers").body).expect("JSON")
}

#[test]
fn the_watch_draws_v1s_full_accept_queue_from_outside() {
    let v1 = loadgen(&["serve", "v1-blocking", "--addr", "127.0.0.1:0", "--backlog", "16"]);
    let port = v1.addr().port().to_string();
    let watched = format!("127.0.0.1:{port}");
    let watch = loadgen(&["watch", "--addr", &watched, "--listen", "127.0.0.1:0"]);
    assert_eq!(stats(&watch)["pid"].as_u64(), Some(u64::from(v1.pid())));

    // How many clients think they are connected depends on the machine's load: a client
    // whose SYN got in while there was room, and whose last ACK then met the full queue,
    // is connected on its side only. The kernel's side does not depend on it: v1 holds
    // one, the queue 17, and each of the other 182 was dropped at least once.
    let (held, _failed) = connect_all(v1.addr(), 200, Duration::from_secs(3)).unwrap();
    let kernel = stats(&watch)["kernel"].clone();
    assert_eq!(kernel["accept_queue"]["cap"], 16, "{kernel}");
    assert_eq!(kernel["accept_queue"]["queued"], 17, "{kernel}");
    let overflows = kernel["listen_overflows"].as_u64().unwrap();
    assert!(overflows >= 200 - 18, "{overflows} overflows: {kernel}");

    if browser_or_skip("the_watch_draws_v1s_full_accept_queue_from_outside") {
        let url = format!("http://{}/", watch.addr());
        let dom = render_in_browser(&url, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
        let figure = "data-name=\"kernel: accept queue (cap 16)\"";
        let at = dom.find(figure).unwrap_or_else(|| panic!("no {figure}:\n{dom}"));
        let shown = &dom[at..];
        assert!(shown[..shown.find("</figure>").unwrap()].contains("data-value=\"17\""), "{dom}");
        assert!(dom.contains("kernel: listen overflows (namespace) per second"), "{dom}");
        assert!(dom.contains(&format!("port {port}, watched from outside")), "{dom}");
    }
    drop(held);
}
