//! `compare --only overload --quick` with v1 and v3: the knees come out in the order the
//! models predict, v1 (one at a time) far below v3 (a pool of ten), each bounded by what
//! its model can complete at all, and the report carries the knee table and both charts.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The knee of the curve labelled `label` in the overload section of `results`.
fn knee(results: &Value, label: &str) -> Option<f64> {
    let section = results["scenarios"].as_array()?.iter().find(|s| s["id"] == "overload")?;
    let curves = section["overload"]["workloads"][0]["curves"].as_array()?;
    let curve = curves.iter().find(|c| c["label"] == label)?;
    assert!(curve["skipped"].is_null(), "{label} did not run: {}", curve["skipped"]);
    curve["knee"].as_f64()
}

#[test]
fn v1_s_knee_is_below_v3_s_and_neither_passes_its_model_s_capacity() {
    let out = std::env::temp_dir().join(format!("loadgen-overload-{}", std::process::id()));
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["compare", "--quick", "--only", "overload"])
        .args(["--versions", "v1-blocking,v3-thread-pool", "--out"])
        .arg(&out)
        .output()
        .expect("run loadgen compare");
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "loadgen compare failed: {}\n{said}", run.status);
    let took = started.elapsed();
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");

    // v1 serves one 20 ms request at a time: 50 a second at most. Offered a quarter more,
    // its queue grows by over 12 requests a second, a quarter of a second of waiting within
    // the step: its p99 leaves the 100 ms SLO. v3's ten threads serve ten at once.
    let v1 = knee(&results, "v1-blocking").unwrap_or_else(|| panic!("v1 had no knee:\n{said}"));
    let v3 = knee(&results, "v3-thread-pool").unwrap_or_else(|| panic!("v3 had no knee:\n{said}"));
    assert!(v1 < 1.25 * 50.0, "v1's knee {v1} req/s is past what one handler at a time allows");
    assert!(v3 < 1.25 * 500.0, "v3's knee {v3} req/s is past what ten handlers allow");
    assert!(v1 < v3, "v1's knee {v1} is not below v3's {v3}");

    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("Knees: measured, and what Little's law predicts"), "{report}");
    assert!(report.contains("| v1-blocking | one at a time |"), "{report}");
    for chart in ["overload-1-p99.svg", "overload-1-goodput.svg"] {
        assert!(report.contains(&format!("]({chart})")), "report.md does not show {chart}");
        let svg = std::fs::read_to_string(out.join(chart)).expect(chart);
        assert!(svg.contains("v3-thread-pool") && svg.contains("v1-blocking"), "{chart}");
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(took < Duration::from_secs(90), "the quick sweep of two versions took {took:?}");
}
