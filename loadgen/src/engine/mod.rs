//! The engine: what measures a server and draws the result, knowing no version. A student
//! who drives their own server with `loadgen bench` or `hold` runs only this; `compare`,
//! `report` and `grade` build on it. `tests/layers.rs` fails if a file here names a version,
//! the registry, the fault matrix, or the parts of loadgen built on top.
//!
//! * [`bench`](mod@bench) and [`measure`]: the load engine and what it records (every
//!   request sent, answered or not, in the percentiles); [`hold`]: idle clients and a
//!   newcomer; [`sweep`]: one server at a rising series of offered rates, its knee and
//!   goodput; [`soak`]: one server under a mixed load with faults for minutes, judged on
//!   whether anything it holds keeps growing;
//! * [`sample`]: a server's CPU, threads and memory from /proc; [`census`]: its system
//!   calls, counted by perf or strace;
//! * [`timeline`]: what each thread of a server did, read from its trace (or sampled from
//!   /proc) under a small fixed workload, and drawn as a lane per thread;
//! * [`render`]: tables, pages, SVG charts and their axes, and the check that a chart's
//!   labels do not cover each other.

pub mod bench;
pub mod census;
pub mod hold;
pub mod measure;
pub mod render;
pub mod sample;
pub mod soak;
pub mod sweep;
pub mod timeline;
