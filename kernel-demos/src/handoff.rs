//! v4-nio's hand-off and re-arm, from its own system calls: the server runs under
//! `strace -f -ttt -T`, one client sends two requests on one connection, and the calls of
//! the acceptor, the poller and the workers are drawn as lifelines.
//!
//! What to find in it: the poller's `epoll_wait` returns with the connection ready; it
//! wakes a worker (a `futex` wake: the job queued); the worker reads, answers, and hands
//! the connection back (an `eventfd` write that wakes the poller); the poller re-arms it
//! with `epoll_ctl(EPOLL_CTL_MOD)` before waiting again. strace stops the server at every
//! call, which stretches each by tens of microseconds: read the order, not the lengths.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};

use crate::sequence::{Figure, Item, Panel, Shade};

use crate::strace::{Call, parse};
use crate::{DEADLINE, wait_for};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The v4-nio binary to run under strace
    #[arg(long, default_value = "target/release/v4-nio")]
    pub server: PathBuf,
    /// Requests sent on the one connection, each once the previous reply is in and the
    /// poller has had `--pause-ms` to re-arm
    #[arg(long, default_value_t = 2)]
    pub requests: usize,
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
}

/// The server's pool: two, so that the hand-offs visibly go to either.
const WORKERS: usize = 2;
const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";
/// The system calls worth drawing; the rest (memory, signals) are not traced at all.
const TRACED: &str =
    "accept4,epoll_wait,epoll_pwait,epoll_ctl,futex,recvfrom,sendto,read,write,writev";

/// Now, since the epoch: the clock strace's `-ttt` prints.
fn wall() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The client's times: connect called, then each request's send and whole reply.
struct Client {
    connect: Duration,
    requests: Vec<(Duration, Duration)>,
}

fn converse(addr: SocketAddr, options: &Options) -> anyhow::Result<Client> {
    let connect = wall();
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut requests = Vec::new();
    for _ in 0..options.requests {
        std::thread::sleep(Duration::from_millis(options.pause_ms));
        let sent = wall();
        stream.write_all(REQUEST)?;
        let mut reply = Vec::new();
        let mut chunk = [0; 4096];
        while !reply.ends_with(BODY) {
            let n = stream.read(&mut chunk).context("read the reply")?;
            if n == 0 {
                bail!("the server closed mid-reply");
            }
            reply.extend_from_slice(&chunk[..n]);
        }
        requests.push((sent, wall()));
    }
    Ok(Client { connect, requests })
}

/// The server's pid (strace's child) and its threads' names by tid.
fn threads(strace: &Child) -> anyhow::Result<(i32, Threads)> {
    let children = format!("/proc/{0}/task/{0}/children", strace.id());
    let mut pid = 0;
    wait_for("the server under strace", || {
        pid = std::fs::read_to_string(&children)
            .ok()
            .and_then(|list| list.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        pid > 0
    })?;
    // The address is printed before every thread has started: wait for the acceptor,
    // the poller and both workers.
    let mut names = Vec::new();
    wait_for("the server's poller and workers", || {
        names = thread_names(pid);
        let workers = names.iter().filter(|(_, name)| name.starts_with("worker")).count();
        let named = |wanted: &str| names.iter().any(|(_, name)| name == wanted);
        named("acceptor") && named("poller") && workers >= WORKERS
    })
    .with_context(|| format!("threads of {pid}: {names:?}"))?;
    Ok((pid, names))
}

/// The threads of process `pid`, by tid, with their names (`comm`).
fn thread_names(pid: i32) -> Threads {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some((tid, name.trim().to_owned()))
        })
        .collect()
}

/// Runs the server under strace, converses, stops it; the trace and what was seen.
fn record(options: &Options, trace: &Path) -> anyhow::Result<(Vec<Call>, Threads, Client)> {
    let mut strace = Command::new("strace")
        .args(["-f", "-ttt", "-T", "-qq", "-e", &format!("trace={TRACED}"), "-o"])
        .arg(trace)
        .arg(&options.server)
        .args(["--addr", "127.0.0.1:0", "--workers", &WORKERS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("run strace (is it installed?)")?;
    let result = converse_with(&mut strace, options);
    // Stopped whatever happened: SIGTERM to the server (strace then exits), then strace.
    if let Ok((pid, ..)) = &result {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGTERM);
    }
    let deadline = Instant::now() + DEADLINE;
    while strace.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = strace.kill();
            let _ = strace.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_, names, client) = result?;
    let text =
        std::fs::read_to_string(trace).with_context(|| format!("read {}", trace.display()))?;
    Ok((parse(&text), names, client))
}

