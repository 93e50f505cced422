//! A server started on a thread of this process for a test, on 127.0.0.1:0, with its
//! counters readable directly.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{TIMEOUT, thread_growth, wait_until};
use crate::dispatcher::Dispatcher;
use crate::server::{Config, Shutdown};
use crate::shutdown::DEADLINE;
use crate::stats::Stats;

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

    /// [`model`](Self::model), for a test that reads a figure before the server has
    /// surely registered it: a version registers its figures on the server's own thread
    /// once `run` starts, which can be after [`start`](Self::start) returns. Waits for the
    /// registration, then reads the figure; if it never comes, fails naming `name` and
    /// the figures the server has.
    pub fn model_once_registered(&self, name: &str) -> u64 {
        if self.stats.model(name).is_none() {
            // The wait's outcome is checked by `model`, which names what is missing.
            let _ = wait_until(TIMEOUT, || self.stats.model(name).is_some());
        }
        self.model(name)
    }

    /// Stops the server, as dropping it does, and checks that the stop took the
    /// shutdown's deadline: for a test that leaves a connection in flight, which the
    /// server must wait for until [`DEADLINE`] and no longer.
    pub fn check_stops_at_the_deadline(self) {
        let stopping = Instant::now();
        drop(self);
        let took = stopping.elapsed();
        assert!(
            took >= DEADLINE && took < DEADLINE + TIMEOUT,
            "stopped after {took:?}, not at the deadline"
        );
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

/// A dispatcher for `server` with the built-in routes and `GET /thread`, which names the
/// thread that ran the handler: for a test that asks where requests are served.
pub fn dispatcher_naming_threads(server: &'static str) -> Dispatcher {
    let stats = Stats::new(server);
    let routes =
        crate::handlers::builtin_routes(&stats).route("GET", "/thread", |_: &crate::Request| {
            crate::Response::text(200, std::thread::current().name().unwrap_or("?").to_owned())
        });
    Dispatcher::new(routes, stats)
}

/// The threads `server` grows for `connections` idle clients (see [`thread_growth`]), once
/// its gauge `name` (a thread per connection) counts every one of them.
pub fn threads_grown_per_connection(server: &TestServer, connections: usize, name: &str) -> i64 {
    let live = || server.model_once_registered(name);
    thread_growth(server.addr(), connections, || live() == connections as u64)
        .expect("connect the idle clients")
}
