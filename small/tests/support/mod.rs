//! What every small program's test needs: start the program as a child on 127.0.0.1:0 and
//! read the address it prints, ask it for `/hello` over a raw socket, see whether a client
//! is answered, and count the program's threads and child processes from /proc.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long anything that should happen may take before the test fails: generous, since
/// the machine may be busy, and still bounded.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A small program running as a child process; dropping it kills the program and every
/// process it forked.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `binary` on 127.0.0.1:0 with `args` after the address, and waits for the
    /// `listening on ADDR` line it prints.
    pub fn start(binary: &str, args: &[&str]) -> Server {
        let child = Command::new(binary)
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the program");
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        let stdout = server.child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(PATIENCE).expect("the program printed no address in time");
        let addr = line.strip_prefix("listening on ").and_then(|rest| rest.split(' ').next());
        server.addr = addr.and_then(|a| a.trim().parse().ok()).expect(&line);
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new client, whose reads give up after PATIENCE.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("set a read timeout");
        stream
    }

    /// A client that has been answered twice on its one connection (keep-alive), and holds it.
    pub fn client_answered_twice(&self) -> TcpStream {
        let mut stream = self.connect();
        for _ in 0..2 {
            ask_hello(&mut stream);
            assert_hello(&read_reply(&mut stream).expect("a reply"));
        }
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in children(self.pid()) {
            let _ = kill(Pid::from_raw(child as i32), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ask_hello(stream: &mut TcpStream) {
    stream.write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").expect("send a request");
}

/// One whole reply: the head up to the blank line, then Content-Length bytes of body.
pub fn read_reply(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .expect(&head);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(head + &String::from_utf8_lossy(&body))
}

pub fn assert_hello(reply: &str) {
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("\r\nContent-Length: 13\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nHello, World!"), "{reply}");
}

/// Asserts that nothing arrives on `stream` for `quiet`: a client left waiting. Only an
/// absence can show that, so this one waits out its time.
pub fn assert_not_answered(stream: &mut TcpStream, quiet: Duration) {
    stream.set_read_timeout(Some(quiet)).expect("set a read timeout");
    let got = stream.read(&mut [0; 64]);
    stream.set_read_timeout(Some(PATIENCE)).expect("set a read timeout");
    match got {
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
        other => panic!("answered (or closed) while it should wait: {other:?}"),
    }
}

/// Polls `condition` until it holds, failing the test after PATIENCE with `what`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "not within {PATIENCE:?}: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The process's threads as (thread id, name), from /proc/PID/task.
pub fn threads(pid: u32) -> Vec<(u32, String)> {
    let mut threads = Vec::new();
    for entry in
        std::fs::read_dir(format!("/proc/{pid}/task")).expect("the program is running").flatten()
    {
        let Ok(tid) = entry.file_name().to_string_lossy().parse() else { continue };
        // A thread may end between the listing and this read.
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            threads.push((tid, name.trim().to_string()));
        }
    }
    threads
}

/// The processes whose parent is `pid`, from every /proc/N/stat.
pub fn children(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc is mounted").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // After the name in parentheses (which may hold spaces): state, then the parent.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if after_name.split_whitespace().nth(1) == Some(&pid.to_string()) {
            children.push(child);
        }
    }
    children
}

/// How many times thread `tid` of `pid` has gone to sleep of its own accord (blocked in a
/// system call, here epoll_wait).
pub fn voluntary_switches(pid: u32, tid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .expect("the thread is running");
    let line = status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"));
    line.and_then(|n| n.trim().parse().ok()).expect("the kernel counts switches")
}

/// `count` clients, each answered once and then holding its connection, idle.
pub fn idle_clients(server: &Server, count: usize) -> Vec<TcpStream> {
    let mut clients = Vec::new();
    for _ in 0..count {
        let mut stream = server.connect();
        ask_hello(&mut stream);
        assert_hello(&read_reply(&mut stream).expect("a reply"));
        clients.push(stream);
    }
    clients
}

/// Whether thread `tid` of `pid` is asleep (state S in /proc/PID/task/TID/stat): for a
/// loop past its start-up, asleep in its wait for the next event.
pub fn asleep(pid: u32, tid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
    // After the name in parentheses (which may hold spaces) comes the state.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) == Some("S")
}
