//! The price of a context switch: two threads hand one byte back and forth over two
//! pipes, so each round trip puts each thread to sleep once and wakes it once.
//!
//! Pinned to the same CPU, the pair measures the switch itself: the sleeping thread's
//! state saved, the scheduler's choice, the other's restored, plus two pipe system
//! calls. On two CPUs, each wake-up crosses between them: the waker sends an
//! inter-processor interrupt, and the sleeper's CPU, idle meanwhile, must wake from its
//! idle state first. The voluntary context switches the two threads count (`getrusage`
//! per thread) confirm what happened: two per round trip, one per thread.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{Pid, pipe};

use crate::{DEADLINE, wrap};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Round trips per placement (each is two context switches); fewer if they take
    /// longer than 10 s
    #[arg(long, default_value_t = 100_000)]
    pub rounds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { rounds: 100_000 }
    }
}

/// Where the two threads ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both on this CPU.
    SameCpu(usize),
    /// One on each.
    CrossCpu(usize, usize),
}

impl Placement {
    fn cpus(self) -> (usize, usize) {
        match self {
            Placement::SameCpu(cpu) => (cpu, cpu),
            Placement::CrossCpu(a, b) => (a, b),
        }
    }
}

/// One placement's figures.
#[derive(Debug, Clone)]
pub struct PlacementOutcome {
    pub placement: Placement,
    /// Round trips made (the asked number, unless the deadline came first).
    pub rounds: u64,
    pub elapsed: Duration,
    /// Voluntary context switches of both threads during the round trips: each time one
    /// slept in `read` for the other's byte.
    pub voluntary: u64,
    /// Involuntary ones: a thread taken off its CPU while it could run.
    pub involuntary: u64,
}

impl PlacementOutcome {
    /// Nanoseconds per switch: a round trip is two.
    pub fn ns_per_switch(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e9 / (2 * self.rounds.max(1)) as f64
    }

    /// Context switches of both threads per round trip, voluntary or not: two, one per
    /// thread.
    pub fn switches_per_round(&self) -> f64 {
        (self.voluntary + self.involuntary) as f64 / self.rounds.max(1) as f64
    }

    pub fn voluntary_per_round(&self) -> f64 {
        self.voluntary as f64 / self.rounds.max(1) as f64
    }

    pub fn involuntary_per_round(&self) -> f64 {
        self.involuntary as f64 / self.rounds.max(1) as f64
    }
}

/// Both placements, or why the second is missing.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub placements: Vec<PlacementOutcome>,
    /// Why there is no run on two CPUs, if there is none.
    pub skipped: Option<String>,
}

impl Outcome {
    pub fn same_cpu(&self) -> Option<&PlacementOutcome> {
        self.placements.iter().find(|p| matches!(p.placement, Placement::SameCpu(_)))
    }

    pub fn cross_cpu(&self) -> Option<&PlacementOutcome> {
        self.placements.iter().find(|p| matches!(p.placement, Placement::CrossCpu(..)))
    }
}

/// Runs the ping-pong on one CPU, then across two if this process may use two.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    if options.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let allowed = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    let cpus: Vec<usize> =
        (0..CpuSet::count()).filter(|&cpu| allowed.is_set(cpu).unwrap_or(false)).collect();
    let Some(&first) = cpus.first() else { bail!("this process may run on no CPU at all") };
    let mut placements = vec![ping_pong(Placement::SameCpu(first), options.rounds)?];
    let skipped = match cpus.get(1) {
        Some(&second) => {
            placements.push(ping_pong(Placement::CrossCpu(first, second), options.rounds)?);
            None
        }
        None => Some("this process may use only one CPU".to_owned()),
    };
    Ok(Outcome { placements, skipped })
}

/// What one thread counted of its own switches.
#[derive(Debug, Clone, Copy)]
struct Switches {
    voluntary: u64,
    involuntary: u64,
}

/// This thread's switches so far.
fn switches() -> anyhow::Result<Switches> {
    let usage = getrusage(UsageWho::RUSAGE_THREAD).context("getrusage(RUSAGE_THREAD)")?;
    Ok(Switches {
        voluntary: u64::try_from(usage.voluntary_context_switches()).unwrap_or(0),
        involuntary: u64::try_from(usage.involuntary_context_switches()).unwrap_or(0),
    })
}

fn since(before: Switches) -> anyhow::Result<Switches> {
    let now = switches()?;
    Ok(Switches {
        voluntary: now.voluntary.saturating_sub(before.voluntary),
        involuntary: now.involuntary.saturating_sub(before.involuntary),
    })
}

