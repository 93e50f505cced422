//! The system-call census: every system call a server's processes make while a load
//! runs, by name, per request answered.
//!
//! It is counted by `perf stat` on the kernel's `syscalls:sys_enter_*` tracepoints
//! (Debian's `linux-perf`): the kernel counts, the server barely slows down, and the
//! counters follow the threads and the children (a fork per connection) of the process.
//! Counting starts and stops on a handshake with perf (`--control`), so the window is
//! exactly the load's. `strace -c -f` is the fallback, and a poor one for this: it stops
//! the server at every call, so much slower that the next request is usually waiting
//! before a read that would have found nothing, and it hides exactly the extra reads a
//! census is for. Where neither works, there is no census, and the caller says so.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long perf or strace may take to start counting.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// The calls perf counts by name: what a server's serving and waiting are made of. Every
/// other call is counted too, as `other` (from `raw_syscalls:sys_enter`, which sees them
/// all): opening a tracepoint costs perf tens of milliseconds, all 700 of them 13 s.
const NAMED: [&str; 26] = [
    "read",
    "write",
    "recvfrom",
    "sendto",
    "readv",
    "writev",
    "recvmsg",
    "sendmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "io_uring_enter",
    "futex",
    "accept4",
    "close",
    "shutdown",
    "clone",
    "clone3",
    "wait4",
    "sched_yield",
    "nanosleep",
    "clock_nanosleep",
];

/// perf's event list: every call in all, and those of [`NAMED`] this kernel has.
fn perf_events() -> String {
    let has = |name: &str| {
        ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].iter().any(|root| {
            std::path::Path::new(&format!("{root}/events/syscalls/sys_enter_{name}")).exists()
        })
    };
    let mut events = vec!["raw_syscalls:sys_enter".to_owned()];
    events.extend(NAMED.iter().filter(|n| has(n)).map(|n| format!("syscalls:sys_enter_{n}")));
    events.join(",")
}

/// What counts the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Perf,
    Strace,
}

impl Tool {
    /// The best tool that works here: perf if it may read the syscall tracepoints, else
    /// strace if installed. None says how to get one.
    pub fn find() -> Result<Tool, String> {
        let works = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if works("perf", &["stat", "-e", "syscalls:sys_enter_recvfrom", "true"]) {
            Ok(Tool::Perf)
        } else if works("strace", &["-V"]) {
            Ok(Tool::Strace)
        } else {
            Err("no system-call census: install linux-perf (apt-get install linux-perf), or \
                 strace, which counts less exactly"
                .into())
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Perf => "perf",
            Tool::Strace => "strace",
        }
    }
}

/// The calls one window counted, by name, and the requests answered in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Census {
    pub tool: Tool,
    pub requests: u64,
    /// Calls by name, the most frequent first.
    pub calls: Vec<(String, u64)>,
}

impl Census {
    /// Every system call per request.
    pub fn per_request(&self) -> f64 {
        let total: u64 = self.calls.iter().map(|(_, n)| n).sum();
        total as f64 / self.requests.max(1) as f64
    }

    /// `recvfrom 1.00, sendto 1.00, epoll_wait 0.12`: the calls made at least once per
    /// hundred requests, per request.
    pub fn by_name(&self) -> String {
        let requests = self.requests.max(1) as f64;
        let named: Vec<String> = self
            .calls
            .iter()
            .map(|(name, n)| (name, *n as f64 / requests))
            .filter(|(_, per)| *per >= 0.01)
            .map(|(name, per)| format!("{name} {per:.2}"))
            .collect();
        named.join(", ")
    }
}

/// A census being taken: the tool attached to the server and counting.
#[derive(Debug)]
pub struct Counting {
    tool: Tool,
    child: Child,
    output: PathBuf,
    /// perf's control and acknowledgement pipes (strace has none).
    control: Option<(std::fs::File, BufReader<std::fs::File>)>,
    dir: PathBuf,
}

