//! The Java article's bug, reproduced: a level-triggered epoll poller that hands each
//! ready socket to a worker pool without masking it.
//!
//! Level-triggered readiness says "readable" at every wait for as long as unread bytes
//! remain. If the poller hands the socket to a worker and goes straight back to waiting,
//! the next wait reports the same socket again, before the worker has read a byte, and
//! the poller hands it to a second worker, a third... (the "storm"). The workers then
//! race on one socket: most find nothing left to read, and those that do read take
//! pieces of the byte stream in an order nobody chose, so a request can reach the parser
//! in pieces swapped around. The article's fix is masking: take the read interest away
//! while a worker has the socket and give it back when the worker is done. Here that is
//! `EPOLLONESHOT` ([`Masking::OneShot`]), re-armed by the worker.
//!
//! This is a demonstration, not a server: `cargo run -p v4-syscalls --example storm`
//! runs it both ways side by side. v4-nio cannot have this bug: mio is edge-triggered,
//! and its connection has one owner at a time.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use common::Dispatcher;
use common::session::Session;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// Whether the poller takes a socket's interest away while a worker has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// The article's first version: the socket stays armed, level-triggered.
    None,
    /// The article's fix: `EPOLLONESHOT`, re-armed by the worker when it is done.
    OneShot,
}

/// What the storm did, counted as it happened.
#[derive(Debug, Default)]
pub struct StormCounters {
    /// Sockets handed to a worker.
    pub dispatches: AtomicU64,
    /// Hand-offs of a socket that another worker still had: the bug itself.
    pub duplicates: AtomicU64,
    /// Hand-offs whose worker found nothing to read: the storm's wasted work.
    pub empty_reads: AtomicU64,
}

impl StormCounters {
    pub fn read(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.dispatches), get(&self.duplicates), get(&self.empty_reads))
    }
}

/// The settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct StormConfig {
    pub masking: Masking,
    pub workers: usize,
    /// How long a worker waits before it reads: a worker that is a little slow (busy,
    /// descheduled), which is all it takes for the poller to wait again first.
    pub provocation: Duration,
    /// Bytes a worker reads per hand-off, like the article's fixed-size buffer.
    pub chunk: usize,
}

struct Shared {
    stream: TcpStream,
    /// Workers that have this socket now.
    holders: AtomicUsize,
    /// Reads taken from this socket so far.
    reads: AtomicU64,
    session: Mutex<Session>,
}

