//! A connection's socket as v7 holds it: a descriptor of the process's, or, with
//! `--direct-descriptors` (Linux 5.19 for a multishot accept into the table), an index in
//! the ring's own registered file table, which only the ring's operations can name.
//!
//! A direct descriptor is what the accept hands back: the socket never enters the
//! process's file table, so no operation on it looks a descriptor up there or takes and
//! drops a reference to the file (the cost the ladder's rung measures). What the process
//! did with its descriptor, the ring does with an operation: the lingering close's
//! shutdown (`IORING_OP_SHUTDOWN`), the close (`IORING_OP_CLOSE` on the index, which is
//! free for the next accept only once that completes). TCP_NODELAY is set on the
//! listeners instead, which accepted sockets inherit. The two things a descriptor was
//! peeked or polled for (bytes waiting when a reply closes, a client gone before its
//! handler) come from the connection's own receive, which stays armed: see
//! [`common::completion::Socket`].

use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use common::completion::Socket;
use common::session::Session;

/// A connection's socket.
#[derive(Debug)]
pub(crate) enum Sock {
    Stream(TcpStream),
    /// Its index in the ring's registered file table.
    Direct(u32),
}

impl Sock {
    /// What an operation names it by.
    pub(super) fn target(&self) -> Target {
        match self {
            Self::Stream(stream) => Target::Fd(stream.as_raw_fd()),
            Self::Direct(index) => Target::Fixed(*index),
        }
    }
}

impl Socket for Sock {
    fn descriptor(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Self::Stream(stream) => stream.descriptor(),
            Self::Direct(_) => None,
        }
    }

    fn start_lingering_close(&self, session: &mut Session) -> bool {
        match self {
            Self::Stream(stream) => stream.start_lingering_close(session),
            // The ring submits the shutdown (`Connection::take_write_shutdown`).
            Self::Direct(_) => {
                session.drop_input();
                false
            }
        }
    }
}

/// What an operation names a socket by: a descriptor, or an index in the file table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Fd(RawFd),
    Fixed(u32),
}

/// Builds an operation on a [`Target`]: `$build` once with `$fd` an `io_uring::types::Fd`,
/// once with a `Fixed`, each as the crate encodes it (a fixed one sets `FIXED_FILE`).
macro_rules! on_target {
    ($target:expr, |$fd:ident| $build:expr) => {
        match $target {
            $crate::ring::socket::Target::Fd(raw) => {
                let $fd = io_uring::types::Fd(raw);
                $build
            }
            $crate::ring::socket::Target::Fixed(index) => {
                let $fd = io_uring::types::Fixed(index);
                $build
            }
        }
    };
}
pub(super) use on_target;
