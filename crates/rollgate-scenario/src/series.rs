//! The value of a metric series at a time.

use std::time::Duration;

use crate::file::{Generator, Series};

/// The value of `series` at `t` since the start (`None`: no data). `seed` makes the noise of
/// different metrics and revisions differ while every run of a scenario sees the same values.
pub fn value_at(series: &Series, t: Duration, seed: u64) -> Option<f64> {
    match series {
        Series::Constant(v) => Some(*v),
        Series::Keyword(_) => None,
        Series::Points(points) => points
            .iter()
            .take_while(|p| p.at.0 <= t)
            .last()
            .and_then(|p| p.value),
        Series::Generator(g) => Some(generated(g, t, seed)),
    }
}

fn generated(g: &Generator, t: Duration, seed: u64) -> f64 {
    let level = match &g.regression {
        Some(r) if t >= r.at.0 => r.to,
        _ => g.baseline,
    };
    let noise = if g.noise > 0.0 {
        // Uniform in [-1, 1], from the whole second and the seed.
        let u = unit(seed ^ t.as_secs().wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (2.0 * u - 1.0) * g.noise
    } else {
        0.0
    };
    (level + noise).max(0.0)
}

/// A well-mixed number in [0, 1) from `x` (the SplitMix64 finaliser).
fn unit(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits as a fraction.
    #[allow(clippy::cast_precision_loss)]
    let f = (z >> 11) as f64 / (1u64 << 53) as f64;
    f
}

/// A seed for a metric of a revision.
pub fn seed(metric: &str, revision: i64) -> u64 {
    metric.bytes().fold(revision.unsigned_abs(), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{Dur, Point, Regression};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn points_are_steps_with_no_data_before_and_in_gaps() {
        let s = Series::Points(vec![
            Point {
                at: Dur(secs(60)),
                value: Some(0.1),
            },
            Point {
                at: Dur(secs(120)),
                value: None,
            },
            Point {
                at: Dur(secs(180)),
                value: Some(0.5),
            },
        ]);
        assert_eq!(value_at(&s, secs(59), 0), None);
        assert_eq!(value_at(&s, secs(60), 0), Some(0.1));
        assert_eq!(value_at(&s, secs(150), 0), None);
        assert_eq!(value_at(&s, secs(4000), 0), Some(0.5));
        assert_eq!(
            value_at(&Series::Keyword("noData".into()), secs(1), 0),
            None
        );
        assert_eq!(value_at(&Series::Constant(0.3), secs(1), 0), Some(0.3));
    }

    #[test]
    fn generator_stays_within_noise_and_regresses_on_time() {
        let g = Series::Generator(Generator {
            baseline: 0.01,
            noise: 0.005,
            regression: Some(Regression {
                at: Dur(secs(240)),
                to: 0.2,
            }),
        });
        let seed = seed("error-rate", 2);
        let before: Vec<f64> = (0..240)
            .filter_map(|t| value_at(&g, secs(t), seed))
            .collect();
        assert!(before.iter().all(|v| (0.005..=0.015).contains(v)));
        // Noise is noise: not one value repeated.
        assert!(before.iter().any(|v| (v - before[0]).abs() > 1e-6));
        let after: Vec<f64> = (240..600)
            .filter_map(|t| value_at(&g, secs(t), seed))
            .collect();
        assert!(after.iter().all(|v| (0.195..=0.205).contains(v)));
        // Same scenario, same values.
        assert_eq!(value_at(&g, secs(17), seed), value_at(&g, secs(17), seed));
        assert_ne!(seed, super::seed("error-rate", 3));
    }

    #[test]
    fn noise_never_goes_below_zero() {
        let g = Series::Generator(Generator {
            baseline: 0.0,
            noise: 0.5,
            regression: None,
        });
        assert!((0..500).all(|t| value_at(&g, secs(t), 7).is_some_and(|v| v >= 0.0)));
    }
}
