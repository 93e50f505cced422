//! What a load run measures: latencies in an HdrHistogram, errors by kind, and the
//! summary both the terminal and the report print.

use std::io;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to 5 minutes, to 3 significant
/// figures (a bucket is at most 0.1% wide).
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that HdrHistogram accepts; it cannot fail.
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

/// Failed requests and connections, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// The connection was refused: nothing listening (a full accept queue drops the SYN
    /// instead, and the connect times out, unless `net.ipv4.tcp_abort_on_overflow` is set).
    pub refused: u64,
    /// The server reset or broke the connection.
    pub reset: u64,
    /// Requests sent and not answered within the timeout.
    pub timeout: u64,
    /// Connections not established within the timeout (the handshake or the server's
    /// `accept` never came): counted per connection, not per request.
    pub connect_timeout: u64,
    /// An answer with a status other than 2xx.
    pub bad_status: u64,
    /// The server closed the connection with requests unanswered.
    pub closed: u64,
    /// Anything else: an unparsable answer, an unexpected socket error.
    pub other: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.refused
            + self.reset
            + self.timeout
            + self.connect_timeout
            + self.bad_status
            + self.closed
            + self.other
    }

    pub fn add(&mut self, other: &Errors) {
        self.refused += other.refused;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.connect_timeout += other.connect_timeout;
        self.bad_status += other.bad_status;
        self.closed += other.closed;
        self.other += other.other;
    }

    /// Counts a socket error under its kind.
    pub fn count_io(&mut self, error: &io::Error) {
        use io::ErrorKind::*;
        match error.kind() {
            ConnectionRefused => self.refused += 1,
            ConnectionReset | ConnectionAborted | BrokenPipe => self.reset += 1,
            // Only a connect times out in the kernel; requests are timed by our own clock.
            TimedOut => self.connect_timeout += 1,
            _ => self.other += 1,
        }
    }

    /// `3 timeout, 1 reset`, or `none`.
    pub fn describe(&self) -> String {
        let kinds = [
            (self.refused, "refused"),
            (self.reset, "reset"),
            (self.timeout, "timeout"),
            (self.connect_timeout, "connect timeout"),
            (self.bad_status, "bad status"),
            (self.closed, "closed"),
            (self.other, "other"),
        ];
        let parts: Vec<String> =
            kinds.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}")).collect();
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// How many nines a percentile has: 50 → 0.3, 90 → 1, 99 → 2, 99.9 → 3, 99.99 → 4. The
/// scale HdrHistogram's plotter and wrk2's users draw latency on, so the tail gets room.
pub fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}

/// The latency at percentiles from the 50th to the 99.99th, evenly spaced in [`nines`]:
/// `[percentile, µs]` pairs, none if nothing was recorded.
pub fn latency_curve(histogram: &Histogram<u64>) -> Vec<[f64; 2]> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let (first, last, steps) = (nines(50.0), nines(99.99), 40);
    (0..=steps)
        .map(|i| {
            let x = first + (last - first) * f64::from(i) / f64::from(steps);
            let percentile = 100.0 * (1.0 - 10f64.powf(-x));
            [percentile, histogram.value_at_percentile(percentile) as f64]
        })
        .collect()
}

/// The outcome of one load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Requests answered with a 2xx status.
    pub requests: u64,
    /// Requests sent in the measured window, answered or not.
    pub sent: u64,
    /// The request timeout: a request not answered by then is in the latency distribution
    /// at this value, so a percentile that reaches it reads "at least".
    pub timeout_us: u64,
    /// Clients (connections, each replaced when it fails) the run drove.
    pub clients: usize,
    /// Clients that had at least one request answered: the others were starved, and a
    /// closed loop, where a starved client sends one request per timeout, hides how many.
    pub clients_answered: usize,
    /// Load generator threads that drove the run.
    pub generator_threads: usize,
    /// CPU time of the busiest load generator thread over the window, as a share of one
    /// core: near 1, the generator may have been the limit, not the server.
    pub generator_busiest_share: f64,
    pub elapsed_secs: f64,
    pub requests_per_sec: f64,
    pub latency_us: Percentiles,
    /// `[percentile, µs]` from the 50th to the 99.99th, for the report's latency chart.
    pub latency_curve_us: Vec<[f64; 2]>,
    pub errors: Errors,
    /// Connections the load generator opened (more than asked for when it reconnects).
    pub connections_opened: u64,
}

