//! A server running as a child process: how tests start the fork version (which must be
//! alone in its process) and how the load generator starts every version, each in a
//! process of its own so /proc's figures are that server's alone.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{TIMEOUT, listening_sockets_on, spawn_binary, wait_until};
use crate::procfs;

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A server process, killed (with any children it forked) when dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    addr: SocketAddr,
    /// The child leads a process group of its own, all of which goes when it does.
    group: bool,
}

impl ChildServer {
    /// Runs `command`, which must start a server that prints `… listening on <addr>` as
    /// its first line on stdout (every version does, see `cli::announce`), and waits for
    /// that line. Give it `--addr 127.0.0.1:0` to have the server pick a free port.
    pub fn spawn(mut command: Command) -> io::Result<Self> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the first line so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the server printed no `listening on` line ({status})"),
                ));
            }
        };
        let addr = line
            .rsplit_once("listening on ")
            .and_then(|(_, a)| a.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected first line: {line}")))?;
        Ok(Self { child, addr, group: false })
    }

    /// Takes charge of a server already started, which listens (or will) on `addr`: for
    /// servers that are told their port rather than print it (the load generator's
    /// reference servers). The caller waits for it to answer.
    pub fn adopt(child: Child, addr: SocketAddr) -> Self {
        Self { child, addr, group: false }
    }

    /// [`ChildServer::adopt`] for a child started as the leader of a process group of
    /// its own (`process_group(0)`): the whole group is killed with it, however deep the
    /// processes it started (a shell script that starts the server, say).
    pub fn adopt_group(child: Child, addr: SocketAddr) -> Self {
        Self { child, addr, group: true }
    }

    /// Whether the server process has exited (it is reaped if so).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server process (only: not to its children).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        let pid = i32::try_from(self.pid()).map_err(io::Error::other)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(io::Error::from)
    }

    /// Waits up to `timeout` for the server to exit; its status if it did.
    pub fn wait_timeout(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<std::process::ExitStatus>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // The fork version's children outlive a killed parent; take them down too.
        let children = procfs::children(self.pid()).unwrap_or_default();
        if self.group
            && let Ok(group) = i32::try_from(self.pid())
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in children {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Runs `command` to its exit, stdout and stderr captured: what it printed. A command
/// still running after [`TIMEOUT`] is killed and the test fails: it was to stop at once
/// (a server refusing its options, or its kernel) and is serving instead.
pub fn run_to_exit(command: &mut Command) -> Output {
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run the binary");
    let exited = wait_until(TIMEOUT, || child.try_wait().is_ok_and(|status| status.is_some()));
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("its output");
    assert!(exited, "{command:?} did not stop: it is serving");
    out
}

/// Starts `binary` with `args` `starts` times, and checks that each time, when it prints
/// its address, all `sockets` of its loops listen (`SO_REUSEPORT`): a client that
/// connects the moment it reads the line must be spread over every loop. An announcement
/// a fraction of a millisecond early shows in a start or so in five, hence the starts.
pub fn every_socket_listens_when_announced(
    binary: &str,
    args: &[&str],
    sockets: usize,
    starts: usize,
) {
    for start in 0..starts {
        let server = spawn_binary(binary, args);
        let listening = listening_sockets_on(server.addr().port())
            .expect("the kernel lists the sockets (sock_diag)");
        assert_eq!(
            listening, sockets,
            "start {start}: {listening} socket(s) listening at the announcement"
        );
    }
}

/// Runs `binary` on port 0 with `args`, which its command line must refuse: clap's exit
/// status for a usage error (2), a message on stderr holding every one of `said`, and no
/// address announced on stdout.
pub fn check_refused_by_the_command_line(binary: &str, args: &[&str], said: &[&str]) {
    let out = run_to_exit(Command::new(binary).args(["--addr", "127.0.0.1:0"]).args(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for words in said {
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.is_empty(), "{args:?} announced anyway: {stdout}");
}
