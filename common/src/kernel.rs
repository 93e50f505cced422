//! The kernel's side of a server, as `ss` and `nstat` show it: the accept queue of the
//! sockets listening on a port, the sockets of that port in TIME_WAIT, the namespace's
//! listen overflows and drops, and this process's context switches.
//!
//! Everything here is read by port, not through a descriptor, so any process can read it:
//! the fork version's child (which has closed the listener), and the load generator,
//! which watches a server it did not write. Sockets are listed through `sock_diag`, the
//! netlink interface `ss` uses, which hands back only the states asked for; reading
//! `/proc/net/tcp` instead would format every socket of the namespace as text, tens of
//! thousands of lines during a connection-per-request run.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};

/// The accept queues of the sockets listening on one port (several under `SO_REUSEPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptQueue {
    /// Listening sockets on the port.
    pub listeners: u32,
    /// Connections whose handshake is complete and that no `accept` has taken yet, summed
    /// over the listeners (`ss -ltn`'s Recv-Q).
    pub queued: u32,
    /// What the queues can hold, summed: each is the `listen()` backlog, clamped by the
    /// kernel to `net.core.somaxconn` (`ss -ltn`'s Send-Q). Linux lets a queue hold one
    /// more than its cap before it refuses.
    pub cap: u32,
}

/// Sockets of one port in TIME_WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWait {
    /// Whose local port is the port: the server's side, when the server closed first.
    pub local: u64,
    /// Whose remote port is the port: the clients' side, when they closed first.
    pub remote: u64,
}

/// The network namespace's counts of connections refused by a listener, since boot (or
/// since the namespace was made): every listener's, not one server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenCounters {
    /// A handshake that could not be queued because the accept queue was full
    /// (`TcpExtListenOverflows`). The client's SYN (or its final ACK) is dropped, and it
    /// sends it again a second later, and again (`net.ipv4.tcp_syn_linear_timeouts`, 4
    /// since Linux 6.5: at 1, 2, 3, 4 and 5 s, then doubling; older kernels double from the
    /// start, 1, 3, 7 s): a client's "connect took seconds".
    pub overflows: u64,
    /// Every SYN or ACK a listener dropped, overflows included (`TcpExtListenDrops`).
    pub drops: u64,
}

impl ListenCounters {
    /// What was counted since `earlier`.
    pub fn since(self, earlier: ListenCounters) -> ListenCounters {
        ListenCounters {
            overflows: self.overflows.saturating_sub(earlier.overflows),
            drops: self.drops.saturating_sub(earlier.drops),
        }
    }
}

/// This process's context switches, all its threads, living and ended (`getrusage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextSwitches {
    /// A thread gave up the CPU to wait (for a read, a lock, a timer).
    pub voluntary: u64,
    /// A thread was taken off the CPU while it could still run: its time slice ran out,
    /// or a thread the scheduler preferred woke.
    pub involuntary: u64,
}

/// The accept queues of the sockets listening on `port` (IPv4 and IPv6).
pub fn accept_queue(port: u16) -> io::Result<AcceptQueue> {
    let mut queue = AcceptQueue::default();
    for socket in tcp_sockets(&[TcpState::Listen], End::Local(port))? {
        queue.listeners += 1;
        queue.queued += socket.recv_q;
        queue.cap += socket.send_q;
    }
    Ok(queue)
}

/// The connections established on the server's side of `port`: its open connections,
/// accepted or still queued.
pub fn established(port: u16) -> io::Result<u64> {
    Ok(tcp_sockets(&[TcpState::Established], End::Local(port))?.len() as u64)
}

/// The inodes of the sockets listening on `port`, by which `/proc/<pid>/fd` names them
/// (`socket:[inode]`): how a watcher finds the process that listens.
pub fn listener_inodes(port: u16) -> io::Result<Vec<u64>> {
    Ok(tcp_sockets(&[TcpState::Listen], End::Local(port))?.iter().map(|s| s.inode).collect())
}

/// The sockets of `port` in TIME_WAIT, on either side.
pub fn time_wait(port: u16) -> io::Result<TimeWait> {
    Ok(TimeWait {
        local: tcp_sockets(&[TcpState::TimeWait], End::Local(port))?.len() as u64,
        remote: tcp_sockets(&[TcpState::TimeWait], End::Remote(port))?.len() as u64,
    })
}

/// The namespace's listen overflows and drops, from `/proc/net/netstat`.
pub fn listen_counters() -> io::Result<ListenCounters> {
    parse_netstat(&fs::read_to_string("/proc/net/netstat")?)
}

/// This process's context switches so far.
pub fn context_switches() -> io::Result<ContextSwitches> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    Ok(ContextSwitches {
        voluntary: usage.voluntary_context_switches().max(0) as u64,
        involuntary: usage.involuntary_context_switches().max(0) as u64,
    })
}