// ANCHOR: pin
/// Pins the calling thread to `cpu` (pid 0: the calling thread, not the process).
fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu} in a CPU set"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pin a thread to CPU {cpu}"))
}
// ANCHOR_END: pin

/// The bytes on the wire: a round trip, or the end.
const PING: u8 = 1;
const STOP: u8 = 0;

fn ping_pong(placement: Placement, rounds: u64) -> anyhow::Result<PlacementOutcome> {
    let (cpu_ping, cpu_pong) = placement.cpus();
    // Each thread owns its ends, so if one fails, the other's read finds end of file
    // instead of waiting forever.
    let (there_read, there_write) = pipe()?;
    let (back_read, back_write) = pipe()?;
    let (mut there_read, mut there_write) = (File::from(there_read), File::from(there_write));
    let (mut back_read, mut back_write) = (File::from(back_read), File::from(back_write));
    let pong = std::thread::spawn(move || -> anyhow::Result<Switches> {
        pin(cpu_pong)?;
        let before = switches()?;
        back_write.write_all(&[PING])?; // pinned and ready
        // ANCHOR: pong
        let mut byte = [0u8; 1];
        loop {
            if there_read.read(&mut byte)? == 0 || byte[0] == STOP {
                break;
            }
            back_write.write_all(&byte)?;
        }
        // ANCHOR_END: pong
        since(before)
    });
    // A thread of its own too, so that the caller is not left pinned.
    let ping = std::thread::spawn(move || -> anyhow::Result<(u64, Duration, Switches)> {
        pin(cpu_ping)?;
        let mut byte = [0u8; 1];
        back_read.read_exact(&mut byte).context("wait for the other thread to be pinned")?;
        let before = switches()?;
        let start = Instant::now();
        let mut done = 0;
        // ANCHOR: ping
        while done < rounds {
            there_write.write_all(&[PING])?;
            back_read.read_exact(&mut byte)?; // asleep until the other thread answers
            done += 1;
            if done % 1024 == 0 && start.elapsed() > DEADLINE {
                break; // a machine this slow has shown enough
            }
        }
        // ANCHOR_END: ping
        let elapsed = start.elapsed();
        let counted = since(before)?;
        there_write.write_all(&[STOP])?;
        Ok((done, elapsed, counted))
    });
    // Whatever happens to one thread, the other ends: it reads STOP, or end of file
    // once the failed thread's ends are closed.
    let pinged = ping.join().map_err(|_| anyhow!("the pinging thread panicked"))?;
    let ponged = pong.join().map_err(|_| anyhow!("the answering thread panicked"))?;
    let (rounds, elapsed, ping) = pinged?;
    let pong = ponged?;
    Ok(PlacementOutcome {
        placement,
        rounds,
        elapsed,
        voluntary: ping.voluntary + pong.voluntary,
        involuntary: ping.involuntary + pong.involuntary,
    })
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounds = self.placements.first().map_or(0, |p| p.rounds);
        writeln!(
            f,
            "{}",
            wrap(&format!(
                "context switch: two threads hand one byte back and forth over two pipes, \
                 {rounds} round trips; each round trip is two switches"
            ))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<15} {:>4} {:>7} {:>9} {:>15} {:>10} {:>12}",
            "placement",
            "cpus",
            "rounds",
            "ns/switch",
            "switches/round",
            "voluntary",
            "involuntary"
        )?;
        for p in &self.placements {
            let (a, b) = p.placement.cpus();
            let name = match p.placement {
                Placement::SameCpu(_) => "same CPU",
                Placement::CrossCpu(..) => "different CPUs",
            };
            writeln!(
                f,
                "{:<15} {:>4} {:>7} {:>9.0} {:>15.2} {:>10.2} {:>12.2}",
                name,
                format!("{a},{b}"),
                p.rounds,
                p.ns_per_switch(),
                p.switches_per_round(),
                p.voluntary_per_round(),
                p.involuntary_per_round()
            )?;
        }
        if let Some(reason) = &self.skipped {
            writeln!(f, "(no run on two CPUs: {reason})")?;
        }
        writeln!(f)?;
        write!(
            f,
            "{}",
            wrap(
                "Look at ns/switch, half a round trip (a write, a read and a switch): on one \
                 CPU it is the switch itself; on two, each wake-up is an interrupt to the \
                 other CPU, which may first have to leave its idle state. switches/round is \
                 2: each thread gives up its CPU once per round trip. On one CPU the woken \
                 thread often preempts its waker right after the write, before the waker's \
                 read would have slept, and that switch counts as involuntary; under \
                 SCHED_BATCH (chrt -b 0), which does not preempt on wake-up, both are \
                 voluntary."
            )
        )
    }
}
