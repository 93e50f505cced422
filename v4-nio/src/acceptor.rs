//! The Acceptor: one thread that accepts connections and queues them for the poller.
//!
//! It blocks in `accept` like every earlier version, but serves nothing: each accepted
//! socket is made non-blocking and handed over as [`PollerEvent::Register`]. Before each
//! `accept` it takes a permit from the [`LimitLatch`] (in `common`, shared with v5), so at
//! `max_connections` open connections it waits (new clients queue in the kernel's
//! backlog) instead of running the process out of descriptors: Tomcat's `maxConnections`
//! and its `LimitLatch`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use common::limit::{LimitLatch, Permit};
use common::trace::{self, Cat};
use common::{Shutdown, accept_failed};

use crate::Counters;
use crate::poller::{PollerEvent, PollerHandle};

/// Accepts connections and queues them for the poller.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    poller: PollerHandle,
    latch: Arc<LimitLatch>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
}

impl Acceptor {
    pub fn new(
        listener: TcpListener,
        poller: PollerHandle,
        latch: Arc<LimitLatch>,
        counters: Arc<Counters>,
        shutdown: Shutdown,
    ) -> Self {
        Self { listener, poller, latch, counters, shutdown }
    }

    /// Accepts until shutdown, or until the poller has gone away.
    pub fn run(self) -> io::Result<()> {
        // Connections are numbered in accept order; the number is also the poller's token.
        let mut accepted_so_far = 0;
        // ANCHOR: acceptor_loop
        loop {
            // At the cap, wait here for a connection to close; the kernel queues newcomers.
            let Some(permit) = self.latch.acquire(&self.shutdown, &self.counters.accept_waits)
            else {
                break;
            };
            let accepted = self.accept();
            if self.shutdown.is_triggered() {
                break;
            }
            match accepted {
                Ok((stream, _)) => {
                    accepted_so_far += 1;
                    if !self.hand_over(stream, permit, accepted_so_far) {
                        break;
                    }
                }
                // EMFILE and friends: the permit goes back, accept_failed pauses.
                Err(e) => accept_failed(&e),
            }
        }
        // ANCHOR_END: acceptor_loop
        Ok(())
    }

    /// `accept`, its wait recorded for the timeline.
    fn accept(&self) -> io::Result<(TcpStream, std::net::SocketAddr)> {
        let _waiting = trace::span(Cat::Wait, "accept");
        self.listener.accept()
    }

    /// Queues connection number `conn` for the poller. False if the poller is gone.
    fn hand_over(&self, stream: TcpStream, permit: Permit, conn: usize) -> bool {
        trace::accepted(conn as u64);
        // The poller and workers must never block on this socket.
        if let Err(e) = stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true)) {
            tracing::warn!("cannot set up an accepted socket, closing it: {e}");
            trace::instant(Cat::Close, "close", &[("why", "error".into())]);
            return true;
        }
        let handoff = trace::handoff(conn as u64);
        self.poller.send(PollerEvent::Register { stream, permit, conn, handoff })
    }
}
