//! The sweep finds the knee the models predict, on a connection-per-request workload
//! where each arrival is a job: v3 with 4 threads and 50 ms handlers serves 4 / 0.05 s =
//! 80 requests a second, v1 one at a time 1 / 0.05 s = 20.
//!
//! Uniform arrivals (no queue forms by chance below the capacity) and an SLO of three
//! handler times, so a loaded machine's jitter does not move the knee: just under the
//! capacity latency is one handler time, just over it the queue grows by (rate − capacity)
//! requests a second and p99 passes the SLO within the step.

use std::time::{Duration, Instant};

use common::testkit::TestServer;
use loadgen::sweep::{self, SweepConfig, SweepResult};

/// Steps about every 10% from 70% to 130% of `expected`.
fn sweep_around(server: &TestServer, expected: f64) -> SweepResult {
    let config = SweepConfig {
        path: "/sleep?ms=50".into(),
        close: true,
        rates: Some([0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3].iter().map(|f| f * expected).collect()),
        step: Duration::from_millis(1500),
        pause: Duration::from_secs(2),
        slo: Duration::from_millis(150),
        timeout: Duration::from_secs(1),
        ..SweepConfig::new(server.addr())
    };
    let started = Instant::now();
    let mut seen = 0;
    let result = sweep::run(&config, &mut |_| seen += 1).expect("the sweep runs");
    assert_eq!(seen, result.steps.len(), "on_step is called once a step");
    assert!(started.elapsed() < Duration::from_secs(45), "took {:?}", started.elapsed());
    for step in &result.steps {
        assert!(step.due > 0 && step.sent <= step.due, "{step:?}");
        assert!(step.goodput <= step.offered * 1.05 + 1.0, "{step:?}");
    }
    result
}

fn within_a_quarter(result: &SweepResult, expected: f64) {
    let table: Vec<String> = result
        .steps
        .iter()
        .map(|s| {
            format!("{:.0}/s: p99 {} µs, goodput {:.1}", s.offered, s.latency_us.p99, s.goodput)
        })
        .collect();
    let knee = result.knee.unwrap_or_else(|| panic!("no knee: {table:#?}"));
    assert!(
        (knee - expected).abs() <= 0.25 * expected,
        "knee {knee}, expected {expected}: {table:#?}"
    );
    // Past the knee the queue shows: the last step's p99 is well above the SLO.
    let last = result.steps.last().expect("a step ran");
    assert!(last.latency_us.p99 > result.slo_us, "{table:#?}");
}

#[test]
fn v3_with_four_threads_and_50_ms_handlers_knees_near_80_a_second() {
    let config = v3_thread_pool::Config::new(v3_thread_pool::Model { threads: 4 });
    let server = TestServer::start(v3_thread_pool::SERVER, config, v3_thread_pool::run);
    let result = sweep_around(&server, 80.0);
    within_a_quarter(&result, 80.0);
    // The pool's queue is read from /stats: past the knee, connections wait in it.
    let last = result.steps.last().unwrap();
    let queued = last.server.queues_max.iter().find(|(name, _)| name == "queued_connections");
    assert!(queued.is_some_and(|(_, n)| *n > 0), "{:?}", last.server);
}

#[test]
fn v1_one_at_a_time_with_50_ms_handlers_knees_near_20_a_second() {
    let server =
        TestServer::start(v1_blocking::SERVER, common::Config::default(), v1_blocking::run);
    let result = sweep_around(&server, 20.0);
    within_a_quarter(&result, 20.0);
}
