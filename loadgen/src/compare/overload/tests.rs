//! The overload experiment's predictions, tables, sentences and charts, from hand-made
//! sweeps: nothing here starts a server.

use std::time::Duration;

use super::model::{Concurrency, Prediction, generator_bound, order, why_it_differs};
use super::show::{Overload, kept_at_twice};
use super::{Curve, WorkloadResult, past_the_knee, window};
use crate::measure::{Errors, Percentiles};
use crate::render::overlapping_labels;
use crate::serve::Version;
use crate::sweep::{ServerSide, Step};

const SLO_US: u64 = 100_000;

/// A step offering `offered` whose p99 was `p99_ms`, of which `good` answered in time.
fn step(offered: f64, p99_ms: u64, good: f64) -> Step {
    Step {
        offered,
        due: (offered * 2.0) as u64,
        sent: (offered * 2.0) as u64,
        throughput: offered.min(good.max(1.0) * 1.2),
        goodput: good,
        good: (good * 2.0) as u64,
        latency_us: Percentiles { p50: 20_000, p99: p99_ms * 1000, ..Percentiles::default() },
        errors: Errors::default(),
        unavailable: 0,
        send_lag_p99_us: 200,
        generator_share: 0.2,
        connections_max: 10,
        generator_bound: false,
        generator_bound_reason: None,
        server: ServerSide::default(),
    }
}

