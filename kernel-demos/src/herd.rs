//! The accept herd: several threads wait for the same listening socket, and a new
//! connection wakes how many of them?
//!
//! Three setups, each with `threads` threads and an epoll instance per thread:
//!
//! * `shared`: one listening socket, registered in every epoll with plain `EPOLLIN`. A
//!   connection makes the listener readable, and the kernel wakes every epoll that
//!   watches it; one thread wins the `accept`, the others find `EAGAIN`.
//! * `exclusive`: the same, registered with `EPOLLIN | EPOLLEXCLUSIVE` (Linux 4.5): the
//!   kernel wakes one epoll that has a thread waiting ("one or more", says the manual).
//! * `reuseport`: one `SO_REUSEPORT` listener per thread on the same port; the kernel
//!   picks a listener per connection by a hash of its addresses and ports, so only that
//!   listener's thread wakes, and the spread between threads is the hash's.
//!
//! The client opens one connection at a time and waits until it has been accepted and
//! every thread is asleep in `epoll_wait` again, so each connection meets the same
//! herd: all threads parked.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use anyhow::{Context, anyhow, bail};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::resource::{UsageWho, getrusage};
use socket2::{Domain, Socket, Type};

use crate::{wait_for, wrap};

/// How the waiting threads share the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Setup {
    /// One listener, in every thread's epoll with EPOLLIN
    Shared,
    /// One listener, in every thread's epoll with EPOLLIN | EPOLLEXCLUSIVE
    Exclusive,
    /// A SO_REUSEPORT listener per thread, each in its thread's epoll
    Reuseport,
}

impl Setup {
    /// All three, in the order the table shows them.
    pub const ALL: [Setup; 3] = [Setup::Shared, Setup::Exclusive, Setup::Reuseport];

    fn name(self) -> &'static str {
        match self {
            Setup::Shared => "shared",
            Setup::Exclusive => "exclusive",
            Setup::Reuseport => "reuseport",
        }
    }
}

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Threads waiting for connections, each in its own epoll_wait
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Connections the client opens, one at a time
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Setups to run, comma-separated (all three if not given)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub setup: Vec<Setup>,
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: 4, connections: 200, setup: Setup::ALL.to_vec() }
    }
}

/// What one waiting thread counted.
#[derive(Debug, Clone, Default)]
pub struct ThreadCount {
    /// Times the kernel woke the thread for a connection: its voluntary context switches
    /// (each sleep in `epoll_wait` is one), less the sleeps that ended otherwise (the
    /// stop signal, a timeout).
    pub woken: u64,
    /// Returns of `epoll_wait` that reported the listener readable. Fewer than `woken`
    /// when a thread woken late finds the connection taken: `epoll_wait` checks the
    /// listener again before returning, finds it not ready, and sleeps on.
    pub returned: u64,
    /// Connections it accepted.
    pub accepts: u64,
    /// Returns whose first `accept` found nothing (`EAGAIN`): another thread was first.
    pub wasted: u64,
}

/// One setup's figures.
#[derive(Debug, Clone)]
pub struct SetupOutcome {
    pub setup: Setup,
    /// Per thread, in the order they were started.
    pub threads: Vec<ThreadCount>,
    /// Connections the client opened.
    pub connections: usize,
    /// Client ports accepted more than once, or never (empty when each was accepted
    /// exactly once).
    pub miscounted: Vec<u16>,
}

impl SetupOutcome {
    fn sum(&self, field: impl Fn(&ThreadCount) -> u64) -> u64 {
        self.threads.iter().map(field).sum()
    }

    pub fn woken(&self) -> u64 {
        self.sum(|t| t.woken)
    }

    pub fn returned(&self) -> u64 {
        self.sum(|t| t.returned)
    }

    pub fn accepts(&self) -> u64 {
        self.sum(|t| t.accepts)
    }

