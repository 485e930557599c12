//! Kayenta-style fixed-horizon judge (see the module documentation of `judge`).
//!
//! It follows the classification and scoring of Spinnaker Kayenta's default judge
//! (NetflixACAJudge), metric by metric, baseline (the stable revision) against canary (the new
//! one), measured over the same intervals:
//!
//! 1. **Missing values**: NaN samples are removed ([`NanStrategy::Remove`], the default) or
//!    replaced with 0 ([`NanStrategy::Replace`]). A side left empty makes the metric
//!    [`Kind::NoData`] (a failure of its group when [`MetricConfig::must_have_data`]).
//! 2. **Outliers** (when [`MetricConfig::remove_outliers`]): per side, values outside the IQR
//!    fences with factor [`OUTLIER_FACTOR`], widened to at least the 1st and 99th percentiles,
//!    are dropped.
//! 3. **Degenerate data**: identical samples (as multisets), or a single distinct value over
//!    both sides, pass without a test. A side whose values are all equal gets tiny,
//!    deterministic, zero-mean offsets (see [`classify`]) so the test and its confidence
//!    interval are defined.
//! 4. **Test**: two-sided Mann-Whitney U (normal approximation with tie and continuity
//!    correction), the [`CONFIDENCE_LEVEL`] (98%) confidence interval of the shift
//!    `canary - baseline` obtained by inverting that test, and the Hodges-Lehmann estimate of
//!    the shift (the median of all pairwise differences). The tolerance band is
//!    `±`[`TOLERANCE_FRACTION`]` × |estimate|`. The metric is [`Kind::High`] when its direction
//!    allows an increase, the whole interval lies above the band and the effect size (mean
//!    ratio canary / baseline) is at least [`MetricConfig::allowed_increase`];
//!    [`Kind::Low`] symmetrically; [`Kind::Pass`] otherwise.
//! 5. **Scoring** ([`score`]): per group, `Pass / (Pass + High + Low + NoData of metrics that
//!    must have data) × 100`; the summary is the weighted sum of the groups; it is forced to 0
//!    when a critical metric fails or when at least half of the metrics have no data.
//!
//! The judgement is **fixed-horizon**: its error rates hold for one look at a sample size chosen
//! in advance ([`sample_size_for_power`], [`horizon_for_ratio`]). Repeating it over the
//! canary's life, as Kayenta does, raises the false-rollback rate with every look.
//!
//! Pure code: no I/O, no clock, no randomness.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Confidence level of the interval of the shift (Kayenta's, fixed).
pub const CONFIDENCE_LEVEL: f64 = 0.98;
/// Half-width of the tolerance band, as a fraction of `|Hodges-Lehmann estimate|`.
pub const TOLERANCE_FRACTION: f64 = 0.25;
/// Factor of the IQR fences used to remove outliers.
pub const OUTLIER_FACTOR: f64 = 3.0;
/// Share of metrics without data from which the whole judgement scores 0.
pub const NO_DATA_LIMIT: f64 = 0.5;
/// Relative size of the offsets spread over a side whose values are all equal (relative to
/// the largest absolute value of both sides).
pub const CONSTANT_SIDE_JITTER: f64 = 1e-9;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Which change of the canary is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Only a higher canary fails (errors, latency).
    Increase,
    /// Only a lower canary fails (throughput, success rate).
    Decrease,
    /// Any significant difference fails (Kayenta's default).
    #[default]
    Either,
}

impl Direction {
    fn allows_increase(self) -> bool {
        matches!(self, Direction::Increase | Direction::Either)
    }

    fn allows_decrease(self) -> bool {
        matches!(self, Direction::Decrease | Direction::Either)
    }
}

/// What happens to NaN samples (a scrape that returned no value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NanStrategy {
    /// Drop them (Kayenta's default).
    #[default]
    Remove,
    /// Count them as 0 (for error counts, where no series means no error).
    Replace,
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricConfig {
    /// The metric's name (named in scoring reasons).
    pub name: String,
    /// Which change is a regression.
    #[serde(default)]
    pub direction: Direction,
    /// What happens to NaN samples.
    #[serde(default)]
    pub nan_strategy: NanStrategy,
    /// Whether outliers are removed from each side before the test.
    #[serde(default)]
    pub remove_outliers: bool,
    /// Smallest effect size (mean ratio canary / baseline) that classifies a significant
    /// increase as High. At least 1; 1 (the default) means any significant increase.
    #[serde(default = "one")]
    pub allowed_increase: f64,
    /// Largest effect size that classifies a significant decrease as Low. In (0, 1]; 1 (the
    /// default) means any significant decrease.
    #[serde(default = "one")]
    pub allowed_decrease: f64,
    /// Smallest effect size from which a High of a critical metric fails the whole
    /// judgement. At least `allowedIncrease`; unset means every High does.
    #[serde(default)]
    pub critical_increase: Option<f64>,
    /// Largest effect size from which a Low of a critical metric fails the whole judgement.
    /// In (0, `allowedDecrease`]; unset means every Low does.
    #[serde(default)]
    pub critical_decrease: Option<f64>,
    /// Whether a failure of this metric (High or Low beyond the critical bound, no data, or
    /// an error) fails the whole judgement.
    #[serde(default)]
    pub critical: bool,
    /// Whether missing data counts as a failure of the metric's group (otherwise the metric
    /// is left out of its group's score).
    #[serde(default)]
    pub must_have_data: bool,
    /// The scoring group of the metric.
    #[serde(default = "default_group")]
    pub group: String,
    /// The weight of the metric's group in the summary score, in percent, when the scoring
    /// call does not give one. Metrics of one group that give one must agree.
    #[serde(default)]
    pub weight: Option<f64>,
}

