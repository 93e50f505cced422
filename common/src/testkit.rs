//! Helpers for every version's tests (feature `testkit`): start a server on port 0 in this
//! process or as a child process, talk to it in either protocol, hold idle connections,
//! and count threads. They live here once so no version copies them. The fault matrix,
//! written with them, is the `harness` crate's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::Arc;

mod child;
pub mod transcript;

use crate::dispatcher::Dispatcher;
use crate::procfs;
use crate::server::{Config, Shutdown};
use crate::stats::Stats;
pub use child::ChildServer;

/// How long a test waits for anything that should happen. Generous, because the machine
/// is shared: a passing test never waits this long, a failing one fails after it.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a test waits to conclude that something does *not* happen (a starved client
/// gets no answer). Long enough that a served client would have been served many times.
pub const NO_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// A server running on a thread of this process, stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// A version's `run` function: every version has this shape, with its model's settings.
pub type RunFn<M> = fn(TcpListener, Arc<Dispatcher>, Config<M>) -> io::Result<()>;

impl TestServer {
    /// Starts version `server`'s `run` with the built-in routes on 127.0.0.1:0.
    pub fn start<M: Send + 'static>(
        server: &'static str,
        config: Config<M>,
        run: RunFn<M>,
    ) -> Self {
        Self::with_dispatcher(Dispatcher::with_builtin_routes(server), config, run)
    }

    /// Like [`start`](Self::start), with routes of the test's own (a handler that panics).
    pub fn with_dispatcher<M: Send + 'static>(
        dispatcher: Dispatcher,
        config: Config<M>,
        run: RunFn<M>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::on_listener(listener, dispatcher, config, run)
    }

    /// Like [`with_dispatcher`](Self::with_dispatcher), on a listener the test opened (one
    /// bound with `SO_REUSEPORT`, say).
    pub fn on_listener<M: Send + 'static>(
        listener: TcpListener,
        dispatcher: Dispatcher,
        config: Config<M>,
        run: RunFn<M>,
    ) -> Self {
        let addr = listener.local_addr().expect("a bound socket has an address");
        let shutdown = config.shutdown.clone();
        let dispatcher = Arc::new(dispatcher);
        let stats = Arc::clone(dispatcher.stats());
        stats.listening_on(addr.port());
        let thread = std::thread::Builder::new()
            .name(dispatcher.server().to_owned())
            .spawn(move || run(listener, dispatcher, config))
            .expect("spawn the server thread");
        Self { addr, stats, shutdown, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's counters, read directly: no request needed, so they can be read
    /// even while the server is too busy to answer one.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The version's own figure `name` from `/stats`'s `model`. Panics if the version has
    /// no such figure, so a renamed counter fails the test that reads it instead of
    /// reading as zero.
    pub fn model(&self, name: &str) -> u64 {
        match self.stats.model(name) {
            Some(value) => {
                value.as_u64().unwrap_or_else(|| panic!("model.{name} is {value}, not a count"))
            }
            None => {
                panic!("the server has no figure model.{name}: {}", self.stats.snapshot()["model"])
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger(self.addr);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A blocking server busy with a client that never leaves cannot see the flag;
        // leave that thread behind rather than hang the test.
        if wait_until(TIMEOUT, || thread.is_finished()) {
            match thread.join() {
                Ok(Err(e)) if !std::thread::panicking() => panic!("server returned an error: {e}"),
                Err(_) if !std::thread::panicking() => panic!("the server thread panicked"),
                _ => {}
            }
        }
    }
}

/// A reply read by [`Client::read_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client that speaks both protocols, for writing tests as transcripts.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<transcript::Recorded>,
}

impl Client {
    /// Connects, with reads that give up after [`TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self { reader: BufReader::new(transcript::Recorded(stream)) })
    }

    /// Wraps a stream already connected, with reads that give up after [`TIMEOUT`].
    pub fn from_stream(stream: TcpStream) -> Self {
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let _ = stream.set_nodelay(true);
        Self { reader: BufReader::new(transcript::Recorded(stream)) }
    }

    /// Changes how long a read waits before failing with `WouldBlock`.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().0.set_read_timeout(Some(timeout))
    }

    pub fn stream(&self) -> &TcpStream {
        &self.reader.get_ref().0
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        transcript::note(transcript::Direction::Sent, bytes);
        self.reader.get_mut().0.write_all(bytes)
    }

    /// Sends one line-protocol request and returns the reply line without its newline.
    pub fn line(&mut self, request: &str) -> io::Result<String> {
        self.send(format!("{request}\n").as_bytes())?;
        self.read_line()
    }

    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Sends `GET path HTTP/1.1` (keep-alive) and reads the response.
    pub fn get(&mut self, path: &str) -> io::Result<HttpResponse> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
        self.read_response()
    }

    /// Reads one HTTP response, its body by `Content-Length`.
    pub fn read_response(&mut self) -> io::Result<HttpResponse> {
        let status_line = self.read_line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP status line: {status_line}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| io::Error::other(format!("bad header: {line}")))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = HttpResponse { status, headers, body: Vec::new() };
        let length: usize =
            response.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        response.body.resize(length, 0);
        self.reader.read_exact(&mut response.body)?;
        Ok(response)
    }

    /// True if the server has closed the connection: a read returns end-of-file (or a
    /// reset) within [`TIMEOUT`] with nothing more to say.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// The transcript every version's tests open with, on one connection: `GET /hello` in
