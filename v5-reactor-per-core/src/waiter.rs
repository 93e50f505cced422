//! What v5's loops wait with: `mio`, where v4-syscalls calls the kernel itself.
//!
//! On Linux a `mio::Poll` is an epoll instance, and every registration is edge-triggered:
//! the loop hears of a socket when something new arrives, so it reads until drained
//! (`common`'s turn does) and comes back by itself to a connection it stopped serving
//! early. On macOS or FreeBSD the same code would wait with kqueue: the portability is
//! what mio adds, and what nginx's and Netty's event modules add to theirs.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use common::event_loop::{Interest, Ready, Waiter};
use mio::unix::SourceFd;
use mio::{Events, Poll, Token};

/// A `mio::Poll` and the buffer its waits fill.
#[derive(Debug)]
pub struct Mio {
    poll: Poll,
    events: Events,
}

impl Mio {
    pub fn new() -> io::Result<Self> {
        Ok(Self { poll: Poll::new()?, events: Events::with_capacity(1024) })
    }
}

impl Waiter for Mio {
    // On Linux mio waits in epoll_wait (kqueue elsewhere, which this workspace never runs).
    const CALL: &'static str = "epoll_wait";

    // ANCHOR: watch
    fn watch(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let interest = match interest {
            Interest::Read => mio::Interest::READABLE,
            Interest::ReadWrite => mio::Interest::READABLE | mio::Interest::WRITABLE,
        };
        let registry = self.poll.registry();
        // Most calls are for a new connection; a change of interest is the rarer case.
        match registry.register(&mut SourceFd(&fd), Token(token), interest) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                registry.reregister(&mut SourceFd(&fd), Token(token), interest)
            }
            result => result,
        }
    }
    // ANCHOR_END: watch

    fn forget(&mut self, fd: RawFd) {
        // Closing the descriptor would remove it too; failing here means it already was.
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
    }

    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()> {
        self.poll.poll(&mut self.events, Some(timeout))?;
        ready.extend(self.events.iter().map(|event| Ready {
            token: event.token().0,
            // EPOLLRDHUP or EPOLLHUP: the client may have closed; read to the end.
            read_closed: event.is_read_closed(),
        }));
        Ok(())
    }
}
