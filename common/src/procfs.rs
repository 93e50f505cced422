//! Reading a process's threads, memory and CPU time from `/proc` (Linux).
//!
//! `/stats` uses it for the server's own figures and the fork version to find its
//! children; with the `testkit` feature, tests and the load generator also read thread
//! names, CPU time and process states, which no server needs.
//!
//! What a process reads about itself takes `Option<u32>`, `None` meaning this process
//! (`/proc/self`, no pid to look up): [`status`], [`thread_names`], [`cpu_ticks`]. The
//! others take a pid: they are a watcher's questions about another process (the fork
//! version asks [`children`] about itself, by its own pid).

use std::fs;
use std::io;

/// Threads and resident memory of one process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    pub threads: u64,
    pub rss_bytes: u64,
}

/// `pid` is a process id, or `None` for this process.
pub fn status(pid: Option<u32>) -> io::Result<ProcStatus> {
    let text = fs::read_to_string(proc_path(pid, "status"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let threads = field("Threads:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Threads: in status"))?;
    // VmRSS is in kB; a kernel thread or zombie has none.
    let rss_bytes = field("VmRSS:").unwrap_or(0) * 1024;
    Ok(ProcStatus { threads, rss_bytes })
}

/// The names of a process's threads (`/proc/<pid>/task/*/comm`, at most 15 bytes each).
#[cfg(feature = "testkit")]
pub fn thread_names(pid: Option<u32>) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for task in fs::read_dir(proc_path(pid, "task"))? {
        // A thread can exit between the listing and the read; it is simply not counted.
        if let Ok(comm) = fs::read_to_string(task?.path().join("comm")) {
            names.push(comm.trim_end().to_owned());
        }
    }
    Ok(names)
}

/// CPU time in clock ticks from `/proc/<pid>/stat`: the process's own user + system time,
/// and that of its children it has already reaped.
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    pub own: u64,
    pub reaped_children: u64,
}

/// `pid`'s CPU time so far (`None`: this process's).
#[cfg(feature = "testkit")]
pub fn cpu_ticks(pid: Option<u32>) -> io::Result<CpuTicks> {
    let text = fs::read_to_string(proc_path(pid, "stat"))?;
    // The command name sits in parentheses and may contain spaces; fields follow the last ')'.
    let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    Ok(CpuTicks { own: at(11) + at(12), reaped_children: at(13) + at(14) })
}

/// A process's proportional set size, in bytes (`Pss:` in `/proc/<pid>/smaps_rollup`):
/// its resident pages, each shared page divided by the number of processes sharing it.
/// Summed over processes it counts every page once, where summed RSS counts a shared
/// page once per process.
#[cfg(feature = "testkit")]
pub fn pss_bytes(pid: u32) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Pss: in smaps_rollup"))
}

/// Context switches, voluntary and involuntary, summed over a process's live threads
/// (`/proc/<pid>/task/*/status`). Threads that have exited are not counted: the kernel
/// keeps their counts only for `getrusage` inside the process.
#[cfg(feature = "testkit")]
pub fn context_switches(pid: u32) -> io::Result<crate::kernel::ContextSwitches> {
    let mut total = crate::kernel::ContextSwitches::default();
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread can exit between the listing and the read; it is simply not counted.
        let Ok(text) = fs::read_to_string(task?.path().join("status")) else { continue };
        for line in text.lines() {
            let count = |name| line.strip_prefix(name)?.trim().parse::<u64>().ok();
            total.voluntary += count("voluntary_ctxt_switches:").unwrap_or(0);
            total.involuntary += count("nonvoluntary_ctxt_switches:").unwrap_or(0);
        }
    }
    Ok(total)
}

/// How long a process's live threads have run on a CPU, and waited on a run queue for one
/// (`/proc/<pid>/task/*/schedstat`, nanoseconds). A thread that spins wants a CPU all the
/// time, whether or not a loaded machine gives it one, so the sum tells a busy loop from a
/// sleeping one where CPU time alone would not: on two shared cores a spinning server may
/// get far less than a core. The time on a CPU tells the other way round: a server that
/// wakes ten times a second on a loaded machine may wait long for each turn, but it runs
/// for microseconds.
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedTime {
    pub on_cpu: std::time::Duration,
    pub waiting: std::time::Duration,
}

