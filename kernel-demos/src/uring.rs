//! io_uring's batched submissions and provided buffers, timed: SQEs queued in memory, one
//! `io_uring_enter` that submits them all and waits, completions reaped, and buffers lent
//! to the kernel and given back.
//!
//! One thread, one ring, three loopback connections. The program lends the kernel four
//! buffers (`IORING_OP_PROVIDE_BUFFERS`) and queues a receive per connection that names
//! no buffer, only the group to pick from: a connection waiting for bytes holds no memory.
//! One `io_uring_enter` submits the four entries. The clients then send; the kernel picks
//! a buffer for each arrival; a second enter waits for the three completions, each naming
//! its buffer, which is the program's from then on. It answers each connection and gives
//! each buffer back, the three sends and three returns submitted by one more enter. Every
//! step is timed on the program's clock. (v7 lends through a buffer ring, where giving a
//! buffer back is a store to shared memory rather than an entry: the same ownership.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::sequence::{Figure, Item, Panel, Shade, show};
use crate::{DEADLINE, accept_within, wait_for};

/// Connections, buffers lent (one more than needed: one stays the kernel's), their size.
const CONNECTIONS: usize = 3;
const BUFFERS: u16 = 4;
const SIZE: usize = 64;
const GROUP: u16 = 7;
/// user_data of the first provide-buffers entry and of those giving one back;
/// connections are 0..CONNECTIONS, sends SEND + i.
const PROVIDE: u64 = 1000;
const GIVE_BACK: u64 = 1001;
const SEND: u64 = 100;

/// A completion reaped: its user_data, its result, the buffer it names.
type Completion = (u64, i32, Option<u16>);

/// The lifelines.
const CLIENTS: usize = 0;
const KERNEL: usize = 1;
const PROGRAM: usize = 2;

/// What the program recorded, in time order, as the diagram's items.
struct Recorder {
    origin: Instant,
    items: Vec<Item>,
}

impl Recorder {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// One `io_uring_enter` that submits what is queued and waits for `want` completions:
    /// an arrow with the count into the kernel, a bar while the call lasts.
    fn enter(&mut self, ring: &mut IoUring, want: usize, what: &str) -> anyhow::Result<Duration> {
        let queued = ring.submission().len();
        let start = self.now();
        let submitted = ring.submit_and_wait(want).context("io_uring_enter")?;
        let end = self.now();
        let label = format!("io_uring_enter: {submitted} of {queued} SQEs, wait for {want}");
        self.items.push(Item::message(PROGRAM, KERNEL, start, start, &label));
        self.items.push(Item::span(PROGRAM, start, end, what, Shade::Waiting));
        Ok(end)
    }

    /// Reaps every completion there is: (user_data, result, buffer id), each with an
    /// arrow from the kernel at the time it was taken.
    fn reap(&mut self, ring: &mut IoUring) -> Vec<Completion> {
        let entries: Vec<cqueue::Entry> = ring.completion().collect();
        let mut reaped = Vec::new();
        for entry in entries {
            // Each taken in turn, as a program handles them: its own time, its own row.
            let at = self.now();
            let (data, result) = (entry.user_data(), entry.result());
            let buffer = cqueue::buffer_select(entry.flags());
            let label = match (data, buffer) {
                (PROVIDE, _) if result < 0 => format!("CQE: buffers refused ({result})"),
                (PROVIDE, _) => "CQE: buffers lent".to_owned(),
                (GIVE_BACK, _) if result < 0 => format!("CQE: buffer refused ({result})"),
                (GIVE_BACK, _) => "CQE: buffer back".to_owned(),
                (d, _) if d >= SEND => format!("CQE: sent {result} B on conn {}", d - SEND),
                (d, Some(b)) => format!("CQE: conn {d}, {result} B in buffer {b}"),
                (d, None) => format!("CQE: conn {d}: {result}"),
            };
            self.items.push(Item::message(KERNEL, PROGRAM, at, at, &label));
            reaped.push((data, result, buffer));
        }
        reaped
    }
}

/// Whether thread `tid` of this process is asleep (state S in its stat): in the
/// demonstration, blocked in `io_uring_enter`.
fn asleep(tid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with('S')))
        .unwrap_or(false)
}

