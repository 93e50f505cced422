//! The recorder's state: whether it records, its bounds, why it stopped, and the writer that
//! puts the file on disk when a bound is reached or the server stops.
//!
//! Phases: never started (the default: every span costs one relaxed load of [`ON`]);
//! recording for the file (`--trace FILE`), bounded by `--trace-for` and `--trace-events`;
//! stopped; and live (`--trace-live`), where each lane keeps only its last [`LIVE_KEEP`] of
//! events for `GET /trace`. With both options the file is recorded first, then the live
//! mode goes on.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::{lanes, now, output};

/// Whether spans are recorded now: the one load a span pays when the recorder is off.
pub(crate) static ON: AtomicBool = AtomicBool::new(false);

const NEVER: u8 = 0;
const FILE: u8 = 1;
const STOPPED: u8 = 2;
const LIVE: u8 = 3;
static PHASE: AtomicU8 = AtomicU8::new(NEVER);

/// Events held in the lanes now, against the limit.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Events refused: past a bound, or beyond the limit in the live mode.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Set in a child of the fork version: it writes a piece for its parent to merge.
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);
static NEXT_FLOW: AtomicU64 = AtomicU64::new(1);

/// How long the live mode keeps each lane's events: more than the live page's window of
/// one second, so a page that polls late still finds its second whole.
pub const LIVE_KEEP: Duration = Duration::from_secs(3);

/// What `--trace`, `--trace-for`, `--trace-events` and `--trace-live` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the trace is written; none for the live mode alone.
    pub file: Option<PathBuf>,
    /// Keep recording the last seconds in memory for `GET /trace`.
    pub live: bool,
    /// The file's recording stops this long after the start.
    pub duration: Duration,
    /// At most this many events held at once (the file's whole recording, or the live
    /// window): the bound on memory.
    pub max_events: usize,
}

impl Settings {
    pub fn is_on(&self) -> bool {
        self.file.is_some() || self.live
    }
}

/// What does not change once recording started.
#[derive(Debug)]
pub(crate) struct Setup {
    pub settings: Settings,
    pub server: &'static str,
    pub command: String,
    pub start: u64,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

pub(crate) fn setup() -> Option<&'static Setup> {
    SETUP.get()
}

/// Why recording for the file stopped, once it has.
static LIMIT: Mutex<Option<String>> = Mutex::new(None);
/// Set when the file is due; the writer thread waits on it.
static DUE: Mutex<bool> = Mutex::new(false);
static DUE_CHANGED: Condvar = Condvar::new();

