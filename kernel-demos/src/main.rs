//! The `kernel-demo` binary: runs one demonstration and prints its table.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use kernel_demos::sequence::Figure;
use kernel_demos::{
    handoff, herd, linger, nagle, omission, reuseport_close, switch, syn_retries, time_wait, uring,
};

/// What the kernel does under a server, measured on loopback: each demonstration prints
/// a table and a line on what to look at.
#[derive(Debug, Parser)]
#[command(
    name = "kernel-demo",
    version,
    after_help = "Stored outputs: scripts/kernel-demos.sh writes docs/src/results/kernel-<name>.txt"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The accept herd: how many waiting threads does one new connection wake?
    ///
    /// N threads wait for connections, each in its own epoll_wait, in three setups: one
    /// listener registered with plain EPOLLIN (the kernel wakes every thread), with
    /// EPOLLIN | EPOLLEXCLUSIVE (it wakes one), and a SO_REUSEPORT listener per thread
    /// (only the thread whose listener the hash chose). The client opens one connection
    /// at a time, each once every thread is asleep again.
    Herd(herd::Options),
    /// Nagle and delayed ACK: a reply in two small writes waits ~40 ms per request.
    ///
    /// The second piece waits for the ACK of the first (Nagle), which the client delays
    /// because it has nothing to send until the reply is whole. Measured three ways:
    /// Nagle on with two writes, TCP_NODELAY with two writes, Nagle on with one write.
    Nagle {
        #[command(flatten)]
        options: nagle::Options,
        #[command(flatten)]
        sequence: Sequence,
    },
    /// SYN retries: a client's SYNs against a full accept queue, and when connect returns.
    ///
    /// A listener with a tiny backlog nobody accepts from is filled; one more client
    /// connects and its retransmitted SYNs are timed through TCP_INFO; after --drops of
    /// them the server accepts one queued connection, and the next SYN gets in.
    SynRetries {
        #[command(flatten)]
        options: syn_retries::Options,
        #[command(flatten)]
        sequence: Sequence,
    },
    /// Who closes first holds the TIME_WAIT.
    ///
    /// The same request and reply, C times, with the server closing first, then the
    /// client; then the TIME_WAIT sockets of the server's port are counted on each side,
    /// and the ephemeral port range printed (what a client that closes first uses up).
    TimeWait {
        #[command(flatten)]
        options: time_wait::Options,
        #[command(flatten)]
        sequence: Sequence,
    },
    /// The lingering close: what each side sends and when, against a plain close.
    ///
    /// The client sends a request asking to close and one more behind it; the server
    /// answers and closes with common's lingering close (the client then closes, or stays
    /// silent until the 2 s run out), or with a plain close that leaves the second request
    /// unread and so resets the connection. Prints the times measured on both sides.
    LingerClose {
        #[command(flatten)]
        sequence: Sequence,
    },
    /// Coordinated omission: a server that stalls once, timed by a closed and an open loop.
    ///
    /// The same schedule of requests against a server that sleeps before one answer: the
    /// closed loop sends the next request only after the previous reply, the open loop on
    /// schedule. Prints each request's due, send and reply times and both latencies.
    Omission {
        #[command(flatten)]
        options: omission::Options,
        #[command(flatten)]
        sequence: Sequence,
    },
    /// io_uring: SQEs queued, one io_uring_enter, CQEs reaped, buffers lent and given back.
    ///
    /// One thread, one ring, three loopback connections: four buffers lent to the kernel,
    /// a receive per connection that picks one when bytes arrive, replies and the buffers'
    /// return submitted together. Prints every step's time.
    Uring {
        #[command(flatten)]
        sequence: Sequence,
    },
    /// v4-nio's hand-off and re-arm, from its system calls under strace.
    ///
    /// Runs the v4-nio binary under strace -f, sends two requests on one connection, and
    /// prints (or, with --sequence, draws) what the acceptor, the poller and the workers
    /// called and when. Needs strace, and leave to trace a child (ptrace).
    Handoff {
        #[command(flatten)]
        options: handoff::Options,
        #[command(flatten)]
        sequence: Sequence,
    },
    /// Closing one of two SO_REUSEPORT listeners: what becomes of its queued connections?
    ///
    /// Two listeners on one port, nobody accepting; the client connects; one listener is
    /// closed. With net.ipv4.tcp_migrate_req = 0 (the default) the connections in its
    /// queue are reset; with 1 they move to the other listener. The other value is tried
    /// only if root may set it, and restored afterwards.
    ReuseportClose(reuseport_close::Options),
    /// The price of a context switch: two threads ping-pong a byte over two pipes.
    ///
    /// Pinned to one CPU, then to two; prints ns per switch (half a round trip) and the
    /// voluntary and involuntary switches the threads counted, two per round trip.
    Switch(switch::Options),
}

/// The option every demonstration with a sequence diagram takes.
#[derive(Debug, clap::Args)]
struct Sequence {
    /// Instead of the table, record the demonstration once with a clock on both sides,
    /// draw its sequence diagram into FILE.svg, and print the measured times
    #[arg(long, value_name = "FILE.svg")]
    sequence: Option<PathBuf>,
}

/// Writes `figure` to `path` and prints its measured times.
fn draw(figure: &Figure, path: &Path) -> anyhow::Result<()> {
    figure.write(path)?;
    print!("{}", figure.text());
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Herd(options) => println!("{}", herd::run(&options)?),
        Command::Nagle { options, sequence: Sequence { sequence: Some(path) } } => {
            draw(&nagle::sequence(options.warmup)?, &path)?
        }
        Command::Nagle { options, .. } => println!("{}", nagle::run(&options)?),
        Command::SynRetries { options, sequence } => {
            let outcome = syn_retries::run(&options)?;
            match sequence.sequence {
                Some(path) => draw(&outcome.figure(), &path)?,
                None => println!("{outcome}"),
            }
        }
        Command::TimeWait { sequence: Sequence { sequence: Some(path) }, .. } => {
            draw(&time_wait::sequence()?, &path)?
        }
        Command::TimeWait { options, .. } => println!("{}", time_wait::run(&options)?),
        Command::LingerClose { sequence } => {
            let figure = linger::sequence()?;
            match sequence.sequence {
                Some(path) => draw(&figure, &path)?,
                None => print!("{}", figure.text()),
            }
        }
        Command::Omission { options, sequence } => {
            let figure = omission::sequence(&options)?;
            match sequence.sequence {
                Some(path) => draw(&figure, &path)?,
                None => print!("{}", figure.text()),
            }
        }
        Command::Uring { sequence } => {
            let figure = uring::sequence()?;
            match sequence.sequence {
                Some(path) => draw(&figure, &path)?,
                None => print!("{}", figure.text()),
            }
        }
        Command::Handoff { options, sequence } => {
            let figure = handoff::sequence(&options)?;
            match sequence.sequence {
                Some(path) => draw(&figure, &path)?,
                None => print!("{}", figure.text()),
            }
        }
        Command::ReuseportClose(options) => println!("{}", reuseport_close::run(&options)?),
        Command::Switch(options) => println!("{}", switch::run(&options)?),
    }
    Ok(())
}