/// the line protocol, then over HTTP/1.1 with a `Server` header naming `server`.
pub fn speaks_both_protocols(client: &mut Client, server: &str) {
    let line = client.line("GET /hello").expect("an answer in the line protocol");
    assert_eq!(line, "200 Hello, World!");
    let r = client.get("/hello").expect("an answer over HTTP");
    assert_eq!((r.status, r.header("server")), (200, Some(server)), "{r:?}");
}

/// Whether a new client gets an answer to `GET /hello` within `wait`.
pub fn answered_within(addr: SocketAddr, wait: Duration) -> bool {
    let mut client = match Client::connect(addr) {
        Ok(client) => client,
        Err(_) => return false,
    };
    client.set_timeout(wait).is_ok()
        && client.line("GET /hello").is_ok_and(|r| r == "200 Hello, World!")
}

/// What [`starvation`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starvation {
    /// The newcomer was answered while the holders stayed connected.
    pub answered_while_held: bool,
    /// The newcomer was answered once the holders left (or already had been).
    pub answered_after_release: bool,
}

/// The starvation scenario the blocking versions' chapters turn on. `holders` clients each
/// make one request (so each is surely being served, by a thread or worker of its own)
/// and then stay connected without a word. A newcomer then sends `GET /hello` and waits
/// [`NO_ANSWER_WAIT`]; the holders leave; the newcomer waits up to [`TIMEOUT`] more.
pub fn starvation(addr: SocketAddr, holders: usize) -> io::Result<Starvation> {
    let mut held = Vec::with_capacity(holders);
    for _ in 0..holders {
        let mut client = Client::connect(addr)?;
        let reply = client.line("GET /hello")?;
        if reply != "200 Hello, World!" {
            return Err(io::Error::other(format!("a holder got {reply:?}")));
        }
        held.push(client);
    }
    let mut newcomer = Client::connect(addr)?;
    newcomer.set_timeout(NO_ANSWER_WAIT)?;
    newcomer.send(b"GET /hello\n")?;
    let answered_while_held = match newcomer.read_line() {
        Ok(reply) => reply == "200 Hello, World!",
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => false,
        Err(e) => return Err(e),
    };
    drop(held);
    let answered_after_release = answered_while_held || {
        newcomer.set_timeout(TIMEOUT)?;
        newcomer.read_line().is_ok_and(|r| r == "200 Hello, World!")
    };
    Ok(Starvation { answered_while_held, answered_after_release })
}

// ANCHOR: connect_all
/// Opens `n` connections to `addr` at once, each with until `timeout` for its handshake.
/// At once, because against a full accept queue each handshake takes seconds (the kernel
/// drops the SYN and the client resends it a second later, and again): one after the
/// other, 200 of them against a queue of 16 would take nine minutes.
/// Returns the connections established and the errors of the others (`TimedOut` for
/// those still waiting at the deadline).
pub fn connect_all(
    addr: SocketAddr,
    n: usize,
    timeout: Duration,
) -> io::Result<(Vec<TcpStream>, Vec<io::Error>)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsFd;

    let deadline = Instant::now() + timeout;
    let (mut done, mut failed, mut pending) = (Vec::with_capacity(n), vec![], vec![]);
    for _ in 0..n {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => done.push(socket),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => pending.push(socket),
            Err(e) => failed.push(e),
        }
    }
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> =
                pending.iter().map(|s| PollFd::new(s.as_fd(), PollFlags::POLLOUT)).collect();
            let wait = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            fds.iter().map(|fd| fd.revents().is_some_and(|r| !r.is_empty())).collect()
        };
        let mut still = Vec::with_capacity(pending.len());
        for (socket, ready) in pending.into_iter().zip(ready) {
            match (ready, socket.take_error()?) {
                (false, _) => still.push(socket),
                (true, None) => done.push(socket),
                (true, Some(e)) => failed.push(e),
            }
        }
        pending = still;
    }
    let late = || io::Error::new(io::ErrorKind::TimedOut, "no handshake before the deadline");
    failed.extend(pending.iter().map(|_| late()));
    let streams = done
        .into_iter()
        .map(|socket| {
            socket.set_nonblocking(false)?;
            Ok(TcpStream::from(socket))
        })
        .collect::<io::Result<_>>()?;
    Ok((streams, failed))
}
// ANCHOR_END: connect_all

