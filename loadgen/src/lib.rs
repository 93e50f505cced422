//! The load scripts students run first: drive one server and measure it (`bench`), hold
//! idle connections and time a newcomer (`hold`), or run every version side by side
//! through a suite of scenarios and write a report (`compare`); or set the kernel's
//! waiting interfaces side by side under idle crowds (`waits`).
//!
//! The engine is event-driven on mio, so one or two threads drive ten thousand
//! connections; latencies go into an HdrHistogram; an open-loop mode measures from each
//! request's due time so a stalled server cannot hide its stall.
//!
//! The modules, from the bottom up:
//!
//! * [`engine`]: what needs no version. [`bench`](mod@bench) and [`measure`], the load
//!   engine and what it records; [`hold`], idle clients and a newcomer; [`soak`], a
//!   server held under faults for minutes and judged on what it keeps; [`sample`], a
//!   server's CPU, threads and memory from /proc; [`census`], its system calls;
//!   [`timeline`], what each thread did, from a trace or /proc, drawn as lanes;
//!   [`render`], the tables, page and SVG charts every output draws with. Re-exported
//!   here, so `crate::bench` and `engine::bench` are one module;
//! * [`serve`]: the versions as loadgen runs them (from the registry) and what `compare`
//!   measures ([`serve::Subject`]); [`peers`]: the reference servers of `compare --peers`;
//!   [`timelines`]: a version's timeline under the teaching workload, with the sentence
//!   its registry entry gives it;
//! * [`compare`]: the suite (scenarios, one fresh server per version each, and
//!   experiments such as [`waits`], the kernel-waits sweep, run once), the runner, the
//!   calibration against wrk, what each version's registry entry promises and `/stats`
//!   confirms, and the verdicts;
//! * [`report`]: the terminal table, `report.md`, `report.html` with its charts, and
//!   `results.json`;
//! * [`grade`]: what a server in any language is, told from its behaviour: protocol
//!   transcripts, then its model and the closest version;
//! * [`watch`]: the live page for any server on this machine, read from the kernel by
//!   port, which goes on drawing when the server itself cannot answer.
//!
//! The binary's command line is in `src/cli/`, a file per subcommand.

pub mod compare;
pub mod engine;
pub mod grade;
pub mod peers;
pub mod report;
pub mod serve;
pub mod timelines;
pub mod waits;
pub mod watch;

pub use engine::{bench, census, hold, measure, render, sample, soak, sweep, timeline};
