//! The load scripts students run first: drive one server and measure it (`bench`), hold
//! idle connections and time a newcomer (`hold`), or run every version side by side
//! through a suite of scenarios and write a report (`compare`); or set the kernel's
//! waiting interfaces side by side under idle crowds (`waits`).
//!
//! The engine is event-driven on mio, so one or two threads drive ten thousand
//! connections; latencies go into an HdrHistogram; an open-loop mode measures from each
//! request's due time so a stalled server cannot hide its stall.
//!
//! * [`bench`](mod@bench) and [`measure`]: the load engine and what it records (every request sent,
//!   answered or not, in the percentiles); [`hold`]: idle clients and a newcomer;
//! * [`serve`]: the versions as loadgen runs them (from the registry) and what `compare`
//!   measures ([`serve::Subject`]); [`peers`]: the reference servers of `compare --peers`;
//! * [`compare`]: the scenarios, one fresh server each, and what is checked of each run;
//!   [`sample`]: the server's CPU, threads and memory from /proc; [`census`]: its system
//!   calls, counted by perf or strace; [`waits`]: the kernel-waits sweep;
//! * [`grade`]: what a server in any language is, told from its behaviour: protocol
//!   transcripts, then its model and the closest version;
//! * [`watch`]: the live page for any server on this machine, read from the kernel by
//!   port, which goes on drawing when the server itself cannot answer;
//! * [`report`]: the terminal table, `report.md`, `report.html` with its charts, and
//!   `results.json`; [`render`]: the tables, SVG charts and label checks it and
//!   [`waits`] draw with.

pub mod bench;
pub mod census;
pub mod compare;
pub mod grade;
pub mod hold;
pub mod measure;
pub mod peers;
pub mod render;
pub mod report;
pub mod sample;
pub mod serve;
pub mod waits;
pub mod watch;