/// Opens `n` connections that send nothing. Each one has finished its handshake when this
/// returns; whether the server has *accepted* them is for the caller to wait for.
pub fn hold_idle(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    (0..n).map(|_| TcpStream::connect_timeout(&addr, TIMEOUT)).collect()
}

/// Opens `n` idle connections to a server running in this process, waits until `settled`
/// says the server has taken them all in, and returns how many threads this process
/// gained meanwhile (from /proc). Run it in a test binary of its own: other tests'
/// threads would count too.
pub fn thread_growth(addr: SocketAddr, n: usize, settled: impl FnMut() -> bool) -> io::Result<i64> {
    let before = procfs::status(None)?.threads as i64;
    let idle = hold_idle(addr, n)?;
    if !wait_until(TIMEOUT, settled) {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the server never took in every connection",
        ));
    }
    let after = procfs::status(None)?.threads as i64;
    drop(idle);
    Ok(after - before)
}

/// Closes `stream` with a reset (RST) instead of the orderly FIN: `SO_LINGER` of zero.
pub fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// The graceful shutdown every version promises, checked against a server binary. A
/// request is in flight (`/sleep?ms=1500`, being served) and a second client is connected
/// but silent. A SIGTERM must let the request finish with its full answer, close the
/// silent client (v1, which never accepted it, leaves that to the kernel when it exits),
/// and end the process with success within the shutdown deadline.
pub fn check_graceful_shutdown(mut server: ChildServer) -> Result<(), String> {
    use nix::sys::signal::Signal;
    let fail = |what: &str, e: io::Error| format!("{what}: {e}");
    let mut busy = Client::connect(server.addr()).map_err(|e| fail("connect", e))?;
    busy.send(b"GET /sleep?ms=1500\n").map_err(|e| fail("send", e))?;
    // The request must be in its handler before the signal, and nothing outside the
    // server shows that it is (v1 cannot even answer /stats now). Reading it takes
    // microseconds; 300 ms is ample margin on a loaded machine.
    std::thread::sleep(Duration::from_millis(300));
    let mut idle = Client::connect(server.addr()).map_err(|e| fail("connect", e))?;
    std::thread::sleep(Duration::from_millis(100));
    server.signal(Signal::SIGTERM).map_err(|e| fail("SIGTERM", e))?;

    let answer = busy.read_line().map_err(|e| fail("the request in flight lost its answer", e))?;
    if answer != "200 slept 1500 ms" {
        return Err(format!("the request in flight got {answer:?}"));
    }
    if !idle.is_closed_by_server() {
        return Err("the silent connection was not closed".into());
    }
    let deadline = crate::shutdown::DEADLINE + Duration::from_secs(2);
    match server.wait_timeout(deadline).map_err(|e| fail("wait", e))? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("the server exited with {status}")),
        None => Err(format!("the server was still running {deadline:?} after SIGTERM")),
    }
}

/// The two graceful-shutdown tests for a version's binary: `common::shutdown_tests!(BINARY);`
/// in the version's `tests/shutdown.rs`.
#[macro_export]
macro_rules! shutdown_tests {
    ($binary:expr) => {
        $crate::shutdown_tests!($binary, &[]);
    };
    ($binary:expr, $args:expr) => {
        use $crate::testkit::{
            check_graceful_shutdown, check_second_signal_exits_at_once, spawn_binary,
        };

        #[test]
        fn sigterm_finishes_the_request_in_flight_and_closes_idle_clients() {
            assert_eq!(check_graceful_shutdown(spawn_binary($binary, $args)), Ok(()));
        }

        #[test]
        fn a_second_sigterm_exits_at_once() {
            assert_eq!(check_second_signal_exits_at_once(spawn_binary($binary, $args)), Ok(()));
        }
    };
}

/// A second SIGTERM ends the server at once, even with a request in flight.
pub fn check_second_signal_exits_at_once(mut server: ChildServer) -> Result<(), String> {
    use nix::sys::signal::Signal;
    let mut busy = Client::connect(server.addr()).map_err(|e| e.to_string())?;
    busy.send(b"GET /sleep?ms=8000\n").map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(200));
    server.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    match server.wait_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err("the server was still running 2 s after the second SIGTERM".into()),
    }
}

