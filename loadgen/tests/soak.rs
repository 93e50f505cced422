//! `loadgen soak` end to end: v3 held under the whole mix passes, every kind of client
//! having reached it and every resource back after; and a server that keeps a descriptor
//! per connection fails, the output naming descriptors and where to look.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `loadgen soak` with `args` and waits for it, killing it past `guard` (a hang guard,
/// generous for a loaded machine, not a timing); its exit status, stdout and stderr.
fn soak(args: &[&str], guard: Duration) -> (bool, String, String) {
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("soak")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    let (mut out, mut err) =
        (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    let reader = std::thread::spawn(move || {
        let _ = out.read_to_string(&mut stdout);
        stdout
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for loadgen") {
            break status;
        }
        if started.elapsed() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen soak did not end within {guard:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), reader.join().expect("stdout read"), stderr.join().expect("stderr read"))
}

#[test]
fn v3_soaked_under_every_fault_keeps_nothing() {
    let args = ["--version", "v3-thread-pool", "-d", "12s", "--every", "1s", "--warm-up", "4s"];
    let (ok, stdout, stderr) = soak(&[&args[..], &["--json"]].concat(), Duration::from_secs(120));
    assert!(ok, "the soak of v3 failed:\n{stdout}\n{stderr}");
    let reports: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    let v3 = &reports[0];
    assert_eq!(v3["name"], "v3-thread-pool");
    assert_eq!(v3["passed"], true, "{v3}");
    assert_eq!(v3["still_serves"], true, "{v3}");
    // Every kind of client reached the server, and most visits went as the protocol says.
    let tallies = v3["tallies"].as_array().expect("tallies");
    assert_eq!(tallies.len(), 9, "{tallies:?}");
    for tally in tallies {
        let (visits, failed) =
            (tally["visits"].as_u64().unwrap(), tally["failed"].as_u64().unwrap());
        assert!(visits > 0, "{tally}");
        assert!(failed * 2 <= visits, "more visits failed than went well against v3: {tally}");
    }
    // The load held connections open while it ran, and none stayed after it.
    let samples = v3["samples"].as_array().expect("samples");
    let (from, until) = (v3["load_from"].as_f64().unwrap(), v3["load_until"].as_f64().unwrap());
    let during = samples.iter().filter(|s| (from..=until).contains(&s["secs"].as_f64().unwrap()));
    assert!(during.clone().count() >= 10, "{samples:?}");
    assert!(during.map(|s| s["connections"].as_u64().unwrap()).max() > Some(0), "{samples:?}");
    for judged in v3["judged"].as_array().expect("judged") {
        assert!(judged["finding"].is_null(), "{judged}");
        assert!(judged["returned_in"].as_f64().is_some(), "{judged}");
    }
    let connections = &v3["judged"][4];
    assert_eq!(
        (connections["resource"].as_str(), connections["after"].as_f64()),
        (Some("connections"), Some(0.0))
    );
}

/// Answers one request per connection, then keeps the connection's descriptor for good:
/// a leak of one descriptor per client, as a forgotten `close` on some path would be.
fn leaking_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("bound");
    let kept = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&kept);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            keep.lock().expect("not poisoned").push(stream);
        }
    });
    (addr, kept)
}

#[test]
fn a_server_that_keeps_a_descriptor_per_connection_fails_the_soak() {
    let (addr, kept) = leaking_server();
    let (addr, pid) = (addr.to_string(), std::process::id().to_string());
    let args = ["--addr", &addr, "--pid", &pid, "-d", "12s", "--every", "1s", "--warm-up", "3s"];
    let (ok, stdout, stderr) =
        soak(&[&args[..], &["--settle", "2s"]].concat(), Duration::from_secs(120));
    assert!(!ok, "a leaking server passed the soak:\n{stdout}\n{stderr}");
    assert!(kept.lock().unwrap().len() > 20, "the load barely reached the server:\n{stdout}");
    assert!(stdout.contains("FAIL: descriptors kept growing after the warm-up"), "{stdout}");
    assert!(stdout.contains("/fd"), "the finding says where to look:\n{stdout}");
    assert!(stderr.contains("the soak failed for"), "{stderr}");
}
