//! registry: the one place that knows the versions.
//!
//! Each version is declared once, in [`VERSIONS`]: its name (the crate, its binary and its
//! `Server` header), its default address, its model in a sentence, what it fixes and what it
//! costs, how it is run by hand, its variants, and how the fault matrix runs it and what its
//! model makes it do there ([`Behaviour`]), where it runs its handlers ([`Handlers`]), and
//! what its `/stats` must show after a run ([`Promises`]). The versions take their name and
//! address from here; loadgen, the fault matrix (the `harness` crate),
//! `scripts/start-all.sh` and the README's and the book's tables read the rest, and a test
//! fails when a table disagrees.
//!
//! The crate depends on nothing: it names the versions as data, and never their code.
//! Adding a version is its crate (a folder `v<N>-<model>`, which the workspace's members
//! take by that pattern) and its entry here; `tests/workspace.rs` fails, saying what to add,
//! when a crate, an entry, a version's fault-matrix or shutdown tests, or its chapter in the
//! book's table of contents is missing.

/// One version of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The crate, its binary, and the name it sends in its `Server` header.
    pub name: &'static str,
    /// Where `cargo run -p <name>` listens.
    pub addr: &'static str,
    /// The model, in one sentence.
    pub model: &'static str,
    /// What its `--help` says it is, first line and all.
    pub help: &'static str,
    /// What its `--help` suggests trying, after the options (`{addr}` stands for its
    /// address); may be empty.
    pub hints: &'static str,
    /// The options that shape the model, and their defaults, in a few words.
    pub options: &'static str,
    /// What it fixes about the version before it.
    pub fixes: &'static str,
    /// What the model costs: the limit the next version removes.
    pub costs: &'static str,
    /// Options worth passing when running it by hand, to see its model.
    pub example: &'static [&'static str],
    /// The book's chapter about it.
    pub chapter: &'static str,
    /// Whether each connection gets a thread or a process of its own, which ends with it.
    pub per_connection: Option<PerConnection>,
    /// The variants one binary runs, if several (v4-syscalls' kernel interfaces): each is
    /// tested and measured as a version of its own.
    pub variants: &'static [Variant],
    /// How the fault matrix runs it, and what its model does there.
    pub matrix: Matrix,
    /// What its `/stats` must show after a run with its default options, or its row
    /// misleads: `compare` checks every version against this and nothing else, so a new
    /// version is checked by declaring it here.
    pub promises: Promises,
    /// Where it runs its handlers, which decides whom a slow one holds up.
    pub handlers: Handlers,
}

/// What a version promises of itself, in its `/stats` document's `model` section, after a
/// run with its default options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promises {
    /// Figures and their values: a pool's size, a runtime's workers.
    pub sizes: &'static [(&'static str, Count)],
    /// The threads that each accept and serve their own connections (v5's loops, v7's
    /// rings), if the model has several: each must have taken some, or the row measures
    /// fewer of them than the server has.
    pub spread: Option<Spread>,
}

impl Promises {
    /// Nothing to check: one thread, or a thread or process per connection.
    pub const NONE: Promises = Promises { sizes: &[], spread: None };
}

/// How many of something a version has by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exactly(u64),
    /// One per core of the machine it runs on.
    Cores,
}

/// A list in `model`, one entry per thread that accepts its own connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// The list's name in `model` (`loops`, `rings`), which is also what the report calls
    /// its entries.
    pub list: &'static str,
    /// The counter of connections each entry took.
    pub taken: &'static str,
    /// How many entries there are.
    pub count: Count,
}

/// What a version starts for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerConnection {
    Thread,
    Process,
}

/// A variant of a version: a name, and the options that select it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    pub args: &'static [&'static str],
}

/// How the fault matrix runs a version: the options that make its model's limits show
/// with a handful of clients, and what the model then does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matrix {
    pub args: &'static [&'static str],
    pub behaviour: Behaviour,
}

