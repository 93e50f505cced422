//! What a load run is asked to do: the settings, which of their combinations make sense,
//! and the request bytes they call for.

use std::net::SocketAddr;
use std::time::Duration;

/// Which protocol the requests are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Wire {
    /// `GET /path HTTP/1.1`, answers framed by Content-Length.
    Http,
    /// The line protocol: `GET /path`, one line back.
    Line,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub addr: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    pub path: String,
    pub wire: Wire,
    /// Requests written at once per connection before reading the answers.
    pub pipeline: usize,
    /// A new connection per request (HTTP asks the server to close after answering).
    pub close: bool,
    /// Open loop: requests per second in total, on a fixed schedule.
    pub rate: Option<f64>,
    /// A request (or a connect) not answered within this counts as a timeout, and its
    /// connection is replaced.
    pub timeout: Duration,
    /// Driver threads: 1 or 2.
    pub threads: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// The least time given to opening every connection before the clock starts (the
    /// timeout, if longer). A SYN the server's full backlog dropped is sent again after
    /// 1, 3 and 7 s: 8 s lets a storm of handshakes settle instead of being counted.
    pub warm_up: Duration,
}

impl BenchConfig {
    /// A closed-loop keep-alive run of `GET path` over HTTP.
    pub fn new(addr: SocketAddr, connections: usize, duration: Duration, path: &str) -> Self {
        Self {
            addr,
            connections,
            duration,
            path: path.to_owned(),
            wire: Wire::Http,
            pipeline: 1,
            close: false,
            rate: None,
            timeout: Duration::from_secs(5),
            threads: 1,
            progress: false,
            warm_up: Duration::from_secs(8),
        }
    }

    /// Says what is wrong with the combination of settings, if anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if !(1..=2).contains(&self.threads) {
            return Err("--threads must be 1 or 2".into());
        }
        if self.pipeline == 0 || self.pipeline > 1024 {
            return Err("--pipeline must be between 1 and 1024".into());
        }
        if self.pipeline > 1 && (self.close || self.rate.is_some()) {
            return Err("--pipeline cannot be combined with --close or --rate".into());
        }
        if self.close && self.wire == Wire::Line {
            return Err(
                "--close needs --protocol http (the line protocol has no close header)".into()
            );
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        if !self.path.starts_with('/') || self.path.contains([' ', '\r', '\n']) {
            return Err(format!("--path `{}` must start with / and have no spaces", self.path));
        }
        Ok(())
    }

    pub(super) fn request(&self) -> Vec<u8> {
        match self.wire {
            Wire::Http => {
                let close = if self.close { "Connection: close\r\n" } else { "" };
                format!("GET {} HTTP/1.1\r\nHost: {}\r\n{close}\r\n", self.path, self.addr)
            }
            Wire::Line => format!("GET {}\n", self.path),
        }
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_together_are_refused() {
        let base =
            BenchConfig::new("127.0.0.1:1".parse().unwrap(), 4, Duration::from_secs(1), "/hello");
        assert!(base.validate().is_ok());
        let bad = [
            BenchConfig { pipeline: 4, rate: Some(100.0), ..base.clone() },
            BenchConfig { pipeline: 4, close: true, ..base.clone() },
            BenchConfig { close: true, wire: Wire::Line, ..base.clone() },
            BenchConfig { threads: 3, ..base.clone() },
            BenchConfig { rate: Some(0.0), ..base.clone() },
            BenchConfig { path: "hello".into(), ..base.clone() },
            BenchConfig { connections: 0, ..base.clone() },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