impl Counting {
    /// Attaches `tool` to process `pid` (its threads, the children it has already forked,
    /// as nginx's workers, and those it forks from now on) and returns once it counts.
    pub fn start(tool: Tool, pid: u32) -> io::Result<Counting> {
        let dir = std::env::temp_dir().join(format!("loadgen-census-{}-{pid}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let output = dir.join("counts");
        let mut pids = vec![pid];
        pids.extend(common::procfs::children(pid).unwrap_or_default());
        let counting = match tool {
            Tool::Perf => Self::start_perf(&pids, &dir, output),
            Tool::Strace => Self::start_strace(&pids, dir.clone(), output),
        };
        if counting.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        counting
    }

    fn start_perf(pids: &[u32], dir: &std::path::Path, output: PathBuf) -> io::Result<Counting> {
        let (ctl, ack) = (dir.join("ctl"), dir.join("ack"));
        for fifo in [&ctl, &ack] {
            nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::S_IRWXU).map_err(io::Error::from)?;
        }
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", &perf_events(), "-p", &joined(pids, ","), "-o"])
            .arg(&output)
            .arg(format!("--control=fifo:{},{}", ctl.display(), ack.display()))
            // Start with the counters off; they go on when we say, once perf is ready.
            .args(["-D", "-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Read and write both ends, so opening never waits for perf (Linux allows it on a
        // FIFO); a perf that failed to start is then noticed by the timeout below.
        let open = |path: &PathBuf| std::fs::OpenOptions::new().read(true).write(true).open(path);
        let (control, ack) = (open(&ctl)?, BufReader::new(open(&ack)?));
        let mut counting = Counting {
            tool: Tool::Perf,
            child,
            output,
            control: Some((control, ack)),
            dir: dir.to_owned(),
        };
        counting.tell_perf("enable")?;
        Ok(counting)
    }

    /// Sends perf a control command and waits for its acknowledgement.
    fn tell_perf(&mut self, command: &str) -> io::Result<()> {
        let Some((control, ack)) = &mut self.control else { return Ok(()) };
        writeln!(control, "{command}")?;
        // perf answers `ack\n` and a NUL; what is already buffered needs no wait.
        let ready = !ack.buffer().is_empty() || {
            let fd = ack.get_ref().as_fd();
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            let timeout = nix::poll::PollTimeout::try_from(ATTACH_TIMEOUT)
                .unwrap_or(nix::poll::PollTimeout::MAX);
            nix::poll::poll(&mut fds, timeout).map_err(io::Error::from)? > 0
        };
        let mut line = String::new();
        if !ready
            || ack.read_line(&mut line)? == 0
            || !line.trim_start_matches('\0').starts_with("ack")
        {
            let _ = self.child.kill();
            return Err(io::Error::other(format!(
                "perf did not acknowledge `{command}` within {ATTACH_TIMEOUT:?}"
            )));
        }
        Ok(())
    }

    fn start_strace(pids: &[u32], dir: PathBuf, output: PathBuf) -> io::Result<Counting> {
        let mut child = Command::new("strace")
            .args(["-c", "-f", "-p", &joined(pids, ","), "-o"])
            .arg(&output)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // strace says `Process N attached` for every thread it has stopped and traces.
        let mut threads = 0;
        for pid in pids {
            threads += std::fs::read_dir(format!("/proc/{pid}/task"))?.count();
        }
        let threads = threads.max(1);
        let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut attached = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                attached += usize::from(line.contains("attached"));
                let _ = tx.send(attached);
            }
        });
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(attached) if attached >= threads => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    return Err(io::Error::other("strace did not attach to every thread"));
                }
            }
        }
        Ok(Counting { tool: Tool::Strace, child, output, control: None, dir })
    }

    /// Stops counting and reads the counts; `requests` is what the window answered.
    pub fn finish(mut self, requests: u64) -> io::Result<Census> {
        self.tell_perf("disable")?;
        // Both print their totals when interrupted.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        self.child.wait()?;
        let text = std::fs::read_to_string(&self.output)?;
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut calls = match self.tool {
            Tool::Perf => parse_perf(&text),
            Tool::Strace => parse_strace(&text),
        };
        calls.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Census { tool: self.tool, requests, calls })
    }
}

