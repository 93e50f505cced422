//! What every server version shares, so that two neighbouring versions differ only in how
//! they handle many connections:
//!
//! * [`codec`]: the incremental decoder for the line protocol and HTTP/1.x;
//! * [`response`]: replies, written in the protocol the request came in;
//! * [`dispatcher`] and [`handlers`]: the articles' DispatcherServlet, HandlerMapping and
//!   HandlerAdapter, and the built-in routes;
//! * [`stats`] and [`procfs`]: the figures `/stats` shows;
//! * [`connection`]: a connection's conversation, and the blocking loop v1–v3 share;
//! * [`server`], [`shutdown`] and [`cli`]: settings, accept errors, graceful shutdown,
//!   the command line, logs;
//! * [`child`]: a server started as a child process (tests, the load generator);
//! * `testkit` (feature `testkit`): helpers for every version's tests.

pub mod child;
pub mod cli;
pub mod codec;
pub mod connection;
pub mod dispatcher;
pub mod error;
pub mod handlers;
pub mod procfs;
pub mod response;
pub mod server;
pub mod shutdown;
pub mod stats;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use child::ChildServer;
pub use codec::{Decoder, Inbox, Protocol, ProtocolError, Request};
pub use connection::{Closed, Phase, Session, handle_connection, serve_connection};
pub use dispatcher::{Dispatcher, Handler, HandlerMapping};
pub use error::Error;
pub use response::{Reply, Response};
pub use server::{Config, Shutdown, accept_failed};
pub use stats::Stats;
