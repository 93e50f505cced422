//! The reference servers, or peers: the production servers each design of the series
//! leads to, which `compare --peers` runs through the same scenarios as the versions, so
//! a student can see how far a version is from the real thing, in one run.
//!
//! - **nginx**, v5's design: a worker process per core, each an event loop with its own
//!   `SO_REUSEPORT` listener (`reuseport`), answering `/hello` from its configuration.
//! - **Tomcat's NIO connector**, v4's and the Java article's design: an acceptor thread, a
//!   poller thread on a selector, a pool of workers; with 10 threads (v4-nio's pool) and
//!   with 200 (Tomcat's default). Its application answers `/hello`, `/sleep` and `/cpu`.
//! - **hyper** on tokio, v6's design as a Rust user would build it (`peers/hyper`).
//!
//! nginx and Tomcat are configured by the files in the repository's `peers/` folder, with
//! `@PORT@`, `@DIR@` and `@THREADS@` replaced, in a folder of their own for each run;
//! each is started in the foreground, its pid the server's, and killed with its children
//! like a version. A peer that is not installed is skipped, with the line to install it.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use common::testkit::{ChildServer, wait_until};
use serde::Serialize;

/// The reference servers, in the order of the designs they follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
pub enum Peer {
    #[value(name = "nginx")]
    #[serde(rename = "nginx")]
    Nginx,
    #[value(name = "tomcat-nio-10")]
    #[serde(rename = "tomcat-nio-10")]
    TomcatNio10,
    #[value(name = "tomcat-nio-200")]
    #[serde(rename = "tomcat-nio-200")]
    TomcatNio200,
    #[value(name = "peer-hyper")]
    #[serde(rename = "peer-hyper")]
    Hyper,
}

/// Where Debian's `tomcat10` package puts Tomcat (CATALINA_HOME).
const CATALINA_HOME: &str = "/usr/share/tomcat10";

/// How long a peer may take to answer its first `/hello`: a fresh JVM starts Tomcat,
/// then compiles the page at the first request.
const START_PATIENCE: Duration = Duration::from_secs(60);

impl Peer {
    pub const ALL: [Peer; 4] = [Peer::Nginx, Peer::TomcatNio10, Peer::TomcatNio200, Peer::Hyper];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Nginx => "nginx",
            Peer::TomcatNio10 => "tomcat-nio-10",
            Peer::TomcatNio200 => "tomcat-nio-200",
            Peer::Hyper => peer_hyper::SERVER,
        }
    }

    /// What it is, and whose design it follows, in a sentence for the report.
    pub fn design(self) -> &'static str {
        match self {
            Peer::Nginx => {
                "v5's design, a worker process per core, each an event loop on its own \
                 SO_REUSEPORT listener; /hello only, answered from its configuration"
            }
            Peer::TomcatNio10 => {
                "Tomcat 10's NIO connector with 10 worker threads, v4's design (acceptor, \
                 poller, pool) with v4-nio's pool size; /hello, /sleep and /cpu as JSP pages"
            }
            Peer::TomcatNio200 => "the same Tomcat with 200 worker threads, its default pool size",
            Peer::Hyper => {
                "hyper on tokio's multi-threaded runtime, a task per connection, v6's design \
                 with the ecosystem's HTTP library; /hello only"
            }
        }
    }

    /// Whether it answers `path` (query aside) as the versions do.
    pub fn answers(self, path: &str) -> bool {
        let route = path.split('?').next().unwrap_or(path);
        match self {
            Peer::Nginx | Peer::Hyper => route == "/hello",
            Peer::TomcatNio10 | Peer::TomcatNio200 => matches!(route, "/hello" | "/sleep" | "/cpu"),
        }
    }

    /// How long to load it, unmeasured, before its first measured run, if it needs it: a
    /// JVM interprets its code at first and compiles what runs hot, so a fresh Tomcat's
    /// first seconds measure its compiler, not its design (here it serves a tenth of its
    /// rate in its first second and all of it after about twelve: `scripts/tomcat-warm-up.sh`,
    /// stored in `docs/src/results/tomcat-warm-up.txt`). A peer that needs a warm-up is
    /// started once per comparison and kept through every scenario, as such a server runs
    /// in production; native servers are fresh for each, as the versions.
    pub fn warm_up(self) -> Option<Duration> {
        match self {
            Peer::TomcatNio10 | Peer::TomcatNio200 => Some(Duration::from_secs(12)),
            Peer::Nginx | Peer::Hyper => None,
        }
    }

    /// Whether it runs as several processes (nginx's master and workers).
    pub fn worker_processes(self) -> bool {
        self == Peer::Nginx
    }

    /// Whether it can be started on this machine; if not, what to install.
    pub fn check(self) -> Result<(), String> {
        // Whether the program runs at all (its version is not checked).
        let found = |program: &str, version_flag: &str| {
            Command::new(program)
                .arg(version_flag)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        };
        match self {
            Peer::Nginx if !found("nginx", "-v") => {
                Err("nginx skipped: not installed (apt-get install nginx-light)".into())
            }
            Peer::TomcatNio10 | Peer::TomcatNio200
                if !found("java", "-version")
                    || !Path::new(CATALINA_HOME).join("bin/bootstrap.jar").exists() =>
            {
                Err(format!(
                    "{} skipped: Tomcat 10 not found in {CATALINA_HOME} (apt-get install tomcat10)",
                    self.name()
                ))
            }
            _ => Ok(()),
        }
    }

    /// Starts the peer on a free loopback port, its files in a fresh `dir`, its output in
    /// `log`, and waits until it answers `GET /hello`.
    pub fn spawn(self, dir: &Path, log: File) -> anyhow::Result<ChildServer> {
        if self == Peer::Hyper {
            let mut command = Command::new(std::env::current_exe()?);
            command.args(["serve", self.name(), "--addr", "127.0.0.1:0"]).stderr(log);
            return Ok(ChildServer::spawn(command)?);
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let threads = match self {
            Peer::TomcatNio200 => 200,
            _ => 10,
        };
        let render = |text: &str| {
            text.replace("@PORT@", &port.to_string())
                .replace("@DIR@", &dir.to_string_lossy())
                .replace("@THREADS@", &threads.to_string())
        };
        let mut command = match self {
            Peer::Nginx => {
                copy_rendered(&templates().join("nginx"), &dir, &render)?;
                let mut command = Command::new("nginx");
                command.arg("-p").arg(format!("{}/", dir.display()));
                command.args(["-e", "stderr", "-c"]).arg(dir.join("nginx.conf"));
                command.args(["-g", "daemon off;"]);
                command
            }
            Peer::TomcatNio10 | Peer::TomcatNio200 => {
                copy_rendered(&templates().join("tomcat"), &dir, &render)?;
                for sub in ["logs", "temp", "work"] {
                    std::fs::create_dir_all(dir.join(sub))?;
                }
                tomcat_command(&dir)
            }
            Peer::Hyper => unreachable!("started above"),
        };
        let output = log.try_clone()?;
        command.stdin(Stdio::null()).stdout(output).stderr(log);
        let child = command.spawn().with_context(|| format!("start {}", self.name()))?;
        let mut server = ChildServer::adopt(child, addr);
        let answered = wait_until(START_PATIENCE, || {
            server.has_exited() || hello(addr).is_ok_and(|status| status == 200)
        });
        if server.has_exited() || !answered {
            anyhow::bail!(
                "{} did not answer GET /hello on {addr} within {START_PATIENCE:?} (its log is \
                 beside the report, in logs/)",
                self.name()
            );
        }
        Ok(server)
    }
}

