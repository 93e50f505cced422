//! The command line every server shares, the listening socket, and logging.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::dispatcher::Dispatcher;
use crate::error::Error;
use crate::server::{Config, DEFAULT_BACKLOG, DEFAULT_REQUEST_TIMEOUT};

/// Options every server version takes, beside its model's own in [`Args`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on. Each version has its own default port so all can run side
    /// by side; port 0 picks a free one (the chosen address is printed on start-up)
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,

    /// Close a connection after this many seconds without a complete request
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub idle_timeout: u64,

    /// Close a connection whose request head is not whole this many seconds after its
    /// first byte, or whose body pauses this long (a slowloris client trickling headers)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout: u64,

    /// Connections the kernel completes and queues before the server accepts them (capped
    /// by the kernel at net.core.somaxconn)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG)]
    pub backlog: i32,

    /// Answer 503 (with Retry-After), without running its handler, a request that waited
    /// longer than this for a thread to serve it: 50ms, 2s. Off by default
    #[arg(long, value_name = "DURATION", value_parser = crate::overload::parse_duration)]
    pub max_queue_wait: Option<Duration>,

    /// Before running a handler, look whether the client has closed or reset, and if so
    /// do not run it. A client that half-closes after its request (nc -N) then
    /// gets no answer, hence off by default
    #[arg(long)]
    pub skip_departed: bool,

    /// Also serve GET /abort, a handler that crashes the process (abort, as a segfault
    /// in a native library would), to see what one crash takes down: everything, in a
    /// threaded server; one connection, in the fork version. Off by default, since any
    /// client could then stop the server
    #[arg(long)]
    pub allow_abort: bool,

    /// Record what every thread does (waits, reads, handlers, writes, hand-offs) and write
    /// it to FILE as a timeline in the Chrome trace event format (Perfetto,
    /// chrome://tracing; `loadgen timeline` draws it). Off by default
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,

    /// Stop recording (and write the --trace file) this long after the start: 500ms, 10s
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = crate::overload::parse_duration)]
    pub trace_for: Duration,

    /// Stop recording (and write the --trace file) at this many events, which bounds the
    /// recorder's memory (144 bytes an event: 21 MB at the default); with --trace-live,
    /// the window keeps its newest events and holds less than its 3 s when they are more
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRACE_EVENTS,
          value_parser = at_least_one)]
    pub trace_events: usize,

    /// Keep recording the last seconds in memory, for GET /trace?ms=N (the live page's
    /// timeline), for as long as the server runs
    #[arg(long)]
    pub trace_live: bool,
}

/// The events a recording holds at most when nobody says: 21 MB of them (see
/// `trace::EVENT_BYTES`).
pub const DEFAULT_TRACE_EVENTS: usize = 150_000;

impl ServerArgs {
    /// The shared settings these options give, with a new shutdown handle.
    pub fn config(&self) -> Config {
        Config {
            idle_timeout: Duration::from_secs(self.idle_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            backlog: self.backlog,
            shedding: crate::overload::Shedding {
                max_queue_wait: self.max_queue_wait,
                skip_departed: self.skip_departed,
            },
            ..Config::default()
        }
    }

    /// What the recorder is asked to do.
    pub fn trace_settings(&self) -> crate::trace::Settings {
        crate::trace::Settings {
            file: self.trace.clone(),
            live: self.trace_live,
            duration: self.trace_for,
            max_events: self.trace_events,
        }
    }
}

/// Whether other sockets may listen on the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Exclusive,
    /// `SO_REUSEPORT`: several sockets listen on one address, each with its own accept
    /// queue, and the kernel spreads new connections among them by a hash of the
    /// connection's addresses (v5's loops, nginx's `reuseport`).
    ReusePort,
}

/// A listening socket on `addr` with `SO_REUSEADDR`, and `SO_REUSEPORT` when shared.
/// `SO_REUSEADDR` lets a restarted server bind at once instead of waiting out the old
/// connections' TIME_WAIT.
pub fn listen(addr: SocketAddr, backlog: i32, sharing: Sharing) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if sharing == Sharing::ReusePort {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// `listener` (bound with `SO_REUSEPORT`: [`Start`] with [`Sharing::ReusePort`]) and
/// `count - 1` more sockets listening on its address, one per loop of a version that gives
/// each loop its own (v5, v7). `server` names the version in the error a listener bound
/// without `SO_REUSEPORT` gets.
pub fn reuse_port_group(
    listener: TcpListener,
    count: usize,
    backlog: i32,
    server: &str,
) -> std::io::Result<Vec<TcpListener>> {
    let addr = listener.local_addr()?;
    let mut listeners = vec![listener];
    for _ in 1..count {
        let socket = listen(addr, backlog, Sharing::ReusePort).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "a second socket on {addr} ({e}); {server}'s listener must be bound with \
                     SO_REUSEPORT"
                ),
            )
        })?;
        listeners.push(socket);
    }
    Ok(listeners)
}

