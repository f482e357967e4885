//! The few distributions the simulator draws from, on a seeded [`StdRng`] so that a run
//! is reproducible from its seed alone.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A generator derived from the run's seed and a stream label: each part of the
/// simulation (company, demand of day 3, scenario 2, …) draws from its own stream, so
/// adding a scenario does not change the honest traffic.
pub fn stream(seed: u64, label: &str, index: u64) -> StdRng {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{seed}\n{label}\n{index}").as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&digest);
    StdRng::from_seed(bytes)
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and log-scale spread: heavy-tailed and
/// positive, as the number of contacts an agent handles.
pub fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// A Poisson draw (Knuth for small means, a rounded normal above 30).
pub fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u32;
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut n = 0;
    while product > limit {
        product *= rng.random::<f64>();
        n += 1;
    }
    n
}

/// A uniform draw from an inclusive range `[lo, hi]` (either order).
pub fn between(rng: &mut StdRng, range: [i64; 2]) -> i64 {
    let (lo, hi) = (range[0].min(range[1]), range[0].max(range[1]));
    rng.random_range(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: u64 = stream(7, "demand", 1).random();
        assert_eq!(a, stream(7, "demand", 1).random::<u64>());
        assert_ne!(a, stream(7, "demand", 2).random::<u64>());
        assert_ne!(a, stream(8, "demand", 1).random::<u64>());
    }

    #[test]
    fn poisson_and_log_normal_have_the_asked_centre() {
        let mut rng = stream(1, "test", 0);
        let n = 20_000;
        let mean = (0..n)
            .map(|_| f64::from(poisson(&mut rng, 4.0)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 4.0).abs() < 0.1, "{mean}");
        let mut draws: Vec<f64> = (0..n).map(|_| log_normal(&mut rng, 45.0, 0.5)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[n / 2];
        assert!((median - 45.0).abs() < 2.0, "{median}");
    }
}
