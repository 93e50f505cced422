//! What every version's accept loop needs around it: the settings it runs with and what
//! to do when `accept` fails. Stopping is in [`crate::shutdown`].

use std::io;
use std::time::Duration;

use nix::errno::Errno;

use crate::evented::Timeouts;
use crate::overload::Shedding;

pub use crate::shutdown::Shutdown;

/// How long a request's head may take from its first byte, or its body may pause, when
/// nobody says: 20 s. For scale: Tomcat's `connectionTimeout` is 60 s built in and 20 s in
/// its shipped `server.xml`, but is a read timeout, the longest silence between two reads:
/// from `accept` through the request line and headers, through the body too unless
/// `disableUploadTimeout` is `false` (it is `true` by default), and the default of
/// `keepAliveTimeout`; a head trickled in steadily never trips it. nginx's
/// `client_header_timeout` and `client_body_timeout` (60 s each) bound what this bounds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections the kernel may queue on a listening socket before they are accepted, when
/// nobody says (`--backlog`).
pub const DEFAULT_BACKLOG: i32 = 1024;

/// A version's settings: those every version shares, and its model's own in `model` (a
/// pool's size, a loop count; `()` for a version with none). One type for all, so a
/// version declares only what its model adds.
///
/// It also carries the server's live [`Shutdown`] handle, which is state, not a setting.
/// That is deliberate: the blocking versions hand a clone of the config to every
/// connection they serve, and a connection needs both its timeouts and the shutdown (to be
/// tracked, so a stop can end its wait for a request); one value passed down keeps every
/// version's accept loop to the same few words.
#[derive(Debug, Clone)]
pub struct Config<M = ()> {
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request must arrive whole within this long of its first byte (its head), with no
    /// pause longer than this in its body; see [`crate::session::Phase`].
    pub request_timeout: Duration,
    /// The listen backlog: of the socket the server starts with and, in a version with a
    /// socket per loop (v5, v7), of each loop's own.
    pub backlog: i32,
    /// What the server refuses past its capacity: off by default (see
    /// [`crate::overload`]).
    pub shedding: Shedding,
    /// Set to make the accept loop return.
    pub shutdown: Shutdown,
    /// The model's own settings.
    pub model: M,
}

impl<M: Default> Default for Config<M> {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            backlog: DEFAULT_BACKLOG,
            shedding: Shedding::default(),
            shutdown: Shutdown::new(),
            model: M::default(),
        }
    }
}

impl<M> Config<M> {
    /// The shared settings at their defaults, with `model` as the model's own.
    pub fn new(model: M) -> Self {
        Config::<()>::default().with(model)
    }

    /// The shared settings alone, as a connection is handed them.
    pub fn shared(&self) -> Config {
        self.clone_with(())
    }

    fn clone_with<N>(&self, model: N) -> Config<N> {
        let shutdown = self.shutdown.clone();
        Config {
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            backlog: self.backlog,
            shedding: self.shedding,
            shutdown,
            model,
        }
    }

    /// The same shared settings, with `model` as the model's own.
    pub fn with<N>(self, model: N) -> Config<N> {
        let Config { idle_timeout, request_timeout, backlog, shedding, shutdown, .. } = self;
        Config { idle_timeout, request_timeout, backlog, shedding, shutdown, model }
    }

    /// The timeouts an event loop checks its connections against.
    pub fn timeouts(&self) -> Timeouts {
        self.into()
    }
}

impl<M> From<&Config<M>> for Timeouts {
    fn from(config: &Config<M>) -> Self {
        Self { idle: config.idle_timeout, request: config.request_timeout }
    }
}

/// The cores this process may run on: how many loops (v5), rings (v7) and runtime workers
/// (v6) a version runs when nobody says, one per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How long to pause after `accept` fails for want of descriptors or memory. `accept`
/// would fail again at once, and retrying in a loop would burn a core doing nothing.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether `accept` failed for want of descriptors or memory, so that trying again at
/// once would fail again.
pub fn is_exhaustion(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(errno, Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM))
}

/// Logs a failed `accept` and, when the cause is exhaustion rather than one bad
/// connection, pauses so the loop does not spin.
pub fn accept_failed(error: &io::Error) {
    let errno = error.raw_os_error().map(Errno::from_raw);
    match errno {
        _ if is_exhaustion(error) => {
            tracing::warn!("accept failed: {error}; pausing {ACCEPT_BACKOFF:?} before retrying");
            std::thread::sleep(ACCEPT_BACKOFF);
        }
        // The client gave up between the handshake and our accept, or a signal arrived.
        Some(Errno::ECONNABORTED | Errno::EINTR | Errno::EPROTO) => {
            tracing::debug!("accept: {error}");
        }
        _ => {
            tracing::warn!("accept failed: {error}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
