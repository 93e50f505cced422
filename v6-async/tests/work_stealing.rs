//! What tokio's scheduler does when one of its workers blocks: the tasks queued on that
//! worker are stolen by an idle one, all but the one in its LIFO slot. The test fails if
//! the scheduler stops doing either, and shows, with one worker, what happens without
//! stealing.

use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::testkit::TIMEOUT;

/// The runtime as `v6_async::run` builds it.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    v6_async::runtime(workers).expect("a runtime")
}

/// How a spawned task ran: its place in the spawn order, whether on another thread than
/// the task that spawned it, and whether before that task's block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ran {
    order: usize,
    elsewhere: bool,
    during_the_block: bool,
}

const QUEUED: usize = 8;
const BLOCK: Duration = Duration::from_millis(1000);

/// On a runtime of `workers` threads, a task spawns [`QUEUED`] tasks, which go to its own
/// worker's queue, then blocks that worker for [`BLOCK`].
fn tasks_queued_behind_a_block(workers: usize) -> Vec<Ran> {
    let runtime = runtime(workers);
    let (ran, record) = mpsc::channel::<(usize, ThreadId, Instant)>();
    let (spawner, unblocked) = runtime.block_on(async move {
        let blocker = tokio::spawn(async move {
            for order in 0..QUEUED {
                let ran = ran.clone();
                tokio::spawn(async move {
                    let _ = ran.send((order, thread::current().id(), Instant::now()));
                });
            }
            thread::sleep(BLOCK); // holds this worker, as a blocking handler does
            (thread::current().id(), Instant::now())
        });
        blocker.await.expect("the blocking task")
    });
    let mut runs: Vec<Ran> = (0..QUEUED)
        .map(|_| {
            let (order, thread, at) = record.recv_timeout(TIMEOUT).expect("every task ran");
            Ran { order, elsewhere: thread != spawner, during_the_block: at < unblocked }
        })
        .collect();
    runs.sort();
    runs
}

// ANCHOR: stealing
/// Work stealing: while a worker is blocked, an idle one takes the tasks queued on it and
/// runs them, all but the one spawned last, which waits in the blocked worker's LIFO slot
/// (the one place other workers cannot steal from). With one worker nothing is stolen:
/// every queued task waits for the block to end.
#[test]
fn an_idle_worker_steals_the_tasks_queued_on_a_blocked_one() {
    let runs = tasks_queued_behind_a_block(2);
    let stolen = runs.iter().filter(|r| r.elsewhere && r.during_the_block).count();
    assert_eq!(stolen, QUEUED - 1, "stolen while the worker was blocked: {runs:?}");
    let last = runs[QUEUED - 1];
    assert!(!last.elsewhere && !last.during_the_block, "the LIFO slot was stolen: {last:?}");

    let runs = tasks_queued_behind_a_block(1);
    assert!(runs.iter().all(|r| !r.during_the_block), "ran with its only worker blocked: {runs:?}");
}
// ANCHOR_END: stealing