/// A curve of `version` with `args`, its knee computed from `steps` as the runner does.
fn curve(version: Version, args: &[&'static str], steps: Vec<Step>) -> Curve {
    let concurrency = Concurrency::of(version.entry(), args, 2);
    let prediction = Prediction::from_count(&concurrency, Some(Duration::from_millis(20)));
    let knee = crate::sweep::knee(&steps, SLO_US);
    Curve {
        label: super::Line { version, args: args.to_vec(), shedding: !args.is_empty() }.label(),
        version,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        shedding: !args.is_empty(),
        concurrency,
        prediction,
        server_cpu_ms: vec![10; steps.len()],
        steps,
        knee,
        skipped: None,
    }
}

fn workload(curves: Vec<Curve>) -> Overload {
    Overload {
        workloads: vec![WorkloadResult {
            name: "slow handler".into(),
            path: "/sleep?ms=20".into(),
            close: true,
            service_us: Some(20_000),
            slo_us: SLO_US,
            timeout_us: 1_000_000,
            grid: crate::compare::suite::grid(20.0, 25),
            curves,
        }],
        cores: 2,
        cut: "nothing was cut".into(),
    }
}

fn v1() -> Curve {
    let steps = vec![step(25.0, 22, 25.0), step(40.0, 25, 40.0), step(50.0, 900, 5.0)];
    curve(Version::V1_BLOCKING, &[], steps)
}

fn v3(args: &[&'static str], good_past: f64) -> Curve {
    let steps = vec![
        step(254.0, 24, 254.0),
        step(320.0, 25, 320.0),
        step(403.0, 30, 403.0),
        step(508.0, 800, good_past),
        step(806.0, 900, good_past),
    ];
    curve(Version::V3_THREAD_POOL, args, steps)
}

#[test]
fn concurrency_and_predictions_come_from_the_registry_and_the_options() {
    let of = |v: Version, args: &[&str]| Concurrency::of(v.entry(), args, 2).count;
    assert_eq!(of(Version::V1_BLOCKING, &[]), Some(1));
    assert_eq!(of(Version::V3_THREAD_POOL, &[]), Some(10));
    assert_eq!(of(Version::V3_THREAD_POOL, &["--threads", "4"]), Some(4));
    assert_eq!(of(Version::V4_NIO, &[]), Some(10));
    assert_eq!(of(Version::V4_SYSCALLS, &[]), Some(1));
    assert_eq!(of(Version::V5_REACTOR_PER_CORE, &[]), Some(2));
    assert_eq!(of(Version::V6_ASYNC, &[]), Some(2));
    assert_eq!(of(Version::V6_ASYNC, &["--blocking", "spawn"]), None);
    assert_eq!(of(Version::V7_URING_PER_CORE, &[]), Some(2));
    assert_eq!(of(Version::V2_THREAD_PER_CONN, &[]), None);
    assert_eq!(of(Version::V2_PROCESS_PER_CONN, &[]), None);
    let c = Concurrency::of(Version::V3_THREAD_POOL.entry(), &["--threads", "4"], 2);
    let p = Prediction::from_count(&c, Some(Duration::from_millis(50)));
    assert_eq!(p.rate, Some(80.0));
    assert_eq!(p.from, "4 / 50 ms");
}

#[test]
fn a_line_steps_from_half_its_prediction_until_twice_its_knee() {
    let grid = crate::compare::suite::grid(20.0, 25);
    assert_eq!(window(&grid, (Some(50.0), 500.0), 0.45, 4), [25.0, 32.0, 40.0, 50.0]);
    assert_eq!(window(&grid, (Some(50.0), 500.0), 0.6, 5), [32.0, 40.0, 50.0, 63.0, 80.0]);
    // Bounded by the CPU: from 45% of the workload's highest prediction, doubling.
    assert_eq!(window(&grid, (None, 500.0), 0.45, 3), [254.0, 508.0, 1016.0]);
    let slo = Duration::from_millis(100);
    let steps = v1().steps;
    assert!(!past_the_knee(&steps[..2], Some(40.0), slo));
    assert!(!past_the_knee(&steps, Some(40.0), slo), "50 is not twice 40");
    let mut more = steps.clone();
    more.push(step(80.0, 950, 1.0));
    assert!(past_the_knee(&more, Some(40.0), slo));
    assert!(past_the_knee(&[step(20.0, 300, 0.0), step(25.0, 400, 0.0)], None, slo));
}

#[test]
fn knees_beside_little_s_law_with_a_reason_where_they_differ() {
    let mut v5 = curve(
        Version::V5_REACTOR_PER_CORE,
        &[],
        vec![step(50.0, 40, 50.0), step(63.0, 400, 30.0), step(127.0, 900, 2.0)],
    );
    v5.knee = Some(50.0);
    let overload =
        workload(vec![v1(), v3(&[], 20.0), v3(&["--max-queue-wait", "40ms"], 403.0), v5]);
    let tables = overload.tables();
    let (title, header, rows) = &tables[0];
    assert_eq!(*title, "Knees: measured, and what Little's law predicts");
    assert_eq!(header[3], "knee (req/s)");
    assert_eq!(rows[0][1..6], ["v1-blocking", "one at a time", "40", "50 (1 / 20 ms)", "0.80"]);
    assert_eq!(rows[0][7], "", "within 25%: no reason needed");
    assert_eq!(rows[1][3..6], ["403", "500 (10 / 20 ms)", "0.81"]);
    assert_eq!(rows[2][1], "v3-thread-pool + shedding");
    assert_eq!(rows[2][6], "100% of its goodput at 403 (at 806)");
    assert_eq!(rows[1][6], "5% of its goodput at 403 (at 806)");
    // v5's knee is half its prediction: its loops take connections by hash.
    assert_eq!(rows[3][5], "0.50");
    assert!(rows[3][7].starts_with("connections spread by hash"), "{}", rows[3][7]);
    let (title, _, steps) = &tables[1];
    assert_eq!(*title, "Every step");
    assert_eq!(steps.len(), 3 + 5 + 5 + 3);

    // A server per job that kept the SLO at every rate the sweep offered: no knee found.
    let v2 = curve(
        Version::V2_THREAD_PER_CONN,
        &[],
        vec![step(254.0, 22, 254.0), step(508.0, 23, 508.0)],
    );
    assert_eq!(v2.prediction.rate, None);
    let row = &workload(vec![v2]).tables()[0].2[0];
    assert_eq!(row[2], "a thread or process per connection: bounded by the CPU");
    assert_eq!(row[3], "≥ 508 (no step missed the SLO)");

    // Shedding answers what it cannot serve with quick 503s, which keep p99 low; they are
    // misses all the same, so its knee is where it stopped serving 99 in 100 in time, as
    // without shedding, and what shedding changes is the goodput past it.
    let mut shed = v3(&["--max-queue-wait", "40ms"], 450.0);
    shed.steps.iter_mut().for_each(|s| s.latency_us.p99 = 45_000);
    shed.knee = crate::sweep::knee(&shed.steps, SLO_US);
    assert_eq!(shed.knee, Some(403.0));
    let overload = workload(vec![v3(&[], 20.0), shed]);
    let row = &overload.tables()[0].2[1];
    assert_eq!(row[6], "112% of its goodput at 403 (at 806)");
    assert_eq!(row[7], "", "within 25% of the prediction: no reason owed");
}

#[test]
fn the_order_of_the_knees_and_the_generator_are_said_in_words() {
    let notes =
        workload(vec![v1(), v3(&[], 20.0), v3(&["--max-queue-wait", "40ms"], 403.0)]).notes();
    assert!(notes[0].contains("in the order the models predict"), "{notes:?}");
    assert!(notes[1].contains("no curve is generator-bound"), "{notes:?}");
    assert!(
        notes[2].contains("100% at 806 with shedding (--max-queue-wait 40ms), 5% at 806 without"),
        "{notes:?}"
    );
    assert_eq!(notes.last().map(String::as_str), Some("nothing was cut"));

    // v1 above v3: said, with both knees; and a late generator named.
    let mut slow_v3 = v3(&[], 20.0);
    slow_v3.steps.iter_mut().for_each(|s| s.latency_us.p99 = 500_000);
    slow_v3.knee = None;
    // Late by 450 ms: without its lateness the first step would have kept the SLO.
    slow_v3.steps[0].send_lag_p99_us = 450_000;
    let text = order(&[v1(), slow_v3.clone()]);
    assert!(
        text.contains("NOT") && text.contains("v1-blocking (40) above v3-thread-pool (0)"),
        "{text}"
    );
    let notes = workload(vec![v1(), slow_v3.clone()]).notes();
    assert!(
        notes[1].contains("generator-bound") && notes[1].ends_with("v3-thread-pool."),
        "{notes:?}"
    );
    assert!(
        why_it_differs(&slow_v3, SLO_US, true, 2).is_some_and(|w| w.starts_with("generator-bound"))
    );
    assert_eq!(kept_at_twice(&slow_v3, None), None);
    assert_eq!(kept_at_twice(&slow_v3, Some(403.0)), Some((806.0, 20.0 / 403.0)));
}

#[test]
fn two_charts_per_workload_with_the_slo_and_the_knees_and_no_label_over_another() {
    let overload = workload(vec![v1(), v3(&[], 20.0), v3(&["--max-queue-wait", "40ms"], 403.0)]);
    let files = overload.chart_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["overload-1-p99.svg", "overload-1-goodput.svg"]);
    for (name, chart) in &files {
        assert!(chart.starts_with("<svg"), "{name}");
        assert!(chart.contains("v3-thread-pool + shedding"), "{name}: the legend names each line");
        assert_eq!(overlapping_labels(chart), Vec::<(String, String)>::new(), "{name}");
        // A knee is a larger dot than a step's.
        assert!(chart.contains("r=\"6\""), "{name}");
    }
    assert!(workload(Vec::new()).charts().is_empty());
    assert!(workload(Vec::new()).tables().is_empty());
}

#[test]
fn a_server_per_job_is_predicted_from_its_marginal_cpu_and_kept_alive_pools_starve() {
    // 100 ms of CPU whatever the load, and 500 µs a request: 2 cores / 500 µs.
    let mut v2 = curve(
        Version::V2_THREAD_PER_CONN,
        &[],
        vec![step(254.0, 22, 254.0), step(1016.0, 23, 1016.0), step(2032.0, 900, 10.0)],
    );
    v2.server_cpu_ms = v2.steps.iter().map(|s| 100 + (s.throughput * 2.0 * 0.5) as u64).collect();
    let p = Prediction::from_cpu(&v2, 2, Duration::from_secs(2), SLO_US);
    assert_eq!(p.rate.map(f64::round), Some(4000.0), "{p:?}");

    // v3 kept alive: more connections open than threads, and the rest wait.
    let mut v3 = v3(&[], 20.0);
    v3.steps[3].connections_max = 40;
    v3.knee = Some(320.0);
    let why = why_it_differs(&v3, SLO_US, false, 2).unwrap_or_default();
    assert!(why.starts_with("each of its 10 threads serves one kept-alive connection"), "{why}");
    assert!(why.contains("the generator had 40 open"), "{why}");
    // Even with no knee at all.
    v3.knee = None;
    v3.steps.iter_mut().for_each(|s| s.connections_max = 40);
    let why = why_it_differs(&v3, SLO_US, false, 2).unwrap_or_default();
    assert!(why.starts_with("each of its 10 threads serves one kept-alive connection"), "{why}");

    // Late sends on a step that missed the SLO by far more are the server's miss.
    let mut late = step(508.0, 800, 10.0);
    late.send_lag_p99_us = 20_000;
    assert!(!generator_bound(&late, SLO_US));
    late.generator_share = 0.95;
    assert!(generator_bound(&late, SLO_US));
}
