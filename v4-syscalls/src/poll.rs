//! Waiting with `poll(2)` (System V, 1986): an array of `struct pollfd { fd, events,
//! revents }` instead of bitmaps.
//!
//! No fixed limit on descriptor numbers, and the interest stays in the array between
//! calls (the kernel writes only `revents`). But every call still copies the whole array
//! into the kernel, which checks every entry, and copies it back; the loop then walks it
//! to find the nonzero `revents`. Cost per call: O(watched), so ten thousand idle
//! connections are paid for on every wait, even one that returns a single ready socket.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use common::event_loop::{Interest, Ready, Waiter};

/// The array handed to the kernel, and where each descriptor sits in it.
///
/// Raw `libc::pollfd` and `libc::poll`, not nix's `poll`: nix's `PollFd<'fd>` borrows its
/// descriptor, so an array kept between calls (what `poll` offers over `select`) would
/// borrow every connection for as long as the loop runs, while the loop owns its
/// connections elsewhere and names them to the [`Waiter`] by raw descriptor.
#[derive(Debug, Default)]
pub struct Poll {
    fds: Vec<libc::pollfd>,
    tokens: Vec<usize>,
    position: HashMap<RawFd, usize>,
}

fn events(interest: Interest) -> libc::c_short {
    match interest {
        Interest::Read => libc::POLLIN,
        Interest::ReadWrite => libc::POLLIN | libc::POLLOUT,
    }
}

impl Waiter for Poll {
    const CALL: &'static str = "poll";

    fn watch(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let entry = libc::pollfd { fd, events: events(interest), revents: 0 };
        match self.position.get(&fd) {
            Some(&at) => (self.fds[at], self.tokens[at]) = (entry, token),
            None => {
                self.position.insert(fd, self.fds.len());
                self.fds.push(entry);
                self.tokens.push(token);
            }
        }
        Ok(())
    }

    fn forget(&mut self, fd: RawFd) {
        let Some(at) = self.position.remove(&fd) else { return };
        self.fds.swap_remove(at);
        self.tokens.swap_remove(at);
        if let Some(moved) = self.fds.get(at) {
            self.position.insert(moved.fd, at);
        }
    }

    // ANCHOR: wait
    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()> {
        let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: the pointer and length describe `self.fds`, which lives through the
        // call; the kernel writes only the `revents` fields.
        let n =
            unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, millis) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // Which entries are ready? Only a walk of the whole array says.
        for (fd, &token) in self.fds.iter().zip(&self.tokens) {
            if fd.revents != 0 {
                ready.push(Ready::level(token));
            }
        }
        Ok(())
    }
    // ANCHOR_END: wait
}
