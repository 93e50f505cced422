//! The provided-buffer ring (io_uring's "buf ring", Linux 5.19): buffers the kernel picks
//! from only when bytes arrive, so a connection waiting for its next request holds none.
//!
//! Two pieces of memory are shared with the kernel: the ring of entries (each says where
//! one buffer is), whose tail only this side moves and whose head only the kernel moves,
//! and the buffers themselves. A buffer is the kernel's from the moment its entry is
//! published until a receive completion names it (`IORING_CQE_F_BUFFER`); then it is ours
//! until it is given back.
//!
//! The types carry that argument: a buffer a completion hands us is a [`Taken`], made once
//! per completion by [`BufRing::take`] (the one unchecked step, so `unsafe`), neither
//! `Copy` nor `Clone`, read through, and given back to the ring when dropped: a buffer
//! cannot be given back twice, nor read after it is. And the ring is registered with the
//! kernel only as a [`Registration`], which frees its memory only once unregistered, and
//! otherwise leaks it: never freed while the kernel may still write into it.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::io;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

/// The ring's entries must start on a page: the kernel maps them by pages.
const PAGE: usize = 4096;

/// A buf ring and the buffers it hands out; registered with a ring only inside a
/// [`Registration`].
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
    /// Buffers a completion gave us and we have not yet given back: the [`Taken`] alive.
    held: u16,
}

/// A buffer a receive completion handed us, and the bytes it says the kernel wrote: ours
/// until dropped, which gives it back to the ring (seen by the kernel once the ring is
/// [`BufRing::publish`]ed). It borrows the ring, so it is given back before anything else
/// touches the ring.
#[derive(Debug)]
pub struct Taken<'ring> {
    ring: &'ring mut BufRing,
    bid: u16,
    len: usize,
}

impl Deref for Taken<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let start = usize::from(self.bid) * self.ring.size;
        // SAFETY: `bid < count` and `len <= size` (`take`), so the bytes are inside the
        // allocation. The kernel wrote them before the completion that named `bid`, and
        // does not write this buffer again until its entry is republished, which only
        // this `Taken`'s drop does.
        unsafe { std::slice::from_raw_parts(self.ring.memory.as_ptr().add(start), self.len) }
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        // SAFETY: `bid` came out of the ring with the completion `take` was given, once
        // (its contract), and goes back now, once: this `Taken` is its only owner.
        unsafe { self.ring.provide(self.bid) };
        self.ring.held -= 1;
    }
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
            Self { entries, layout, memory, memory_layout, count, size, tail: 0, held: 0 };
        for bid in 0..count {
            // SAFETY: the ring is new, not yet registered: every buffer is ours, and each
            // goes in once.
            unsafe { ring.provide(bid) };
        }
        ring.publish();
        Ok(ring)
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

    /// The buffer a receive completion names, if it names one (`IORING_CQE_F_BUFFER`),
    /// with the `result` bytes the kernel wrote into it.
    ///
    /// # Safety
    ///
    /// `result` and `flags` are those of a completion of a receive that selects from this
    /// ring's buffer group, and each completion is taken once: otherwise the buffer may
    /// still be the kernel's (read while it writes), or end up in the ring twice (given to
    /// two receives at once).
    pub unsafe fn take(&mut self, result: i32, flags: u32) -> Option<Taken<'_>> {
        let bid = io_uring::cqueue::buffer_select(flags)?;
        // A bid the kernel cannot have given us: never read, never given back.
        if bid >= self.count {
            return None;
        }
        let len = usize::try_from(result).unwrap_or(0).min(self.size);
        self.held += 1;
        Some(Taken { ring: self, bid, len })
    }

    /// Puts buffer `bid`'s entry in at the tail, seen by the kernel once
    /// [`BufRing::publish`]ed.
    ///
    /// # Safety
    ///
    /// `bid` is below `count` and ours: neither in the ring already nor held by the
    /// kernel. Put in twice, one buffer could be filled for two receives at once.
    unsafe fn provide(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.memory.as_ptr() as u64 + (usize::from(bid) * self.size) as u64;
        // SAFETY: `index` is below `count`, inside the allocation. The kernel reads only
        // the entries between its head and the published tail, and this one is at our
        // unpublished tail (at most `count` buffers are out, and `bid` was one of them), so
        // the kernel reads none of its fields now: except in entry 0, whose `resv` is the
        // shared tail, which the kernel may read at any time. The `&mut` covers it because
        // io-uring's setters need one; they write `addr`, `len` and `bid` and leave `resv`
        // alone, so the bytes the kernel may read are not written.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back visible to the kernel: one release store of the tail.
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
        // SAFETY: allocated in `new` with this layout. A BufRing is dropped only when the
        // kernel has no pointer into it: never registered, or inside a `Registration` that
        // was unregistered with no receive in flight (which otherwise leaks it).
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) };
        // SAFETY: allocated in `new` with this layout; the same argument as above.
        unsafe { dealloc(self.memory.as_ptr(), self.memory_layout) };
    }
}

