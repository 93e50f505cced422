//! Waiting with `epoll(7)` (merged in Linux 2.5.44, 2002; first stable in 2.6.0, 2003): the
//! interest list lives in the kernel.
//!
//! `epoll_ctl` adds, changes or removes one descriptor, once, not on every wait. The
//! kernel then keeps a ready list, filled by the sockets themselves as data arrives, and
//! `epoll_wait` copies out only that list. Cost per wait: O(ready), however many are
//! watched, which is why ten thousand idle connections cost it nothing. The price is a
//! system call per change of interest: v4-nio pays one `epoll_ctl` per hand-off to a
//! worker, to re-arm the socket; this loop pays one when a connection arrives (an ADD) and
//! two when it starts or stops waiting to write (an ADD that fails with EEXIST, then MOD).
//!
//! Level- or edge-triggered is one flag, [`Trigger`]. Level-triggered reports a
//! descriptor at every wait while it is readable; edge-triggered only when something new
//! arrives, so the loop must read until the socket is drained (`common`'s turn does:
//! until `WouldBlock` or a short read) and must come back by itself to a connection it
//! stopped serving early (the loop's `again` list), or those bytes wait forever.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{self, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use common::event_loop::{Interest, Ready, Waiter};

/// Level- or edge-triggered readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Level,
    Edge,
}

/// An epoll instance and the buffer its waits fill.
#[derive(Debug)]
pub struct Epoll {
    epoll: epoll::Epoll,
    trigger: Trigger,
    events: Vec<EpollEvent>,
}

impl Epoll {
    pub fn new(trigger: Trigger) -> io::Result<Self> {
        let epoll = epoll::Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Self { epoll, trigger, events: vec![EpollEvent::empty(); 1024] })
    }
}

impl Waiter for Epoll {
    const CALL: &'static str = "epoll_wait";

    // ANCHOR: watch
    fn watch(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        // EPOLLRDHUP: the wait says when the client has closed its side, so a turn knows
        // whether a short read may be the last one (see `common::evented::fill_inbox`).
        let mut flags = match interest {
            Interest::Read => EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP,
            Interest::ReadWrite => {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLOUT
            }
        };
        if self.trigger == Trigger::Edge {
            flags |= EpollFlags::EPOLLET;
        }
        let mut event = EpollEvent::new(flags, token as u64);
        // SAFETY: `fd` is open: the loop watches only descriptors it holds.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        // Most calls add a new connection; a change of interest is the rarer case, and
        // pays for the second call.
        match self.epoll.add(fd, event) {
            Err(Errno::EEXIST) => self.epoll.modify(fd, &mut event)?,
            result => result?,
        }
        Ok(())
    }
    // ANCHOR_END: watch

    fn forget(&mut self, fd: RawFd) {
        // SAFETY: called before the descriptor is closed (closing would remove it too).
        let _ = self.epoll.delete(unsafe { BorrowedFd::borrow_raw(fd) });
    }

    // ANCHOR: wait
    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()> {
        let timeout = EpollTimeout::try_from(timeout).unwrap_or(EpollTimeout::MAX);
        // Only the ready descriptors come back: nothing to scan.
        let n = self.epoll.wait(&mut self.events, timeout)?;
        let closed = EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        ready.extend(self.events[..n].iter().map(|event| Ready {
            token: event.data() as usize,
            read_closed: event.events().intersects(closed),
        }));
        Ok(())
    }
    // ANCHOR_END: wait
}
