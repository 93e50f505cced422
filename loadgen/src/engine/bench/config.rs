//! What a load run is asked to do: the settings, which of their combinations make sense,
//! and the request bytes they call for.

use std::net::SocketAddr;
use std::time::Duration;

use crate::measure::{parse_addr, parse_duration};

/// Which protocol the requests are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Wire {
    /// `GET /path HTTP/1.1`, answers framed by Content-Length.
    Http,
    /// The line protocol: `GET /path`, one line back.
    Line,
}

/// What to run; also `loadgen bench`'s options, whose help is the doc of each field (a
/// request or a connect not answered within `timeout` counts as a timeout, and its
/// connection is replaced).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchConfig {
    /// The server, e.g. 127.0.0.1:8085 (v4-nio's default)
    #[arg(long, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Connections to keep busy
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// How long to run: 10s, 500ms, 1m
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// What to request
    #[arg(long, default_value = "/hello")]
    pub path: String,
    #[arg(long = "protocol", value_name = "PROTOCOL", value_enum, default_value_t = Wire::Http)]
    pub wire: Wire,
    /// Requests written at once per connection before reading the answers
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// A new connection for every request
    #[arg(long)]
    pub close: bool,
    /// Open loop: this many requests per second in all, on a fixed schedule, each
    /// latency counted from when its request was due (so stalls are not hidden)
    #[arg(long, value_name = "REQ_PER_SEC")]
    pub rate: Option<f64>,
    /// A request unanswered this long counts as a timeout
    #[arg(long, default_value = TIMEOUT, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Driver threads (1 or 2); one thread drives thousands of connections
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    #[arg(skip = false)]
    pub progress: bool,
    /// The least time given to opening every connection before the clock starts (the
    /// timeout, if longer). A SYN the server's full backlog dropped is sent again after
    /// 1, 3 and 7 s: 8 s lets a storm of handshakes settle instead of being counted.
    #[arg(skip = WARM_UP)]
    pub warm_up: Duration,
}

/// The timeout a run has unless told otherwise, as the command line writes it.
const TIMEOUT: &str = "5s";

/// See [`BenchConfig::warm_up`].
const WARM_UP: Duration = Duration::from_secs(8);

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
            // Cannot fail: the constant is a duration, and a test parses it.
            timeout: parse_duration(TIMEOUT).expect("TIMEOUT is a duration"),
            threads: 1,
            progress: false,
            warm_up: WARM_UP,
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
    use clap::Parser as _;

    /// `loadgen bench`'s options alone, as the binary parses them.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: BenchConfig,
    }

    #[test]
    fn the_command_line_s_defaults_are_new_s() {
        let parsed = Cli::try_parse_from(["bench", "--addr", "127.0.0.1:1", "-c", "4", "-d", "1s"])
            .unwrap()
            .config;
        let new = BenchConfig::new("127.0.0.1:1".parse().unwrap(), 4, Duration::from_secs(1), "/");
        assert_eq!(parsed.timeout, new.timeout);
        assert_eq!(parsed.timeout, Duration::from_secs(5));
        assert_eq!(
            (parsed.wire, parsed.pipeline, parsed.threads),
            (new.wire, new.pipeline, new.threads)
        );
        assert_eq!((parsed.close, parsed.rate, parsed.warm_up), (new.close, new.rate, new.warm_up));
        assert!(!parsed.progress);
    }

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