/// This process's CPU time so far, user and system, all its threads, living and ended
/// (`getrusage(RUSAGE_SELF)`); children's are not in it.
pub fn cpu_time() -> io::Result<std::time::Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let micros = |t: nix::sys::time::TimeVal| {
        t.tv_sec().max(0) as u64 * 1_000_000 + t.tv_usec().max(0) as u64
    };
    Ok(std::time::Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time())))
}

// ANCHOR: netstat
/// `/proc/net/netstat` holds pairs of lines, names then values: `TcpExt: SyncookiesSent …`
/// then `TcpExt: 0 …`.
fn parse_netstat(text: &str) -> io::Result<ListenCounters> {
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no TcpExt lines"));
    };
    let field = |wanted: &str| {
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == wanted)
            .and_then(|(_, value)| value.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("no TcpExt {wanted}"))
            })
    };
    Ok(ListenCounters { overflows: field("ListenOverflows")?, drops: field("ListenDrops")? })
}
// ANCHOR_END: netstat

/// A TCP socket's state, numbered as the kernel numbers them (`include/net/tcp_states.h`;
/// `/proc/net/tcp` prints the same numbers in hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
}

impl TcpState {
    /// Every state, in the kernel's order.
    pub const ALL: [TcpState; 12] = [
        Self::Established,
        Self::SynSent,
        Self::SynRecv,
        Self::FinWait1,
        Self::FinWait2,
        Self::TimeWait,
        Self::Close,
        Self::CloseWait,
        Self::LastAck,
        Self::Listen,
        Self::Closing,
        Self::NewSynRecv,
    ];

    fn from_kernel(number: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|state| *state as u8 == number)
    }
}

/// Which end of a socket must have the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The socket's own port: a server's side of its connections, and its listeners.
    Local(u16),
    /// The port it is connected to: a client's side of its connections to a server there.
    Remote(u16),
}

/// One TCP socket as `sock_diag` describes it, as much of it as the workspace reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub state: TcpState,
    pub local_port: u16,
    pub remote_port: u16,
    /// A listener's accept queue; a connection's bytes received and not yet read.
    pub recv_q: u32,
    /// A listener's accept-queue cap; a connection's bytes sent and not yet acknowledged.
    pub send_q: u32,
    pub inode: u64,
}

/// The TCP sockets in one of `states` whose `end` has the port, IPv4 then IPv6: `ss -tan`
/// for one port, and what every socket count of the workspace is read from.
pub fn tcp_sockets(states: &[TcpState], end: End) -> io::Result<Vec<TcpSocket>> {
    let mask = states.iter().fold(0u32, |mask, state| mask | 1 << *state as u8);
    let mut found = Vec::new();
    for family in [nix::libc::AF_INET as u8, nix::libc::AF_INET6 as u8] {
        dump(family, mask, end, &mut found)?;
    }
    Ok(found)
}

// The netlink framing, from include/uapi/linux/{netlink,sock_diag,inet_diag}.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, extensions, pad, states, then the
/// 48-byte `inet_diag_sockid` (ports big-endian first).
const REQUEST: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retransmits, the socket id, expiry, then
/// `idiag_rqueue` at 56, `idiag_wqueue` at 60, the owner's uid, and `idiag_inode` at 68.
const MESSAGE: usize = 72;

/// Asks the kernel for every TCP socket of `family` in a state of `mask` (bit `1 << state`)
/// with the port, and appends each to `found`. The port goes in the request, so the kernel
/// skips the others (it checks it for listeners and established sockets alike); it is
/// checked again here, in case an older kernel does not.
fn dump(family: u8, mask: u32, end: End, found: &mut Vec<TcpSocket>) -> io::Result<()> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        socket::SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let (sport, dport) = match end {
        End::Local(p) => (p, 0),
        End::Remote(p) => (0, p),
    };
    let mut request = Vec::with_capacity(NLMSG_HEADER + REQUEST);
    request.extend(((NLMSG_HEADER + REQUEST) as u32).to_ne_bytes());
    request.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend(1u32.to_ne_bytes()); // sequence number
    request.extend(0u32.to_ne_bytes()); // port id: the kernel assigns ours
    request.extend([family, nix::libc::IPPROTO_TCP as u8, 0, 0]);
    request.extend(mask.to_ne_bytes());
    request.extend(sport.to_be_bytes());
    request.extend(dport.to_be_bytes());
    request.resize(NLMSG_HEADER + REQUEST, 0); // addresses, interface, cookie: any
    socket::sendto(fd.as_raw_fd(), &request, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;

    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let len = socket::recv(fd.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
        if len == 0 {
            return Err(truncated("the netlink socket closed mid-dump"));
        }
        let mut at = 0;
        while at + NLMSG_HEADER <= len {
            let word = |offset: usize| u32_at(&buffer[..len], at + offset);
            let size = word(0)? as usize;
            let kind = u16::from_ne_bytes([buffer[at + 4], buffer[at + 5]]);
            if size < NLMSG_HEADER || at + size > len {
                return Err(truncated("a netlink message runs past the datagram"));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let errno = word(NLMSG_HEADER)? as i32;
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                SOCK_DIAG_BY_FAMILY if size >= NLMSG_HEADER + MESSAGE => {
                    let body = &buffer[at + NLMSG_HEADER..at + size];
                    found.extend(parse_message(body, mask, end)?);
                }
                _ => {}
            }
            at += size.next_multiple_of(4);
        }
    }
}

