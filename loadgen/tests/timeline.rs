//! The timeline's reader and drawing on hand-written traces (`fixtures/timeline-*.json`),
//! and the /proc sampler against threads of this test's own: lanes named, bars by
//! category, hand-off arrows, connections told apart; a broken trace refused with a
//! reason.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use loadgen::timeline::{Category, Source, draw, sampled, summary, trace};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_trace_reads_into_lanes_spans_and_hand_offs() {
    let t = trace::read(&fixture("timeline-pool.json")).unwrap();
    assert_eq!(t.process, "v3-thread-pool");
    let names: Vec<&str> = t.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["main", "worker-0", "worker-1"]);
    // 17 spans and instants; the counter and the metadata are not spans.
    assert_eq!(t.spans.len(), 17);
    assert_eq!(t.spans[0].start_us, 0.0, "times start at the first event");
    let sleep = t.spans.iter().find(|s| s.name == "GET /sleep").unwrap();
    assert_eq!(
        (sleep.lane, sleep.cat, sleep.conn, sleep.dur_us),
        (1, Category::Handle, Some(1), 50_000.0)
    );
    let close = t.spans.iter().find(|s| s.cat == Category::Close).unwrap();
    assert_eq!((close.dur_us, close.start_us), (0.0, 52_275.0));
    assert_eq!(t.flows.len(), 2);
    assert_eq!((t.flows[0].from, t.flows[0].to), (0, 1));
    assert_eq!((t.flows[1].from, t.flows[1].to, t.flows[1].to_us), (0, 2, 315.0));
    assert_eq!((t.dropped, t.limit.as_deref(), t.length_us), (3, None, 52_275.0));
    let s = summary::summarize(&t);
    assert_eq!((s.lanes, s.busy_lanes, s.connections, s.handoffs), (3, 3, 2, 2));
    assert_eq!((s.handlers, s.handler_lanes, s.most_lanes_per_connection), (2, 2, 1));
}

/// A server writes its trace lane by lane, so an arrow to an earlier lane has its end
/// before its start in the file: read in reverse, the fixture keeps both its hand-offs.
#[test]
fn a_hand_off_is_drawn_whichever_end_comes_first_in_the_file() {
    let mut document: serde_json::Value =
        serde_json::from_str(&fixture("timeline-pool.json")).unwrap();
    document["traceEvents"].as_array_mut().unwrap().reverse();
    let t = trace::read(&document.to_string()).unwrap();
    let flows: Vec<_> = t.flows.iter().map(|f| (f.from, f.to, f.to_us)).collect();
    let forward = trace::read(&fixture("timeline-pool.json")).unwrap();
    let expected: Vec<_> = forward.flows.iter().map(|f| (f.from, f.to, f.to_us)).collect();
    assert_eq!(flows.len(), 2, "{flows:?}");
    for flow in expected {
        assert!(flows.contains(&flow), "{flow:?} lost when its end came first: {flows:?}");
    }
}