    pub fn wasted(&self) -> u64 {
        self.sum(|t| t.wasted)
    }

    /// Threads the kernel woke per accepted connection: the herd.
    pub fn woken_per_connection(&self) -> f64 {
        self.woken() as f64 / self.accepts().max(1) as f64
    }

    /// Returns of `epoll_wait` with the listener ready per accepted connection.
    pub fn returned_per_connection(&self) -> f64 {
        self.returned() as f64 / self.accepts().max(1) as f64
    }
}

/// Every setup's figures.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub threads: usize,
    pub connections: usize,
    pub setups: Vec<SetupOutcome>,
}

impl Outcome {
    /// The figures of `setup`, if it ran.
    pub fn setup(&self, setup: Setup) -> Option<&SetupOutcome> {
        self.setups.iter().find(|s| s.setup == setup)
    }
}

/// Runs each setup of `options` in turn.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    if options.threads == 0 || options.connections == 0 {
        bail!("the herd needs at least one thread and one connection");
    }
    let setups = if options.setup.is_empty() { Setup::ALL.to_vec() } else { options.setup.clone() };
    let setups = setups
        .into_iter()
        .map(|setup| run_setup(setup, options).with_context(|| format!("setup {}", setup.name())))
        .collect::<anyhow::Result<_>>()?;
    Ok(Outcome { threads: options.threads, connections: options.connections, setups })
}

/// A waiting thread's state as the client sees it.
#[derive(Debug, Default)]
struct Slot {
    /// The thread's id, to read its state in /proc; 0 until it started.
    tid: AtomicI32,
    /// Set just before `epoll_wait`, cleared just after it returns.
    parked: AtomicBool,
}

impl Slot {
    // ANCHOR: asleep
    /// Whether the thread is asleep in `epoll_wait`: its flag says it is in the call,
    /// and the kernel says it is sleeping (a thread woken but not yet run is `R`).
    fn asleep(&self) -> bool {
        let tid = self.tid.load(Ordering::SeqCst);
        tid != 0 && self.parked.load(Ordering::SeqCst) && thread_state(tid) == Some('S')
    }
    // ANCHOR_END: asleep
}

/// The state letter of thread `tid` of this process (`R`, `S`, `D`...).
fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The name in parentheses may hold spaces; the state is the field after it.
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

fn run_setup(setup: Setup, options: &Options) -> anyhow::Result<SetupOutcome> {
    let listeners = listeners(setup, options.threads)?;
    let addr = listeners[0].local_addr()?;
    let stop = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
    let slots: Vec<Slot> = (0..options.threads).map(|_| Slot::default()).collect();
    let accepted = AtomicUsize::new(0);
    // ANCHOR: flags
    let flags = match setup {
        Setup::Exclusive => EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE,
        Setup::Shared | Setup::Reuseport => EpollFlags::EPOLLIN,
    };
    // ANCHOR_END: flags
    std::thread::scope(|scope| {
        let waiters: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let listener = &listeners[i % listeners.len()];
                let (stop, accepted) = (&stop, &accepted);
                scope.spawn(move || wait_for_connections(listener, flags, stop, slot, accepted))
            })
            .collect();
        let client = open_one_at_a_time(addr, options.connections, &slots, &accepted);
        // Whatever the client met, the threads are told to stop and are joined.
        let stopped = stop.write(1);
        let reports: Vec<_> = waiters
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("a waiting thread panicked"))?)
            .collect();
        // A thread's own error first: the client's is then only that it waited in vain.
        let reports = reports.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let client_ports = client?;
        stopped.context("wake the waiting threads to stop")?;
        let (threads, accepted_ports): (Vec<ThreadCount>, Vec<Vec<u16>>) =
            reports.into_iter().unzip();
        Ok(SetupOutcome {
            setup,
            threads,
            connections: options.connections,
            miscounted: miscounted(client_ports, accepted_ports.concat()),
        })
    })
}