/// The parser of a thread count (`--threads`, `--loops`, `--rings`, `--workers`): 1 to
/// 65,535, so clap refuses 0 with its own message instead of a server clamping it.
pub fn thread_count() -> impl clap::builder::TypedValueParser<Value = usize> {
    use clap::builder::TypedValueParser as _;
    clap::value_parser!(u16).range(1..).map(usize::from)
}

/// The parser of `--max-connections`: a count of at least 1, refused by clap otherwise (a
/// cap of 0 would never let a connection in).
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(e) => Err(e.to_string()),
    }
}

/// The name clap gives `value` on the command line (`--blocking spawn`), derived from its
/// variant's; `/stats` and the logs show the same, so it is written nowhere else.
pub fn value_name<V: clap::ValueEnum>(value: &V) -> String {
    // `None` only for a variant marked `#[value(skip)]`, which no version has.
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

/// A version's whole `main`: parses its command line (its options `A`; `help` and
/// `hints` for `--help`, where `{addr}` in `hints` stands for `default_addr`, which is the
/// `--addr` default), then runs `serve` with it. A version's `main.rs` passes its registry
/// entry's fields, so what `--help` says of a version is written once.
pub fn main<A: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    default_addr: &'static str,
    help: &'static str,
    hints: &'static str,
    serve: fn(&A) -> Result<(), Error>,
) -> Result<(), Error> {
    // After the options, whose own doc comment would otherwise be taken for the about.
    let command = A::augment_args(clap::Command::new(name).version(env!("CARGO_PKG_VERSION")))
        .about(help)
        .long_about(None::<&str>);
    let (host, port) = default_addr.rsplit_once(':').unwrap_or((default_addr, ""));
    let mut after_help = format!(
        "Try it: curl -v http://{default_addr}/hello, or nc {host} {port} and type GET /hello"
    );
    if !hints.is_empty() {
        after_help += &format!("\n{}", hints.replace("{addr}", default_addr));
    }
    let matches = command
        .after_help(after_help)
        .mut_arg("addr", |arg| arg.default_value(default_addr).required(false))
        .get_matches();
    let args = A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    serve(&args)
}

/// Logs to stderr with thread names, so a log shows which thread did what
/// (`conn-7`, `pool-2`, `poller`, …). The level comes from `RUST_LOG` (default `info`;
/// `RUST_LOG=debug` shows every connection).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// A version's command line: the options every version shares, and its model's own (`M`,
/// the version's `Model` when its options are its settings, or [`NoOptions`]).
#[derive(Debug, Clone, clap::Args)]
pub struct Args<M: clap::Args = NoOptions> {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub model: M,
}

/// The model's options of a version that has none of its own.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct NoOptions;

impl From<NoOptions> for () {
    fn from(NoOptions: NoOptions) {}
}

/// A version's `run`: serves `listener` with `dispatcher` until `config.shutdown`.
pub type Run<M = ()> = fn(TcpListener, Arc<Dispatcher>, Config<M>) -> std::io::Result<()>;

/// How a version starts: how its socket is bound, and who hears SIGINT and SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// With [`Sharing::ReusePort`], the version opens its other sockets on the address
    /// ([`reuse_port_group`]) and [`announce`]s it itself, once every one of them listens:
    /// a client that connects the moment it reads the line (a test, the load generator)
    /// would otherwise queue on the first socket whatever the kernel's spreading, and stay
    /// on its loop for life. With [`Sharing::Exclusive`], [`start`] announces it.
    pub sharing: Sharing,
    pub signals: Signals,
}

impl Default for Start {
    /// One socket of its own, announced at once; a thread stops the server on a signal.
    fn default() -> Self {
        Self { sharing: Sharing::Exclusive, signals: Signals::Thread }
    }
}

/// Who hears SIGINT and SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// A thread of [`crate::shutdown::on_signals`]: the first signal stops the server
    /// gracefully, a second exits at once.
    Thread,
    /// The version itself: the fork version, whose process must stay single-threaded.
    Own,
}