/// A [`BufRing`] registered with an io_uring as one buffer group. Its memory is freed only
/// after [`Registration::unregister`]; dropped while still registered (the kernel may still
/// write into its buffers), it is leaked, never freed.
#[derive(Debug)]
pub struct Registration {
    bufs: ManuallyDrop<BufRing>,
    bgid: u16,
    registered: bool,
}

impl Registration {
    /// Registers `bufs` with `ring` as buffer group `bgid` (Linux 5.19).
    pub fn register(bufs: BufRing, ring: &IoUring, bgid: u16) -> io::Result<Self> {
        let (addr, entries) = (bufs.entries.as_ptr() as u64, bufs.count);
        // SAFETY: the entries and the buffers they point to live in `bufs`, which this
        // Registration owns and frees only once unregistered (see its `Drop`). If the
        // kernel refuses, `bufs` was never registered and is freed as usual.
        unsafe { ring.submitter().register_buf_ring_with_flags(addr, entries, bgid, 0) }?;
        Ok(Self { bufs: ManuallyDrop::new(bufs), bgid, registered: true })
    }

    /// Unregisters the buffer group, so that dropping this frees its memory. If the kernel
    /// refuses, it stays registered, and is leaked when dropped.
    ///
    /// # Safety
    ///
    /// No operation of `ring` that selects from this group is in flight: the kernel
    /// writes into a buffer it selected until that operation completes, registered or not.
    pub unsafe fn unregister(&mut self, ring: &IoUring) -> io::Result<()> {
        if self.registered {
            ring.submitter().unregister_buf_ring(self.bgid)?;
            self.registered = false;
        }
        Ok(())
    }
}

impl Deref for Registration {
    type Target = BufRing;

    fn deref(&self) -> &BufRing {
        &self.bufs
    }
}

impl std::ops::DerefMut for Registration {
    fn deref_mut(&mut self) -> &mut BufRing {
        &mut self.bufs
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.registered {
            tracing::warn!(
                bgid = self.bgid,
                "a buf ring still registered: its memory is leaked, not freed"
            );
            return;
        }
        // SAFETY: unregistered with no operation in flight (`unregister`'s contract): the
        // kernel holds no pointer into it; dropped here, once.
        unsafe { ManuallyDrop::drop(&mut self.bufs) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A completion's flags naming buffer `bid`: `IORING_CQE_F_BUFFER`, and the bid above
    /// `IORING_CQE_BUFFER_SHIFT` (16).
    fn naming(bid: u16) -> u32 {
        1 | u32::from(bid) << 16
    }

    #[test]
    fn a_taken_buffer_goes_back_once_as_it_drops() {
        let mut ring = BufRing::new(4, 64).expect("a small ring");
        assert_eq!((ring.tail(), ring.held()), (4, 0), "every buffer starts in the ring");
        // SAFETY: never registered, so no kernel reads or writes it: what `take`'s contract
        // guards against cannot happen here.
        let taken = unsafe { ring.take(10, naming(2)) }.expect("the flags name a buffer");
        assert_eq!(taken.len(), 10, "the bytes the completion says were written");
        drop(taken);
        assert_eq!((ring.tail(), ring.held()), (5, 0), "given back once, at the tail");
        // SAFETY: as above.
        assert!(unsafe { ring.take(10, 0) }.is_none(), "a completion without a buffer");
        // SAFETY: as above.
        assert!(unsafe { ring.take(10, naming(4)) }.is_none(), "a bid past the count");
        // SAFETY: as above.
        let overlong = unsafe { ring.take(4096, naming(1)) }.expect("names a buffer");
        assert_eq!(overlong.len(), 64, "never past the buffer's end");
    }
}
