//! What `compare` runs: the scenarios, each a row per version, and the experiments, run
//! once. `quick` keeps the same shapes with less time and fewer connections (and the
//! overload sweep with four lines), so the whole comparison takes a few minutes, not twelve.

use std::net::SocketAddr;
use std::time::Duration;

use super::overload::{Line, OverloadConfig, Workload};
use super::{Experiment, Load, Scenario, ScenarioId, Sweep};
use crate::bench::{BenchConfig, Wire};
use crate::hold::HoldConfig;
use crate::serve::Version;
use crate::waits::WaitsConfig;

/// The suite: the scenarios, then the experiments, in the order they run and are reported.
#[derive(Debug, Clone)]
pub struct Suite {
    pub scenarios: Vec<Scenario>,
    pub experiments: Vec<Experiment>,
}

impl Suite {
    /// Keeps only the scenarios and experiments named in `ids`.
    pub fn only(&mut self, ids: &[ScenarioId]) {
        self.scenarios.retain(|s| ids.contains(&s.id));
        self.experiments.retain(|e| ids.contains(&e.id));
    }

    /// The most connections any part of it opens at once.
    pub fn connections(&self) -> usize {
        let scenarios = self.scenarios.iter().map(Scenario::connections);
        scenarios.chain(self.experiments.iter().map(Experiment::connections)).max().unwrap_or(0)
    }
}

/// The suite, full or `quick`.
pub fn suite(quick: bool) -> Suite {
    let s = Sizes { quick };
    Suite {
        scenarios: vec![
            keep_alive(s),
            conn_per_request(s),
            idle_clients(s),
            slow_handler(s),
            cpu_handler(s),
            c10k(s),
            pipelining(s),
            syscalls(s),
        ],
        experiments: vec![kernel_waits(s), overload(s), timelines()],
    }
}

/// The durations and sizes of the full suite, or of the quick one.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    quick: bool,
}

impl Sizes {
    /// Where a scenario's load goes until the runner gives it a server's address.
    const ADDR: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

    fn secs(self, full: u64, quick_ms: u64) -> Duration {
        if self.quick { Duration::from_millis(quick_ms) } else { Duration::from_secs(full) }
    }

    fn bench(
        self,
        connections: usize,
        path: &str,
        duration: Duration,
        timeout: Duration,
    ) -> BenchConfig {
        BenchConfig {
            timeout,
            progress: true,
            ..BenchConfig::new(Self::ADDR, connections, duration, path)
        }
    }

    /// The keep-alive shape most scenarios share: 5 s (1 s quick), timeout 2 s (0.5 s).
    fn usual(self, connections: usize, path: &str) -> BenchConfig {
        self.bench(connections, path, self.secs(5, 1000), self.secs(2, 500))
    }
}

fn keep_alive(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::KeepAlive,
        title: "Keep-alive throughput",
        lesson: "Many clients, each keeping its connection open and asking again at once. \
                 A model that gives each connection a thread for its whole life serves only \
                 as many clients at a time as it has threads; the others wait.",
        load: Load::Bench(s.usual(64, "/hello")),
    }
}

fn conn_per_request(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::ConnPerRequest,
        title: "A new connection per request",
        lesson: "Every request pays for a connection: a spawn, a fork or a hand-off per \
                 client. The server's CPU time per connection ranks the models, as in \
                 Stevens' UNIX Network Programming (chapter 30 of the third edition).",
        load: Load::Bench(BenchConfig { close: true, ..s.usual(16, "/hello") }),
    }
}

fn idle_clients(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::IdleClients,
        title: "Idle clients and a newcomer",
        lesson: "Clients that connect and say nothing. Where a connection holds a thread, \
                 more idle clients than threads leave a newcomer waiting: starvation.",
        load: Load::Hold(HoldConfig {
            addr: Sizes::ADDR,
            connections: 100,
            path: "/hello".into(),
            timeout: s.secs(3, 1000),
        }),
    }
}

fn slow_handler(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::SlowHandler,
        title: "A slow handler (/sleep?ms=100)",
        lesson: "A handler that blocks, like a database call, holds its thread whatever the \
                 model: throughput is at most threads / 100 ms. Multiplexing frees threads \
                 from idle connections, not from blocking work.",
        // --quick: 20 clients, still twice v3's ten threads. Each client a serial server
        // has not answered when the second is up leaves a request it serves after the run
        // (100 ms each) before `/stats` answers: 50 of them cost five servers 5 s apiece.
        load: Load::Bench(s.usual(if s.quick { 20 } else { 50 }, "/sleep?ms=100")),
    }
}