impl Summary {
    pub fn new(
        requests: u64,
        elapsed: Duration,
        histogram: &Histogram<u64>,
        errors: Errors,
        connections_opened: u64,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            requests,
            sent: requests + errors.timeout + errors.bad_status,
            timeout_us: u64::MAX,
            clients: 0,
            clients_answered: 0,
            generator_threads: 1,
            generator_busiest_share: 0.0,
            elapsed_secs: secs,
            requests_per_sec: if secs > 0.0 { requests as f64 / secs } else { 0.0 },
            latency_us: Percentiles::of(histogram),
            latency_curve_us: latency_curve(histogram),
            errors,
            connections_opened,
        }
    }
}

impl Summary {
    /// A latency percentile for a table: `850 µs`, or `≥ 500 ms` where the percentile
    /// falls among the requests that were never answered, at the timeout.
    pub fn fmt_latency(&self, us: u64) -> String {
        if us >= self.timeout_us.saturating_sub(self.timeout_us / 1000) && self.errors.timeout > 0 {
            format!("≥ {}", fmt_us(self.timeout_us))
        } else {
            fmt_us(us)
        }
    }

    /// Whether the busiest load generator thread was near a full core: the numbers may be
    /// the generator's ceiling, not the server's.
    pub fn generator_bound(&self) -> bool {
        self.generator_busiest_share >= GENERATOR_BOUND
    }
}

/// The busiest generator thread's share of a core above which a run is marked as
/// possibly limited by the generator.
pub const GENERATOR_BOUND: f64 = 0.9;

/// `850 µs`, `12.3 ms`, `2.00 s`: a latency for people.
pub fn fmt_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// `1.5 MiB`, `820 KiB`.
pub fn fmt_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// A server address from the command line.
pub fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8085"))
}

/// Parses `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration like 10s or 500ms"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s or m")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_curve_runs_from_the_median_to_four_nines() {
        let mut histogram = new_histogram();
        for us in 1..=10_000 {
            histogram.record(us).unwrap();
        }
        let curve = latency_curve(&histogram);
        let [first, last] = [curve[0], curve[curve.len() - 1]];
        assert!((first[0] - 50.0).abs() < 1e-9 && (last[0] - 99.99).abs() < 1e-9, "{curve:?}");
        // 10,000 values, 1 µs apart: the p-th percentile is about p * 100 µs.
        assert!((4_990.0..=5_010.0).contains(&first[1]), "{first:?}");
        assert!((9_990.0..=10_010.0).contains(&last[1]), "{last:?}");
        assert!(curve.windows(2).all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]), "{curve:?}");
        assert!(latency_curve(&new_histogram()).is_empty());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn percentiles_follow_the_recorded_values() {
        let mut h = new_histogram();
        // 1..=1000 µs once each: the p-th percentile is about p * 10 µs.
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.p50, p.p90, p.p99, p.p999, p.max), (500, 900, 990, 999, 1000));
        assert!((p.mean - 500.5).abs() < 0.5);
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn a_rare_stall_shows_only_in_the_high_percentiles() {
        let mut h = new_histogram();
        // 0.2% slow: above the 99.9th percentile's 0.1%, below the 99th's 1%.
        for _ in 0..9_980 {
            h.record(100).unwrap();
        }
        for _ in 0..20 {
            h.record(1_000_000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.p50, p.p99), (100, 100));
        assert!(p.p999 >= 999_000, "{p:?}");
    }

    #[test]
    fn summary_rate_and_error_text() {
        let mut errors = Errors { timeout: 3, ..Errors::default() };
        errors.add(&Errors { reset: 1, ..Errors::default() });
        assert_eq!(errors.total(), 4);
        assert_eq!(errors.describe(), "1 reset, 3 timeout");
        assert_eq!(Errors::default().describe(), "none");
        let s = Summary::new(500, Duration::from_secs(2), &new_histogram(), errors, 7);
        assert_eq!(s.requests_per_sec, 250.0);
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(12_345), "12.3 ms");
        assert_eq!(fmt_us(2_000_000), "2.00 s");
    }
}