fn one() -> f64 {
    1.0
}

fn default_group() -> String {
    "default".to_string()
}

impl MetricConfig {
    /// A configuration with Kayenta's defaults: either direction, NaN removed, no outlier
    /// removal, effect size bounds 1, not critical, data not required, group `default`.
    pub fn new(name: impl Into<String>) -> Self {
        MetricConfig {
            name: name.into(),
            direction: Direction::default(),
            nan_strategy: NanStrategy::default(),
            remove_outliers: false,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            critical_increase: None,
            critical_decrease: None,
            critical: false,
            must_have_data: false,
            group: default_group(),
            weight: None,
        }
    }

    /// Checks the configuration; the error names the first offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if self.group.trim().is_empty() {
            return Err(ConfigError::EmptyGroup);
        }
        let increase = self.allowed_increase;
        if !(increase.is_finite() && increase >= 1.0) {
            return Err(ConfigError::AllowedIncrease(increase));
        }
        let decrease = self.allowed_decrease;
        if !(decrease.is_finite() && decrease > 0.0 && decrease <= 1.0) {
            return Err(ConfigError::AllowedDecrease(decrease));
        }
        if let Some(critical) = self.critical_increase
            && !(critical.is_finite() && critical >= increase)
        {
            return Err(ConfigError::CriticalIncrease {
                value: critical,
                allowed: increase,
            });
        }
        if let Some(critical) = self.critical_decrease
            && !(critical.is_finite() && critical > 0.0 && critical <= decrease)
        {
            return Err(ConfigError::CriticalDecrease {
                value: critical,
                allowed: decrease,
            });
        }
        if let Some(weight) = self.weight
            && !(weight.is_finite() && (0.0..=100.0).contains(&weight))
        {
            return Err(ConfigError::Weight(weight));
        }
        Ok(())
    }

    fn critical_increase_bound(&self) -> f64 {
        self.critical_increase.unwrap_or(self.allowed_increase)
    }

    fn critical_decrease_bound(&self) -> f64 {
        self.critical_decrease.unwrap_or(self.allowed_decrease)
    }
}

/// An invalid [`MetricConfig`]: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigError {
    /// `name` is empty.
    EmptyName,
    /// `group` is empty.
    EmptyGroup,
    /// `allowedIncrease` is not a finite ratio >= 1.
    AllowedIncrease(f64),
    /// `allowedDecrease` is not a finite ratio in (0, 1].
    AllowedDecrease(f64),
    /// `criticalIncrease` is not a finite ratio >= `allowedIncrease`.
    CriticalIncrease {
        /// The configured value.
        value: f64,
        /// `allowedIncrease`.
        allowed: f64,
    },
    /// `criticalDecrease` is not a finite ratio in (0, `allowedDecrease`].
    CriticalDecrease {
        /// The configured value.
        value: f64,
        /// `allowedDecrease`.
        allowed: f64,
    },
    /// `weight` is not a finite percentage in [0, 100].
    Weight(f64),
}

impl ConfigError {
    /// The configuration field at fault (as spelled in the YAML).
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::EmptyName => "name",
            ConfigError::EmptyGroup => "group",
            ConfigError::AllowedIncrease(_) => "allowedIncrease",
            ConfigError::AllowedDecrease(_) => "allowedDecrease",
            ConfigError::CriticalIncrease { .. } => "criticalIncrease",
            ConfigError::CriticalDecrease { .. } => "criticalDecrease",
            ConfigError::Weight(_) => "weight",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field();
        match self {
            ConfigError::EmptyName => write!(f, "{field}: expected a non-empty metric name"),
            ConfigError::EmptyGroup => write!(f, "{field}: expected a non-empty group name"),
            ConfigError::AllowedIncrease(v) => {
                write!(f, "{field}: expected a finite ratio >= 1, got {v}")
            }
            ConfigError::AllowedDecrease(v) => {
                write!(f, "{field}: expected a finite ratio in (0, 1], got {v}")
            }
            ConfigError::CriticalIncrease { value, allowed } => write!(
                f,
                "{field}: expected a finite ratio >= allowedIncrease ({allowed}), got {value}"
            ),
            ConfigError::CriticalDecrease { value, allowed } => write!(
                f,
                "{field}: expected a finite ratio in (0, allowedDecrease ({allowed})], got {value}"
            ),
            ConfigError::Weight(v) => {
                write!(
                    f,
                    "{field}: expected a finite percentage in [0, 100], got {v}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The stable revision.
    Baseline,
    /// The new revision.
    Canary,
}

/// Why a metric could not be judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorReason {
    /// The metric's configuration is invalid.
    InvalidConfig(ConfigError),
    /// A sample is infinite.
    InfiniteValue {
        /// The side holding it.
        side: Side,
        /// Its position in the samples as given.
        index: usize,
    },
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorReason::InvalidConfig(e) => write!(f, "invalid metric configuration: {e}"),
            ErrorReason::InfiniteValue { side, index } => {
                let side = match side {
                    Side::Baseline => "baseline",
                    Side::Canary => "canary",
                };
                write!(
                    f,
                    "{side} sample {index}: expected a finite value or NaN, got an infinity"
                )
            }
        }
    }
}

