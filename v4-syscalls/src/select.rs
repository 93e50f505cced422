//! Waiting with `select(2)`, the oldest interface (4.2BSD, 1983).
//!
//! Each call hands the kernel two bitmaps (`fd_set`: one bit per descriptor number, for
//! reading and for writing), which it copies in, scans bit by bit up to the highest
//! descriptor, and copies back with only the ready bits left set; the loop then scans them
//! again to find those bits. Cost per call: O(highest descriptor), however few are ready,
//! and both sets are rebuilt every time because the kernel overwrites them.
//!
//! The bitmap has a fixed size, `FD_SETSIZE` = 1,024 bits: a descriptor numbered 1,024 or
//! more cannot be watched at all (nix's `FdSet::insert` panics on it; C code silently
//! writes past the array). [`Select::watch`] refuses such a descriptor with an error, and
//! the loop closes that connection and keeps serving the others.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

use common::event_loop::{Interest, Ready, Waiter};

/// The watched descriptors, indexed by descriptor number: select's own layout.
#[derive(Debug, Default)]
pub struct Select {
    watched: Vec<Option<(usize, Interest)>>,
}

impl Waiter for Select {
    const CALL: &'static str = "select";

    fn watch(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let index = usize::try_from(fd).map_err(|_| io::Error::other("negative descriptor"))?;
        if index >= FD_SETSIZE {
            return Err(io::Error::other(format!(
                "descriptor {fd} is past select's FD_SETSIZE ({FD_SETSIZE}): an fd_set has no bit for it"
            )));
        }
        if self.watched.len() <= index {
            self.watched.resize(index + 1, None);
        }
        self.watched[index] = Some((token, interest));
        Ok(())
    }

    fn forget(&mut self, fd: RawFd) {
        if let Some(slot) = usize::try_from(fd).ok().and_then(|i| self.watched.get_mut(i)) {
            *slot = None;
        }
    }

    // ANCHOR: wait
    fn wait(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<()> {
        let (mut readable, mut writable) = (FdSet::new(), FdSet::new());
        // SAFETY: every descriptor in `watched` is open: the loop forgets a descriptor
        // before it closes it, and the borrows end with this call.
        let borrow = |fd: usize| unsafe { BorrowedFd::borrow_raw(fd as RawFd) };
        for (fd, watched) in self.watched.iter().enumerate() {
            if let Some((_, interest)) = watched {
                readable.insert(borrow(fd));
                if *interest == Interest::ReadWrite {
                    writable.insert(borrow(fd));
                }
            }
        }
        let mut timeout = TimeVal::microseconds(timeout.as_micros() as i64);
        select(None, &mut readable, &mut writable, None, &mut timeout)?;
        // The kernel left only the ready bits set; finding them is another full scan.
        for (fd, watched) in self.watched.iter().enumerate() {
            if let Some((token, _)) = watched
                && (readable.contains(borrow(fd)) || writable.contains(borrow(fd)))
            {
                ready.push(Ready::level(*token));
            }
        }
        Ok(())
    }
    // ANCHOR_END: wait
}