/// The listening sockets of `setup`: one, or one per thread on the same port.
fn listeners(setup: Setup, threads: usize) -> anyhow::Result<Vec<TcpListener>> {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let count = if setup == Setup::Reuseport { threads } else { 1 };
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(count);
    // ANCHOR: reuseport
    for _ in 0..count {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        if setup == Setup::Reuseport {
            socket.set_reuse_port(true).context("SO_REUSEPORT needs Linux 3.9")?;
        }
        // The first binds port 0 and the kernel chooses; the others join its port.
        let addr = listeners.first().map_or(Ok(loopback), |first| first.local_addr())?;
        socket.bind(&addr.into()).with_context(|| format!("bind {addr}"))?;
        socket.listen(128)?;
        socket.set_nonblocking(true)?;
        listeners.push(socket.into());
    }
    // ANCHOR_END: reuseport
    Ok(listeners)
}

/// The client: opens `connections` connections, each only once the previous one was
/// accepted and every thread is back asleep; returns their local ports.
fn open_one_at_a_time(
    addr: SocketAddr,
    connections: usize,
    slots: &[Slot],
    accepted: &AtomicUsize,
) -> anyhow::Result<Vec<u16>> {
    let all_asleep = || slots.iter().all(Slot::asleep);
    wait_for("every thread to be asleep in epoll_wait", all_asleep)?;
    let mut ports = Vec::with_capacity(connections);
    // ANCHOR: one_at_a_time
    for opened in 1..=connections {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        ports.push(stream.local_addr()?.port());
        wait_for("the connection to be accepted and every thread asleep again", || {
            accepted.load(Ordering::SeqCst) >= opened && all_asleep()
        })
        .with_context(|| format!("connection {opened} of {connections}"))?;
    }
    // ANCHOR_END: one_at_a_time
    Ok(ports)
}

/// Consecutive empty one-second waits after which a thread concludes nobody will tell it
/// to stop, so that no failure elsewhere leaves it running forever.
const IDLE_WAITS: u32 = 30;

/// One waiting thread: its own epoll, the listener and the stop signal in it; counts
/// what each wake-up brought. Returns its counts and the client ports it accepted.
fn wait_for_connections(
    listener: &TcpListener,
    flags: EpollFlags,
    stop: &EventFd,
    slot: &Slot,
    accepted: &AtomicUsize,
) -> anyhow::Result<(ThreadCount, Vec<u16>)> {
    const LISTENER: u64 = 0;
    const STOP: u64 = 1;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    // ANCHOR: register
    epoll.add(listener.as_fd(), EpollEvent::new(flags, LISTENER)).map_err(|errno| {
        let error = anyhow!(errno).context("register the listener in epoll");
        match errno {
            Errno::EINVAL if flags.contains(EpollFlags::EPOLLEXCLUSIVE) => {
                error.context("EPOLLEXCLUSIVE needs Linux 4.5")
            }
            _ => error,
        }
    })?;
    epoll.add(stop.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STOP))?;
    // ANCHOR_END: register
    let before = getrusage(UsageWho::RUSAGE_THREAD)?;
    slot.tid.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
    let mut count = ThreadCount::default();
    let mut ports = Vec::new();
    let mut events = [EpollEvent::empty(); 2];
    let (mut idle, mut timeouts) = (0, 0);
    'wait: loop {
        // ANCHOR: wait
        slot.parked.store(true, Ordering::SeqCst);
        let ready = epoll.wait(&mut events, EpollTimeout::from(1000u16));
        slot.parked.store(false, Ordering::SeqCst);
        // ANCHOR_END: wait
        let ready = match ready {
            Ok(ready) => ready,
            Err(Errno::EINTR) => {
                timeouts += 1; // a sleep that ended without a connection, like a timeout
                continue;
            }
            Err(errno) => return Err(anyhow!(errno).context("epoll_wait")),
        };
        // ANCHOR: woken
        for event in &events[..ready] {
            if event.data() == STOP {
                break 'wait;
            }
            count.returned += 1;
            let got = accept_all(listener, &mut ports, accepted)?;
            count.accepts += got;
            if got == 0 {
                count.wasted += 1; // woken for a connection another thread took
            }
        }
        // ANCHOR_END: woken
        if ready == 0 {
            timeouts += 1;
        }
        idle = if ready == 0 { idle + 1 } else { 0 };
        if idle == IDLE_WAITS {
            bail!("no connection and no stop for {IDLE_WAITS} s");
        }
    }
    let after = getrusage(UsageWho::RUSAGE_THREAD)?;
    let sleeps = after.voluntary_context_switches() - before.voluntary_context_switches();
    // The last sleep ended with the stop signal, not a connection.
    count.woken = u64::try_from(sleeps).unwrap_or(0).saturating_sub(1 + timeouts);
    Ok((count, ports))
}

