//! The soak's verdict on one resource's series: does it keep growing once the load has
//! warmed up, and does it come back after the load stops.
//!
//! A last-sample-against-first comparison would fail on noise (one sample taken while a
//! slowloris burst held ten connections) and pass a leak that happened to dip at the end.
//! So growth is judged by two robust figures over the samples after the warm-up, and only
//! when both agree:
//!
//! * the **Theil–Sen slope** (the median of the slopes between every pair of samples),
//!   projected over the window: a trend that holds across the run, which a few outlying
//!   samples cannot make or hide (it tolerates up to 29% of them);
//! * the **median of the last third against the median of the first third**: the level
//!   itself moved. It ignores bursts at either end, which can tilt a slope fitted to a short
//!   window.
//!
//! A leak shows in both; noise around a flat level in neither; a burst in at most one.
//! Either alone would fail a flat server on a noisy machine now and then, and a CI step that
//! fails at random is soon ignored.

use serde::Serialize;

/// How much a resource may move before the soak calls it growth: the larger of an
/// absolute amount and a fraction of its level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    pub absolute: f64,
    pub relative: f64,
}

impl Tolerance {
    /// The movement allowed at `level`.
    pub fn at(self, level: f64) -> f64 {
        self.absolute.max(self.relative * level.abs())
    }
}

/// What the samples after the warm-up say about growth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Growth {
    /// Samples judged (those after the warm-up, before the load stopped).
    pub samples: usize,
    /// Theil–Sen slope, per minute.
    pub slope_per_min: f64,
    /// The slope times the window's length: what the trend added over the run.
    pub projected: f64,
    pub first_third: f64,
    pub last_third: f64,
    /// The movement allowed (see [`Tolerance`]), at the first third's level.
    pub allowed: f64,
    pub grows: bool,
}

// ANCHOR: growth
/// Judges `series` (seconds, value), the samples taken under load after the warm-up.
/// Fewer than six samples cannot be split into thirds worth a median: never growth.
pub fn growth(series: &[(f64, f64)], tolerance: Tolerance) -> Growth {
    let n = series.len();
    let third = n / 3;
    let values: Vec<f64> = series.iter().map(|s| s.1).collect();
    let first_third = if third > 0 { median(&values[..third]) } else { median(&values) };
    let last_third = if third > 0 { median(&values[n - third..]) } else { median(&values) };
    let slope_per_sec = theil_sen(series);
    let window = match (series.first(), series.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let projected = slope_per_sec * window;
    let allowed = tolerance.at(first_third);
    let grows = n >= 6 && projected > allowed && last_third - first_third > allowed;
    Growth {
        samples: n,
        slope_per_min: slope_per_sec * 60.0,
        projected,
        first_third,
        last_third,
        allowed,
        grows,
    }
}
// ANCHOR_END: growth

/// After the load: how long the resource took to come within tolerance of `reference`,
/// and stay there to the last sample; `None` if it never did.
pub fn returned_after(after: &[(f64, f64)], reference: f64, tolerance: Tolerance) -> Option<f64> {
    let limit = reference + tolerance.at(reference);
    let last_above = after.iter().rposition(|s| s.1 > limit);
    match last_above {
        None => after.first().map(|s| s.0),
        Some(i) => after.get(i + 1).map(|s| s.0),
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// The median of the slopes between every pair of samples taken at different times, per
/// second. A soak of ten minutes sampled every five seconds has 120 samples after its
/// warm-up, 7 140 pairs: nothing to economise.
fn theil_sen(series: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(series.len() * series.len() / 2);
    for (i, a) in series.iter().enumerate() {
        for b in &series[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    median(&slopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: Tolerance = Tolerance { absolute: 4.0, relative: 0.1 };

    /// `n` samples a second apart, valued by `f` of the index.
    fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64, f(i))).collect()
    }

    /// Reproducible noise in [-1, 1]: a linear congruential generator, no dependency.
    fn noise(i: usize) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) % 2001) as f64 / 1000.0 - 1.0
    }

    #[test]
    fn a_flat_series_does_not_grow() {
        let g = growth(&series(120, |_| 40.0), TOLERANCE);
        assert!(!g.grows, "{g:?}");
        assert_eq!((g.slope_per_min, g.first_third, g.last_third), (0.0, 40.0, 40.0));
    }

    #[test]
    fn a_leak_of_one_every_ten_seconds_grows() {
        let g = growth(&series(120, |i| 40.0 + (i / 10) as f64), TOLERANCE);
        assert!(g.grows, "{g:?}");
        assert!((g.slope_per_min - 6.0).abs() < 0.5, "{g:?}");
        assert!(g.last_third - g.first_third >= 7.0, "{g:?}");
    }

    #[test]
    fn noise_wider_than_the_tolerance_around_a_flat_level_does_not_grow() {
        // ±10 around 40, more than the 4 allowed: one sample against another differs by up
        // to 20, and a last-sample comparison would see growth past 4 in about a third of
        // the runs.
        let g = growth(&series(120, |i| 40.0 + 10.0 * noise(i)), TOLERANCE);
        assert!(!g.grows, "{g:?}");
        assert!(g.projected.abs() < g.allowed, "{g:?}");
    }

    #[test]
    fn bursts_at_the_end_alone_are_not_growth() {
        // The last five samples caught a burst of held connections: the slope barely moves,
        // the last third's median not at all.
        let g = growth(&series(60, |i| if i >= 55 { 90.0 } else { 40.0 }), TOLERANCE);
        assert!(!g.grows, "{g:?}");
    }

    #[test]
    fn a_leak_under_noise_grows() {
        let g = growth(&series(120, |i| 40.0 + i as f64 / 6.0 + 8.0 * noise(i)), TOLERANCE);
        assert!(g.grows, "{g:?}");
    }

    #[test]
    fn too_few_samples_are_never_growth() {
        let g = growth(&series(5, |i| i as f64 * 100.0), TOLERANCE);
        assert!(!g.grows, "{g:?}");
    }

    #[test]
    fn a_resource_back_at_its_baseline_returned_when_it_got_there() {
        // Within 4 of 5 from the third reading on: 12 is still out, 6 is in.
        let after = [(0.0, 30.0), (0.5, 12.0), (1.0, 6.0), (1.5, 5.0), (2.0, 5.0)];
        assert_eq!(returned_after(&after, 5.0, TOLERANCE), Some(1.0));
        let at_once = [(0.0, 5.0), (0.5, 6.0)];
        assert_eq!(returned_after(&at_once, 5.0, TOLERANCE), Some(0.0));
    }

    #[test]
    fn a_resource_slow_to_return_has_not_returned() {
        // Back within tolerance only at the very end would count; still above it does not.
        let slow = [(0.0, 30.0), (5.0, 25.0), (10.0, 20.0)];
        assert_eq!(returned_after(&slow, 5.0, TOLERANCE), None);
        let dipped = [(0.0, 30.0), (1.0, 5.0), (2.0, 30.0)];
        assert_eq!(returned_after(&dipped, 5.0, TOLERANCE), None, "a dip is not a return");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_pair_s_mean() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