/// The repository's `peers/` folder, where the configurations are.
fn templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../peers")
}

/// Copies the tree `from` into `to`, every file rendered by `render`.
fn copy_rendered(from: &Path, to: &Path, render: &dyn Fn(&str) -> String) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_rendered(&entry.path(), &target, render)?;
        } else {
            let text = std::fs::read_to_string(entry.path())
                .with_context(|| format!("read {}", entry.path().display()))?;
            std::fs::write(&target, render(&text))?;
        }
    }
    Ok(())
}

/// The JVM running Tomcat in the foreground, as `catalina.sh run` would, without the
/// script's shell in between: the child's pid is the server's.
fn tomcat_command(base: &Path) -> Command {
    let home = Path::new(CATALINA_HOME);
    let mut command = Command::new("java");
    command
        // No /tmp/hsperfdata_<user>/<pid>, which a killed JVM leaves behind.
        .arg("-XX:-UsePerfData")
        // An IPv4 socket, as the versions' are, so the two are read alike.
        .arg("-Djava.net.preferIPv4Stack=true")
        // As catalina.sh passes them, for Tomcat's clean-up at undeploy and stop.
        .args([
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.rmi/sun.rmi.transport=ALL-UNNAMED",
        ])
        .arg(format!("-Dcatalina.home={CATALINA_HOME}"))
        .arg(format!("-Dcatalina.base={}", base.display()))
        .arg(format!("-Djava.io.tmpdir={}", base.join("temp").display()))
        .arg(format!(
            "-Djava.util.logging.config.file={}",
            base.join("conf/logging.properties").display()
        ))
        .arg("-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager")
        .arg("-cp")
        .arg(format!(
            "{}:{}",
            home.join("bin/bootstrap.jar").display(),
            home.join("bin/tomcat-juli.jar").display()
        ))
        .args(["org.apache.catalina.startup.Bootstrap", "start"]);
    command
}

/// A loopback port nobody listens on now. Another process could take it before the peer
/// binds it; then the peer fails to start, and says so in its log.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The status of one `GET /hello` over a connection of its own.
fn hello(addr: SocketAddr) -> std::io::Result<u16> {
    Ok(common::testkit::Client::connect(addr)?.get("/hello")?.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_answer_what_they_say() {
        assert!(Peer::Nginx.answers("/hello"));
        assert!(!Peer::Nginx.answers("/sleep?ms=100"));
        assert!(Peer::TomcatNio10.answers("/sleep?ms=100"));
        assert!(Peer::TomcatNio200.answers("/cpu?ms=10"));
        assert!(!Peer::Hyper.answers("/cpu?ms=10"));
    }

    #[test]
    fn the_configurations_are_in_the_repository() {
        assert!(templates().join("nginx/nginx.conf").is_file());
        assert!(templates().join("tomcat/conf/server.xml").is_file());
    }
}