/// The clients' side: once the program has said it is about to wait and is asleep,
/// each client sends its request; returns when each write was called and returned.
fn send_when_waiting(
    pairs: &[(TcpStream, TcpStream)],
    program: libc::pid_t,
    entering: &AtomicBool,
    origin: Instant,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    wait_for("the program to wait in io_uring_enter", || {
        entering.load(Ordering::Acquire) && asleep(program)
    })?;
    let mut times = Vec::new();
    for (index, (client, _)) in pairs.iter().enumerate() {
        let sent = origin.elapsed();
        (&*client).write_all(format!("request {index}").as_bytes())?;
        times.push((sent, origin.elapsed()));
    }
    Ok(times)
}

/// Queues an entry; the queue has room for every entry this demonstration makes.
fn push(ring: &mut IoUring, entry: &squeue::Entry) -> anyhow::Result<()> {
    // SAFETY: every buffer an entry points to lives for the rest of the process: the
    // replies are static, and the lent pool is leaked (see `record`), so the kernel may
    // write into it whenever it likes, even during the ring's teardown after an error.
    unsafe { ring.submission().push(entry) }.map_err(|_| anyhow::anyhow!("submission queue full"))
}

/// Three connected pairs (client, server side) on loopback.
fn connections() -> anyhow::Result<Vec<(TcpStream, TcpStream)>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    (0..CONNECTIONS)
        .map(|_| {
            let client = TcpStream::connect(listener.local_addr()?)?;
            client.set_read_timeout(Some(DEADLINE))?;
            Ok((client, accept_within(&listener)?))
        })
        .collect()
}

/// Runs it and returns the diagram's panel.
pub fn record() -> anyhow::Result<Panel> {
    // Leaked, 256 bytes once per run: closing the ring only begins its teardown, and a
    // receive armed with a lent buffer may complete until that is done, so the memory
    // the kernel was lent must never be freed (v7's `Registration` leaks it likewise).
    let pool: &'static mut [u8] = Box::leak(vec![0u8; SIZE * BUFFERS as usize].into_boxed_slice());
    let pairs = connections()?;
    let mut ring = IoUring::new(16).context("io_uring_setup (is io_uring allowed here?)")?;
    let mut rec = Recorder { origin: Instant::now(), items: Vec::new() };
    let provide = opcode::ProvideBuffers::new(pool.as_mut_ptr(), SIZE as i32, BUFFERS, GROUP, 0);
    push(&mut ring, &provide.build().user_data(PROVIDE))?;
    rec.items.push(Item::mark(PROGRAM, rec.now(), "SQE: lend buffers 0-3"));
    for (index, (_, server)) in pairs.iter().enumerate() {
        let recv =
            opcode::Recv::new(types::Fd(server.as_raw_fd()), std::ptr::null_mut(), SIZE as u32)
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
                .user_data(index as u64);
        push(&mut ring, &recv)?;
        rec.items.push(Item::mark(
            PROGRAM,
            rec.now(),
            &format!("SQE: recv conn {index}, any buffer"),
        ));
    }
    rec.enter(&mut ring, 1, "enter: submits, waits")?;
    let lent = rec.now();
    rec.reap(&mut ring);
    // The clients send from another thread while this one waits in the kernel, so that
    // the bytes find receives already armed and the wait returns with their completions.
    // SAFETY: gettid has no preconditions and cannot fail.
    let program = unsafe { libc::gettid() };
    let entering = AtomicBool::new(false);
    let origin = rec.origin;
    let sends = std::thread::scope(|scope| {
        let clients = scope.spawn(|| send_when_waiting(&pairs, program, &entering, origin));
        entering.store(true, Ordering::Release);
        let waited = rec.enter(&mut ring, CONNECTIONS, "enter: waits for 3");
        let sends = clients.join().map_err(|_| anyhow::anyhow!("the clients panicked"))?;
        waited?;
        sends
    })?;
    // Drawn at the call: the bytes reach the kernel within the write, whose return
    // may come after the completion it caused.
    for (index, (sent, _)) in sends.into_iter().enumerate() {
        rec.items.push(Item::message(
            CLIENTS,
            KERNEL,
            sent,
            sent,
            &format!("conn {index}: write()"),
        ));
    }
    let mut received = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while received.len() < CONNECTIONS {
        received.extend(rec.reap(&mut ring).into_iter().filter(|(data, ..)| *data < SEND));
        if received.len() < CONNECTIONS {
            if Instant::now() > deadline {
                bail!("{} of {CONNECTIONS} receives completed", received.len());
            }
            rec.enter(&mut ring, 1, "enter: waits")?;
        }
    }
    let fds: Vec<RawFd> = pairs.iter().map(|(_, server)| server.as_raw_fd()).collect();
    answer(&mut ring, &mut rec, (&received, &fds), pool, lent)?;
    for (index, (client, _)) in pairs.iter().enumerate() {
        let mut reply = [0u8; 8];
        (&*client).read_exact(&mut reply).with_context(|| format!("read reply {index}"))?;
    }
    drop(ring);
    Ok(Panel {
        title: "one thread, one ring, three connections".into(),
        lifelines: vec!["clients".into(), "kernel (io_uring)".into(), "program".into()],
        items: rec.items,
        px_per_ms: None,
    })
}