/// The verdict on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// No significant difference in a direction that matters.
    Pass,
    /// The canary is significantly higher.
    High,
    /// The canary is significantly lower.
    Low,
    /// A side has no data (after NaN handling and outlier removal).
    NoData,
    /// The metric could not be judged.
    Error(ErrorReason),
}

/// Why a metric was classified without running the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Shortcut {
    /// A side is empty.
    Empty {
        /// Whether the baseline is empty.
        baseline: bool,
        /// Whether the canary is empty.
        canary: bool,
    },
    /// Both sides hold the same values (as multisets).
    Identical,
    /// Both sides hold one and the same value, in different numbers.
    SingleValue,
}

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

/// What was judged on one side (after NaN handling and outlier removal, before any offsets).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideStats {
    /// Number of samples.
    pub count: usize,
    /// Their median (none when empty).
    pub median: Option<f64>,
    /// Their mean (none when empty).
    pub mean: Option<f64>,
}

/// The classification of one metric and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    /// The verdict.
    pub kind: Kind,
    /// Set when the verdict was reached without the test.
    pub shortcut: Option<Shortcut>,
    /// The Mann-Whitney U statistic of the canary: the number of (canary, baseline) pairs
    /// where the canary is higher, ties counting one half.
    pub u: Option<f64>,
    /// Two-sided p-value of the test (normal approximation, tie and continuity correction).
    pub p_value: Option<f64>,
    /// The [`CONFIDENCE_LEVEL`] confidence interval of the shift `canary - baseline`.
    pub ci: Option<Interval>,
    /// The Hodges-Lehmann estimate of the shift: the median of all pairwise differences
    /// `canary_i - baseline_j`.
    pub hodges_lehmann: Option<f64>,
    /// Mean of the canary divided by the mean of the baseline (none when undefined, e.g. a
    /// baseline mean of 0). 1 for identical data.
    pub effect_size: Option<f64>,
    /// The baseline's samples.
    pub baseline: SideStats,
    /// The canary's samples.
    pub canary: SideStats,
}

impl Classification {
    fn error(reason: ErrorReason) -> Self {
        Classification {
            kind: Kind::Error(reason),
            shortcut: None,
            u: None,
            p_value: None,
            ci: None,
            hodges_lehmann: None,
            effect_size: None,
            baseline: SideStats::default(),
            canary: SideStats::default(),
        }
    }
}

/// Classifies one metric: baseline against canary, each a series of samples over the same
/// intervals, following steps 1-4 of the module documentation.
///
/// A side whose values (after NaN handling and outlier removal) are all equal to `c` is spread
/// to `c + s × ((i + ½) / n − ½)` for its `n` samples, `s` = [`CONSTANT_SIDE_JITTER`] × the
/// largest absolute value of both sides: deterministic, mean-preserving offsets much smaller
/// than any real difference, which split ties with the other side evenly. The effect size,
/// medians and means are computed before them.
///
/// An invalid configuration or an infinite sample gives [`Kind::Error`].
pub fn classify(config: &MetricConfig, baseline: &[f64], canary: &[f64]) -> Classification {
    if let Err(e) = config.validate() {
        return Classification::error(ErrorReason::InvalidConfig(e));
    }
    let base = match prepare(config, baseline, Side::Baseline) {
        Ok(values) => values,
        Err(reason) => return Classification::error(reason),
    };
    let can = match prepare(config, canary, Side::Canary) {
        Ok(values) => values,
        Err(reason) => return Classification::error(reason),
    };
    let baseline_stats = side_stats(&base);
    let canary_stats = side_stats(&can);
    let untested = |kind: Kind, shortcut: Shortcut, effect_size: Option<f64>| Classification {
        kind,
        shortcut: Some(shortcut),
        u: None,
        p_value: None,
        ci: None,
        hodges_lehmann: None,
        effect_size,
        baseline: baseline_stats,
        canary: canary_stats,
    };

    if base.is_empty() || can.is_empty() {
        let empty = Shortcut::Empty {
            baseline: base.is_empty(),
            canary: can.is_empty(),
        };
        return untested(Kind::NoData, empty, None);
    }
    // Both are sorted by `prepare`.
    if base == can {
        return untested(Kind::Pass, Shortcut::Identical, Some(1.0));
    }
    let (lowest, highest) = (
        base[0].min(can[0]),
        base[base.len() - 1].max(can[can.len() - 1]),
    );
    if lowest == highest {
        return untested(Kind::Pass, Shortcut::SingleValue, Some(1.0));
    }

    let effect_size = match (baseline_stats.mean, canary_stats.mean) {
        (Some(b), Some(c)) => Some(c / b).filter(|r| r.is_finite()),
        _ => None,
    };
    let scale = lowest.abs().max(highest.abs());
    let base = spread_if_constant(base, scale);
    let can = spread_if_constant(can, scale);

    let test = MannWhitney::new(&can, &base);
    let u = test.u_at(0.0).u;
    let p_value = test.p_value();
    let ci = test.confidence_interval(CONFIDENCE_LEVEL);
    let estimate = test.hodges_lehmann();
    let tolerance = TOLERANCE_FRACTION * estimate.abs();

    let kind = if config.direction.allows_increase()
        && ci.lower > tolerance
        && effect_size.is_none_or(|e| e >= config.allowed_increase)
    {
        Kind::High
    } else if config.direction.allows_decrease()
        && ci.upper < -tolerance
        && effect_size.is_none_or(|e| e <= config.allowed_decrease)
    {
        Kind::Low
    } else {
        Kind::Pass
    };
    Classification {
        kind,
        shortcut: None,
        u: Some(u),
        p_value: Some(p_value),
        ci: Some(ci),
        hodges_lehmann: Some(estimate),
        effect_size,
        baseline: baseline_stats,
        canary: canary_stats,
    }
}