#[cfg(feature = "testkit")]
impl SchedTime {
    /// Running or waiting to run.
    pub fn wanted(&self) -> std::time::Duration {
        self.on_cpu + self.waiting
    }

    /// What was spent between `earlier` and this reading.
    pub fn since(&self, earlier: &SchedTime) -> SchedTime {
        SchedTime {
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
            waiting: self.waiting.saturating_sub(earlier.waiting),
        }
    }
}

/// A process's [`SchedTime`], over its live threads.
#[cfg(feature = "testkit")]
pub fn sched_time(pid: u32) -> io::Result<SchedTime> {
    let (mut on_cpu, mut waiting) = (0u64, 0u64);
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread can exit between the listing and the read; it is simply not counted.
        let Ok(text) = fs::read_to_string(task?.path().join("schedstat")) else { continue };
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
        on_cpu += fields.next().unwrap_or(0);
        waiting += fields.next().unwrap_or(0);
    }
    Ok(SchedTime {
        on_cpu: std::time::Duration::from_nanos(on_cpu),
        waiting: std::time::Duration::from_nanos(waiting),
    })
}

/// The live children of a process (from `/proc/<pid>/task/*/children`).
pub fn children(pid: u32) -> io::Result<Vec<u32>> {
    let mut kids = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Ok(list) = fs::read_to_string(task?.path().join("children")) {
            kids.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    Ok(kids)
}

/// The one-letter state of a process (`R`, `S`, `Z` for a zombie, …).
#[cfg(feature = "testkit")]
pub fn state(pid: u32) -> io::Result<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    after
        .split_whitespace()
        .next()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no state in stat"))
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let status = status(None).unwrap();
        assert!(status.threads >= 1 && status.rss_bytes > 0, "{status:?}");
        let named = std::thread::Builder::new()
            .name("procfs-probe".into())
            .spawn(|| thread_names(None).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(named.iter().any(|n| n == "procfs-probe"), "{named:?}");
    }

    #[test]
    fn sees_a_child_and_its_state() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let kids = children(std::process::id()).unwrap();
        assert!(kids.contains(&child.id()), "{kids:?}");
        // Running, sleeping, or briefly in disk wait while it starts: alive, anyway.
        assert_ne!(state(child.id()).unwrap(), 'Z');
        child.kill().unwrap();
        // Killed but not yet waited for: a zombie, until `wait` reaps it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while state(child.id()).unwrap() != 'Z' {
            assert!(std::time::Instant::now() < deadline, "the killed child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
    }
    #[test]
    fn a_spinning_process_wants_a_cpu_and_a_sleeping_one_does_not() {
        use std::io::BufRead;
        use std::time::Duration;
        // The spinner says when it spins: its start-up (reading Python from disk) sleeps,
        // and on a loaded machine takes long enough to show in the second measured.
        let busy = "import time\nt=time.time()+5\nprint('spinning', flush=True)\nwhile time.time()<t: pass";
        let mut spinner = std::process::Command::new("python3")
            .args(["-c", busy])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        let stdout = spinner.stdout.take().unwrap();
        std::io::BufReader::new(stdout).read_line(&mut said).unwrap();
        assert_eq!(said.trim(), "spinning");
        let mut sleeper = std::process::Command::new("sleep").arg("3").spawn().unwrap();
        let at = |pid| sched_time(pid).unwrap();
        let (spun, slept) = (at(spinner.id()), at(sleeper.id()));
        std::thread::sleep(Duration::from_millis(1000));
        let spun = at(spinner.id()).since(&spun);
        let slept = at(sleeper.id()).since(&slept);
        // Running or waiting to run the whole second, whatever share of a core it got.
        assert!(spun.wanted() > Duration::from_millis(700), "the spinner wanted {spun:?}");
        assert!(spun.on_cpu > Duration::ZERO, "the spinner never ran: {spun:?}");
        assert!(slept.wanted() < Duration::from_millis(100), "the sleeper wanted {slept:?}");
        for child in [&mut spinner, &mut sleeper] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