// ANCHOR: accept
/// Accepts until the queue is empty (`EAGAIN`); returns how many, and notes each
/// client's port.
fn accept_all(
    listener: &TcpListener,
    ports: &mut Vec<u16>,
    accepted: &AtomicUsize,
) -> anyhow::Result<u64> {
    let mut got = 0;
    loop {
        match listener.accept() {
            Ok((_stream, peer)) => {
                got += 1;
                ports.push(peer.port());
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) => return Err(anyhow!(e).context("accept")),
        }
    }
}
// ANCHOR_END: accept

/// The client ports not accepted exactly once.
fn miscounted(mut opened: Vec<u16>, mut accepted: Vec<u16>) -> Vec<u16> {
    opened.sort_unstable();
    accepted.sort_unstable();
    if opened == accepted {
        return Vec::new();
    }
    let mut wrong: Vec<u16> = opened
        .iter()
        .chain(&accepted)
        .copied()
        .filter(|port| {
            accepted.iter().filter(|p| *p == port).count() != 1
                || opened.iter().filter(|p| *p == port).count() != 1
        })
        .collect();
    wrong.dedup();
    wrong
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            wrap(&format!(
                "accept herd: {} threads, each in its own epoll_wait; {} connections opened \
                 one at a time, each once every thread is asleep",
                self.threads, self.connections
            ))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>8} {:>10} {:>12} {:>7}  connections per thread",
            "setup", "accepted", "woken/conn", "returned/conn", "wasted"
        )?;
        for s in &self.setups {
            let spread: Vec<String> = s.threads.iter().map(|t| t.accepts.to_string()).collect();
            writeln!(
                f,
                "{:<10} {:>8} {:>10.2} {:>12.2} {:>7}  {}{}",
                s.setup.name(),
                s.accepts(),
                s.woken_per_connection(),
                s.returned_per_connection(),
                s.wasted(),
                spread.join(" "),
                if s.miscounted.is_empty() { "" } else { "  (MISCOUNTED)" },
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{}",
            wrap(
                "Look at woken/conn, threads the kernel woke per connection (their voluntary \
             context switches): shared wakes every thread; exclusive wakes one; reuseport \
             wakes only the thread whose listener the hash of the connection's addresses and \
             ports chose, and the last column is that hash's spread. returned/conn counts \
             the wake-ups that reached user space: a thread woken after the connection was \
             taken sleeps on inside epoll_wait (wasted counts those that returned and found \
             EAGAIN). Exclusive wakes the first epoll in the listener's wait queue with a \
             thread asleep in it, so with every thread asleep the same thread takes them \
             all: one wake-up, not a balance."
            )
        )?;
        write!(
            f,
            "{}",
            wrap(
                "nginx: accept_mutex (one worker at a time watches the listener) \
                 historically; EPOLLEXCLUSIVE since 1.11.3; `listen ... reuseport` for a \
                 listener per worker."
            )
        )
    }
}