/// Steps 1 and 2 on one side: NaN handling, outlier removal; sorted ascending.
fn prepare(config: &MetricConfig, values: &[f64], side: Side) -> Result<Vec<f64>, ErrorReason> {
    if let Some(index) = values.iter().position(|v| v.is_infinite()) {
        return Err(ErrorReason::InfiniteValue { side, index });
    }
    let mut kept: Vec<f64> = match config.nan_strategy {
        NanStrategy::Remove => values.iter().copied().filter(|v| !v.is_nan()).collect(),
        NanStrategy::Replace => values
            .iter()
            .map(|&v| if v.is_nan() { 0.0 } else { v })
            .collect(),
    };
    kept.sort_by(f64::total_cmp);
    if config.remove_outliers && !kept.is_empty() {
        let (low, high) = outlier_fences(&kept);
        kept.retain(|&v| v >= low && v <= high);
    }
    Ok(kept)
}

/// The outlier fences of sorted, non-empty, finite values: `[Q1 − 3·IQR, Q3 + 3·IQR]`,
/// widened to at least `[P1, P99]`.
pub fn outlier_fences(sorted: &[f64]) -> (f64, f64) {
    let q1 = percentile(sorted, 25.0);
    let q3 = percentile(sorted, 75.0);
    let iqr = q3 - q1;
    let low = (q1 - OUTLIER_FACTOR * iqr).min(percentile(sorted, 1.0));
    let high = (q3 + OUTLIER_FACTOR * iqr).max(percentile(sorted, 99.0));
    (low, high)
}

/// The `p`-th percentile (0 < p < 100) of sorted, non-empty values, estimated at position
/// `p/100 × (n + 1)` (1-based) with linear interpolation between the neighbouring order
/// statistics, clamped to the smallest and largest value (the estimate Apache Commons Math uses
/// by default, as Kayenta does).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return f64::NAN;
    };
    let position = p / 100.0 * (n as f64 + 1.0);
    if position < 1.0 {
        return first;
    }
    if position >= n as f64 {
        return last;
    }
    let below = position.floor();
    let fraction = position - below;
    // 1 <= below < n, so both indices are in range.
    let lower = sorted[below as usize - 1];
    let upper = sorted[below as usize];
    lower + fraction * (upper - lower)
}

fn side_stats(sorted: &[f64]) -> SideStats {
    let n = sorted.len();
    if n == 0 {
        return SideStats::default();
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let mean = sorted.iter().sum::<f64>() / n as f64;
    SideStats {
        count: n,
        median: Some(median),
        mean: Some(mean),
    }
}

/// Spreads a sorted side whose values are all equal (see [`classify`]); other sides are
/// returned as they are. The result stays sorted.
fn spread_if_constant(sorted: Vec<f64>, scale: f64) -> Vec<f64> {
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return sorted;
    };
    if first != last {
        return sorted;
    }
    let n = sorted.len() as f64;
    let s = CONSTANT_SIDE_JITTER * scale;
    (0..sorted.len())
        .map(|i| first + s * ((i as f64 + 0.5) / n - 0.5))
        .collect()
}

/// The rank statistic of the canary shifted by `shift` against the baseline.
#[derive(Debug, Clone, Copy)]
struct RankSum {
    /// Pairs with `canary - shift > baseline`, ties counting one half.
    u: f64,
    /// `Σ (t³ − t)` over the groups of tied values of the pooled sample.
    ties: f64,
}

/// The two-sample Mann-Whitney test of sorted canary values against sorted baseline values.
struct MannWhitney<'a> {
    canary: &'a [f64],
    baseline: &'a [f64],
}