/// The socket an `inet_diag_msg` describes, if it is in a state of `mask` and its `end`
/// has the port.
fn parse_message(body: &[u8], mask: u32, end: End) -> io::Result<Option<TcpSocket>> {
    let local_port = u16::from_be_bytes([body[4], body[5]]);
    let remote_port = u16::from_be_bytes([body[6], body[7]]);
    let wanted = match end {
        End::Local(p) => local_port == p,
        End::Remote(p) => remote_port == p,
    };
    let state = TcpState::from_kernel(body[1]).filter(|s| mask & 1 << *s as u8 != 0);
    let (Some(state), true) = (state, wanted) else { return Ok(None) };
    Ok(Some(TcpSocket {
        state,
        local_port,
        remote_port,
        recv_q: u32_at(body, 56)?,
        send_q: u32_at(body, 60)?,
        inode: u64::from(u32_at(body, 68)?),
    }))
}

fn u32_at(bytes: &[u8], at: usize) -> io::Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| truncated("a netlink message is shorter than its header says"))
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn netstat_pairs_names_with_values() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 1 22 333\n\
                    IpExt: InNoRoutes\nIpExt: 4\n";
        assert_eq!(parse_netstat(text).unwrap(), ListenCounters { overflows: 22, drops: 333 });
        assert!(parse_netstat("IpExt: A\nIpExt: 1\n").is_err());
    }

    #[test]
    fn the_accept_queue_counts_connections_nobody_accepted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let empty = accept_queue(port).unwrap();
        assert_eq!((empty.listeners, empty.queued), (1, 0));
        // std's backlog is 128, clamped by somaxconn.
        assert!(empty.cap >= 1, "{empty:?}");
        let _clients: Vec<_> =
            (0..3).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
        // connect returns once the handshake is done; the kernel queues the connection
        // before it sends the SYN-ACK's answer, so the count is already there.
        assert_eq!(accept_queue(port).unwrap().queued, 3);
        // Queued or accepted, the server's side of each connection is established.
        assert_eq!(established(port).unwrap(), 3);
        let _accepted = listener.accept().unwrap();
        assert_eq!(accept_queue(port).unwrap().queued, 2);
        assert_eq!(established(port).unwrap(), 3);
        let inode = listener_inodes(port).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(link.to_str(), Some(format!("socket:[{}]", inode[0]).as_str()));
    }

    #[test]
    fn the_side_that_closes_first_holds_the_time_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        // Read the FIN before closing, so the server's close came first.
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &client, &mut byte).unwrap(), 0);
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = time_wait(port).unwrap();
        while seen.local == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            seen = time_wait(port).unwrap();
        }
        assert_eq!(seen, TimeWait { local: 1, remote: 0 });
    }

    #[test]
    fn each_end_of_a_connection_shows_its_queues() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut client, b"unread").unwrap();
        let client_port = client.local_addr().unwrap().port();
        let states = [TcpState::Established, TcpState::CloseWait];
        let mut theirs = tcp_sockets(&states, End::Remote(port)).unwrap();
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert_eq!((theirs[0].local_port, theirs[0].remote_port), (client_port, port));
        // Loopback delivers as it sends, and acknowledges as it receives: the bytes wait
        // in the server's receive queue, not in the client's send queue.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut ours = tcp_sockets(&states, End::Local(port)).unwrap();
        while (ours[0].recv_q, theirs[0].send_q) != (6, 0) {
            assert!(std::time::Instant::now() < deadline, "{ours:?} {theirs:?}");
            std::thread::sleep(Duration::from_millis(1));
            ours = tcp_sockets(&states, End::Local(port)).unwrap();
            theirs = tcp_sockets(&states, End::Remote(port)).unwrap();
        }
        assert_eq!(ours[0].state, TcpState::Established);
        assert!(tcp_sockets(&[TcpState::Listen], End::Remote(port)).unwrap().is_empty());
    }

    /// What the report relies on for a thread per connection: the switches of a thread
    /// that has ended still count (`/proc/<pid>/task` would have lost them with it).
    #[test]
    fn the_switches_of_an_ended_thread_still_count() {
        let before = context_switches().unwrap();
        std::thread::spawn(|| (0..20).for_each(|_| std::thread::sleep(Duration::from_millis(1))))
            .join()
            .unwrap();
        let after = context_switches().unwrap();
        assert!(after.voluntary >= before.voluntary + 20, "{before:?} {after:?}");
    }

    #[test]
    fn context_switches_are_counted_for_the_process() {
        let before = context_switches().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let after = context_switches().unwrap();
        assert!(after.voluntary > before.voluntary, "{before:?} {after:?}");
    }
}