fn cpu_handler(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::CpuHandler,
        title: "A CPU-heavy handler (/cpu?ms=10)",
        lesson: "Work that computes is bound by cores, not by the concurrency model: past \
                 one thread per core, more threads only take turns.",
        load: Load::Bench(s.usual(8, "/cpu?ms=10")),
    }
}

fn c10k(s: Sizes) -> Scenario {
    let connections = if s.quick { 1000 } else { 10_000 };
    Scenario {
        id: ScenarioId::C10k,
        title: if s.quick {
            "Many connections, a low rate each (C1k)"
        } else {
            "C10k: 10,000 connections, a low rate each"
        },
        lesson: "The C10k problem: thousands of connections, each mostly idle. A thread or a \
                 process per connection multiplies its cost by ten thousand; a pool starves; \
                 an event loop watches them all from one thread.",
        load: Load::Bench(BenchConfig {
            rate: Some(if s.quick { 500.0 } else { 2000.0 }),
            ..s.bench(connections, "/hello", s.secs(10, 2000), s.secs(3, 1000))
        }),
    }
}

fn pipelining(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::Pipelining,
        title: "Pipelining, 16 requests per write",
        lesson: "Sixteen requests sent before reading any answer: fewer reads, writes and \
                 wake-ups per request, for every model that serves the connection at all.",
        load: Load::Bench(BenchConfig { pipeline: 16, ..s.usual(16, "/hello") }),
    }
}

fn syscalls(s: Sizes) -> Scenario {
    Scenario {
        id: ScenarioId::Syscalls,
        title: "System calls per request",
        lesson: "Every system call the server makes while it answers keep-alive requests, \
                 by name: one read and one write per request is the floor for a server \
                 that reads and writes sockets; what a model adds above it (a wait, a \
                 hand-off's futex, a re-arm's epoll_ctl) is its overhead, and a count that \
                 a noisy machine does not blur.",
        load: Load::Bench(s.bench(16, "/hello", s.secs(2, 1000), s.secs(2, 500))),
    }
}

fn kernel_waits(s: Sizes) -> Experiment {
    Experiment {
        id: ScenarioId::KernelWaits,
        title: "How the kernel waits: select, poll, epoll, io_uring",
        lesson: "One event loop, five ways of waiting, a few busy clients beside a growing \
                 crowd of idle ones. select and poll copy and scan every watched descriptor \
                 on every wait, so each wait grows with the crowd; epoll and io_uring hand \
                 back only what is ready, and do not notice it. select cannot watch past \
                 descriptor 1,023 at all.",
        sweep: Sweep::Waits(WaitsConfig {
            apis: v4_syscalls::Api::ALL.to_vec(),
            idle: if s.quick { vec![0, 1000, 5000] } else { vec![0, 500, 1000, 5000, 10_000] },
            active: 4,
            duration: s.secs(3, 1000),
        }),
    }
}

fn timelines() -> Experiment {
    Experiment {
        id: ScenarioId::Timelines,
        title: "What each thread did",
        lesson: "Every version under the same half second of a small workload, drawn as a \
                 lane per thread: where each one waited, read, ran a handler and wrote, for \
                 which connection, and where work passed from one thread to another. The \
                 concurrency model is the shape of the picture: one lane taking connections \
                 in turn, a lane per connection, a pool's lanes held by connections, a poller \
                 handing requests to workers, loops that keep their connections for life.",
        sweep: Sweep::Timelines,
    }
}

/// Rates from `low`, three to a doubling (each 26% above the last): a knee found on it
/// is within 21% below the capacity, and the curves of a workload share its points.
pub(crate) fn grid(low: f64, steps: usize) -> Vec<f64> {
    (0..steps).map(|k| (low * 2f64.powf(k as f64 / 3.0)).round()).collect()
}