/// Reads the address the server prints, notes its threads, and converses.
fn converse_with(strace: &mut Child, options: &Options) -> anyhow::Result<(i32, Threads, Client)> {
    let stdout = strace.stdout.take().context("the server's output")?;
    let (lines, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split(" listening on ").nth(1) {
                let _ = lines.send(addr.trim().to_owned());
            }
        }
    });
    let addr: SocketAddr = addr
        .recv_timeout(DEADLINE)
        .map_err(|_| anyhow!("the server did not say where it listens"))?
        .parse()?;
    let (pid, names) = threads(strace)?;
    Ok((pid, names, converse(addr, options)?))
}

/// The sequence diagram of one recording.
pub fn sequence(options: &Options) -> anyhow::Result<Figure> {
    let trace =
        std::env::temp_dir().join(format!("kernel-demo-handoff-{}.strace", std::process::id()));
    let recorded = record(options, &trace);
    let _ = std::fs::remove_file(&trace);
    let (calls, names, client) = recorded?;
    let panel = panel(&calls, &names, &client)?;
    Ok(Figure {
        title: "v4-nio: a request handed from the poller to a worker and back, from strace".into(),
        caption: "Each request: the poller's epoll_wait returns with the connection ready, a futex \
                  wake hands it to a worker, which reads, answers and hands it back with an eventfd \
                  write that wakes the poller, which re-arms it (epoll_ctl MOD) before it waits \
                  again; the second request finds it armed. Orange bars are waits in the kernel. \
                  Times from strace -f -ttt -T (the client's on the same clock); strace slows every \
                  call, so read the order, not the lengths. Vertical distance grows with the \
                  logarithm of the gap."
            .into(),
        panels: vec![panel],
    })
}

/// A process's threads: tid and name.
type Threads = Vec<(u32, String)>;

/// Waits shorter than this are drawn as a dot rather than a bar.
const LONG: Duration = Duration::from_micros(30);

/// The lifelines: the client, then the acceptor, the poller and each worker that read in
/// the window, by tid; and the index of the poller's.
fn lifelines(calls: &[&Call], names: &[(u32, String)]) -> anyhow::Result<(Threads, usize)> {
    let named = |wanted: &str| names.iter().find(|(_, name)| name == wanted).map(|(tid, _)| *tid);
    let mut lanes = vec![(0, "client".to_owned())];
    if let Some(tid) = named("acceptor") {
        lanes.push((tid, "acceptor".into()));
    }
    let poller = named("poller").context("no thread named poller: is this v4-nio?")?;
    lanes.push((poller, "poller".into()));
    for call in calls.iter().filter(|c| c.name == "recvfrom" || c.name == "read") {
        let worker = names.iter().any(|(tid, name)| *tid == call.tid && name.starts_with("worker"));
        if worker && !lanes.iter().any(|(tid, _)| *tid == call.tid) {
            lanes.push((call.tid, format!("worker (tid {})", call.tid)));
        }
    }
    Ok((lanes, 2 - usize::from(named("acceptor").is_none())))
}

/// The first call of `calls` that ends at or after `after` and satisfies `which`.
fn first_end<'a>(
    calls: &[&'a Call],
    after: Duration,
    which: impl Fn(&Call) -> bool,
) -> Option<&'a Call> {
    calls.iter().filter(|c| c.end >= after && which(c)).min_by_key(|c| c.end).copied()
}