impl<'a> MannWhitney<'a> {
    fn new(canary: &'a [f64], baseline: &'a [f64]) -> Self {
        MannWhitney { canary, baseline }
    }

    fn sizes(&self) -> (f64, f64) {
        (self.canary.len() as f64, self.baseline.len() as f64)
    }

    /// U and the tie term of `{canary_i − shift}` against `{baseline_j}`, by merging the two
    /// sorted sides: O(m + n).
    fn u_at(&self, shift: f64) -> RankSum {
        let (c, b) = (self.canary, self.baseline);
        let (mut i, mut j) = (0, 0);
        let mut u = 0.0;
        let mut ties = 0.0;
        while i < c.len() || j < b.len() {
            let next_c = c.get(i).map(|v| v - shift);
            let next_b = b.get(j).copied();
            let value = match (next_c, next_b) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) => x,
                (None, Some(y)) => y,
                (None, None) => break,
            };
            let below = j as f64;
            let mut cx = 0usize;
            while i < c.len() && c[i] - shift == value {
                cx += 1;
                i += 1;
            }
            let mut cy = 0usize;
            while j < b.len() && b[j] == value {
                cy += 1;
                j += 1;
            }
            u += cx as f64 * below + 0.5 * (cx * cy) as f64;
            let t = (cx + cy) as f64;
            ties += t * t * t - t;
        }
        RankSum { u, ties }
    }

    /// The standard normal statistic of the shifted sample with tie and continuity
    /// correction: `(U − mn/2 − ½·sign(U − mn/2)) / σ`,
    /// `σ² = mn/12 · ((N + 1) − Σ(t³ − t) / (N(N − 1)))`.
    fn z_at(&self, shift: f64) -> f64 {
        let (m, n) = self.sizes();
        let RankSum { u, ties } = self.u_at(shift);
        let centred = u - m * n / 2.0;
        let numerator = centred - 0.5 * sign(centred);
        let total = m + n;
        let variance = m * n / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
        if variance <= 0.0 {
            // Every value tied: U is exactly mn/2.
            return 0.0;
        }
        numerator / variance.sqrt()
    }

    /// Two-sided p-value of "no shift".
    fn p_value(&self) -> f64 {
        let z = self.z_at(0.0);
        (2.0 * Normal::standard().sf(z.abs())).min(1.0)
    }

    /// The confidence interval of the shift: the shifts at which the two-sided test at level
    /// `1 − level` stops rejecting, found by bisection between the smallest and the largest
    /// pairwise difference (the statistic falls as the shift grows).
    fn confidence_interval(&self, level: f64) -> Interval {
        let quantile = Normal::standard().inverse_cdf(1.0 - (1.0 - level) / 2.0);
        Interval {
            lower: self.root(quantile),
            upper: self.root(-quantile),
        }
    }

    /// The shift where `z_at(shift)` crosses `target`, clamped to the range of differences.
    fn root(&self, target: f64) -> f64 {
        let (low_end, high_end) = self.difference_range();
        let f = |shift: f64| self.z_at(shift) - target;
        if f(low_end) <= 0.0 {
            return low_end;
        }
        if f(high_end) >= 0.0 {
            return high_end;
        }
        // f(lo) > 0 > f(hi).
        let (mut lo, mut hi) = (low_end, high_end);
        loop {
            let mid = lo / 2.0 + hi / 2.0;
            if mid <= lo || mid >= hi {
                return mid;
            }
            if f(mid) > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }

    /// The smallest and the largest pairwise difference `canary_i − baseline_j`.
    fn difference_range(&self) -> (f64, f64) {
        let (c, b) = (self.canary, self.baseline);
        match (c.first(), c.last(), b.first(), b.last()) {
            (Some(c0), Some(c1), Some(b0), Some(b1)) => (c0 - b1, c1 - b0),
            _ => (f64::NAN, f64::NAN),
        }
    }

    /// Number of pairwise differences `canary_i − baseline_j <= d`, and the largest of them
    /// (two pointers over the sorted sides: O(m + n)). Float subtraction is monotone in each
    /// argument, so the order of the computed differences follows the sorted sides.
    fn count_at_most(&self, d: f64) -> (u64, Option<f64>) {
        let (c, b) = (self.canary, self.baseline);
        // For canary_i, the differences <= d are those with baseline index >= first[i],
        // and first[i] does not decrease with i.
        let mut first = 0usize;
        let mut count = 0u64;
        let mut largest: Option<f64> = None;
        for &x in c {
            while first < b.len() && x - b[first] > d {
                first += 1;
            }
            if first == b.len() {
                break;
            }
            count += (b.len() - first) as u64;
            let diff = x - b[first];
            largest = Some(largest.map_or(diff, |l: f64| l.max(diff)));
        }
        (count, largest)
    }

    /// The `k`-th smallest pairwise difference (1-based, `1 <= k <= mn`).
    fn kth_difference(&self, k: u64) -> f64 {
        let (low_end, high_end) = self.difference_range();
        if self.count_at_most(low_end).0 >= k {
            return low_end;
        }
        // count(lo) < k <= count(hi).
        let (mut lo, mut hi) = (low_end, high_end);
        loop {
            let mid = lo / 2.0 + hi / 2.0;
            if mid <= lo || mid >= hi {
                break;
            }
            if self.count_at_most(mid).0 >= k {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // The k-th difference lies in (lo, hi], and no difference lies in (lo, hi) besides
        // it, so it is the largest difference <= hi.
        self.count_at_most(hi).1.unwrap_or(hi)
    }

    /// The Hodges-Lehmann estimate: the median of the `mn` pairwise differences.
    fn hodges_lehmann(&self) -> f64 {
        let pairs = self.canary.len() as u64 * self.baseline.len() as u64;
        if pairs % 2 == 1 {
            self.kth_difference(pairs / 2 + 1)
        } else {
            (self.kth_difference(pairs / 2) + self.kth_difference(pairs / 2 + 1)) / 2.0
        }
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/// Score thresholds, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// A summary at least this high passes.
    pub pass: f64,
    /// A summary at least this high (and below `pass`) is marginal; lower fails.
    pub marginal: f64,
}

impl Default for Thresholds {
    /// Pass at 95, marginal at 75.
    fn default() -> Self {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// The summary reached the pass threshold.
    Pass,
    /// The summary reached the marginal threshold only.
    Marginal,
    /// The summary is below the marginal threshold.
    Fail,
}

/// How the summary came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScoreReason {
    /// The weighted sum of the group scores.
    Scored,
    /// Forced to 0: a critical metric failed (the first one, in the order given).
    CriticalMetricFailed {
        /// The metric's name.
        metric: String,
    },
    /// Forced to 0: at least [`NO_DATA_LIMIT`] of the metrics have no data (or an error).
    TooMuchNoData {
        /// Metrics classified NoData or Error.
        no_data: usize,
        /// All metrics.
        total: usize,
    },
}

/// The score of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupScore {
    /// The group's name.
    pub name: String,
    /// `Pass / (Pass + High + Low + NoData of metrics that must have data) × 100`; 100 when
    /// that denominator is 0 (every metric without data or in error).
    pub score: f64,
    /// The group's weight in the summary, in percent.
    pub weight: f64,
    /// Metrics classified Pass.
    pub pass: usize,
    /// Metrics classified High.
    pub high: usize,
    /// Metrics classified Low.
    pub low: usize,
    /// Metrics without data that must have data (counted as failures).
    pub no_data_fail: usize,
    /// Metrics without data that need not have any (left out of the score).
    pub no_data: usize,
    /// Metrics in error (left out of the score).
    pub error: usize,
}

/// The judgement of all metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Per group, in the order of the groups' first metrics.
    pub groups: Vec<GroupScore>,
    /// The summary score, 0 to 100.
    pub summary: f64,
    /// The verdict of the summary against the thresholds.
    pub result: Verdict,
    /// How the summary came about.
    pub reason: ScoreReason,
}

/// Why a set of metrics could not be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScoreError {
    /// No metric was given.
    NoMetrics,
    /// The thresholds are not `0 <= marginal <= pass <= 100`.
    Thresholds(Thresholds),
    /// A group weight (from the call or from a metric's `weight`) is not in [0, 100].
    Weight {
        /// The group.
        group: String,
        /// The weight.
        weight: f64,
    },
    /// Two metrics of a group give different weights and the call gives none.
    ConflictingWeights {
        /// The group.
        group: String,
        /// One weight.
        first: f64,
        /// Another.
        second: f64,
    },
    /// The weights of the weighted groups sum to more than 100, or, when every group has a
    /// weight, to something other than 100.
    WeightSum {
        /// The sum.
        sum: f64,
        /// Whether some group has no weight (and shares what is left of 100).
        unweighted_groups: bool,
    },
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScoreError::NoMetrics => write!(f, "metrics: expected at least one metric"),
            ScoreError::Thresholds(t) => write!(
                f,
                "thresholds: expected 0 <= marginal <= pass <= 100, got marginal {} and pass {}",
                t.marginal, t.pass
            ),
            ScoreError::Weight { group, weight } => write!(
                f,
                "weight of group {group:?}: expected a finite percentage in [0, 100], got {weight}"
            ),
            ScoreError::ConflictingWeights {
                group,
                first,
                second,
            } => write!(
                f,
                "weight of group {group:?}: expected one weight for the group, got {first} and {second}"
            ),
            ScoreError::WeightSum {
                sum,
                unweighted_groups: true,
            } => write!(
                f,
                "group weights: expected a sum of at most 100 (the other groups share the rest), got {sum}"
            ),
            ScoreError::WeightSum {
                sum,
                unweighted_groups: false,
            } => write!(
                f,
                "group weights: expected a sum of 100 when every group has a weight, got {sum}"
            ),
        }
    }
}