/// A running storm; dropping it stops the poller and the workers.
#[derive(Debug)]
pub struct Storm {
    pub counters: Arc<StormCounters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const LISTENER: u64 = u64::MAX;

/// Starts a poller thread and `config.workers` worker threads serving `listener`.
pub fn start(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    config: StormConfig,
) -> io::Result<Storm> {
    listener.set_nonblocking(true)?;
    let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    let counters = Arc::new(StormCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let table: Arc<Mutex<HashMap<u64, Arc<Shared>>>> = Arc::default();
    let (jobs, queue) = mpsc::channel::<u64>();
    let queue = Arc::new(Mutex::new(queue));
    let mut threads = Vec::new();
    for id in 0..config.workers {
        let (queue, table, epoll) = (Arc::clone(&queue), Arc::clone(&table), Arc::clone(&epoll));
        let (counters, stop, dispatcher) =
            (Arc::clone(&counters), Arc::clone(&stop), Arc::clone(&dispatcher));
        let worker = move || {
            while !stop.load(Ordering::Relaxed) {
                let job = queue.lock().map(|q| q.recv_timeout(Duration::from_millis(50)));
                let Ok(Ok(token)) = job else { continue };
                let shared = table.lock().ok().and_then(|t| t.get(&token).cloned());
                if let Some(shared) = shared {
                    work(&shared, token, &config, &counters, &dispatcher, &epoll, &table);
                }
            }
        };
        threads.push(std::thread::Builder::new().name(format!("worker-{id}")).spawn(worker)?);
    }
    let poller_counters = Arc::clone(&counters);
    let poller_stop = Arc::clone(&stop);
    let poller = move || {
        poll_loop(&listener, &epoll, &table, &jobs, &poller_counters, &poller_stop, config.masking)
    };
    threads.push(std::thread::Builder::new().name("poller".into()).spawn(poller)?);
    Ok(Storm { counters, stop, threads })
}

fn interest(masking: Masking) -> EpollFlags {
    match masking {
        Masking::None => EpollFlags::EPOLLIN,
        Masking::OneShot => EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT,
    }
}

// ANCHOR: poller
fn poll_loop(
    listener: &TcpListener,
    epoll: &Epoll,
    table: &Mutex<HashMap<u64, Arc<Shared>>>,
    jobs: &mpsc::Sender<u64>,
    counters: &StormCounters,
    stop: &AtomicBool,
    masking: Masking,
) {
    let mut events = vec![EpollEvent::empty(); 64];
    let mut next_token = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = epoll.wait(&mut events, EpollTimeout::from(50u8)) else { continue };
        for event in &events[..n] {
            if event.data() == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = stream.set_nonblocking(true);
                    next_token += 1;
                    let flags = interest(masking);
                    if epoll.add(stream.as_fd(), EpollEvent::new(flags, next_token)).is_ok() {
                        let (holders, reads) = (AtomicUsize::new(0), AtomicU64::new(0));
                        let shared = Shared { stream, holders, reads, session: Mutex::default() };
                        let _ = table.lock().map(|mut t| t.insert(next_token, Arc::new(shared)));
                    }
                }
                continue;
            }
            // Hand the socket over and go straight back to waiting. Unmasked, the next
            // wait reports it again while the worker has not read it yet.
            counters.dispatches.fetch_add(1, Ordering::Relaxed);
            let _ = jobs.send(event.data());
        }
    }
}
// ANCHOR_END: poller

// ANCHOR: worker
fn work(
    shared: &Shared,
    token: u64,
    config: &StormConfig,
    counters: &StormCounters,
    dispatcher: &Dispatcher,
    epoll: &Epoll,
    table: &Mutex<HashMap<u64, Arc<Shared>>>,
) {
    if shared.holders.fetch_add(1, Ordering::AcqRel) > 0 {
        counters.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    // Slow to start: meanwhile, unmasked, the poller hands the socket out again.
    std::thread::sleep(config.provocation);
    let mut chunk = vec![0; config.chunk];
    let read = (&shared.stream).read(&mut chunk);
    match read {
        Ok(n) if n > 0 => {
            // Slow again before parsing, less so for each later read: unmasked, a later
            // piece overtakes an earlier one. Masked, the next read waits for this one.
            let ticket = shared.reads.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(config.provocation * (3 - (ticket % 4) as u32) / 4);
            let mut session = shared.session.lock().unwrap_or_else(|e| e.into_inner());
            session.receive(&chunk[..n]);
            session.answer(dispatcher);
            let mut replies = Vec::new();
            session.take_output(&mut replies);
            let _ = write_all(&shared.stream, &replies);
        }
        // Another worker (handed the same socket) read it first.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            counters.empty_reads.fetch_add(1, Ordering::Relaxed);
        }
        // The client is gone: forget the socket (closed when the last holder drops it).
        _ => {
            let _ = epoll.delete(shared.stream.as_fd());
            let _ = table.lock().map(|mut t| t.remove(&token));
        }
    }
    shared.holders.fetch_sub(1, Ordering::AcqRel);
    if config.masking == Masking::OneShot {
        let mut event = EpollEvent::new(interest(Masking::OneShot), token);
        let _ = epoll.modify(shared.stream.as_fd(), &mut event);
    }
}
// ANCHOR_END: worker

/// Writes all of `bytes` to a non-blocking socket, yielding while it is full: good enough
/// for a demonstration whose replies are a few hundred bytes, not for a server.
fn write_all(mut stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