/// What a concurrency model does, in the terms the fault matrix's expectations are written
/// in: the same terms describe a server the workspace did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// How many clients it serves at once.
    pub at_once: AtOnce,
    /// Whether a crash while serving one client spares the others: a process per
    /// connection.
    pub isolates_crashes: bool,
}

/// How many clients a server serves at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtOnce {
    /// One: everyone else waits (an iterative server, a pool of one thread).
    One,
    /// Up to a cap; newcomers past it wait in the kernel's backlog.
    Capped(usize),
    /// As many as connect: a thread or a process each.
    Unbounded,
}

/// The versions, in the order of the series.
pub const VERSIONS: &[Version] = &[
    V1_BLOCKING,
    V2_THREAD_PER_CONN,
    V2_PROCESS_PER_CONN,
    V3_THREAD_POOL,
    V4_NIO,
    V4_SYSCALLS,
    V5_REACTOR_PER_CORE,
    V6_ASYNC,
    V7_URING_PER_CORE,
];

/// The options every version's matrix run holds a capped server to: four connections.
const CAP: &[&str] = &["--max-connections", "4"];

pub const V1_BLOCKING: Version = Version {
    name: "v1-blocking",
    addr: "127.0.0.1:8081",
    model: "one thread serves one client at a time, to the end",
    help: "v1-blocking: the iterative server. It serves one client until that client \
          leaves, then accepts the next; everyone else waits in the listen backlog.",
    hints: "",
    options: "none",
    fixes: "(the starting point)",
    costs: "a second client waits until the first leaves",
    example: &[],
    chapter: "v1-blocking.md",
    per_connection: None,
    variants: &[],
    matrix: Matrix {
        args: &[],
        behaviour: Behaviour { at_once: AtOnce::One, isolates_crashes: false },
    },
    promises: Promises::NONE,
    handlers: Handlers::OnItsConnection,
};

pub const V2_THREAD_PER_CONN: Version = Version {
    name: "v2-thread-per-conn",
    addr: "127.0.0.1:8082",
    model: "a new thread per connection",
    help: "v2-thread-per-conn: a new thread for every connection. No client waits for \
          another, but every open connection, even an idle one, costs a thread.",
    hints: "Watch the threads grow: curl -s http://{addr}/stats",
    options: "none",
    fixes: "nobody waits for anybody",
    costs: "a thread per connection, idle or not",
    example: &[],
    chapter: "v2-per-connection.md",
    per_connection: Some(PerConnection::Thread),
    variants: &[],
    matrix: Matrix {
        args: &[],
        behaviour: Behaviour { at_once: AtOnce::Unbounded, isolates_crashes: false },
    },
    promises: Promises::NONE,
    handlers: Handlers::OnItsConnection,
};

pub const V2_PROCESS_PER_CONN: Version = Version {
    name: "v2-process-per-conn",
    addr: "127.0.0.1:8083",
    model: "a `fork()` per connection",
    help: "v2-process-per-conn: the parent accepts and forks; a child process serves each \
          connection and exits. No client waits for another, each costs a process, and \
          the children share nothing: /stats shows only the answering child's counters.",
    hints: "See the children: ps --ppid $(pgrep -o -x v2-process-per-) -o pid,comm",
    options: "none",
    fixes: "nobody waits for anybody; a crash takes one client, not all",
    costs: "a whole process per connection; nothing shared",
    example: &[],
    chapter: "v2-per-connection.md",
    per_connection: Some(PerConnection::Process),
    variants: &[],
    matrix: Matrix {
        args: &[],
        behaviour: Behaviour { at_once: AtOnce::Unbounded, isolates_crashes: true },
    },
    promises: Promises::NONE,
    handlers: Handlers::OnItsConnection,
};

