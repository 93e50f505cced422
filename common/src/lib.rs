//! What every server version shares, so that two neighbouring versions differ only in how
//! they handle many connections.
//!
//! The workspace follows two Korean articles: 「다중 접속 서버의 구현 방식」 (how
//! multi-connection servers are built: blocking, processes, threads, multiplexing), and
//! 「스프링 직접 구현하기 #5: 톰캣 - I/O Multiplexing 구현」, the Java series that builds a
//! Tomcat-like server four times, from which come the line protocol and the
//! DispatcherServlet below. "The Java article" in this crate's comments is the second.
//!
//!
//! * [`codec`]: the incremental decoder for the line protocol and HTTP/1.x;
//! * [`response`]: replies, written in the protocol the request came in;
//! * [`dispatcher`] and [`handlers`]: the Java article's DispatcherServlet, HandlerMapping
//!   and HandlerAdapter, and the built-in routes;
//! * [`stats`], [`procfs`] and [`kernel`]: the figures `/stats` shows, the kernel's
//!   among them (accept queue, TIME_WAIT, listen overflows, context switches);
//! * [`session`]: a connection's conversation (bytes in, answers out), with no I/O;
//! * [`blocking`]: the blocking model v1–v3 share, a thread per connection to its end;
//! * [`evented`] and [`limit`]: a connection as the event loops (v4, v5) serve it, and
//!   the cap on open connections;
//! * [`completion`]: a connection as the io_uring loops (v4-syscalls, v7) hold it, with
//!   what is in flight and the rules it shares with [`evented`];
//! * [`event_loop`]: the readiness loop v4-syscalls and v5 run, over any [`Waiter`]
//!   (`select`, `poll`, `epoll`, `mio`);
//! * [`overload`]: load shedding, off by default: a bound on what waits, a deadline on
//!   the wait, and not serving clients that have gone;
//! * [`server`], [`shutdown`] and [`cli`]: settings, accept errors, graceful shutdown,
//!   the command line, logs;
//! * [`trace`]: the recorder, off by default, that writes what every thread did and when
//!   (`--trace FILE`), for the timelines;
//! * `testkit` (feature `testkit`): helpers for every version's tests, and a server
//!   started as a child process (tests and the load generator); nothing of it is
//!   compiled into a server's binary.

pub mod blocking;
pub mod cli;
pub mod codec;
pub mod completion;
pub mod dispatcher;
pub mod error;
pub mod event_loop;
pub mod evented;
pub mod handlers;
pub mod kernel;
pub mod limit;
pub mod overload;
pub mod procfs;
pub mod response;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod stats;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trace;

pub use blocking::{answer_until_closed, handle_connection};
pub use codec::{Decoder, Inbox, Protocol, ProtocolError, Request};
pub use dispatcher::{Dispatcher, Handler, HandlerMapping};
pub use error::Error;
pub use event_loop::Waiter;
pub use response::{Framing, Response};
pub use server::{Config, Shutdown, accept_failed};
pub use session::{Closed, Phase, Session};
pub use stats::Stats;