/// Starts recording as `settings` ask, for `server`; nothing if they ask for nothing.
/// `writer_thread`: whether a thread may write the file when a bound is reached and keep
/// the live window (not in the fork version, whose parent must stay single-threaded: there
/// the file is written by [`flush_if_due`], called from its accept loop, or at shutdown).
pub fn start(server: &'static str, settings: Settings, writer_thread: bool) -> io::Result<()> {
    if !settings.is_on() {
        return Ok(());
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let (file, live) = (settings.file.is_some(), settings.live);
    let setup = Setup { settings, server, command, start: now() };
    if SETUP.set(setup).is_err() {
        return Err(io::Error::other("the recorder was already started in this process"));
    }
    PHASE.store(if file { FILE } else { LIVE }, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    if writer_thread && (file || live) {
        std::thread::Builder::new().name("trace-writer".into()).spawn(writer)?;
    }
    Ok(())
}

/// Whether an event stamped `ts` may be recorded; counts it if so, and stops the file's
/// recording when it is past a bound.
pub(crate) fn admit(ts: u64) -> bool {
    let Some(setup) = SETUP.get() else { return false };
    let phase = PHASE.load(Ordering::Relaxed);
    if phase == FILE && ts > setup.start + setup.settings.duration.as_nanos() as u64 {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        stop(format!("time: --trace-for {:?} reached", setup.settings.duration));
        return false;
    }
    if phase != FILE && phase != LIVE {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    if !hold_one(setup) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        if phase == FILE {
            stop(format!("events: --trace-events {} reached", setup.settings.max_events));
        }
        return false;
    }
    true
}

/// Counts one more event held, if the limit allows.
fn hold_one(setup: &Setup) -> bool {
    if HELD.fetch_add(1, Ordering::Relaxed) >= setup.settings.max_events {
        HELD.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// The live mode's [`admit`]: whether one more event fits in the window, counting it if
/// so. A refusal is not counted here, since the window may make room
/// ([`live_full`]); [`live_dropped`] counts one that did not fit even then.
pub(crate) fn admit_live() -> bool {
    SETUP.get().is_some_and(hold_one)
}

pub(crate) fn live_dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// In the live mode, the oldest time kept when the window is full: it moves forward, and
/// every lane lets go of what is older, when the events of [`LIVE_KEEP`] outnumber
/// `--trace-events`.
static LIVE_FROM: AtomicU64 = AtomicU64::new(0);

/// In the live mode, the oldest time a lane keeps when it appends at `ts`: [`LIVE_KEEP`]
/// before it, or less when that many events would not fit.
pub(crate) fn live_keep_from(ts: u64) -> Option<u64> {
    (PHASE.load(Ordering::Relaxed) == LIVE).then(|| {
        ts.saturating_sub(LIVE_KEEP.as_nanos() as u64).max(LIVE_FROM.load(Ordering::Relaxed))
    })
}

/// The live window is full: from now on it keeps nothing that ended before `cut`, the
/// time before which its oldest quarter of events ended (see `lanes::append_live`), so
/// that the newest events are the ones kept (a live page draws the last second, not the
/// first). Returns the oldest time kept.
pub(crate) fn live_full(cut: u64) -> u64 {
    LIVE_FROM.fetch_max(cut, Ordering::Relaxed).max(cut)
}

/// `n` events were let go.
pub(crate) fn released(n: usize) {
    if n > 0 {
        HELD.fetch_sub(n, Ordering::Relaxed);
    }
}

pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

pub(crate) fn limit() -> Option<String> {
    LIMIT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

pub(crate) fn is_forked_child() -> bool {
    FORKED_CHILD.load(Ordering::Relaxed)
}

/// A new hand-off arrow's id, unique in a merged trace (the process id in the high bits).
pub(crate) fn next_flow() -> u64 {
    (u64::from(std::process::id()) << 32) | NEXT_FLOW.fetch_add(1, Ordering::Relaxed)
}

/// Stops the file's recording, for `why` (the first reason given stays), and has the file
/// written.
fn stop(why: String) {
    if PHASE.compare_exchange(FILE, STOPPED, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return;
    }
    ON.store(false, Ordering::Relaxed);
    LIMIT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
    *DUE.lock().unwrap_or_else(|e| e.into_inner()) = true;
    DUE_CHANGED.notify_all();
}

/// The writer thread: waits for a bound (the time bound by itself, for a server that
/// records nothing meanwhile), writes the file, then keeps the live window.
fn writer() {
    let Some(setup) = SETUP.get() else { return };
    if setup.settings.file.is_some() {
        let deadline = setup.start + setup.settings.duration.as_nanos() as u64;
        let mut due = DUE.lock().unwrap_or_else(|e| e.into_inner());
        while !*due {
            let left = Duration::from_nanos(deadline.saturating_sub(now()));
            if left.is_zero() {
                break;
            }
            due = DUE_CHANGED.wait_timeout(due, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(due);
        stop(format!("time: --trace-for {:?} reached", setup.settings.duration));
        write_file(true);
    }
    if !setup.settings.live {
        return;
    }
    // Lanes of threads that have ended are pruned here, since nothing appends to them.
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(keep_from) = live_keep_from(now()) else { return };
        for lane in lanes::all() {
            lanes::prune(&mut lane.lock().events, keep_from);
        }
        lanes::forget_empty_dead();
    }
}

/// Whether the file has been written at least once.
static WRITTEN: AtomicBool = AtomicBool::new(false);

/// Serialises writing the file: the writer thread and a shutdown may both get here.
static WRITING: Mutex<Vec<serde_json::Value>> = Mutex::new(Vec::new());

/// Writes the file (merging the pieces of forked children), unless `once` and it has been
/// written already; then moves on to the live mode if asked.
fn write_file(once: bool) {
    let Some(setup) = SETUP.get() else { return };
    let Some(file) = &setup.settings.file else { return };
    let mut merged = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    if once && WRITTEN.load(Ordering::Acquire) {
        return;
    }
    merged.extend(output::take_pieces(file));
    let document = output::document(setup, &lanes::all(), &merged, now());
    if let Err(e) = output::write_atomically(file, &document) {
        tracing::error!("cannot write the trace to {}: {e}", file.display());
    } else {
        tracing::info!("trace written to {}", file.display());
    }
    WRITTEN.store(true, Ordering::Release);
    // Without the live mode the events stay until the process ends (bounded, and a later
    // write, with children's pieces merged, needs them again).
    if setup.settings.live
        && PHASE.compare_exchange(STOPPED, LIVE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    {
        ON.store(true, Ordering::Relaxed);
    }
}

/// Writes the file if a bound stopped the recording and no thread is there to write it:
/// the fork version's parent calls it from its accept loop.
pub fn flush_if_due() {
    let due = std::mem::take(&mut *DUE.lock().unwrap_or_else(|e| e.into_inner()));
    if due {
        write_file(true);
    }
}

/// At the end: the server is stopping (or a child of the fork version exiting). Stops the
/// recording and writes the file, or this child's piece of it; the parent's file is
/// written again if children ended since it was first written, so their pieces are in it.
pub fn finish() {
    let Some(setup) = SETUP.get() else { return };
    let Some(file) = &setup.settings.file else { return };
    if is_forked_child() {
        ON.store(false, Ordering::Relaxed);
        PHASE.store(STOPPED, Ordering::Relaxed);
        if let Err(e) = output::write_piece(setup, file, &lanes::all(), now()) {
            tracing::warn!("cannot write this child's part of the trace: {e}");
        }
        return;
    }
    stop("shutdown".to_owned());
    // Again if children have ended since: their pieces belong in it.
    write_file(!output::has_pieces(file));
    ON.store(false, Ordering::Relaxed);
    PHASE.store(STOPPED, Ordering::Relaxed);
}

/// In a child the fork version just forked to serve connection `conn`: records into a
/// piece of its own, which [`finish`] writes and the parent merges.
pub fn forked(conn: u64) {
    if SETUP.get().is_none() {
        return;
    }
    FORKED_CHILD.store(true, Ordering::Relaxed);
    lanes::forget_all_after_fork();
    HELD.store(0, Ordering::Relaxed);
    lanes::set_conn(conn);
}

/// The recorded events of the last `window` (the live page's source), as a trace
/// document; `None` if this server is not recording.
pub fn window(window: Duration) -> Option<serde_json::Value> {
    let setup = SETUP.get()?;
    let to = now();
    // What the window holds may be shorter than asked when it was full (`live_full`).
    let asked = to.saturating_sub(window.as_nanos() as u64);
    let from = live_keep_from(to).map_or(asked, |kept| kept.max(asked));
    Some(output::window(setup, &lanes::all(), from, to))
}
