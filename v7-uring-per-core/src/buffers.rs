//! The provided-buffer ring (io_uring's "buf ring", Linux 5.19): buffers the kernel picks
//! from only when bytes arrive, so a connection waiting for its next request holds none.
//!
//! Two pieces of memory are shared with the kernel: the ring of entries (each says where
//! one buffer is), whose tail only this side moves and whose head only the kernel moves,
//! and the buffers themselves. A buffer is the kernel's from the moment its entry is
//! published until a receive completion names it (`IORING_CQE_F_BUFFER`); then it is ours
//! until it is given back.
//!
//! Two later features change how many buffers one completion covers ([`Consumption`]): a
//! receive *bundle* (6.10) fills several buffers, the ring's next entries after the one the
//! completion names; *incremental consumption* (6.12) lets the kernel fill one buffer a
//! piece at a time, across receives (of any connection), keeping it until it is full
//! (`IORING_CQE_F_BUF_MORE` says it keeps it). [`BufRing::take`] works out which bytes of
//! which buffers a completion covers, and which of those buffers are ours again.
//!
//! The types carry that argument: what a completion hands us is a [`Taken`], made once
//! per completion by [`BufRing::take`] (the one unchecked step, so `unsafe`), neither
//! `Copy` nor `Clone`, read through, and whose buffers go back to the ring when it is
//! dropped: a buffer cannot be given back twice, nor read after it is. And the ring is
//! registered with the kernel only as a [`Registration`], which frees its memory only once
//! unregistered, and otherwise leaks it: never freed while the kernel may still write into
//! it.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::io;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::{BufRingEntry, IOU_PBUF_RING_INC};

/// The ring's entries must start on a page: the kernel maps them by pages.
const PAGE: usize = 4096;

/// How the kernel consumes the ring's buffers, as the receives and the registration ask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consumption {
    /// Receives are bundles (`IORING_RECVSEND_BUNDLE`, 6.10): a completion covers as many
    /// buffers as its bytes fill, the ring's consecutive entries from the one it names.
    pub bundle: bool,
    /// Registered with `IOU_PBUF_RING_INC` (6.12): the kernel fills a buffer across
    /// receives and keeps it until it is full.
    pub incremental: bool,
}

/// A buf ring and the buffers it hands out; registered with a ring only inside a
/// [`Registration`].
#[derive(Debug)]
pub struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    /// `count * size` bytes; buffer `bid` starts `bid * size` bytes in. Raw memory, not a
    /// `Box<[u8]>`: the kernel writes into it behind Rust's back, which an owned slice
    /// would declare impossible; we only ever read bytes a completion has handed us.
    memory: NonNull<u8>,
    memory_layout: Layout,
    count: u16,
    size: usize,
    consumption: Consumption,
    /// Our copy of the tail, published to the kernel by [`BufRing::publish`].
    tail: u16,
    /// Buffers a completion gave us and we have not yet given back.
    held: u16,
    /// Which buffer was put in at each place of the ring (by `position & (count - 1)`),
    /// and where each buffer was last put in: a bundle's completion names only its first
    /// buffer, and the rest are the entries after it. Our own record, not the shared
    /// entries, which the kernel may rewrite (incremental consumption does).
    bid_at: Box<[u16]>,
    position_of: Box<[u16]>,
    /// Incremental consumption: how many bytes of each buffer the kernel has filled (and
    /// we have read), where its next bytes start.
    filled: Box<[usize]>,
    /// The completion being taken: which bytes of which buffers, `(bid, start, len)`.
    pieces: Vec<(u16, usize, usize)>,
    /// Buffers done with, put back in at the next [`BufRing::publish`].
    returning: Vec<u16>,
}

/// What a receive completion handed us: the bytes it says the kernel wrote, in one buffer
/// or (a bundle) several, read through [`Taken::pieces`]. Ours until dropped, which gives
/// the buffers the kernel is done with back to the ring (seen by the kernel once the ring
/// is [`BufRing::publish`]ed). It borrows the ring, so it is given back before anything
/// else touches the ring.
#[derive(Debug)]
pub struct Taken<'ring> {
    ring: &'ring mut BufRing,
    /// The first `done` of the ring's `pieces` name buffers that are ours again; a last
    /// one past them the kernel keeps filling (incremental consumption).
    done: usize,
}