/// Reads each received buffer, queues a reply and the buffer's return for each, and
/// submits them all in one enter; draws who held each buffer when.
fn answer(
    ring: &mut IoUring,
    rec: &mut Recorder,
    (received, fds): (&[Completion], &[RawFd]),
    pool: &mut [u8],
    lent: Duration,
) -> anyhow::Result<()> {
    let taken = rec.now();
    let replies: Vec<&'static [u8]> = vec![b"reply 0\n", b"reply 1\n", b"reply 2\n"];
    let mut used = Vec::new();
    for &(conn, result, buffer) in received {
        let Some(bid) = buffer else { bail!("conn {conn}: no buffer ({result})") };
        let start = bid as usize * SIZE;
        let bytes = pool.get(start..start + result.max(0) as usize).context("buffer")?;
        if !bytes.starts_with(b"request") {
            bail!("buffer {bid} holds {bytes:?}");
        }
        let fd = types::Fd(*fds.get(conn as usize).context("no such connection")?);
        let reply = replies[conn as usize % replies.len()];
        let send = opcode::Send::new(fd, reply.as_ptr(), reply.len() as u32);
        push(ring, &send.build().user_data(SEND + conn))?;
        let back =
            opcode::ProvideBuffers::new(pool[start..].as_mut_ptr(), SIZE as i32, 1, GROUP, bid);
        push(ring, &back.build().user_data(GIVE_BACK))?;
        used.push(bid);
    }
    let returned = rec.now();
    rec.items.push(Item::mark(PROGRAM, returned, "SQEs: 3 sends, 3 buffers back"));
    rec.enter(ring, 2 * received.len(), "enter: submits 6")?;
    rec.reap(ring);
    for bid in 0..BUFFERS {
        let (label, end) = if used.contains(&bid) {
            ("buffers 0-3: the kernel's".to_owned(), taken)
        } else {
            (format!("buffer {bid}: the kernel's, unused"), rec.now())
        };
        let label = if bid == 0 { label } else { String::new() };
        rec.items.push(Item::span(KERNEL, lent, end, &label, Shade::Kernel));
    }
    for bid in &used {
        let label = if Some(bid) == used.first() {
            format!("buffers {used:?}: the program's")
        } else {
            String::new()
        };
        rec.items.push(Item::span(PROGRAM, taken, returned, &label, Shade::Busy));
    }
    Ok(())
}

/// The sequence diagram of one recording.
pub fn sequence() -> anyhow::Result<Figure> {
    let panel = record()?;
    let enters = panel
        .items
        .iter()
        .filter(|item| matches!(item, Item::Message { label, .. } if label.starts_with("io_uring_enter")))
        .count();
    let end = panel.items.iter().map(Item::end).max().unwrap_or_default();
    Ok(Figure {
        title: "io_uring: batched submissions and buffers lent to the kernel".into(),
        caption: format!(
            "Entries are queued in shared memory without a system call (dots); each \
             io_uring_enter submits every queued entry and waits (orange), {enters} enters in \
             all for {CONNECTIONS} requests answered in {}. The four buffers are the \
             kernel's (purple) from the first enter until a receive completion names one; \
             then the program's (green) until the entry giving it back is submitted. A \
             receive waiting for bytes holds no buffer. Times on the program's clock; \
             vertical distance grows with the logarithm of the gap.",
            show(end)
        ),
        panels: vec![panel],
    })
}