impl std::error::Error for ScoreError {}

/// Whether a classified metric fails the whole judgement: a critical metric that is High
/// (effect size at or beyond its critical bound, or undefined), Low (likewise), without data,
/// or in error.
pub fn is_critical_failure(config: &MetricConfig, classification: &Classification) -> bool {
    if !config.critical {
        return false;
    }
    let effect = classification.effect_size;
    match classification.kind {
        Kind::Pass => false,
        Kind::High => effect.is_none_or(|e| e >= config.critical_increase_bound()),
        Kind::Low => effect.is_none_or(|e| e <= config.critical_decrease_bound()),
        Kind::NoData | Kind::Error(_) => true,
    }
}

/// Scores classified metrics (step 5 of the module documentation).
///
/// A group's weight is `group_weights[group]`, else the `weight` its metrics give; the groups
/// without one share what the others leave of 100 equally. The summary is
/// `Σ group score × weight / 100`, forced to 0 when a critical metric fails
/// ([`is_critical_failure`]) or when at least [`NO_DATA_LIMIT`] of the metrics are NoData or
/// Error.
pub fn score(
    metrics: &[(MetricConfig, Classification)],
    thresholds: Thresholds,
    group_weights: &BTreeMap<String, f64>,
) -> Result<Score, ScoreError> {
    if metrics.is_empty() {
        return Err(ScoreError::NoMetrics);
    }
    let valid_threshold = |t: f64| t.is_finite() && (0.0..=100.0).contains(&t);
    if !(valid_threshold(thresholds.pass)
        && valid_threshold(thresholds.marginal)
        && thresholds.marginal <= thresholds.pass)
    {
        return Err(ScoreError::Thresholds(thresholds));
    }

    let mut groups: Vec<GroupScore> = Vec::new();
    let mut declared: Vec<Option<f64>> = Vec::new();
    for (config, classification) in metrics {
        let index = match groups.iter().position(|g| g.name == config.group) {
            Some(index) => index,
            None => {
                groups.push(GroupScore {
                    name: config.group.clone(),
                    score: 0.0,
                    weight: 0.0,
                    pass: 0,
                    high: 0,
                    low: 0,
                    no_data_fail: 0,
                    no_data: 0,
                    error: 0,
                });
                declared.push(None);
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        match classification.kind {
            Kind::Pass => group.pass += 1,
            Kind::High => group.high += 1,
            Kind::Low => group.low += 1,
            Kind::NoData if config.must_have_data => group.no_data_fail += 1,
            Kind::NoData => group.no_data += 1,
            Kind::Error(_) => group.error += 1,
        }
        if let Some(weight) = config.weight {
            match declared[index] {
                Some(first) if first != weight && !group_weights.contains_key(&config.group) => {
                    return Err(ScoreError::ConflictingWeights {
                        group: config.group.clone(),
                        first,
                        second: weight,
                    });
                }
                _ => declared[index] = Some(weight),
            }
        }
    }

    // Weights.
    let mut weighted_sum = 0.0;
    let mut unweighted = 0usize;
    let mut weights: Vec<Option<f64>> = Vec::with_capacity(groups.len());
    for (group, declared) in groups.iter().zip(&declared) {
        let weight = group_weights.get(&group.name).copied().or(*declared);
        if let Some(w) = weight {
            if !(w.is_finite() && (0.0..=100.0).contains(&w)) {
                return Err(ScoreError::Weight {
                    group: group.name.clone(),
                    weight: w,
                });
            }
            weighted_sum += w;
        } else {
            unweighted += 1;
        }
        weights.push(weight);
    }
    const SLACK: f64 = 1e-9;
    if weighted_sum > 100.0 + SLACK || (unweighted == 0 && (weighted_sum - 100.0).abs() > SLACK) {
        return Err(ScoreError::WeightSum {
            sum: weighted_sum,
            unweighted_groups: unweighted > 0,
        });
    }
    let share = if unweighted > 0 {
        (100.0 - weighted_sum).max(0.0) / unweighted as f64
    } else {
        0.0
    };

    let mut summary = 0.0;
    for (group, weight) in groups.iter_mut().zip(weights) {
        let judged = group.pass + group.high + group.low + group.no_data_fail;
        group.score = if judged == 0 {
            100.0
        } else {
            group.pass as f64 / judged as f64 * 100.0
        };
        group.weight = weight.unwrap_or(share);
        summary += group.score * group.weight / 100.0;
    }
    let summary = summary.clamp(0.0, 100.0);

    let total = metrics.len();
    let no_data = metrics
        .iter()
        .filter(|(_, c)| matches!(c.kind, Kind::NoData | Kind::Error(_)))
        .count();
    let critical = metrics
        .iter()
        .find(|(config, c)| is_critical_failure(config, c));
    let (summary, reason) = if let Some((config, _)) = critical {
        (
            0.0,
            ScoreReason::CriticalMetricFailed {
                metric: config.name.clone(),
            },
        )
    } else if no_data as f64 >= NO_DATA_LIMIT * total as f64 {
        (0.0, ScoreReason::TooMuchNoData { no_data, total })
    } else {
        (summary, ScoreReason::Scored)
    };
    let result = if summary >= thresholds.pass {
        Verdict::Pass
    } else if summary >= thresholds.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Ok(Score {
        groups,
        summary,
        result,
        reason,
    })
}

// ---------------------------------------------------------------------------------------------
// Horizon
// ---------------------------------------------------------------------------------------------

/// Invalid arguments of the sample-size helpers: which argument, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerError {
    /// `prob_superiority` is not in (0, 1) or is ½ (no effect to detect).
    ProbSuperiority(f64),
    /// `power` is not in (0, 1).
    Power(f64),
    /// `alpha` is not in (0, 1).
    Alpha(f64),
    /// `tolerance_fraction` is not in [0, 1).
    ToleranceFraction(f64),
    /// `ratio` is not finite and positive, or is 1.
    Ratio(f64),
    /// `cv` is not finite and positive.
    Cv(f64),
}

impl fmt::Display for PowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerError::ProbSuperiority(v) => {
                write!(
                    f,
                    "prob_superiority: expected a probability in (0, 1) other than 0.5, got {v}"
                )
            }
            PowerError::Power(v) => write!(f, "power: expected a probability in (0, 1), got {v}"),
            PowerError::Alpha(v) => write!(f, "alpha: expected a probability in (0, 1), got {v}"),
            PowerError::ToleranceFraction(v) => {
                write!(
                    f,
                    "tolerance_fraction: expected a fraction in [0, 1), got {v}"
                )
            }
            PowerError::Ratio(v) => {
                write!(
                    f,
                    "ratio: expected a finite positive ratio other than 1, got {v}"
                )
            }
            PowerError::Cv(v) => {
                write!(
                    f,
                    "cv: expected a finite positive coefficient of variation, got {v}"
                )
            }
        }
    }
}

