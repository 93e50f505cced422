//! The fork version's timeline: each child records into a piece of its own, which the
//! parent merges into the `--trace` file; each connection is served by a process of its
//! own, forked for it by the parent.

use std::collections::BTreeSet;

use common::testkit::Client;
use common::testkit::trace::TracedServer;

#[test]
fn each_connection_is_served_by_a_process_of_its_own_merged_into_one_trace() {
    let server = TracedServer::start(env!("CARGO_BIN_EXE_v2-process-per-conn"), &[]);
    let parent = server.pid();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connect");
                client.send(b"GET /sleep?ms=20\nGET /hello\n").expect("send");
                [client.read_line(), client.read_line()].map(|answer| answer.expect("answer"))
            })
        })
        .collect();
    for client in clients {
        let answers = client.join().expect("a client thread");
        assert_eq!(answers, ["200 slept 20 ms".to_owned(), "200 Hello, World!".to_owned()]);
    }
    let file = server.file().to_owned();
    let trace = server.stop().expect("a trace in the format");

    let served = trace.threads_per_conn(&["read", "decode", "handle", "write"]);
    assert_eq!(served.len(), 3, "{served:?}");
    let mut children = BTreeSet::new();
    for (conn, on) in &served {
        assert_eq!(on.len(), 1, "connection {conn} was served on {on:?}");
        let (pid, tid) = *on.first().expect("one thread");
        assert_ne!(pid, parent, "connection {conn} was served by the parent");
        assert!(children.insert(pid), "connection {conn} shares its process with another");
        assert_eq!(trace.thread_name((pid, tid)), Some(format!("child-{pid}").as_str()));
    }
    // The parent forked each of them: its spawn spans name exactly those children.
    let forked: BTreeSet<u32> = trace
        .spans("spawn")
        .filter(|s| s.name == "fork" && s.pid == parent)
        .filter_map(|s| s.count("child").and_then(|c| u32::try_from(c).ok()))
        .collect();
    assert_eq!(forked, children);
    // And merged their pieces: none is left beside the file.
    let dir = file.parent().expect("a directory");
    let name = file.file_name().expect("a name").to_string_lossy().into_owned();
    let left = std::fs::read_dir(dir)
        .expect("list the directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{name}.child-")))
        .count();
    assert_eq!(left, 0, "pieces left beside {}", file.display());
}

/// The event bound in the fork version, whose parent has no writer thread: the parent
/// writes the file from its accept loop once the bound is reached, and says so.
#[test]
fn the_parent_writes_the_trace_when_its_events_are_used_up() {
    let server =
        TracedServer::start(env!("CARGO_BIN_EXE_v2-process-per-conn"), &["--trace-events", "4"]);
    for _ in 0..3 {
        let mut client = Client::connect(server.addr()).expect("connect");
        assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
    }
    let trace = server.trace_written(common::testkit::TIMEOUT).expect("a trace in the format");
    let limit = trace.other["limit"].as_str().unwrap_or_default();
    assert!(limit.starts_with("events"), "recording stopped for {limit:?}");
    assert!(trace.other["dropped"].as_u64() >= Some(1), "{}", trace.other);
}
