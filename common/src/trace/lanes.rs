//! Each thread's buffer of events (its lane), and the registry through which a flush or the
//! live window collects them all.
//!
//! A thread appends only to its own lane, so the lane's lock is taken by one thread at a
//! time except while a flush or a `/trace` answer copies it out: uncontended, a few tens of
//! nanoseconds. A lane is registered the first time its thread records, with the thread's
//! kernel id (so `/proc/PID/task/TID` lines up with it) and its name.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::event::Event;
use super::recorder;

/// One thread's events.
#[derive(Debug)]
pub(crate) struct Lane {
    pub pid: u32,
    pub tid: u32,
    /// The thread's own name (`worker`, `conn-7`, `acceptor`), `main` for the main thread.
    pub name: String,
    /// Cleared when the thread ends, so the live mode can let go of its lane.
    pub alive: AtomicBool,
    inner: Mutex<LaneInner>,
}

#[derive(Debug, Default)]
pub(crate) struct LaneInner {
    pub events: VecDeque<Event>,
    /// The wait this thread is in now, if any: shown as a span that lasts until the trace
    /// was taken, so a lane blocked for seconds (a pool thread in `read` on an idle client)
    /// is drawn blocked, not empty.
    pub open: Option<Event>,
}

impl Lane {
    pub fn lock(&self) -> MutexGuard<'_, LaneInner> {
        // A lane is whole even if its thread panicked while appending.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static LANES: Mutex<Vec<Arc<Lane>>> = Mutex::new(Vec::new());

/// Every lane registered, in the order their threads first recorded.
pub(crate) fn all() -> Vec<Arc<Lane>> {
    LANES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Lets go of lanes whose thread has ended and that hold nothing any more.
pub(crate) fn forget_empty_dead() {
    LANES.lock().unwrap_or_else(|e| e.into_inner()).retain(|lane| {
        lane.alive.load(Ordering::Relaxed) || {
            let inner = lane.lock();
            !inner.events.is_empty() || inner.open.is_some()
        }
    });
}

/// The calling thread's hold on its lane; marks the lane ended when the thread ends.
struct Mine(Arc<Lane>);

impl Drop for Mine {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Relaxed);
    }
}

