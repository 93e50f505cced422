//! When each request of a step is due: evenly spaced, or as a seeded Poisson process.
//! Pure arithmetic, so the schedule a test asserts is the one the driver follows.

use std::time::Duration;

use super::Arrivals;

/// The due times of one step's requests, as offsets from the step's start.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrivals: Arrivals,
    rate: f64,
    /// Requests handed out so far.
    count: u64,
    /// Poisson: the offset of the last arrival, in seconds.
    last: f64,
    rng: SplitMix64,
}

impl Schedule {
    /// `rate` requests per second (positive and finite; the caller checks).
    pub fn new(arrivals: Arrivals, rate: f64, seed: u64) -> Self {
        Self { arrivals, rate, count: 0, last: 0.0, rng: SplitMix64(seed) }
    }

    /// The offset of the next request.
    pub fn next_offset(&mut self) -> Duration {
        let secs = match self.arrivals {
            // From the index, not by adding gaps: no rounding error piles up over a step.
            Arrivals::Uniform => self.count as f64 / self.rate,
            Arrivals::Poisson => {
                // Exponential gaps of mean 1/rate: -ln(U)/rate, U uniform in (0, 1].
                self.last += -self.rng.unit().ln() / self.rate;
                self.last
            }
        };
        self.count += 1;
        Duration::from_secs_f64(secs)
    }

    /// Every offset before `end`.
    pub fn offsets_before(mut self, end: Duration) -> impl Iterator<Item = Duration> {
        std::iter::from_fn(move || Some(self.next_offset())).take_while(move |at| *at < end)
    }
}

/// Sebastiano Vigna's SplitMix64: a tiny, well-mixed generator, enough to draw gaps (no
/// cryptography here), and seeded so a sweep can be repeated.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, whose logarithm is infinite.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_arrivals_are_evenly_spaced_and_as_many_as_the_rate_asks() {
        let offsets: Vec<Duration> = Schedule::new(Arrivals::Uniform, 20.0, 1)
            .offsets_before(Duration::from_secs(2))
            .collect();
        assert_eq!(offsets.len(), 40);
        assert_eq!(offsets[0], Duration::ZERO);
        assert!(offsets.windows(2).all(|w| (w[1] - w[0]).as_micros().abs_diff(50_000) <= 1));
    }

    #[test]
    fn poisson_arrivals_have_the_asked_mean_and_the_spread_of_an_exponential() {
        let end = Duration::from_secs(100);
        let offsets: Vec<f64> = Schedule::new(Arrivals::Poisson, 100.0, 7)
            .offsets_before(end)
            .map(|d| d.as_secs_f64())
            .collect();
        // 10,000 expected; a Poisson count's standard deviation is its square root, 100.
        assert!((9_600..=10_400).contains(&offsets.len()), "{}", offsets.len());
        let gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.01).abs() < 0.0005, "mean gap {mean}");
        // An exponential's standard deviation equals its mean (uniform gaps would have 0).
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((var.sqrt() - mean).abs() < 0.001, "sd {} vs mean {mean}", var.sqrt());
        // The same seed, the same arrivals; another seed, others.
        let again: Vec<Duration> =
            Schedule::new(Arrivals::Poisson, 100.0, 7).offsets_before(end).take(5).collect();
        let other: Vec<Duration> =
            Schedule::new(Arrivals::Poisson, 100.0, 8).offsets_before(end).take(5).collect();
        assert_eq!(again.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>(), offsets[..5]);
        assert_ne!(again, other);
    }
}