/// One call as the diagram's items (a bar for a wait, a dot for the rest, an arrow for a
/// wake-up of another thread).
fn call_items(
    call: &Call,
    calls: &[&Call],
    lane: &dyn Fn(u32) -> Option<usize>,
    at: &dyn Fn(Duration) -> Duration,
) -> Vec<Item> {
    let Some(on) = lane(call.tid) else { return Vec::new() };
    let long = call.end.saturating_sub(call.start) > LONG;
    let ret = call.returned().unwrap_or(-1);
    let mut items = Vec::new();
    let wait = |what: &str| Item::span(on, at(call.start), at(call.end), what, Shade::Waiting);
    match call.name.as_str() {
        "epoll_wait" | "epoll_pwait" => {
            if long {
                items.push(wait("epoll_wait"));
            }
            items.push(Item::mark(on, at(call.end), &format!("epoll_wait: {ret} ready")));
        }
        "futex" if call.args.contains("FUTEX_WAIT") && long => items.push(wait("futex wait")),
        "futex" if call.args.contains("FUTEX_WAKE") && ret >= 1 => {
            let address = call.first_arg();
            let woken = first_end(calls, call.start, |c| {
                c.tid != call.tid
                    && c.name == "futex"
                    && c.args.contains("FUTEX_WAIT")
                    && c.first_arg() == address
            });
            if let Some((to, woken)) = woken.and_then(|w| Some((lane(w.tid)?, w))) {
                items.push(Item::message(on, to, at(call.start), at(woken.end), "futex wake"));
            }
        }
        "accept4" if ret >= 0 => {
            items.push(Item::mark(on, at(call.end), &format!("accept4: fd {ret}")))
        }
        "epoll_ctl" => {
            let fd = call.args.split(',').nth(2).unwrap_or("?").trim();
            let what = if call.args.contains("EPOLL_CTL_MOD") {
                "re-arm"
            } else if call.args.contains("EPOLL_CTL_ADD") {
                "register"
            } else {
                "remove"
            };
            items.push(Item::mark(on, at(call.start), &format!("epoll_ctl: {what} fd {fd}")));
        }
        "write" if call.args.contains(r#""\1\0\0\0\0\0\0\0""#) => {
            // An eventfd's counter: the waker. Whom it woke: the next epoll_wait to end.
            let poller = first_end(calls, call.start, |c| {
                c.name.starts_with("epoll_") && c.name != "epoll_ctl"
            });
            if let Some((to, woken)) = poller.and_then(|p| Some((lane(p.tid)?, p))) {
                items.push(Item::message(on, to, at(call.start), at(woken.end), "eventfd: wake"));
            }
        }
        "recvfrom" | "read" if ret >= 0 => {
            items.push(Item::mark(on, at(call.end), &format!("{}: {ret} B", call.name)))
        }
        "sendto" | "write" | "writev" if ret >= 0 => {
            items.push(Item::mark(on, at(call.start), &format!("{}: {ret} B", call.name)))
        }
        _ => {}
    }
    items
}

/// The panel: every traced call of the server's threads from the client's connect to a
/// little after its last reply, with the client's own sends and replies.
fn panel(all: &[Call], names: &[(u32, String)], client: &Client) -> anyhow::Result<Panel> {
    let origin = client.connect;
    // Up to the re-arm that follows the last reply (or a millisecond after it): what
    // comes later is the client's close.
    let last = client.requests.last().map_or(origin, |(_, got)| *got);
    let rearm = all
        .iter()
        .filter(|c| c.start >= last && c.args.contains("EPOLL_CTL_MOD"))
        .map(|c| c.end)
        .min();
    let end = rearm.unwrap_or(last + Duration::from_millis(1));
    let calls: Vec<&Call> = all.iter().filter(|c| c.end >= origin && c.end <= end).collect();
    let (lanes, poller) = lifelines(&calls, names)?;
    let lane = |tid: u32| lanes.iter().skip(1).position(|(t, _)| *t == tid).map(|i| i + 1);
    let at = |time: Duration| time.saturating_sub(origin);
    let mut items: Vec<Item> =
        calls.iter().flat_map(|call| call_items(call, &calls, &lane, &at)).collect();
    if let Some(accepted) =
        first_end(&calls, origin, |c| c.name == "accept4" && c.returned().is_some_and(|r| r >= 0))
    {
        if let Some(to) = lane(accepted.tid) {
            items.push(Item::message(0, to, Duration::ZERO, at(accepted.end), "connect"));
        }
    }
    for (index, (sent, got)) in client.requests.iter().enumerate() {
        let ready = first_end(&calls, *sent, |c| {
            lane(c.tid) == Some(poller)
                && c.name.starts_with("epoll_w")
                && c.returned().unwrap_or(0) > 0
        });
        if let Some(ready) = ready {
            items.push(Item::message(
                0,
                poller,
                at(*sent),
                at(ready.end),
                &format!("request {}", index + 1),
            ));
        }
        let reply = calls
            .iter()
            .filter(|c| c.start >= *sent && matches!(c.name.as_str(), "sendto" | "writev"))
            .min_by_key(|c| c.start);
        if let Some((from, reply)) = reply.and_then(|r| Some((lane(r.tid)?, r))) {
            items.push(Item::message(
                from,
                0,
                at(reply.start),
                at(*got),
                &format!("reply {}", index + 1),
            ));
        }
    }
    Ok(Panel {
        title: format!(
            "{} requests on one keep-alive connection, --workers 2",
            client.requests.len()
        ),
        lifelines: lanes.into_iter().map(|(_, name)| name).collect(),
        items,
        px_per_ms: None,
    })
}
