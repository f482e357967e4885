//! Baselines: a person against their own past (EWMA of each daily feature), and against
//! their peers (same role and organisation: median and MAD across the members).
//!
//! The self baseline learns one value per *active* day, at the day boundary: a day off
//! is not a day of zero work, and learning zeros would make the first normal day after a
//! holiday look like a spike. The peer baseline is robust (median/MAD) so that one or two
//! insiders in a group cannot drag it towards themselves.

use serde::{Deserialize, Serialize};

use crate::features::{DayValues, N_FEATURES};

/// Scale that makes the MAD a consistent estimator of the standard deviation for normal
/// data.
pub const MAD_SCALE: f64 = 1.4826;

/// Exponentially weighted moving mean and variance of one series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    /// The weighted mean.
    pub mean: f64,
    /// The weighted variance.
    pub var: f64,
    /// Values learnt.
    pub n: u32,
}

impl Ewma {
    /// Learns `x` with smoothing `alpha` (0 < alpha ≤ 1; larger forgets faster). The
    /// first value sets the mean with zero variance.
    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            // West (1979) incremental form: the variance uses the pre-update deviation.
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.var = (1.0 - alpha) * (self.var + diff * incr);
        }
        self.n = self.n.saturating_add(1);
    }

    /// The weighted standard deviation.
    pub fn std(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

/// A person's own past: one EWMA per feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfBaseline {
    /// One series per feature, in the order of [`crate::features::Feature::ALL`].
    pub series: [Ewma; N_FEATURES],
    /// Active days learnt.
    pub days: u32,
}

impl SelfBaseline {
    /// Learns one closed day (undefined values are skipped for their feature only).
    pub fn learn(&mut self, day: &DayValues, alpha: f64) {
        for (series, value) in self.series.iter_mut().zip(day.0) {
            if let Some(x) = value {
                series.update(x, alpha);
            }
        }
        self.days = self.days.saturating_add(1);
    }

    /// The long-run level of each feature (the EWMA mean), `None` where none was learnt.
    pub fn levels(&self) -> DayValues {
        DayValues(self.series.map(|s| (s.n > 0).then_some(s.mean)))
    }
}

/// Median and median absolute deviation of a set of values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robust {
    /// The median.
    pub median: f64,
    /// The median absolute deviation from the median (unscaled).
    pub mad: f64,
    /// Values it was computed from.
    pub n: u32,
}

impl Robust {
    /// Median and MAD of `values` (reordered in place); `None` when empty.
    pub fn of(values: &mut [f64]) -> Option<Robust> {
        let median = median(values)?;
        for v in values.iter_mut() {
            *v = (*v - median).abs();
        }
        let mad = median_of(values)?;
        Some(Robust {
            median,
            mad,
            n: values.len() as u32,
        })
    }

    /// Robust z of `x`: (x − median) / (1.4826 · max(MAD, floor)). The floor keeps a
    /// flat group (everyone at 0 off-shift accesses, say) from dividing by zero and from
    /// turning a difference of one into an alarm.
    pub fn z(&self, x: f64, floor: f64) -> f64 {
        (x - self.median) / (MAD_SCALE * self.mad.max(floor).max(f64::MIN_POSITIVE))
    }
}

/// The median of `values` (reordered in place); `None` when empty. The mean of the two
/// middle values for an even count.
pub fn median(values: &mut [f64]) -> Option<f64> {
    median_of(values)
}

fn median_of(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Selection, not a full sort: O(n) per feature per group refresh.
    let mid = n / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// A peer group's robust baseline: one [`Robust`] per feature, from the members that
/// have a value for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerBaseline {
    /// Per feature; `None` where no member has a value.
    pub stats: [Option<Robust>; N_FEATURES],
    /// Members it was computed from.
    pub members: u32,
}

impl PeerBaseline {
    /// The baseline of the members' values.
    pub fn of<'a>(members: impl IntoIterator<Item = &'a DayValues>) -> PeerBaseline {
        let mut columns: [Vec<f64>; N_FEATURES] = Default::default();
        let mut count = 0;
        for values in members {
            count += 1;
            for (column, value) in columns.iter_mut().zip(values.0) {
                if let Some(x) = value {
                    column.push(x);
                }
            }
        }
        PeerBaseline {
            stats: columns.map(|mut c| Robust::of(&mut c)),
            members: count,
        }
    }

    /// The medians of features with at least `min_n` values, `None` elsewhere.
    pub fn medians(&self, min_n: u32) -> [Option<f64>; N_FEATURES] {
        self.stats
            .map(|s| s.filter(|r| r.n >= min_n).map(|r| r.median))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_converges_and_tracks_variance() {
        let mut e = Ewma::default();
        e.update(10.0, 0.2);
        assert_eq!((e.mean, e.var, e.n), (10.0, 0.0, 1));
        // Hand-computed second step: diff 10, incr 2, mean 12, var 0.8·(0 + 20) = 16.
        e.update(20.0, 0.2);
        assert!((e.mean - 12.0).abs() < 1e-12);
        assert!((e.var - 16.0).abs() < 1e-12);
        // An alternating series settles around its mean with a stable spread.
        let mut e = Ewma::default();
        for i in 0..500 {
            e.update(if i % 2 == 0 { 30.0 } else { 50.0 }, 0.1);
        }
        assert!((e.mean - 40.0).abs() < 1.5, "{}", e.mean);
        assert!((e.std() - 10.0).abs() < 1.5, "{}", e.std());
        // A constant series has no variance.
        let mut e = Ewma::default();
        for _ in 0..50 {
            e.update(7.0, 0.3);
        }
        assert_eq!((e.mean, e.std()), (7.0, 0.0));
    }

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // 1,1,2,2,4,6,9: median 2; deviations 1,1,0,0,2,4,7 → MAD 1.
        let r = Robust::of(&mut [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]).unwrap();
        assert_eq!((r.median, r.mad, r.n), (2.0, 1.0, 7));
        assert!((r.z(2.0 + MAD_SCALE * 3.0, 0.0) - 3.0).abs() < 1e-12);
        // One outlier moves neither.
        let r = Robust::of(&mut [40.0, 41.0, 39.0, 40.0, 1000.0]).unwrap();
        assert_eq!((r.median, r.mad), (40.0, 1.0));
    }

    #[test]
    fn flat_group_uses_the_floor() {
        let r = Robust::of(&mut [0.0; 10]).unwrap();
        assert_eq!((r.median, r.mad), (0.0, 0.0));
        let z = r.z(0.5, 0.05);
        assert!(z.is_finite() && (z - 0.5 / (MAD_SCALE * 0.05)).abs() < 1e-9);
        assert_eq!(r.z(0.0, 0.0), 0.0);
    }

    #[test]
    fn peer_baseline_skips_undefined_values() {
        let mut a = DayValues::default();
        let mut b = DayValues::default();
        a.0[0] = Some(10.0);
        b.0[0] = Some(20.0);
        b.0[1] = Some(5.0);
        let p = PeerBaseline::of([&a, &b]);
        assert_eq!(p.members, 2);
        assert_eq!(p.stats[0].unwrap().median, 15.0);
        assert_eq!(p.stats[1].unwrap().n, 1);
        assert_eq!(p.stats[2], None);
    }
}
