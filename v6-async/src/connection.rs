//! A connection's task: v2's straight-line loop, written with `.await`.
//!
//! Read, answer, write, again, until the conversation ends; then close without losing the
//! last reply. Each `.await` on the socket is where v2's thread would block; here the
//! task is set aside instead, and its worker thread runs other tasks until the reactor
//! reports the socket ready. The state v4 keeps in `Connection` (the session, where the
//! conversation is) lives in this function's locals, which the compiler keeps in the
//! task's future between awaits.
//!
//! For the recorder ([`trace`]): the task's reads and writes, its close and, with
//! `--blocking spawn`, the hand-off of each answer to the blocking pool. They are recorded
//! as the connection's because `crate::polled` makes it the thread's for every poll.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use common::overload::{self, Admission};
use common::session::{LINGER, READ_CHUNK};
use common::trace::{self, Cat};
use common::{Closed, Dispatcher, Phase, Session};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::{Blocking, Config, Counters};

// ANCHOR: handle_connection
/// Serves one connection to the end, then closes it without losing the last reply.
pub async fn handle_connection(
    mut stream: TcpStream,
    dispatcher: Arc<Dispatcher>,
    config: Arc<Config>,
    mut closing: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    let _open = dispatcher.stats().connection_opened();
    let mut why = Closing("error"); // the timeline's close, recorded when this ends
    let _ = stream.set_nodelay(true);
    let mut session = Session::new();
    // When the input now in the session was reported: what `--max-queue-wait` times
    // from. A lower bound: the time the woken task then waited for a worker is invisible.
    let mut ready_since = Instant::now();
    let closed = loop {
        let closed;
        let turn = Turn { client: stream.as_fd(), ready_since };
        (session, closed) = answer(session, &dispatcher, &config, turn, &counters).await;
        if !session.output().is_empty() {
            // One span across a wait for room, if the reply does not fit the socket's buffer.
            let _writing = trace::span(Cat::Write, "write").with("bytes", session.output().len());
            // A client that never reads is given the idle timeout, then let go.
            match timeout(config.idle_timeout, stream.write_all(session.output())).await {
                Ok(Ok(())) => session.output_written(session.output().len()),
                _ => return,
            }
        }
        if let Some(closed) = closed {
            break closed;
        }
        if session.input_ended() {
            break Closed::ByPeer;
        }
        // Between requests, a shutdown closes the connection; within one, it waits.
        let at_rest = session.phase() == Phase::Idle;
        if at_rest && *closing.borrow() {
            why.0 = "shutdown";
            return;
        }
        let wait = match session.deadline(config.request_timeout) {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => config.idle_timeout,
        };
        tokio::select! {
            ready = timeout(wait, stream.readable()) => match ready {
                Ok(Ok(())) => ready_since = Instant::now(),
                Ok(Err(_)) => return, // the socket failed: this client is gone
                Err(_) if at_rest => break Closed::IdleTimeout,
                Err(_) => break Closed::RequestTimeout,
            },
            _ = closing.changed(), if at_rest => {
                why.0 = "shutdown";
                return;
            }
        }
        match read_now(&mut stream, &mut session) {
            Ok(()) => {}
            Err(_) => return, // reset: this client is gone, nobody else cares
        }
    };
    why.0 = trace::closed_why(closed);
    if session.owes_a_lingering_close(closed, Some(stream.as_fd())) {
        linger_close(stream).await;
    }
}
// ANCHOR_END: handle_connection

// ANCHOR: read_now
/// Reads what the socket holds into the session, without waiting: the socket was just
/// reported readable.
///
/// The buffer lives only for this call, not across an `.await`, so it is not kept in the
/// task while the client is idle: an idle connection costs its task and its session, not
/// 16 KiB. It is left uninitialised: tokio's `ReadBuf` knows which bytes the read wrote
/// and hands out only those, so nothing has to zero 16 KiB per read first (the memset
/// v4 and v5 lost by reusing a buffer per thread). `try_read` would do that too, but it forgets readiness only when a read says
/// `WouldBlock`, so each request would cost a second `recvfrom` that returns EAGAIN.
/// `poll_read` also forgets it after a read that did not fill the buffer (which emptied
/// the socket; an end of input still pending is kept and reported), so one read per
/// request is the rule. It is polled once, with a waker that does nothing: if the
/// readiness was stale it answers `Pending`, and the caller's next `readable().await`
/// waits with the real one.
fn read_now(stream: &mut TcpStream, session: &mut Session) -> std::io::Result<()> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut buf = ReadBuf::uninit(&mut chunk);
    let mut cx = Context::from_waker(Waker::noop());
    let mut reading = trace::span(Cat::Read, "read");
    let polled = Pin::new(stream).poll_read(&mut cx, &mut buf);
    reading.set("bytes", buf.filled().len());
    match polled {
        Poll::Ready(Ok(())) if buf.filled().is_empty() => session.end_of_input(),
        Poll::Ready(Ok(())) => session.receive(buf.filled()),
        Poll::Ready(Err(e)) => return Err(e),
        // Readiness was stale: the bytes went to an earlier read. Wait again.
        Poll::Pending => {}
    }
    Ok(())
}
// ANCHOR_END: read_now

/// What an answer may look at beside the session, for shedding (see
/// `common::overload`): the client's socket, and when its input was reported.
struct Turn<'a> {
    client: BorrowedFd<'a>,
    ready_since: Instant,
}

// ANCHOR: answer
/// Answers every complete request the session holds: right here on the runtime's worker
/// thread, or on the blocking pool, the session moved there and back.
async fn answer(
    mut session: Session,
    dispatcher: &Arc<Dispatcher>,
    config: &Config,
    turn: Turn<'_>,
    counters: &Arc<Counters>,
) -> (Session, Option<Closed>) {
    let mut admission = Admission::new(config.shedding, Some(turn.ready_since));
    // A client seen gone is told so here, with no trip to the blocking pool, whose job
    // cannot hold the socket to look.
    let departed = config.shedding.skip_departed && overload::has_departed(turn.client);
    if config.model.blocking == Blocking::Inline || session.unanswered_input() == 0 || departed {
        let closed = session.answer_admitting(dispatcher, &mut admission, Some(turn.client));
        return (session, closed);
    }
    let (dispatcher, counters) = (Arc::clone(dispatcher), Arc::clone(counters));
    let handoff = trace::span(Cat::Handoff, "queued").hand_off(); // to the pool's thread
    let job = tokio::task::spawn_blocking(move || {
        let _job = trace::job(handoff);
        counters.blocking_in_use.up();
        let closed = session.answer_admitting(&dispatcher, &mut admission, None);
        counters.blocking_in_use.down();
        (session, closed)
    });
    match job.await {
        Ok(answered) => answered,
        // The dispatcher catches a handler's panic, so the job itself cannot panic; were
        // it cancelled (the runtime shutting down), the connection just ends.
        Err(_) => (Session::new(), Some(Closed::ByPeer)),
    }
}
// ANCHOR_END: answer

/// The lingering close (see `common::blocking::linger_close`), awaiting instead of
/// blocking: shut the write side, then read and drop input for at most [`LINGER`].
async fn linger_close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        while stream.readable().await.is_ok() {
            // As in the serving loop: the buffer is not kept in the task across a wait.
            match stream.try_read(&mut [0u8; READ_CHUNK]) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = timeout(LINGER, drain).await;
}

/// Why the connection closed, as a timeline says it: recorded as the task ends, whichever
/// way it does (the reason set on the way out, `error` if none was).
struct Closing(&'static str);

impl Drop for Closing {
    fn drop(&mut self) {
        trace::closed(self.0);
    }
}