pub const V3_THREAD_POOL: Version = Version {
    name: "v3-thread-pool",
    addr: "127.0.0.1:8084",
    model: "a fixed pool of threads, each serving a whole connection",
    help: "v3-thread-pool: a fixed pool of worker threads, each serving one whole \
          connection at a time. Threads stay flat however many clients connect, but as \
          many idle clients as there are workers leave every newcomer waiting in the \
          queue.",
    hints: "See the pool: curl -s http://{addr}/stats",
    options: "`--threads`, default 10",
    fixes: "threads no longer grow with clients",
    costs: "idle clients can hold every thread",
    example: &["--threads", "10"],
    chapter: "v3-thread-pool.md",
    per_connection: None,
    variants: &[],
    // One thread, so that a client holding it shows.
    matrix: Matrix {
        args: &["--threads", "1"],
        behaviour: Behaviour { at_once: AtOnce::One, isolates_crashes: false },
    },
    promises: Promises { sizes: &[("pool_size", Count::Exactly(10))], spread: None },
    handlers: Handlers::OnItsConnection,
};

pub const V4_NIO: Version = Version {
    name: "v4-nio",
    addr: "127.0.0.1:8085",
    model: "an event loop (epoll, through `mio`) hands ready connections to a pool of \
            workers: Acceptor → Poller → workers, as Tomcat's NIO connector",
    help: "v4-nio: I/O multiplexing like Tomcat's NIO connector. An acceptor thread \
          accepts, a poller thread watches every connection with epoll (through mio), \
          and a pool of workers serves only the connections that have something to read. \
          Idle clients cost no thread.",
    hints: "Watch the machinery: curl -s http://{addr}/stats\nSee the event loop's \
           weakness: --workers 0, then /cpu?ms=2000 beside /hello",
    options: "`--workers`, default 10; `--max-connections`, default 16384",
    fixes: "idle clients cost no thread",
    costs: "one poller thread, and a hand-off per request; a slow handler still holds a worker",
    example: &["--workers", "10"],
    chapter: "v4-nio.md",
    per_connection: None,
    variants: &[],
    // One worker, so that a handler holding it shows.
    matrix: Matrix {
        args: &["--workers", "1", "--max-connections", "4"],
        behaviour: Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false },
    },
    promises: Promises { sizes: &[("workers", Count::Exactly(10))], spread: None },
    handlers: Handlers::HandedToWorkers,
};

pub const V4_SYSCALLS: Version = Version {
    name: "v4-syscalls",
    addr: "127.0.0.1:8086",
    model: "one event loop, handlers inline, written on the kernel interface `--api` names: \
            select, poll, epoll (level- or edge-triggered) or io_uring",
    help: "v4-syscalls: one event loop on one thread, written directly on the kernel \
          interface --api names (select, poll, epoll, epoll-et, io-uring), handlers \
          inline. The same server five times; only the way it waits for sockets differs.",
    hints: "Compare the waits: curl -s http://{addr}/stats (model.waits, events_per_wait, \
           wait_secs)\nSee select's limit: more than 1,020 connections (python3 \
           scripts/hold-idle.py {addr} 1100)",
    options: "`--api`, default `epoll`; `--max-connections`, default 16384",
    fixes: "the kernel interface is seen, and measured",
    costs: "select stops at 1,024 descriptors; select and poll pay for every idle connection \
            on every wait",
    example: &["--api", "poll"],
    chapter: "kernel-waits.md",
    per_connection: None,
    variants: &[
        Variant { name: "select", args: &["--api", "select"] },
        Variant { name: "poll", args: &["--api", "poll"] },
        Variant { name: "epoll", args: &["--api", "epoll"] },
        Variant { name: "epoll-et", args: &["--api", "epoll-et"] },
        Variant { name: "io-uring", args: &["--api", "io-uring"] },
    ],
    matrix: Matrix {
        args: CAP,
        behaviour: Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false },
    },
    promises: Promises::NONE,
    handlers: Handlers::OneLoop,
};

