//! The provided-buffer ring (io_uring's "buf ring", Linux 5.19): buffers the kernel picks
//! from only when bytes arrive, so a connection waiting for its next request holds none.
//!
//! Two pieces of memory are shared with the kernel: the ring of entries (each says where
//! one buffer is), whose tail only this side moves and whose head only the kernel moves,
//! and the buffers themselves. A buffer is the kernel's from the moment its entry is
//! published until a receive completion names it (`IORING_CQE_F_BUFFER`); then it is ours
//! until [`BufRing::recycle`] hands it back.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// The ring's entries must start on a page: the kernel maps them by pages.
const PAGE: usize = 4096;

/// A registered (or about to be) buf ring and the buffers it hands out.
#[derive(Debug)]
pub struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    /// `count * size` bytes; buffer `bid` starts `bid * size` bytes in. Raw memory, not a
    /// `Box<[u8]>`: the kernel writes into it behind Rust's back, which an owned slice
    /// would declare impossible; we only ever read a buffer a completion has handed us.
    memory: NonNull<u8>,
    memory_layout: Layout,
    count: u16,
    size: usize,
    /// Our copy of the tail, published to the kernel by [`BufRing::publish`].
    tail: u16,
    /// Buffers a completion gave us and we have not yet given back.
    held: u16,
}

impl BufRing {
    /// `count` buffers of `size` bytes each; `count` must be a power of two (the kernel
    /// indexes the ring by `tail & (count - 1)`). Every buffer starts in the ring.
    pub fn new(count: u16, size: usize) -> io::Result<Self> {
        if !count.is_power_of_two() || size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{count} buffers of {size} bytes: the count must be a power of two"),
            ));
        }
        let bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        let layout = Layout::from_size_align(bytes.max(PAGE), PAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // SAFETY: the layout has a non-zero size (at least a page).
        let entries = NonNull::new(unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let memory_layout = Layout::from_size_align(usize::from(count) * size, PAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // Not zeroed: zeroing would touch every page at start-up (a mebibyte a ring, resident
        // before any byte arrives), and nothing reads a buffer the kernel has not written:
        // a slice is made only of the bytes a completion says it wrote.
        // SAFETY: the size is non-zero (count ≥ 1 as a power of two, size > 0).
        let memory = NonNull::new(unsafe { alloc(memory_layout) });
        let Some(memory) = memory else {
            // SAFETY: allocated just above with this layout, and not shared with anyone.
            unsafe { dealloc(entries.as_ptr().cast(), layout) };
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let mut ring =
            Self { entries, layout, memory, memory_layout, count, size, tail: 0, held: count };
        for bid in 0..count {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The address and entry count to register (`Submitter::register_buf_ring_with_flags`).
    pub fn registration(&self) -> (u64, u16) {
        (self.entries.as_ptr() as u64, self.count)
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    /// Buffers we hold now: named by a completion, not yet given back.
    pub fn held(&self) -> u16 {
        self.held
    }

    /// Our tail, for comparing with the kernel's head.
    pub fn tail(&self) -> u16 {
        self.tail
    }

    /// The first `len` bytes of buffer `bid`, which a completion just gave us. Valid until
    /// the buffer is [`BufRing::recycle`]d, which the borrow of `self` ensures.
    pub fn bytes(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count {
            return None;
        }
        let start = usize::from(bid) * self.size;
        // SAFETY: `bid` is below `count`, so `start + len.min(size)` is inside the
        // allocation. The kernel wrote this buffer before the completion that named it and
        // does not write it again until it is recycled (its entry republished), which needs
        // `&mut self`, so not while this slice lives.
        Some(unsafe {
            std::slice::from_raw_parts(self.memory.as_ptr().add(start), len.min(self.size))
        })
    }

    /// Gives buffer `bid` back: its entry goes in at the tail, seen by the kernel once
    /// [`BufRing::publish`]ed.
    pub fn recycle(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.memory.as_ptr() as u64 + (usize::from(bid) * self.size) as u64;
        // SAFETY: `index` is below `count`, inside the allocation. The kernel reads only
        // the entries between its head and the published tail; this one is past the tail
        // (at most `count` buffers are out, and `bid` was one of them), so nobody else reads
        // it now. The setters leave `resv` alone, which in entry 0 is the shared tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.held = self.held.saturating_sub(1);
    }

    /// Counts a buffer a completion gave us.
    pub fn taken(&mut self) {
        self.held = self.held.saturating_add(1);
    }

    /// Makes the recycled entries visible to the kernel: one release store of the tail.
    pub fn publish(&self) {
        // SAFETY: the tail is entry 0's `resv` field, a u16 inside our allocation, aligned
        // to 2; the kernel reads it with acquire semantics, as liburing's
        // `io_uring_buf_ring_advance` writes it with release.
        let tail = unsafe { BufRingEntry::tail(self.entries.as_ptr()) }.cast_mut();
        // SAFETY: as above; AtomicU16 has u16's size and alignment.
        unsafe { AtomicU16::from_ptr(tail) }.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. The owner (the ring loop) drops a
        // BufRing only once the kernel no longer uses it: after every receive has
        // completed and the ring has been unregistered; otherwise it leaks it instead.
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) };
        // SAFETY: allocated in `new` with this layout; the same argument as above.
        unsafe { dealloc(self.memory.as_ptr(), self.memory_layout) };
    }
}