/// Starts a version whose settings are its options and serves until it is stopped: the
/// whole of such a version's `serve`.
pub fn serve<O, M>(server: &'static str, args: &Args<O>, run: Run<M>) -> Result<(), Error>
where
    O: clap::Args + Clone + Into<M>,
{
    let (listener, dispatcher, config) = start(server, args, Start::default())?;
    let served = run(listener, dispatcher, config);
    // Written whether the server stopped well or not: a trace of a failure is wanted too.
    crate::trace::finish();
    served?;
    Ok(())
}

/// Everything a version's `serve` does before its own `run`: start logging, open the
/// socket as `how` says, announce the address (unless the version does), build the
/// dispatcher with the built-in routes, and hand the signals to whom `how` says. The
/// settings are the shared ones with the version's options as its model's.
pub fn start<O, M>(
    server: &'static str,
    args: &Args<O>,
    how: Start,
) -> Result<(TcpListener, Arc<Dispatcher>, Config<M>), Error>
where
    O: clap::Args + Clone + Into<M>,
{
    init_tracing();
    // Before the threads start, so that every one of them records from its first span. A
    // writer thread only where the version allows threads (not the fork version).
    crate::trace::start(server, args.server.trace_settings(), how.signals == Signals::Thread)?;
    let config = args.server.config();
    let listener = listen(args.server.addr, config.backlog, how.sharing)
        .map_err(|source| Error::Bind { addr: args.server.addr, source })?;
    if how.sharing == Sharing::Exclusive {
        announce(server, &listener)?;
    }
    let dispatcher = dispatcher(server, &args.server, &listener)?;
    if how.signals == Signals::Thread {
        crate::shutdown::on_signals(&config.shutdown, listener.local_addr()?)?;
    }
    Ok((listener, dispatcher, config.with(args.model.clone().into())))
}

/// The built-in routes, and `/abort` if the command line allows it; `/stats` watches
/// `listener`'s port.
fn dispatcher(
    server: &'static str,
    args: &ServerArgs,
    listener: &TcpListener,
) -> Result<Arc<Dispatcher>, Error> {
    let stats = crate::Stats::new(server);
    stats.listening_on(listener.local_addr()?.port());
    let mut routes = crate::handlers::builtin_routes(&stats);
    if args.allow_abort {
        tracing::warn!("GET /abort is served: any client can crash this process");
        routes = routes.route("GET", "/abort", |_: &crate::Request| -> crate::Response {
            tracing::error!("GET /abort: aborting the process, on purpose");
            std::process::abort()
        });
    }
    Ok(Arc::new(Dispatcher::new(routes, stats)))
}

/// Prints the one line tests and scripts wait for, `<server> listening on <addr>`, on
/// stdout, after the socket is open.
pub fn announce(server: &str, listener: &TcpListener) -> Result<SocketAddr, Error> {
    let addr = listener.local_addr()?;
    println!("{server} listening on {addr}");
    tracing::info!(
        "try: curl -v http://{addr}/hello   or   nc {} {} then type GET /hello",
        addr.ip(),
        addr.port()
    );
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, FromArgMatches as _};

    use super::*;

    /// A model with a thread count and a cap, as v5's.
    #[derive(Debug, Clone, clap::Args)]
    struct Model {
        #[arg(long, default_value_t = crate::server::cores(), value_parser = thread_count())]
        loops: usize,
        #[arg(long, default_value_t = 16, value_parser = at_least_one)]
        max_connections: usize,
    }

    fn parse(words: &[&str]) -> Result<Args<Model>, clap::Error> {
        let command = Args::<Model>::augment_args(clap::Command::new("test"));
        let words = ["test", "--addr", "127.0.0.1:0"].iter().chain(words);
        Args::from_arg_matches(&command.try_get_matches_from(words)?)
    }

    #[test]
    fn a_count_of_zero_is_refused_by_the_command_line() {
        for option in ["--loops", "--max-connections"] {
            let error = parse(&[option, "0"]).map(|_| ()).expect_err("0 accepted");
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "{error}");
        }
        let error = parse(&["--max-connections", "0"]).map(|_| ()).expect_err("0 accepted");
        assert!(error.to_string().contains("must be at least 1"), "{error}");
    }

    #[test]
    fn the_defaults_are_computed_by_clap_and_the_backlog_reaches_the_settings() {
        let args = parse(&[]).expect("the defaults parse");
        assert_eq!(args.model.loops, crate::server::cores());
        assert_eq!(args.model.max_connections, 16);
        assert_eq!(args.server.config().backlog, DEFAULT_BACKLOG);
        let args = parse(&["--backlog", "7"]).expect("a backlog parses");
        assert_eq!(args.server.config().backlog, 7);
        assert!(args.server.config().shedding.is_off(), "shedding is off by default");
        let args = parse(&["--max-queue-wait", "50ms", "--skip-departed"]).expect("shedding");
        let shedding = args.server.config().shedding;
        assert_eq!(shedding.max_queue_wait, Some(Duration::from_millis(50)));
        assert!(shedding.skip_departed);
        assert!(parse(&["--max-queue-wait", "50"]).is_err(), "a duration needs its unit");
    }
}