impl std::error::Error for PowerError {}

fn is_open_probability(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

/// Samples needed **per side** (equal sizes) for a two-sided Mann-Whitney test at level
/// `alpha` to detect, with probability `power`, a difference whose probability of
/// superiority is `prob_superiority` (`P(canary > baseline)` for one draw of each).
///
/// Method: Noether's normal approximation of the test's power (Noether 1987, "Sample size
/// determination for some common nonparametric tests"): under the alternative the standardised
/// U has mean about `(p − ½)·√(6n)` for `n` samples per side, so
/// `n = (z_crit + z_power)² / (6 (p − ½)²)`, rounded up, with `z_power = Φ⁻¹(power)` and
/// `z_crit = Φ⁻¹(1 − alpha/2) / (1 − tolerance_fraction)`. The divisor accounts for this
/// judge's tolerance band: the interval must clear `tolerance_fraction × |estimate|`, and with
/// an interval of about `estimate ± z·se` that happens when `estimate / se` exceeds
/// `z / (1 − tolerance_fraction)`. Use 0 for a plain test, [`TOLERANCE_FRACTION`] for this judge.
/// The effect-size gate (`allowedIncrease`) is not modelled.
pub fn sample_size_for_power(
    prob_superiority: f64,
    power: f64,
    alpha: f64,
    tolerance_fraction: f64,
) -> Result<usize, PowerError> {
    if !is_open_probability(prob_superiority) || prob_superiority == 0.5 {
        return Err(PowerError::ProbSuperiority(prob_superiority));
    }
    if !is_open_probability(power) {
        return Err(PowerError::Power(power));
    }
    if !is_open_probability(alpha) {
        return Err(PowerError::Alpha(alpha));
    }
    if !(0.0..1.0).contains(&tolerance_fraction) {
        return Err(PowerError::ToleranceFraction(tolerance_fraction));
    }
    let normal = Normal::standard();
    let z_crit = normal.inverse_cdf(1.0 - alpha / 2.0) / (1.0 - tolerance_fraction);
    let z_power = normal.inverse_cdf(power);
    let effect = prob_superiority - 0.5;
    let n = (z_crit + z_power).powi(2) / (6.0 * effect * effect);
    // n is finite and positive: every argument was checked.
    Ok(n.ceil().max(1.0) as usize)
}

/// `P(canary > baseline)` when both sides are normal with the same standard deviation
/// `cv × baseline mean` and the canary's mean is `ratio ×` the baseline's:
/// `Φ((ratio − 1) / (cv·√2))`.
pub fn prob_superiority_normal(ratio: f64, cv: f64) -> Result<f64, PowerError> {
    if !(ratio.is_finite() && ratio > 0.0) || ratio == 1.0 {
        return Err(PowerError::Ratio(ratio));
    }
    if !(cv.is_finite() && cv > 0.0) {
        return Err(PowerError::Cv(cv));
    }
    Ok(Normal::standard().cdf((ratio - 1.0) / (cv * std::f64::consts::SQRT_2)))
}

/// The fixed horizon of this judge: samples per side for `power` to classify a metric whose
/// mean moves by `ratio` (normal samples with coefficient of variation `cv`, see
/// [`prob_superiority_normal`]), at the judge's own level (`1 −` [`CONFIDENCE_LEVEL`]) and
/// tolerance band ([`TOLERANCE_FRACTION`]).
pub fn horizon_for_ratio(ratio: f64, cv: f64, power: f64) -> Result<usize, PowerError> {
    let p = prob_superiority_normal(ratio, cv)?;
    sample_size_for_power(p, power, 1.0 - CONFIDENCE_LEVEL, TOLERANCE_FRACTION)
}