pub const V5_REACTOR_PER_CORE: Version = Version {
    name: "v5-reactor-per-core",
    addr: "127.0.0.1:8087",
    model: "an event loop per core, each with its own `SO_REUSEPORT` listener and its own \
            connections, handlers inline",
    help: "v5-reactor-per-core: an event loop per core, as nginx and Netty do it. Each \
          loop thread has its own listening socket (SO_REUSEPORT) and serves the \
          connections it accepted, handlers included, with no hand-off to another \
          thread.",
    hints: "See how the kernel spread the connections: curl -s http://{addr}/stats\nSee a \
           loop stall: --loops 2, then /cpu?ms=3000 beside a few /hello",
    options: "`--loops`, default: the cores; `--max-connections`, default 16384",
    fixes: "no hand-off per request",
    costs: "a slow handler stalls its whole loop; connections spread by hash, not by load",
    example: &["--loops", "2"],
    chapter: "v5-reactor-per-core.md",
    per_connection: None,
    variants: &[],
    matrix: Matrix {
        args: &["--loops", "2", "--max-connections", "4"],
        behaviour: Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false },
    },
    promises: Promises {
        sizes: &[],
        spread: Some(Spread { list: "loops", taken: "accepted", count: Count::Cores }),
    },
    handlers: Handlers::LoopPerCore,
};

pub const V6_ASYNC: Version = Version {
    name: "v6-async",
    addr: "127.0.0.1:8088",
    model: "tokio: a task per connection, written like v2, run by a few worker threads \
            with work stealing over one shared I/O driver",
    help: "v6-async: the same server on tokio. A task per connection, written as straight \
          as v2's thread per connection; tokio's runtime (worker threads with work \
          stealing, over one epoll-based I/O driver) does what v4 and v5 do by hand.",
    hints: "Watch the tasks: curl -s http://{addr}/stats\nBlocking inside async: --workers \
           2, then two /sleep?ms=3000 beside a /hello; then the same with --blocking \
           spawn",
    options: "`--workers`, default: the cores; `--blocking inline` or `spawn`; \
              `--max-connections`, default 16384",
    fixes: "the event loop is no longer hand-written",
    costs: "blocking inside a task stalls a runtime worker, invisibly",
    example: &["--workers", "2"],
    chapter: "v6-async.md",
    per_connection: None,
    variants: &[],
    matrix: Matrix {
        args: &["--workers", "2", "--max-connections", "4"],
        behaviour: Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false },
    },
    promises: Promises { sizes: &[("runtime_workers", Count::Cores)], spread: None },
    handlers: Handlers::RuntimeWorkers,
};

pub const V7_URING_PER_CORE: Version = Version {
    name: "v7-uring-per-core",
    addr: "127.0.0.1:8089",
    model: "v5's loop per core with completion instead of readiness: an io_uring per core, \
            multishot accept and receive into provided buffers, batched submissions, \
            handlers inline",
    help: "v7-uring-per-core: v5's design on io_uring. Each ring thread has its own \
          listening socket (SO_REUSEPORT) and io_uring: one multishot accept, one multishot \
          receive per connection taking buffers from a shared provided-buffer ring only \
          when bytes arrive, and every send and re-arm of a turn submitted in the one \
          io_uring_enter that waits. Needs Linux 6.1 and io_uring allowed.",
    hints: "See the batching: curl -s http://{addr}/stats (model.rings: enters, \
           submissions, completions, buffers_in_use)\nSee a ring stall: --rings 1, then \
           /sleep?ms=3000 beside a /hello",
    options: "`--rings`, default: the cores; `--buffers`, default 256; `--batch-wait-us`, \
              default 50; `--max-connections`, default 16384",
    fixes: "a system call carries many requests' I/O; idle connections hold no buffer",
    costs: "a slow handler still stalls its ring; only where io_uring is allowed",
    example: &["--rings", "2"],
    chapter: "v7-uring-per-core.md",
    per_connection: None,
    variants: &[],
    matrix: Matrix {
        args: &["--rings", "2", "--max-connections", "4"],
        behaviour: Behaviour { at_once: AtOnce::Capped(4), isolates_crashes: false },
    },
    promises: Promises {
        sizes: &[],
        spread: Some(Spread { list: "rings", taken: "accepted", count: Count::Cores }),
    },
    handlers: Handlers::LoopPerCore,
};