/// The lines of the slow handler's workload: every version, v6 also with its blocking
/// pool, and shedding on for v5, v3 and v4-nio (`quick`: v1, and v3 with and without
/// shedding).
fn slow_lines(quick: bool) -> Vec<Line> {
    // A request that waited 60 ms for a thread is answered 503 at once: with the 20 ms
    // handler, what is served stays within the 100 ms SLO, with 20 ms to spare for what
    // the server cannot see of the wait (the handshake, the kernel's backlog). A shorter
    // deadline refuses requests that would have been in time, and moves the knee down.
    const SHED: &[&str] = &["--max-queue-wait", "60ms"];
    let shed = |version| Line { version, args: SHED.to_vec(), shedding: true };
    let v = |version| Line::plain(version);
    if quick {
        return vec![
            v(Version::V1_BLOCKING),
            v(Version::V3_THREAD_POOL),
            shed(Version::V3_THREAD_POOL),
        ];
    }
    vec![
        v(Version::V1_BLOCKING),
        v(Version::V4_SYSCALLS),
        v(Version::V5_REACTOR_PER_CORE),
        // An event loop has no queue of its own to bound, but the deadline, timed from the
        // loop's wake-up, still spares it the requests that waited behind another's handler.
        shed(Version::V5_REACTOR_PER_CORE),
        v(Version::V6_ASYNC),
        v(Version::V7_URING_PER_CORE),
        v(Version::V3_THREAD_POOL),
        shed(Version::V3_THREAD_POOL),
        v(Version::V4_NIO),
        shed(Version::V4_NIO),
        v(Version::V2_THREAD_PER_CONN),
        v(Version::V2_PROCESS_PER_CONN),
        Line { version: Version::V6_ASYNC, args: vec!["--blocking", "spawn"], shedding: false },
    ]
}

fn overload(s: Sizes) -> Experiment {
    let slow = Workload {
        name: "slow handler, a connection per request",
        path: "/sleep?ms=20",
        close: true,
        wire: Wire::Http,
        service: Some(Duration::from_millis(20)),
        grid: grid(20.0, 25),
        lines: slow_lines(s.quick),
    };
    // Where the knee is the CPU's: few versions, and the full run only.
    let hello = Workload {
        name: "keep-alive /hello",
        path: "/hello",
        close: false,
        wire: Wire::Http,
        service: None,
        grid: grid(2000.0, 16),
        lines: [Version::V3_THREAD_POOL, Version::V5_REACTOR_PER_CORE].map(Line::plain).into(),
    };
    let cut = if s.quick {
        "--quick sweeps the slow handler's workload for v1 and v3 (with and without \
         shedding) only, at most five 1 s steps each, from 80% of the predicted knee; the full \
         run adds v4-syscalls, v5 and v4-nio (with and without shedding), v6, v7, both v2s \
         and v6 --blocking spawn, at most six 1.5 s steps each from 60%, and keep-alive /hello \
         for v3 and v5"
    } else {
        "keep-alive /hello is swept for v3 and v5 only (every model's knee there is the CPU's, \
         shared with the generator), and each line takes at most six 1.5 s steps, to keep the \
         whole comparison within 12 minutes on two cores"
    };
    Experiment {
        id: ScenarioId::Overload,
        title: "Past the knee: latency and goodput as the offered load rises",
        lesson: "Each request is a job arriving, open loop, at a rising rate. A model that \
                 serves c requests at once, each for S, keeps up to c / S a second (Little's \
                 law); past that its queue grows for as long as the load lasts, p99 leaves \
                 the SLO (the knee), and a server that queues without bound spends its \
                 capacity on clients that have given up: throughput holds, goodput collapses. \
                 Shedding (a deadline on the wait in the queue) answers the late ones 503 at \
                 once and keeps serving the rest in time.",
        sweep: Sweep::Overload(OverloadConfig {
            workloads: if s.quick { vec![slow] } else { vec![slow, hello] },
            step: if s.quick { Duration::from_secs(1) } else { Duration::from_millis(1500) },
            pause: s.secs(2, 1000),
            slo: Duration::from_millis(100),
            timeout: s.secs(1, 500),
            max_steps: if s.quick { 5 } else { 6 },
            // Quick: a step below the prediction, then on to twice a knee found at it.
            start: if s.quick { 0.8 } else { 0.6 },
            cut: cut.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_of_both_suites_is_valid() {
        for quick in [true, false] {
            let suite = suite(quick);
            for scenario in &suite.scenarios {
                if let Load::Bench(config) = &scenario.load {
                    assert_eq!(config.validate(), Ok(()), "{:?}", scenario.id);
                }
                assert!(!scenario.lesson.is_empty());
            }
            assert!(suite.experiments.iter().all(|e| !e.lesson.is_empty()));
        }
    }

    #[test]
    fn only_keeps_scenarios_and_experiments_alike() {
        let mut suite = suite(true);
        suite.only(&[ScenarioId::C10k, ScenarioId::KernelWaits]);
        assert_eq!(suite.scenarios.len(), 1);
        assert_eq!(suite.experiments.len(), 1);
        // C1k's thousand beside the sweep's 5,000 idle and 4 busy.
        assert_eq!(suite.connections(), 5004);
        suite.only(&[ScenarioId::KeepAlive]);
        assert_eq!(suite.connections(), 0);
    }
}