impl Taken<'_> {
    /// The bytes, in the order the kernel wrote them.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.ring.pieces.iter().map(|&(bid, start, len)| {
            let at = usize::from(bid) * self.ring.size + start;
            // SAFETY: `bid < count` and `start + len <= size` (`take`), so the bytes are
            // inside the allocation. The kernel wrote them before the completion that
            // covers them, and does not write them again until the buffer's entry is put
            // back in the ring, which only this `Taken`'s drop leads to (a buffer it keeps
            // filling, it fills past these bytes, never over them).
            unsafe { std::slice::from_raw_parts(self.ring.memory.as_ptr().add(at), len) }
        })
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        // Put back in at the next publish, not now: putting one in writes the entry at our
        // tail, which may be an entry a completion not yet taken still needs us to read
        // (`bid_at`) if completions were taken out of the order the kernel filled them.
        let ring = &mut *self.ring;
        ring.returning.extend(ring.pieces[..self.done].iter().map(|&(bid, _, _)| bid));
    }
}

impl BufRing {
    /// `count` buffers of `size` bytes each, consumed as `consumption` says; `count` must
    /// be a power of two (the kernel indexes the ring by `tail & (count - 1)`). Every
    /// buffer starts in the ring.
    pub fn new(count: u16, size: usize, consumption: Consumption) -> io::Result<Self> {
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
        let per_buffer = |value| vec![value; usize::from(count)].into_boxed_slice();
        let mut ring = Self {
            entries,
            layout,
            memory,
            memory_layout,
            count,
            size,
            consumption,
            tail: 0,
            held: 0,
            bid_at: per_buffer(0),
            position_of: per_buffer(0),
            filled: vec![0; usize::from(count)].into_boxed_slice(),
            pieces: Vec::new(),
            returning: Vec::new(),
        };
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

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn consumption(&self) -> Consumption {
        self.consumption
    }

    /// Buffers we hold now: named by a completion, not yet given back.
    pub fn held(&self) -> u16 {
        self.held
    }

    /// Our tail, for comparing with the kernel's head.
    pub fn tail(&self) -> u16 {
        self.tail
    }

    // ANCHOR: take
    /// What a receive completion hands us, if it names a buffer (`IORING_CQE_F_BUFFER`):
    /// the `result` bytes the kernel wrote, and which buffers it is done with.
    ///
    /// * A plain receive fills one buffer, and is done with it even when it wrote nothing
    ///   (the end of the stream uses one up).
    /// * A bundle fills the buffer the flags name and, in ring order, the entries after it:
    ///   as many as its bytes need, each to the full before the next. It takes none when
    ///   it wrote nothing.
    /// * Incremental consumption starts where the kernel left off in the first buffer, and
    ///   is done with every buffer but the last, and with the last unless the flags say
    ///   the kernel keeps it (`IORING_CQE_F_BUF_MORE`); nothing written, nothing taken.
    ///
    /// # Safety
    ///
    /// `result` and `flags` are those of a completion of a receive that selects from this
    /// ring's buffer group, and each completion is taken once, in the order the kernel
    /// posted them (it takes buffers from its head in that order): otherwise a buffer may
    /// still be the kernel's (read while it writes), or end up in the ring twice (given to
    /// two receives at once).
    pub unsafe fn take(&mut self, result: i32, flags: u32) -> Option<Taken<'_>> {
        let first = io_uring::cqueue::buffer_select(flags)?;
        // A bid the kernel cannot have given us: never read, never given back.
        if first >= self.count {
            return None;
        }
        self.pieces.clear();
        let Consumption { bundle, incremental } = self.consumption;
        let mut left = usize::try_from(result).unwrap_or(0);
        if left == 0 {
            let done = if bundle || incremental {
                0
            } else {
                self.pieces.push((first, 0, 0));
                1
            };
            self.held += done as u16;
            return Some(Taken { ring: self, done });
        }
        let mask = self.count - 1;
        let mut position = self.position_of[usize::from(first)];
        while left > 0 && self.pieces.len() < usize::from(self.count) {
            let bid = self.bid_at[usize::from(position & mask)];
            let start = if incremental { self.filled[usize::from(bid)] } else { 0 };
            let len = left.min(self.size - start);
            self.pieces.push((bid, start, len));
            left -= len;
            position = position.wrapping_add(1);
            if !bundle {
                break;
            }
        }
        let kept = incremental && io_uring::cqueue::buffer_more(flags);
        let done = self.pieces.len() - usize::from(kept);
        if incremental {
            for (i, &(bid, start, len)) in self.pieces.iter().enumerate() {
                // Where the kernel's next bytes go in a buffer it keeps; from the start
                // again in one it is done with.
                self.filled[usize::from(bid)] = if i < done { 0 } else { start + len };
            }
        }
        self.held += done as u16;
        Some(Taken { ring: self, done })
    }
    // ANCHOR_END: take

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
        // SAFETY: `index` is below `count`, inside the allocation. The kernel reads (and,
        // consuming incrementally, rewrites) only the entries between its head and the
        // published tail, and this one is at our unpublished tail (at most `count` buffers
        // are out, and `bid` was one of them), so the kernel touches none of its fields
        // now: except in entry 0, whose `resv` is the shared tail, which the kernel may
        // read at any time. The `&mut` covers it because io-uring's setters need one; they
        // write `addr`, `len` and `bid` and leave `resv` alone, so the bytes the kernel may
        // read are not written.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.bid_at[index] = bid;
        self.position_of[usize::from(bid)] = self.tail;
        self.filled[usize::from(bid)] = 0;
        self.tail = self.tail.wrapping_add(1);
    }

    /// Puts the buffers given back since the last call in at the tail, in the order they
    /// were given back, and makes them visible to the kernel: one release store of the
    /// tail.
    pub fn publish(&mut self) {
        let mut returning = std::mem::take(&mut self.returning);
        for &bid in &returning {
            // SAFETY: `bid` came out of the ring with a completion `take` was given once
            // (its contract), and a `Taken` queued it once as it dropped: it goes back
            // once, now.
            unsafe { self.provide(bid) };
        }
        self.held -= returning.len() as u16;
        returning.clear();
        self.returning = returning;
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
    /// Registers `bufs` with `ring` as buffer group `bgid` (Linux 5.19; consumed
    /// incrementally, 6.12).
    pub fn register(bufs: BufRing, ring: &IoUring, bgid: u16) -> io::Result<Self> {
        let (addr, entries) = (bufs.entries.as_ptr() as u64, bufs.count);
        let flags = if bufs.consumption.incremental { IOU_PBUF_RING_INC as u16 } else { 0 };
        // SAFETY: the entries and the buffers they point to live in `bufs`, which this
        // Registration owns and frees only once unregistered (see its `Drop`). If the
        // kernel refuses, `bufs` was never registered and is freed as usual.
        unsafe { ring.submitter().register_buf_ring_with_flags(addr, entries, bgid, flags) }?;
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

    /// `IORING_CQE_F_BUF_MORE`: the kernel keeps filling the buffer.
    const BUF_MORE: u32 = 1 << 4;

    /// The bytes a completion covers, as (buffer, start, length), and the buffers done.
    fn covered(taken: &Taken<'_>) -> (Vec<(u16, usize, usize)>, usize) {
        (taken.ring.pieces.clone(), taken.done)
    }

    #[test]
    fn a_taken_buffer_goes_back_once_at_the_next_publish() {
        let mut ring = BufRing::new(4, 64, Consumption::default()).expect("a small ring");
        assert_eq!((ring.tail(), ring.held()), (4, 0), "every buffer starts in the ring");
        // SAFETY: never registered, so no kernel reads or writes it: what `take`'s contract
        // guards against cannot happen here.
        let taken = unsafe { ring.take(10, naming(2)) }.expect("the flags name a buffer");
        assert_eq!(
            taken.pieces().map(<[u8]>::len).sum::<usize>(),
            10,
            "the bytes the completion says were written"
        );
        drop(taken);
        assert_eq!((ring.tail(), ring.held()), (4, 1), "not yet back");
        ring.publish();
        assert_eq!((ring.tail(), ring.held()), (5, 0), "given back once, at the tail");
        // SAFETY: as above.
        assert!(unsafe { ring.take(10, 0) }.is_none(), "a completion without a buffer");
        // SAFETY: as above.
        assert!(unsafe { ring.take(10, naming(4)) }.is_none(), "a bid past the count");
        // SAFETY: as above.
        let overlong = unsafe { ring.take(4096, naming(1)) }.expect("names a buffer");
        assert_eq!(covered(&overlong).0, [(1, 0, 64)], "never past the buffer's end");
        drop(overlong);
        // SAFETY: as above.
        let end = unsafe { ring.take(0, naming(3)) }.expect("names a buffer");
        assert_eq!(covered(&end), (vec![(3, 0, 0)], 1), "the end of the stream uses one up");
    }

    #[test]
    fn a_bundle_covers_the_entries_after_the_one_it_names_in_ring_order() {
        let mut ring =
            BufRing::new(4, 8, Consumption { bundle: true, ..Consumption::default() }).unwrap();
        // Buffers go back out of order: the ring then holds 1, 0 after 2, 3.
        // SAFETY: never registered (as in the test above).
        drop(unsafe { ring.take(8, naming(0)) }.unwrap());
        // SAFETY: as above.
        drop(unsafe { ring.take(8, naming(1)) }.unwrap());
        ring.returning.reverse();
        ring.publish();
        // The kernel's head is at 2: a bundle of 20 bytes fills 2, 3 and 4 bytes of 1.
        // SAFETY: as above.
        let bundle = unsafe { ring.take(20, naming(2)) }.unwrap();
        assert_eq!(covered(&bundle), (vec![(2, 0, 8), (3, 0, 8), (1, 0, 4)], 3));
        assert_eq!(bundle.pieces().map(<[u8]>::len).collect::<Vec<_>>(), [8, 8, 4]);
        drop(bundle);
        ring.publish();
        assert_eq!(ring.held(), 0, "all three given back");
        // SAFETY: as above.
        let nothing = unsafe { ring.take(0, naming(0)) }.unwrap();
        assert_eq!(covered(&nothing), (vec![], 0), "a bundle that wrote nothing took nothing");
    }

    #[test]
    fn an_incremental_buffer_is_read_piece_by_piece_and_given_back_when_full() {
        let incremental = Consumption { incremental: true, ..Consumption::default() };
        let mut ring = BufRing::new(2, 16, incremental).unwrap();
        // SAFETY: never registered (as in the tests above).
        let first = unsafe { ring.take(5, naming(0) | BUF_MORE) }.unwrap();
        assert_eq!(covered(&first), (vec![(0, 0, 5)], 0), "the kernel keeps it");
        drop(first);
        // SAFETY: as above.
        let second = unsafe { ring.take(7, naming(0) | BUF_MORE) }.unwrap();
        assert_eq!(covered(&second), (vec![(0, 5, 7)], 0), "from where the kernel left off");
        drop(second);
        // SAFETY: as above.
        let empty = unsafe { ring.take(0, naming(0)) }.unwrap();
        assert_eq!(covered(&empty), (vec![], 0), "nothing written, nothing taken");
        drop(empty);
        // SAFETY: as above.
        let last = unsafe { ring.take(4, naming(0)) }.unwrap();
        assert_eq!(covered(&last), (vec![(0, 12, 4)], 1), "full: ours again");
        drop(last);
        ring.publish();
        assert_eq!((ring.tail(), ring.held()), (3, 0));
        // SAFETY: as above.
        let again = unsafe { ring.take(3, naming(0) | BUF_MORE) }.unwrap();
        assert_eq!(covered(&again), (vec![(0, 0, 3)], 0), "back in, filled from its start");
    }
}