/// Starts a server binary on a free port with extra arguments.
pub fn spawn_binary(program: &str, args: &[&str]) -> ChildServer {
    let mut command = std::process::Command::new(program);
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    ChildServer::spawn(command).expect("start the server binary")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The browsers [`render_in_browser`] looks for, in order.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The first browser of [`BROWSERS`] that runs here.
fn find_browser() -> Option<&'static str> {
    BROWSERS
        .into_iter()
        .find(|name| std::process::Command::new(name).arg("--version").output().is_ok())
}

/// Whether the browser test `test` can run: true when a browser is installed. Without one
/// it is required where `CI` is set (the test fails, saying how to install one) and
/// skipped elsewhere, saying so in one line on the terminal, so `cargo test --workspace`
/// passes on a machine with only Rust.
pub fn browser_or_skip(test: &str) -> bool {
    if find_browser().is_some() {
        return true;
    }
    let install = "install Chromium to run it (Debian, Ubuntu: sudo apt-get install chromium)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: no browser found, and CI requires it: {install}"
    );
    // Straight to stderr, not through `eprintln!`, which the test harness would swallow
    // for a test that passes.
    let _ = writeln!(io::stderr(), "skipped {test}: no browser found; {install}");
    false
}

/// Loads `url` in headless Chromium, lets its scripts run for `budget` of the page's
/// (virtual) time, and returns the DOM as the browser rendered it. An error says what
/// went wrong: a missing browser (with the command that installs it), or a script error
/// on the page (with the DOM as far as it got).
pub fn render_in_browser(url: &str, budget: Duration) -> Result<String, String> {
    let browser = find_browser().ok_or(
        "no Chromium found: install it (apt-get install chromium) to run the browser tests",
    )?;
    let output = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        // The page's console on stderr, where an uncaught exception shows.
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run {browser}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{browser} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> =
        stderr.lines().filter(|l| l.contains(":CONSOLE") && l.contains("Uncaught")).collect();
    if !errors.is_empty() {
        return Err(format!(
            "script errors on {url}:\n{}\nthe browser saw:\n{dom}",
            errors.join("\n")
        ));
    }
    Ok(dom)
}

/// Threads of this process whose name starts with `prefix` (from /proc).
pub fn threads_named(prefix: &str) -> usize {
    procfs::thread_names(None)
        .map_or(0, |names| names.iter().filter(|n| n.starts_with(prefix)).count())
}

/// The inode of a socket listening on TCP `port`: what a process's descriptor for that
/// socket links to, as `socket:[inode]`.
pub fn listening_socket_inode(port: u16) -> io::Result<Option<u64>> {
    Ok(crate::kernel::listener_inodes(port)?.first().copied())
}

/// The states (`/proc/net/tcp`'s hex codes: `0A` LISTEN, `01` ESTABLISHED, `08`
/// CLOSE_WAIT, …) of the IPv4 TCP sockets on this machine whose local end is `port`.
pub fn socket_states_on(port: u16) -> io::Result<Vec<String>> {
    socket_states_where(port, 1)
}

/// The same, of the sockets whose remote end is `port`: a client's side of its
/// connections to a server there (`05` FIN_WAIT2 and `06` TIME_WAIT, after it closed first).
pub fn socket_states_to(port: u16) -> io::Result<Vec<String>> {
    socket_states_where(port, 2)
}

/// `/proc/net/tcp`'s states of the sockets whose address in column `column` (1 local, 2
/// remote) has `port`.
fn socket_states_where(port: u16, column: usize) -> io::Result<Vec<String>> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    Ok(table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl local_address rem_address st ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let end_port = fields.get(column)?.rsplit(':').next()?;
            let state = fields.get(3)?;
            (u16::from_str_radix(end_port, 16).ok()? == port).then(|| (*state).to_owned())
        })
        .collect())
}

/// The connections whose local end is TCP `port` and that are not closing from the local
/// side: ESTABLISHED, or CLOSE_WAIT (the other side has closed, this side not yet). For a
/// server's port: the connections it holds.
pub fn open_sockets_on(port: u16) -> io::Result<usize> {
    Ok(socket_states_on(port)?.iter().filter(|s| matches!(s.as_str(), "01" | "08")).count())
}

/// The sockets listening on TCP `port`: one per loop for a server whose loops each have
/// their own (`SO_REUSEPORT`).
pub fn listening_sockets_on(port: u16) -> io::Result<usize> {
    Ok(socket_states_on(port)?.iter().filter(|s| s.as_str() == "0A").count())
}

/// The inodes of the sockets process `pid` has open, from the links in `/proc/<pid>/fd`.
pub fn socket_inodes(pid: u32) -> io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while we list them is simply not there any more.
        let Ok(target) = std::fs::read_link(entry?.path()) else { continue };
        let target = target.to_string_lossy();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            inodes.extend(inode.parse::<u64>().ok());
        }
    }
    Ok(inodes)
}