impl Drop for Counting {
    /// A census abandoned (the load failed before `finish`) leaves no tracer attached.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `perf stat -x,` lines: `count,unit,syscalls:sys_enter_NAME,...`, and the count of
/// every call (`raw_syscalls:sys_enter`), whose excess over the named ones is `other`;
/// zeros left out.
fn parse_perf(text: &str) -> Vec<(String, u64)> {
    let mut all = None;
    let mut named: Vec<(String, u64)> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split(',');
        let Some(Ok(count)) = fields.next().map(|c| c.trim().parse::<u64>()) else { continue };
        match fields.nth(1) {
            Some("raw_syscalls:sys_enter") => all = Some(count),
            Some(event) => {
                if let Some(name) = event.strip_prefix("syscalls:sys_enter_") {
                    named.push((name.to_owned(), count));
                }
            }
            None => {}
        }
    }
    let other = all.map_or(0, |all| all.saturating_sub(named.iter().map(|(_, n)| n).sum()));
    named.push(("other".to_owned(), other));
    named.retain(|(_, n)| *n > 0);
    named
}

/// `strace -c` table rows: `% time  seconds  usecs/call  calls  [errors]  syscall`.
fn parse_strace(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.last()?;
            let calls: u64 = fields.get(3)?.parse().ok()?;
            let named =
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            (named && *name != "total").then(|| ((*name).to_owned(), calls))
        })
        .collect()
}

/// The process listening on TCP `port` on this machine: the one holding the listening
/// socket whose parent does not (a fork per connection's children inherit it).
pub fn listener_pid(port: u16) -> io::Result<Option<u32>> {
    let Some(inode) = common::testkit::listening_socket_inode(port)? else { return Ok(None) };
    let holders: Vec<u32> = std::fs::read_dir("/proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| {
            common::testkit::socket_inodes(pid).is_ok_and(|inodes| inodes.contains(&inode))
        })
        .collect();
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()
    };
    Ok(holders.iter().copied().find(|&pid| parent_of(pid).is_none_or(|p| !holders.contains(&p))))
}

/// Process ids as perf's and strace's `-p` take a list of them.
fn joined(pids: &[u32], separator: &str) -> String {
    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_and_strace_outputs_are_read() {
        let perf = "# started on Tue Dec  1 10:09:05 2026\n\n\
                    132500,,raw_syscalls:sys_enter,909053438,100.00,,\n\
                    71921,,syscalls:sys_enter_recvfrom,909053438,100.00,,\n\
                    0,,syscalls:sys_enter_futex,909053438,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_poll,0,100.00,,\n\
                    60546,,syscalls:sys_enter_epoll_wait,909053438,100.00,,Events disabled\n\
                    Events enabled\n";
        assert_eq!(
            parse_perf(perf),
            [
                ("recvfrom".to_owned(), 71921),
                ("epoll_wait".to_owned(), 60546),
                ("other".to_owned(), 33)
            ]
        );
        let strace = "% time     seconds  usecs/call     calls    errors syscall\n\
                      ------ ----------- ----------- --------- --------- ----------------\n\
                       52.10    0.100000           1     66641           recvfrom\n\
                       40.00    0.080000           1     66641        12 sendto\n\
                      100.00    0.180000           1    133282        12 total\n";
        assert_eq!(
            parse_strace(strace),
            [("recvfrom".to_owned(), 66641), ("sendto".to_owned(), 66641)]
        );
        let census = Census { tool: Tool::Perf, requests: 66641, calls: parse_strace(strace) };
        assert_eq!(census.by_name(), "recvfrom 1.00, sendto 1.00");
        assert!((census.per_request() - 2.0).abs() < 1e-9);
    }
}
