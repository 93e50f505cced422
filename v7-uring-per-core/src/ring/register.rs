//! The registered ring descriptor (`IORING_REGISTER_RING_FDS`, Linux 5.18): the ring's
//! descriptor entered once in the thread's own table, so each `io_uring_enter` names it
//! by index and skips the lookup of a descriptor in the process's file table (and its
//! reference count). The io-uring crate keeps such a registration in a `Submitter`, which
//! borrows the ring and so cannot live beside it in the loop; the two calls are made here
//! directly, as `include/uapi/linux/io_uring.h` (Linux 6.12) declares them.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::IoUring;

/// `IORING_REGISTER_RING_FDS`, in the header's `enum io_uring_register_op`.
const REGISTER_RING_FDS: libc::c_uint = 20;
/// `io_uring_enter`'s flags: wait for completions, `arg` is an `io_uring_getevents_arg`,
/// and `fd` is a registered ring's index.
const ENTER_GETEVENTS: libc::c_uint = 1;
const ENTER_EXT_ARG: libc::c_uint = 8;
const ENTER_REGISTERED_RING: libc::c_uint = 16;

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `struct io_uring_getevents_arg` (`min_wait_usec` since 6.12, `pad` and zero before).
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// Registers `ring`'s descriptor for this thread, returning its index: what [`enter`]
/// names the ring by. The registration belongs to the thread and ends with it.
pub(super) fn ring_fd(ring: &IoUring, sqpoll: bool) -> io::Result<u32> {
    if sqpoll {
        // Its enter would have to say SQ_WAKEUP when the poller sleeps, which the crate's
        // submitter does and `enter` here does not.
        return Err(io::Error::new(io::ErrorKind::Unsupported, "not with SQPOLL in v7"));
    }
    let mut update = RsrcUpdate { offset: u32::MAX, resv: 0, data: ring.as_raw_fd() as u64 };
    // SAFETY: `update` is a valid io_uring_rsrc_update, one entry as the count says; the
    // kernel reads it and writes the index it chose into `offset`, and keeps no pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            REGISTER_RING_FDS,
            (&raw mut update).cast::<libc::c_void>(),
            1,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(update.offset)
}

/// `io_uring_enter` on the registered ring `index`: submits `to_submit` entries and, with
/// a `wait`, waits up to it for `want` completions (or, with a `min_wait`, for that long
/// once one is in); without, returns once they are submitted, having run the completions'
/// deferred work first if `take_in` (`want` 0).
pub(super) fn enter(
    index: u32,
    to_submit: usize,
    want: usize,
    wait: Option<Duration>,
    min_wait: Duration,
    take_in: bool,
) -> io::Result<usize> {
    let timeout = wait.map(|w| KernelTimespec {
        tv_sec: w.as_secs() as i64,
        tv_nsec: i64::from(w.subsec_nanos()),
    });
    let arg = timeout.as_ref().map(|ts| GeteventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: u32::try_from(min_wait.as_micros()).unwrap_or(u32::MAX),
        ts: std::ptr::from_ref(ts) as u64,
    });
    let (flags, argp, argsz) = match &arg {
        Some(arg) => (
            ENTER_REGISTERED_RING | ENTER_GETEVENTS | ENTER_EXT_ARG,
            std::ptr::from_ref(arg).cast::<libc::c_void>(),
            std::mem::size_of::<GeteventsArg>(),
        ),
        // No wait: GETEVENTS with no completion asked for runs the deferred work only.
        None if take_in => (ENTER_REGISTERED_RING | ENTER_GETEVENTS, std::ptr::null(), 0),
        None => (ENTER_REGISTERED_RING, std::ptr::null(), 0),
    };
    // SAFETY: `argp`, when not null, points to a valid io_uring_getevents_arg whose `ts`
    // points to a valid timespec, both alive until the call returns; the kernel reads them
    // during the call and keeps no pointer. The entries submitted were queued by the
    // caller under `push`'s contract.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            index,
            to_submit as libc::c_uint,
            want as libc::c_uint,
            flags,
            argp,
            argsz,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}