thread_local! {
    static MINE: RefCell<Option<Mine>> = const { RefCell::new(None) };
    /// The connection this thread is serving now (0: none), the default of its spans.
    static CONN: Cell<u64> = const { Cell::new(0) };
    /// When this thread last finished a job taken from a queue: where its next wait for
    /// the queue began.
    static IDLE_SINCE: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` on the calling thread's lane, registering it first if needed. Nothing if the
/// thread is ending (its thread-locals are gone).
fn with_lane(f: impl FnOnce(&Lane)) {
    let _ = MINE.try_with(|mine| {
        let Ok(mut mine) = mine.try_borrow_mut() else { return };
        let lane = mine.get_or_insert_with(register);
        f(&lane.0);
    });
}

fn register() -> Mine {
    let thread = std::thread::current();
    let tid = nix::unistd::gettid().as_raw().unsigned_abs();
    let pid = std::process::id();
    let name = match thread.name() {
        Some(name) => name.to_owned(),
        // The process's first thread: its tid is the pid.
        None if tid == pid => "main".to_owned(),
        None => format!("thread-{tid}"),
    };
    let name = if recorder::is_forked_child() { format!("child-{pid}") } else { name };
    let lane = Arc::new(Lane {
        pid,
        tid,
        name,
        alive: AtomicBool::new(true),
        inner: Mutex::new(LaneInner::default()),
    });
    LANES.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&lane));
    Mine(lane)
}

/// Appends `event` to the calling thread's lane if the bounds allow it; `closes_open`
/// also ends the wait the thread was in.
pub(crate) fn append(event: Event, closes_open: bool) {
    if let Some(keep_from) = recorder::live_keep_from(event.ts) {
        return append_live(event, closes_open, keep_from);
    }
    if !recorder::admit(event.ts) {
        if closes_open {
            with_lane(|lane| lane.lock().open = None);
        }
        return;
    }
    with_lane(|lane| {
        let mut inner = lane.lock();
        if closes_open {
            inner.open = None;
        }
        inner.events.push_back(event);
    });
}

/// The live mode's append: the window keeps the newest events. When the limit is reached,
/// the window gives up its oldest quarter of events, every lane at once, rather than
/// refuse the newest event, as a file's recording does: refusing left a live window under
/// heavy load (a few hundred thousand events in [`recorder::LIVE_KEEP`]) holding its old
/// seconds and missing its last one, the one the live page draws. A quarter of the events,
/// found by their times, not a quarter of the time they span: a burst that filled the
/// window in its last millisecond holds nothing older than the span's first quarter. And
/// every lane, not only the one that found the window full: that one may be a quiet lane
/// holding few of the events or none, such as a worker recording the end of a long handler
/// while busy lanes fill the window, and its event is the one a reader looks for.
fn append_live(event: Event, closes_open: bool, keep_from: u64) {
    with_lane(|lane| {
        {
            let mut inner = lane.lock();
            if closes_open {
                inner.open = None;
            }
            prune(&mut inner.events, keep_from);
            if recorder::admit_live() {
                inner.events.push_back(event);
                return;
            }
        }
        // One lane locked at a time (this one released first), so two threads making room
        // together cannot wait on each other. Rare: once per quarter of the window's events.
        let from = recorder::live_full(oldest_quarter_ends(keep_from));
        for other in all() {
            prune(&mut other.lock().events, from);
        }
        if recorder::admit_live() {
            lane.lock().events.push_back(event);
        } else {
            recorder::live_dropped();
        }
    });
}

/// The time before which the oldest quarter of every lane's events (those kept from
/// `keep_from` on) ended: one past the end of the quarter's last.
fn oldest_quarter_ends(keep_from: u64) -> u64 {
    let mut ends: Vec<u64> = all()
        .iter()
        .flat_map(|lane| {
            let inner = lane.lock();
            inner
                .events
                .iter()
                .map(|e| e.ts + e.dur)
                .filter(|&end| end >= keep_from)
                .collect::<Vec<_>>()
        })
        .collect();
    if ends.is_empty() {
        return keep_from;
    }
    let quarter = ends.len() / 4;
    let (_, &mut end, _) = ends.select_nth_unstable(quarter);
    end + 1
}

/// Drops the events of `events` older than `keep_from`, giving their room back.
pub(crate) fn prune(events: &mut VecDeque<Event>, keep_from: u64) {
    let mut pruned = 0;
    while events.front().is_some_and(|e| e.ts + e.dur < keep_from) {
        events.pop_front();
        pruned += 1;
    }
    recorder::released(pruned);
}

/// Marks the calling thread as waiting, in `event` (its `dur` not yet known).
pub(crate) fn open(event: Event) {
    with_lane(|lane| lane.lock().open = Some(event));
}

/// The calling thread's wait ended with nothing to record.
pub(crate) fn open_ended() {
    with_lane(|lane| lane.lock().open = None);
}

/// The connection the calling thread serves now.
pub(crate) fn conn() -> u64 {
    CONN.try_with(Cell::get).unwrap_or(0)
}

/// Sets the calling thread's connection, returning the previous one.
pub(crate) fn set_conn(conn: u64) -> u64 {
    CONN.try_with(|c| c.replace(conn)).unwrap_or(0)
}

/// When the calling thread last finished a job (0: never).
pub(crate) fn idle_since() -> u64 {
    IDLE_SINCE.try_with(Cell::get).unwrap_or(0)
}

pub(crate) fn set_idle_since(ts: u64) {
    let _ = IDLE_SINCE.try_with(|c| c.set(ts));
}

/// In a child just forked: the parent's lanes, copied by the fork, are not this process's
/// to write; its only thread starts a lane of its own.
pub(crate) fn forget_all_after_fork() {
    LANES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let _ = MINE.try_with(|mine| {
        if let Ok(mut mine) = mine.try_borrow_mut() {
            *mine = None;
        }
    });
}