/// The version called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Version> {
    VERSIONS.iter().find(|v| v.name == name)
}

impl Version {
    /// The port of its default address.
    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or(0)
    }

    /// The command that runs it by hand, with its example options.
    pub fn command(&self) -> String {
        let mut command = format!("cargo run -p {}", self.name);
        if !self.example.is_empty() {
            command += &format!(" -- {}", self.example.join(" "));
        }
        command
    }
}

pub mod tables;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_are_unique_and_in_order() {
        for (i, v) in VERSIONS.iter().enumerate() {
            assert!(v.port() > 0, "{}: no port in {}", v.name, v.addr);
            for w in &VERSIONS[i + 1..] {
                assert_ne!(v.name, w.name);
                assert!(v.port() < w.port(), "{} and {}: ports follow the series", v.name, w.name);
            }
        }
        assert_eq!(find("v3-thread-pool").map(|v| v.port()), Some(8084));
        assert_eq!(find("v9"), None);
    }

    #[test]
    fn every_chapter_exists() {
        for v in VERSIONS {
            let chapter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/src")
                .join(v.chapter);
            assert!(chapter.is_file(), "{}: no chapter {}", v.name, chapter.display());
        }
    }
}

/// Where a version runs its handlers, which decides whom a slow one holds up: what the
/// grader tells one event loop from another by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handlers {
    /// On the thread or process that serves the whole connection: a slow handler holds
    /// up its own client only.
    OnItsConnection,
    /// Inline on the one event loop: a slow handler stalls every client.
    OneLoop,
    /// Inline on one of several event loops, each with connections of its own: a slow
    /// handler stalls the clients of its loop.
    LoopPerCore,
    /// Inline on a runtime's few worker threads, which steal work from each other: one slow
    /// handler stalls nobody, as many as there are workers stall everyone.
    RuntimeWorkers,
    /// Handed by the event loop to a pool of workers: slow handlers stall nobody.
    HandedToWorkers,
}

/// What a version's entry says of its model, in the terms a grader observes.
impl Version {
    /// Whether it serves one client at a time by nature: the fault matrix holds it to one
    /// without an option to make it so.
    pub fn serial(&self) -> bool {
        self.matrix.behaviour.at_once == AtOnce::One && self.matrix.args.is_empty()
    }

    /// For a version that serves whole connections on a fixed pool of threads, the options
    /// that give it a pool of `size`. The fault matrix shrinks such a pool to one thread
    /// with an option (v3's `--threads 1`), so these are its options with `size` for the one.
    pub fn pool_options(&self, size: usize) -> Option<Vec<String>> {
        let one_by_option =
            self.matrix.behaviour.at_once == AtOnce::One && !self.matrix.args.is_empty();
        (self.per_connection.is_none() && one_by_option).then(|| {
            let size = size.to_string();
            self.matrix
                .args
                .iter()
                .map(|&a| if a == "1" { size.clone() } else { a.into() })
                .collect()
        })
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;

    #[test]
    fn every_version_says_how_it_serves() {
        let serial: Vec<_> = VERSIONS.iter().filter(|v| v.serial()).map(|v| v.name).collect();
        assert_eq!(serial, ["v1-blocking"]);
        let pools: Vec<_> =
            VERSIONS.iter().filter_map(|v| Some((v.name, v.pool_options(4)?))).collect();
        assert_eq!(pools, [("v3-thread-pool", vec!["--threads".to_owned(), "4".to_owned()])]);
    }
}
