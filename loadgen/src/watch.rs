//! `loadgen watch`: the live page for a server seen from outside. A server's own page at
//! `/` is answered by the server, so it goes dark exactly when there is most to see: v1
//! serving one client while the others queue, a loop whose handler blocks, any server past
//! its connection cap. This page is answered by a process of its own and reads the server
//! where the kernel keeps it, by port: its accept queue, its connections and TIME_WAIT
//! (`sock_diag`), the namespace's listen overflows (`/proc/net/netstat`), and the threads,
//! memory and context switches of the process that listens (`/proc`). It works for a
//! server that has no `/stats` at all: nginx, Tomcat, yours.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use common::dispatcher::HandlerMapping;
use common::handlers::LIVE_PAGE;
use common::kernel::{self, ListenCounters};
use common::stats::Kernel;
use common::{Dispatcher, Request, Response, Stats, procfs};
use serde_json::{Value, json};

/// What is watched: a port, and the process found listening on it when the watch began.
#[derive(Debug)]
pub struct Watch {
    port: u16,
    pid: Option<u32>,
    started: Instant,
    listen_at_start: Option<ListenCounters>,
}

impl Watch {
    /// Watches whatever listens on `port` on this machine.
    pub fn new(port: u16) -> anyhow::Result<Self> {
        let inodes = kernel::listener_inodes(port).context("listing the sockets (sock_diag)")?;
        anyhow::ensure!(
            !inodes.is_empty(),
            "nothing listens on port {port} here; start the server first (watch reads the \
             kernel of this machine, so the server must run on it)"
        );
        Ok(Self {
            port,
            pid: crate::census::listener_pid(port).ok().flatten(),
            started: Instant::now(),
            listen_at_start: kernel::listen_counters().ok(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The document the live page draws, shaped as a version's `/stats` (what the server
    /// alone knows, its requests and its model's figures, is missing).
    pub fn snapshot(&self) -> Value {
        let proc = self.pid.and_then(|pid| procfs::status(Some(pid)).ok());
        let kernel = Kernel {
            accept_queue: kernel::accept_queue(self.port).ok(),
            listen: match (kernel::listen_counters(), self.listen_at_start) {
                (Ok(now), Some(start)) => Some(now.since(start)),
                _ => None,
            },
            time_wait: kernel::time_wait(self.port).ok(),
            context_switches: self.pid.and_then(|pid| procfs::context_switches(pid).ok()),
        };
        let mut kernel = kernel.to_json();
        kernel["scope"] = format!(
            "accept_queue and time_wait: the sockets of port {}, as `ss -tan` shows them. \
             listen_overflows and listen_drops: every listener of this network namespace \
             (nstat's TcpExtListenOverflows, TcpExtListenDrops), since the watch began. \
             context_switches: the live threads of the process that listens.",
            self.port
        )
        .into();
        json!({
            "server": format!("port {}, watched from outside", self.port),
            "about": format!(
                "loadgen watch reads port {} from the kernel, without asking the server: open \
                 connections are those established on the port (accepted or still queued); \
                 threads, memory and context switches are process {}'s, the one that listens \
                 (a fork server's children are not counted).",
                self.port,
                self.pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            ),
            "pid": self.pid,
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "threads": proc.map(|p| p.threads),
            "rss_bytes": proc.map(|p| p.rss_bytes),
            "connections": { "active": kernel::established(self.port).ok() },
            "requests": null,
            "model": {},
            "counters": [],
            "kernel": kernel,
        })
    }
}

/// Serves the page and its figures on `listener` until the process is stopped, with
/// v2-thread-per-conn: a thread per browser tab is all a watch needs.
pub fn serve(watch: Watch, listener: TcpListener) -> anyhow::Result<()> {
    let watch = Arc::new(watch);
    let routes = HandlerMapping::new()
        .route("GET", "/", |_: &Request| {
            Response::bytes(200, "text/html; charset=utf-8", LIVE_PAGE.as_bytes().to_vec())
                .with_header("Cache-Control", "no-store")
        })
        .route("GET", "/stats", move |_: &Request| {
            Response::json(200, &watch.snapshot()).with_header("Cache-Control", "no-store")
        });
    let dispatcher = Arc::new(Dispatcher::new(routes, Stats::new("loadgen-watch")));
    v2_thread_per_conn::run(listener, dispatcher, v2_thread_per_conn::Config::default())?;
    Ok(())
}

/// Opens the page's socket on `addr`.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} for the page"))
}
