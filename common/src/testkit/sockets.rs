//! What the kernel shows of a server's sockets, for tests to wait on: counts by state and
//! port, read through `sock_diag` ([`crate::kernel`], the one socket reader of the
//! workspace), and the sockets a process holds, from `/proc/<pid>/fd`.

use std::io;
use std::net::TcpStream;

use crate::kernel::{self, End, TcpSocket, TcpState};

/// The states of a connection that neither side has begun to close, or that only the
/// other side has: what a server still holds open.
const OPEN: [TcpState; 2] = [TcpState::Established, TcpState::CloseWait];

/// The connections whose local end is TCP `port` and that are not closing from the local
/// side: ESTABLISHED, or CLOSE_WAIT (the other side has closed, this side not yet). For a
/// server's port: the connections it holds.
pub fn open_sockets_on(port: u16) -> io::Result<usize> {
    Ok(kernel::tcp_sockets(&OPEN, End::Local(port))?.len())
}

/// The sockets listening on TCP `port`: one per loop for a server whose loops each have
/// their own (`SO_REUSEPORT`).
pub fn listening_sockets_on(port: u16) -> io::Result<usize> {
    Ok(kernel::tcp_sockets(&[TcpState::Listen], End::Local(port))?.len())
}

/// Every socket connected, connecting or closing to TCP `port` (all but listeners): the
/// clients' side of a server's connections, in this network namespace.
pub fn connections_to(port: u16) -> io::Result<usize> {
    let states: Vec<TcpState> =
        TcpState::ALL.into_iter().filter(|s| *s != TcpState::Listen).collect();
    Ok(kernel::tcp_sockets(&states, End::Remote(port))?.len())
}

/// The states of the sockets whose remote end is `port`: a client's side of its
/// connections to a server there (`FinWait2`, then `TimeWait`, after the client closed
/// first).
pub fn socket_states_to(port: u16) -> io::Result<Vec<TcpState>> {
    let sockets = kernel::tcp_sockets(&TcpState::ALL, End::Remote(port))?;
    Ok(sockets.iter().map(|s| s.state).collect())
}

/// The two ends of one loopback connection, as the kernel shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// The side of the test's own socket.
    pub client: TcpSocket,
    /// The server's side: accepted, or still in the accept queue.
    pub server: TcpSocket,
}

/// Both ends of `client`'s connection, in any state; `None` once either end has gone from
/// the kernel's tables (a reset, or both sides closed).
pub fn ends(client: &TcpStream) -> io::Result<Option<Ends>> {
    let (local, remote) = (client.local_addr()?.port(), client.peer_addr()?.port());
    let ours = kernel::tcp_sockets(&TcpState::ALL, End::Local(local))?;
    let theirs = kernel::tcp_sockets(&TcpState::ALL, End::Local(remote))?;
    let client = ours.into_iter().find(|s| s.remote_port == remote);
    let server = theirs.into_iter().find(|s| s.remote_port == local);
    Ok(client.zip(server).map(|(client, server)| Ends { client, server }))
}

/// Whether the server has read everything `client` sent it: the server's kernel has
/// acknowledged every byte (nothing left in the client's send queue) and the server's
/// side of the connection has nothing left to read. A connection still in the accept
/// queue keeps its bytes unread, so this also says it was accepted. False if the kernel
/// shows no such connection.
pub fn server_has_read(client: &TcpStream) -> io::Result<bool> {
    Ok(ends(client)?.is_some_and(|e| e.client.send_q == 0 && e.server.recv_q == 0))
}

/// The inode of a socket listening on TCP `port`: what a process's descriptor for that
/// socket links to, as `socket:[inode]`.
pub fn listening_socket_inode(port: u16) -> io::Result<Option<u64>> {
    Ok(kernel::listener_inodes(port)?.first().copied())
}

/// The inodes of the sockets process `pid` has open, from the links in `/proc/<pid>/fd`.
pub fn socket_inodes(pid: u32) -> io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while we list them is simply not there any more.
        let Ok(target) = std::fs::read_link(entry?.path()) else { continue };
        let target = target.to_string_lossy();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            inodes.extend(inode.parse::<u64>().ok());
        }
    }
    Ok(inodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TIMEOUT, wait_until};
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn a_request_counts_as_read_only_once_the_server_has_read_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listening_sockets_on(port).unwrap(), 1);
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.write_all(b"GET /hello\n").unwrap();
        // Queued, not accepted: the bytes wait in the server's receive queue.
        assert!(!server_has_read(&client).unwrap());
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!((open_sockets_on(port).unwrap(), connections_to(port).unwrap()), (1, 1));
        assert!(!server_has_read(&client).unwrap());
        let mut request = [0u8; 11];
        server.read_exact(&mut request).unwrap();
        assert!(wait_until(TIMEOUT, || server_has_read(&client).unwrap()));
        drop(client);
        // The client closed first: its side closes through FIN_WAIT2, the server's waits
        // in CLOSE_WAIT, still open.
        assert!(wait_until(TIMEOUT, || socket_states_to(port).unwrap() == [TcpState::FinWait2]));
        assert_eq!(open_sockets_on(port).unwrap(), 1);
    }
}
