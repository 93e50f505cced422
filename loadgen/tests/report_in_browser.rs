//! The compare report as a real browser renders it: a short `compare --quick` (two
//! versions, two scenarios), opened in headless Chromium, draws every chart it wrote, and
//! no two labels of a chart overlap.

use std::process::Command;
use std::time::Duration;

use common::testkit::{browser_or_skip, render_in_browser};
use loadgen::render::{labels, overlapping_labels};

#[test]
fn every_chart_of_a_quick_comparison_renders_in_a_browser() {
    if !browser_or_skip("every_chart_of_a_quick_comparison_renders_in_a_browser") {
        return;
    }
    let out = std::env::temp_dir().join(format!("loadgen-browser-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["compare", "--quick", "--only", "keep-alive,idle-clients"])
        .args(["--versions", "v2-thread-per-conn,v4-nio", "--out"])
        .arg(&out)
        .status()
        .expect("run loadgen compare");
    assert!(status.success(), "loadgen compare failed: {status}");
    let written = std::fs::read_to_string(out.join("report.html")).expect("report.html");

    let url = format!("file://{}", out.join("report.html").display());
    let dom = render_in_browser(&url, Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
    // Keep-alive: bars and latency by percentile; idle clients: bars, and threads and
    // memory over the run.
    assert_eq!(written.matches("<svg").count(), 4, "the report as written:\n{written}");
    assert_eq!(dom.matches("<svg").count(), 4, "the browser saw:\n{dom}");
    for drawn in ["latency by percentile", "99.99%", "threads (all processes)", "v4-nio"] {
        assert!(dom.contains(drawn), "no {drawn:?}; the browser saw:\n{dom}");
    }
    for (n, chart) in dom.split("<svg").skip(1).enumerate() {
        let chart = &chart[..chart.find("</svg>").unwrap_or(chart.len())];
        assert!(labels(chart).len() > 4, "chart {n} has only {} labels", labels(chart).len());
        let overlapping = overlapping_labels(chart);
        assert!(overlapping.is_empty(), "chart {n}: labels overlap: {overlapping:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