#[test]
fn the_drawing_has_its_lanes_bars_arrows_legend_and_caption() {
    let t = trace::read(&fixture("timeline-pool.json")).unwrap();
    let svg = draw::svg(&t, "v3-thread-pool --threads 2", "Each worker holds a connection.");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert!(svg.contains(r#"data-lanes="3""#));
    for lane in ["main", "worker-0", "worker-1"] {
        assert!(svg.contains(&format!(">{lane}</text>")), "no lane {lane}");
    }
    // A bar per category used, coloured as the legend says.
    for cat in ["wait", "accept", "read", "handle", "write", "handoff"] {
        assert!(svg.contains(&format!(r#"class="tl-span {cat}""#)), "no {cat} bar");
    }
    assert_eq!(svg.matches(r#"class="tl-flow" x1"#).count(), 3, "two hand-offs and the legend's");
    assert!(svg.contains("blocked, waiting") && svg.contains("a hand-off between threads"));
    // The 50 ms handler is wide enough to carry its connection's number.
    assert!(svg.contains(">c1</text>"));
    assert!(svg.contains(r#"class="tl-stripe""#));
    assert!(svg.contains("Each worker holds a connection."));
    assert!(svg.contains("could not record 3 events"));
    // It is XML a parser takes: every element opened is closed.
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    assert_eq!(svg.matches("<svg").count(), 1);
}

#[test]
fn a_broken_trace_is_refused_saying_why() {
    let cut = trace::read(&fixture("timeline-truncated.json")).unwrap_err().to_string();
    assert!(cut.contains("not JSON") && cut.contains("line"), "{cut}");
    let no_ts = trace::read(&fixture("timeline-no-ts.json")).unwrap_err().to_string();
    assert!(no_ts.contains("event 1") && no_ts.contains("no `ts`"), "{no_ts}");
    let not_trace = trace::read(r#"{"events": []}"#).unwrap_err().to_string();
    assert!(not_trace.contains("without `traceEvents`"), "{not_trace}");
    let bad_dur = trace::read(r#"[{"ph":"X","ts":1,"dur":-5,"pid":1,"tid":1}]"#).unwrap_err();
    assert!(bad_dur.to_string().contains("`dur` is -5"), "{bad_dur}");
}

#[test]
fn the_sampler_sees_a_busy_thread_run_and_an_idle_one_sleep() {
    let stop = Arc::new(AtomicBool::new(false));
    let spin = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("spinner".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    };
    let sleeper = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("sleeper".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .unwrap()
    };
    let sampler = sampled::Sampler::start(std::process::id(), Duration::from_millis(3));
    let began = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // The sampler first, while both threads still live.
    let t = sampler.stop();
    stop.store(true, Ordering::Relaxed);
    spin.join().unwrap();
    sleeper.join().unwrap();
    assert!(began.elapsed() < Duration::from_secs(30));
    assert_eq!(t.source, Source::Sampled);
    let lane = |name: &str| {
        t.lanes
            .iter()
            .position(|l| l.name == name)
            .unwrap_or_else(|| panic!("no lane {name}: {:?}", t.lanes))
    };
    let time_in = |lane: usize, cat: Category| -> f64 {
        t.spans.iter().filter(|s| s.lane == lane && s.cat == cat).map(|s| s.dur_us).sum()
    };
    let (spinner, sleeper) = (lane("spinner"), lane("sleeper"));
    let asleep = |lane: usize| -> f64 {
        t.spans.iter().filter(|s| s.lane == lane && s.name == "sleeping").map(|s| s.dur_us).sum()
    };
    // The spinner never sleeps: it runs, or waits for a CPU on a busy machine. The sleeper
    // sleeps, but for its moments awake every 50 ms.
    assert!(time_in(spinner, Category::Running) > 0.0, "{:?}", t.spans);
    assert!(asleep(spinner) < 0.2 * t.length_us, "the spinner slept {} µs", asleep(spinner));
    assert!(asleep(sleeper) > 0.5 * t.length_us, "the sleeper slept {} µs", asleep(sleeper));
    assert!(asleep(sleeper) > time_in(sleeper, Category::Running) * 3.0);
    let svg = draw::svg(&t, "this test", "The spinner runs, the sleeper sleeps.");
    assert!(svg.contains(">spinner</text>") && svg.contains(r#"class="tl-span running""#));
}

/// `loadgen timeline --version v1-blocking`, end to end: the server started with
/// `--trace`, the workload, the trace read and drawn.
#[test]
fn loadgen_timeline_draws_v1_serving_one_connection_after_another() {
    let dir = std::env::temp_dir().join(format!("timeline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("v1.svg");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["timeline", "--version", "v1-blocking", "--out"]).arg(&out);
    let output = common::testkit::run_to_exit(&mut command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("every client was answered"), "{stdout}");
    // Four /hello clients, the slow one, the idle one and the newcomer, on one thread.
    assert!(
        stdout.contains("1 threads drawn (1 worked), 7 connections (each on at most 1 threads)"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(svg.contains(r#"data-lanes="1""#) && svg.contains(">main</text>"), "one lane");
    assert!(svg.contains(r#"class="tl-span handle""#) && svg.contains("GET /sleep"));
    assert!(svg.contains("newcomer connects") && svg.contains("One thread serves one client"));
    // The load is in the picture itself, not only in the text beside it.
    let words = svg_words(&svg);
    assert!(words.contains("Load: 4 keep-alive clients asking /hello together every 25 ms"));
}

/// The picture's text as a reader sees it: tags gone, lines joined.
fn svg_words(svg: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in svg.chars() {
        match c {
            '<' => (in_tag, text) = (true, text + " "),
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// v3 with a pool of two: handlers on exactly two threads, every connection handed from
/// the acceptor to a worker, and the newcomer served only once a worker was free.
#[test]
fn a_pool_of_two_serves_on_two_threads_and_the_newcomer_waits() {
    let dir = std::env::temp_dir().join(format!("timeline-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("v3.svg");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["timeline", "--version", "v3-thread-pool", "--server-args", "--threads 2"]);
    let output = common::testkit::run_to_exit(command.arg("--out").arg(&out));
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("7 connections (each on at most 1 threads), 7 hand-offs"), "{stdout}");
    assert!(stdout.contains("handlers ran on 2 threads"), "{stdout}");
    // Two /hello clients hold both workers until the clients stop asking at 475 ms.
    let waited = stdout
        .split("the newcomer waited ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|ms| ms.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no wait in {stdout}"));
    assert!(waited > 150.0, "the newcomer waited only {waited} ms");
}
