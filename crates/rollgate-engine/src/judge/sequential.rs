//! Anytime-valid sequential judge on event counts (see the module documentation of `judge`).
//!
//! # The test
//!
//! Each version's events (errors, or requests slower than an SLO bucket) are modelled as a
//! Poisson process whose intensity is the version's share of the requests times a common load
//! curve times a rate ratio `r` (canary over baseline). Given that an interval `j` saw `E_j`
//! events in all and that the canary served a share `q_j` of that interval's requests, the
//! canary's events are `Binomial(E_j, theta_j(r))` with
//! `theta_j(r) = q_j r / (q_j r + 1 - q_j)`, whatever the load curve did; under the null
//! ("no difference", `r = 1`) `theta_j = q_j`. With `u = ln r` the likelihood ratio of one
//! interval against the null is
//!
//! ```text
//! ln L_j(u) = e_cj ln(theta_j / q_j) + e_bj ln((1 - theta_j) / (1 - q_j))
//!           = e_cj u - E_j ln(1 + q_j (e^u - 1))
//! ```
//!
//! and the test statistic (the e-value) is the mixture `M = sum_i w_i prod_j L_j(u_i)` over a
//! fixed grid of `u_i` with prior weights `w_i` summing to 1. `M` is a nonnegative martingale with
//! `M_0 = 1` under the null, so by Ville's inequality the probability that it *ever* reaches
//! `1/alpha` is at most `alpha`: the test may be looked at after every scrape, and the metric
//! fails the first time `M >= 1/alpha`. The anytime-valid p-value is
//! `min(1, 1 / max_so_far(M))`.
//!
//! # The prior (how the grid and weights follow from `k`)
//!
//! The grid is fixed: `u_i = i * GRID_STEP` for `i = 0..GRID_POINTS_PER_SIDE` (so `u` from 0 to
//! 6, rate ratios 1 to ~403) for [`Direction::Increase`], the mirror image (`u <= 0`) for
//! [`Direction::Decrease`], and both sides (`2 * GRID_POINTS_PER_SIDE - 1` points) for
//! [`Direction::Either`].
//!
//! The weights come from the two-arm Dirichlet prior of the reference,
//! `theta ~ Beta(k q0, k (1 - q0))` with `k` the prior concentration, centred on the null share
//! `q0`, carried over to `u` by `theta = q0 e^u / (q0 e^u + 1 - q0)`: its density in `u` is
//! proportional to `theta^(k q0) (1 - theta)^(k (1 - q0))`, with its mode at `u = 0`. The weight
//! of grid point `u_i` is that density times the trapezoid rule's weight (halved at the two ends
//! of the grid), normalized to sum 1 over the grid: the prior truncated to the direction's side
//! (and to `|u| <= 6`, where next to no prior mass lies beyond). Weighing by the density rather
//! than by each cell's exact mass keeps the approximation of the continuous mixture accurate to
//! high order (the trapezoid rule on a smooth integrand), where cell masses would leave an error
//! of order `GRID_STEP^2`.
//! `q0` is the canary's share of requests in the first interval with requests on both sides; it
//! is fixed before any of the events it weighs are split between the versions, so the mixture
//! stays a test martingale however the shares change later.
//!
//! The grid mixture is itself a valid discrete prior, so the false-alarm bound holds exactly,
//! whatever the quality of the approximation. With a constant share it approximates the
//! closed-form directed Bayes factor ([`one_sided_log_bayes_factor`]) closely where the evidence
//! builds up for the tested direction: the tests check the log e-value to within `2e-3` where the
//! closed form is at least 1 with up to a thousand events, and `1e-2` at five thousand (the
//! remaining error comes from the kink of the one-sided prior at `u = 0`, and for large counts
//! from a likelihood narrower than the grid step). Where the data go the other way the grid keeps the
//! weight of its point `u = 0` (where the likelihood ratio is always 1), so its e-value stays
//! above that weight (about 0.03 for `k = 20`, `q0 = 0.1`) while the continuous mixture keeps
//! falling: a good canary that turns bad later needs no more evidence than a fresh test.
//! The grid resolves the prior while `k q0 (1 - q0)` stays below ~40 (prior spread in `u` of
//! twice the grid step), hence the cap [`MAX_PRIOR_CONCENTRATION`].
//!
//! # Counts
//!
//! The controller reads raw Prometheus counters; [`Counter`] and [`Counters`] turn successive
//! readings into increases (a reading below the previous one is a counter reset: the increase is
//! the new reading, as Prometheus' `increase()` assumes; the first reading only sets the base).
//!
//! Everything here is pure: no I/O, no clock. [`State`] is serde-serializable (camelCase) so it
//! can live in the AnalysisRun status, and a restarted controller continues the same test.

use serde::{Deserialize, Serialize};
use statrs::function::beta::checked_beta_reg;
use statrs::function::gamma::ln_gamma;

/// Default false-alarm bound per metric, as the reference suggests (`alpha: 0.05`).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default prior concentration `k` of the Dirichlet mixture, as the reference suggests (`20`).
pub const DEFAULT_PRIOR_CONCENTRATION: f64 = 20.0;
/// Largest accepted prior concentration. A prior this tight around the null has next to no power
/// for the ratios that matter, and the grid would no longer resolve it.
pub const MAX_PRIOR_CONCENTRATION: f64 = 1_000.0;
/// Distance between neighbouring grid points of `u = ln(rate ratio)`.
pub const GRID_STEP: f64 = 0.075;
/// Grid points on one side of `u = 0`, counting `u = 0` itself (`u` reaches 6.0, a ratio of ~403).
pub const GRID_POINTS_PER_SIDE: usize = 81;
/// Largest counter reading accepted: every whole number up to 2^53 is exact in an `f64`.
pub const MAX_COUNTER_READING: f64 = 9_007_199_254_740_992.0;

/// Which change of the canary's event rate fails the metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Only a canary with *more* events than its share of traffic explains (the usual case: errors,
    /// slow requests). The prior sits on `u >= 0`.
    #[default]
    Increase,
    /// Only a canary with *fewer* events (e.g. a success counter). The prior sits on `u <= 0`.
    Decrease,
    /// Any difference. The prior covers both sides (the two-sided Bayes factor).
    Either,
}

impl Direction {
    /// The value as written in a template (`increase`, `decrease`, `either`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Increase => "increase",
            Self::Decrease => "decrease",
            Self::Either => "either",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of one sequential metric.
///
/// Defaults: `alpha` [`DEFAULT_ALPHA`] (0.05), `priorConcentration` [`DEFAULT_PRIOR_CONCENTRATION`]
/// (20), direction [`Direction::Increase`], `minEvents` 0 — the starting point the reference
/// suggests; the issue's example uses a stricter `alpha: 0.01`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// False-alarm bound: the metric fails when the e-value reaches `1/alpha`. In (0, 1).
    pub alpha: f64,
    /// Prior concentration `k` of the Dirichlet mixture around the null: larger values expect
    /// smaller differences (more power for small ratios, less for large ones). In (0, 1000].
    pub prior_concentration: f64,
    /// Which change fails the metric.
    pub direction: Direction,
    /// The metric cannot fail before both versions together saw this many events.
    pub min_events: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alpha: DEFAULT_ALPHA,
            prior_concentration: DEFAULT_PRIOR_CONCENTRATION,
            direction: Direction::Increase,
            min_events: 0,
        }
    }
}

impl Settings {
    /// Checks every field; the error names the first invalid one and what was expected.
    pub fn validate(&self) -> Result<(), Error> {
        check_alpha(self.alpha)?;
        check_concentration(self.prior_concentration)?;
        Ok(())
    }
}

/// What is wrong with one counter reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadingProblem {
    /// NaN or infinite.
    NotFinite,
    /// Below zero.
    Negative,
    /// Not a whole number (event and request counters count whole events).
    Fractional,
    /// Above [`MAX_COUNTER_READING`].
    TooLarge,
}

impl std::fmt::Display for ReadingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotFinite => "not a finite number",
            Self::Negative => "negative",
            Self::Fractional => "not a whole number",
            Self::TooLarge => "above 2^53",
        })
    }
}

/// One of the four counter series a sequential metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    /// The canary's events counter.
    CanaryEvents,
    /// The canary's requests counter.
    CanaryRequests,
    /// The baseline's events counter.
    BaselineEvents,
    /// The baseline's requests counter.
    BaselineRequests,
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CanaryEvents => "canary events",
            Self::CanaryRequests => "canary requests",
            Self::BaselineEvents => "baseline events",
            Self::BaselineRequests => "baseline requests",
        })
    }
}

/// A counter reading that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("counter reading: expected a finite whole number in [0, 2^53], got {value} ({problem})")]
pub struct ReadingError {
    /// The reading.
    pub value: f64,
    /// What is wrong with it.
    pub problem: ReadingProblem,
}

/// Errors of the sequential judge. Each names the field and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// `alpha` outside (0, 1).
    #[error("alpha: expected a number strictly between 0 and 1, got {0}")]
    Alpha(f64),
    /// `priorConcentration` outside (0, [`MAX_PRIOR_CONCENTRATION`]].
    #[error("priorConcentration: expected a number greater than 0 and at most 1000, got {0}")]
    PriorConcentration(f64),
    /// The canary's share of traffic (closed forms) outside (0, 1).
    #[error(
        "rhoC (the canary's share of traffic): expected a number strictly between 0 and 1, got {0}"
    )]
    CanaryShare(f64),
    /// A counter reading of one series cannot be used.
    #[error("{series}: {source}")]
    Reading {
        /// The series read.
        series: Series,
        /// What is wrong with the reading.
        source: ReadingError,
    },
    /// A setting that shapes the test differs from the one the test started with.
    #[error(
        "{field}: expected {started}, the value this test started with, got {now}; changing it \
         mid-test voids the false-alarm bound (start a new analysis run instead)"
    )]
    SettingChanged {
        /// The setting (`alpha`, `priorConcentration` or `direction`).
        field: &'static str,
        /// Its value when the test started.
        started: String,
        /// Its value now.
        now: String,
    },
    /// A stored state that is not one this module wrote (edited or corrupted status).
    #[error("{field}: expected {expected} in the stored sequential test state")]
    State {
        /// The state field.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

fn check_alpha(alpha: f64) -> Result<(), Error> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(Error::Alpha(alpha))
    }
}

fn check_concentration(k: f64) -> Result<(), Error> {
    if k > 0.0 && k <= MAX_PRIOR_CONCENTRATION {
        Ok(())
    } else {
        Err(Error::PriorConcentration(k))
    }
}

fn check_share(rho: f64) -> Result<(), Error> {
    if rho > 0.0 && rho < 1.0 {
        Ok(())
    } else {
        Err(Error::CanaryShare(rho))
    }
}

fn check_reading(value: f64) -> Result<u64, ReadingError> {
    let problem = if !value.is_finite() {
        ReadingProblem::NotFinite
    } else if value < 0.0 {
        ReadingProblem::Negative
    } else if value.fract() != 0.0 {
        ReadingProblem::Fractional
    } else if value > MAX_COUNTER_READING {
        ReadingProblem::TooLarge
    } else {
        // A whole number in [0, 2^53]: the conversion is exact.
        return Ok(value as u64);
    };
    Err(ReadingError { value, problem })
}

/// The increase of a counter from `previous` to `current`.
///
/// No previous reading: 0 (the first reading only sets the base). `current < previous`: the
/// counter was reset (a restarted process), and the increase is `current`, as Prometheus'
/// `increase()` assumes. Both readings must be finite whole numbers in [0, 2^53].
pub fn counter_increase(previous: Option<f64>, current: f64) -> Result<u64, ReadingError> {
    let current = check_reading(current)?;
    let Some(previous) = previous else {
        return Ok(0);
    };
    let previous = check_reading(previous)?;
    Ok(if current < previous {
        current
    } else {
        current - previous
    })
}

/// One counter series: remembers the last reading and turns the next into an increase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    /// The last accepted reading; none before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<f64>,
}

impl Counter {
    /// The last accepted reading, if any.
    pub fn last(&self) -> Option<f64> {
        self.last
    }

    /// The increase since the last reading (see [`counter_increase`]); remembers `reading`.
    /// A reading that cannot be used is an error and leaves the counter as it was.
    pub fn observe(&mut self, reading: f64) -> Result<u64, ReadingError> {
        let increase = counter_increase(self.last, reading)?;
        self.last = Some(reading);
        Ok(increase)
    }
}

/// Raw readings of the four counters of one sequential metric, taken from the same scrape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readings {
    /// The canary's events counter.
    pub canary_events: f64,
    /// The canary's requests counter.
    pub canary_requests: f64,
    /// The baseline's events counter.
    pub baseline_events: f64,
    /// The baseline's requests counter.
    pub baseline_requests: f64,
}

/// The four counters of one sequential metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// The canary's events counter.
    pub canary_events: Counter,
    /// The canary's requests counter.
    pub canary_requests: Counter,
    /// The baseline's events counter.
    pub baseline_events: Counter,
    /// The baseline's requests counter.
    pub baseline_requests: Counter,
}

impl Counters {
    /// The increases since the last readings (all zero at the first). All four readings are
    /// checked before any is remembered: on an error nothing changes.
    pub fn observe(&mut self, readings: Readings) -> Result<Interval, Error> {
        let mut next = *self;
        let interval = Interval {
            canary_events: observe(
                &mut next.canary_events,
                Series::CanaryEvents,
                readings.canary_events,
            )?,
            baseline_events: observe(
                &mut next.baseline_events,
                Series::BaselineEvents,
                readings.baseline_events,
            )?,
            canary_requests: observe(
                &mut next.canary_requests,
                Series::CanaryRequests,
                readings.canary_requests,
            )?,
            baseline_requests: observe(
                &mut next.baseline_requests,
                Series::BaselineRequests,
                readings.baseline_requests,
            )?,
        };
        *self = next;
        Ok(interval)
    }
}

fn observe(counter: &mut Counter, series: Series, reading: f64) -> Result<u64, Error> {
    counter
        .observe(reading)
        .map_err(|source| Error::Reading { series, source })
}

/// What one scrape interval added: counter increases of both versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    /// The canary's new events.
    pub canary_events: u64,
    /// The baseline's new events.
    pub baseline_events: u64,
    /// The canary's new requests.
    pub canary_requests: u64,
    /// The baseline's new requests.
    pub baseline_requests: u64,
}

/// The judgement after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// Not (yet) enough evidence of a difference: keep measuring.
    Continue,
    /// The e-value reached `1/alpha` in the tested direction with at least `minEvents` events:
    /// the metric fails. The controller stops the test here.
    Reject,
}

/// The outcome of one update, to record in the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Cumulative canary events.
    pub canary_events: u64,
    /// Cumulative baseline events.
    pub baseline_events: u64,
    /// Cumulative canary requests.
    pub canary_requests: u64,
    /// Cumulative baseline requests.
    pub baseline_requests: u64,
    /// Canary events expected under the null: `sum_j q_j E_j` over the counted intervals.
    pub expected_canary_events: f64,
    /// The e-value `M` (the mixture martingale), saturating at `f64::MAX`.
    pub e_value: f64,
    /// `ln M`.
    pub log_e_value: f64,
    /// Anytime-valid p-value `min(1, 1 / max_so_far(M))`.
    pub p_value: f64,
    /// Canary events per request over baseline events per request, from the cumulative counts;
    /// none while the baseline has no requests or no events, or the canary no requests.
    pub rate_ratio: Option<f64>,
    /// Whether the metric fails now.
    pub decision: Decision,
}

/// The settings a test is bound to once it has started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frozen {
    alpha: f64,
    prior_concentration: f64,
    direction: Direction,
}

/// The grid and log prior weights, derived from the frozen settings and the reference share.
#[derive(Debug, Clone, PartialEq)]
struct Grid {
    key: (f64, Direction, f64),
    /// `e^u - 1` per grid point.
    expm1_u: Vec<f64>,
    /// `u` per grid point.
    u: Vec<f64>,
    /// `ln w` per grid point.
    log_weight: Vec<f64>,
}

impl Grid {
    /// `ln M = ln sum_i w_i L(u_i)`.
    fn log_e_value(&self, log_likelihood: &[f64]) -> f64 {
        log_sum_exp(
            self.log_weight
                .iter()
                .zip(log_likelihood)
                .map(|(w, ll)| w + ll),
        )
    }
}

/// Everything needed to continue one test: serialized (camelCase) into the AnalysisRun status.
///
/// Start with [`State::default`]. Its size is fixed: the cumulative counts, the counters, and one
/// log-likelihood per grid point (81, or 161 for [`Direction::Either`]).
///
/// Intervals with no requests on one side carry no information on the split and are ignored
/// entirely (counted in `ignoredIntervals` when they had any count). Intervals with requests on
/// both sides but no events add their requests and leave the e-value unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The last counter readings (for [`State::observe`]).
    #[serde(default)]
    counters: Counters,
    /// The settings the test started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_with: Option<Frozen>,
    /// The canary's share of requests in the first interval with requests on both sides: the
    /// centre of the prior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference_share: Option<f64>,
    #[serde(default)]
    canary_events: u64,
    #[serde(default)]
    baseline_events: u64,
    #[serde(default)]
    canary_requests: u64,
    #[serde(default)]
    baseline_requests: u64,
    #[serde(default)]
    expected_canary_events: f64,
    /// `ln L(u_i)` per grid point; empty until the reference share is known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    log_likelihood: Vec<f64>,
    /// `ln max_so_far(M)` (0 at the start: `M_0 = 1`).
    #[serde(default)]
    max_log_e_value: f64,
    #[serde(default)]
    ignored_intervals: u64,
    /// Derived from the fields above; rebuilt after deserialization.
    #[serde(skip)]
    grid: Option<Grid>,
}

impl State {
    /// Reads the four counters of one scrape and updates the test with their increases (see
    /// [`State::update`]). The first call only sets the counters' base. On an error nothing
    /// changes.
    pub fn observe(&mut self, settings: &Settings, readings: Readings) -> Result<Verdict, Error> {
        let mut counters = self.counters;
        let interval = counters.observe(readings)?;
        let verdict = self.update(settings, interval)?;
        self.counters = counters;
        Ok(verdict)
    }

    /// Adds one interval's counter increases and judges.
    ///
    /// [`Decision::Reject`] when the e-value is at least `1/alpha`, the canary's events lie on the
    /// tested side of the null expectation (more than `expectedCanaryEvents` for `increase`, fewer
    /// for `decrease`; a one-sided prior implies it already, as `ln L(u)` is concave in `u` with
    /// slope `canaryEvents - expectedCanaryEvents` at 0), and both versions together saw at least
    /// `minEvents` events. The controller stops the test at the first rejection; a test fed further
    /// may return [`Decision::Continue`] again while its p-value keeps the evidence.
    ///
    /// The first update binds the test to `settings.alpha`, `priorConcentration` and `direction`;
    /// a later update with other values is an error ([`Error::SettingChanged`]). `minEvents` may
    /// change. On an error nothing changes.
    pub fn update(&mut self, settings: &Settings, interval: Interval) -> Result<Verdict, Error> {
        settings.validate()?;
        let frozen = Frozen {
            alpha: settings.alpha,
            prior_concentration: settings.prior_concentration,
            direction: settings.direction,
        };
        if let Some(started) = self.started_with {
            check_unchanged(&started, &frozen)?;
        }
        self.check()?;

        let share = interval.canary_requests as f64
            / (interval.canary_requests as f64 + interval.baseline_requests as f64);
        let informative = interval.canary_requests > 0
            && interval.baseline_requests > 0
            && share > 0.0
            && share < 1.0;
        // Everything that can fail happens before the state changes.
        let reference = self.reference_share.or(informative.then_some(share));
        let grid = match reference {
            Some(reference) if informative || !self.log_likelihood.is_empty() => {
                Some(self.grid_for((frozen.prior_concentration, frozen.direction, reference))?)
            }
            _ => None,
        };
        self.started_with = Some(frozen);
        match &grid {
            Some(grid) if informative => {
                self.reference_share = reference;
                if self.log_likelihood.is_empty() {
                    self.log_likelihood = vec![0.0; grid.u.len()];
                }
                let events = interval
                    .canary_events
                    .saturating_add(interval.baseline_events);
                if events > 0 {
                    let (e_c, e_all) = (interval.canary_events as f64, events as f64);
                    for ((ll, u), g) in self
                        .log_likelihood
                        .iter_mut()
                        .zip(&grid.u)
                        .zip(&grid.expm1_u)
                    {
                        *ll += e_c * u - e_all * (share * g).ln_1p();
                    }
                    self.expected_canary_events += share * e_all;
                }
                self.canary_events = self.canary_events.saturating_add(interval.canary_events);
                self.baseline_events = self
                    .baseline_events
                    .saturating_add(interval.baseline_events);
                self.canary_requests = self
                    .canary_requests
                    .saturating_add(interval.canary_requests);
                self.baseline_requests = self
                    .baseline_requests
                    .saturating_add(interval.baseline_requests);
            }
            _ => {
                if interval != Interval::default() {
                    self.ignored_intervals = self.ignored_intervals.saturating_add(1);
                }
            }
        }
        let log_e = grid
            .as_ref()
            .map_or(0.0, |g| g.log_e_value(&self.log_likelihood));
        self.grid = grid;
        self.max_log_e_value = self.max_log_e_value.max(log_e);
        Ok(self.verdict_with(settings, log_e))
    }

    /// The judgement on the data so far, without adding any (e.g. to show the last state).
    pub fn verdict(&mut self, settings: &Settings) -> Result<Verdict, Error> {
        settings.validate()?;
        self.check()?;
        let log_e = self.log_e_value()?;
        Ok(self.verdict_with(settings, log_e))
    }

    /// Intervals ignored because one side had no requests.
    pub fn ignored_intervals(&self) -> u64 {
        self.ignored_intervals
    }

    /// The canary's share of requests the prior is centred on, once known.
    pub fn reference_share(&self) -> Option<f64> {
        self.reference_share
    }

    fn verdict_with(&self, settings: &Settings, log_e: f64) -> Verdict {
        let e_value = log_e.exp().min(f64::MAX);
        let p_value = (-self.max_log_e_value).exp().min(1.0);
        let observed = self.canary_events as f64;
        // Implied by a one-sided prior (see `update`); kept as the rule the decision states.
        let direction_holds = match settings.direction {
            Direction::Increase => observed > self.expected_canary_events,
            Direction::Decrease => observed < self.expected_canary_events,
            Direction::Either => true,
        };
        let total = self.canary_events.saturating_add(self.baseline_events);
        let reject =
            log_e >= -settings.alpha.ln() && direction_holds && total >= settings.min_events;
        let rate_ratio =
            (self.canary_requests > 0 && self.baseline_requests > 0 && self.baseline_events > 0)
                .then(|| {
                    (self.canary_events as f64 / self.canary_requests as f64)
                        / (self.baseline_events as f64 / self.baseline_requests as f64)
                });
        Verdict {
            canary_events: self.canary_events,
            baseline_events: self.baseline_events,
            canary_requests: self.canary_requests,
            baseline_requests: self.baseline_requests,
            expected_canary_events: self.expected_canary_events,
            e_value,
            log_e_value: log_e,
            p_value,
            rate_ratio,
            decision: if reject {
                Decision::Reject
            } else {
                Decision::Continue
            },
        }
    }

    /// `ln M` (0 before the first informative interval).
    fn log_e_value(&mut self) -> Result<f64, Error> {
        let (Some(started), Some(reference)) = (self.started_with, self.reference_share) else {
            return Ok(0.0);
        };
        if self.log_likelihood.is_empty() {
            return Ok(0.0);
        }
        let grid = self.grid_for((started.prior_concentration, started.direction, reference))?;
        let log_e = grid.log_e_value(&self.log_likelihood);
        self.grid = Some(grid);
        Ok(log_e)
    }

    /// The grid for `key`, taken out of the cache when it matches (put it back into
    /// `self.grid` after use).
    fn grid_for(&mut self, key: (f64, Direction, f64)) -> Result<Grid, Error> {
        match self.grid.take() {
            Some(grid) if grid.key == key => Ok(grid),
            _ => build_grid(key),
        }
    }

    /// Checks a stored state for values this module never writes.
    fn check(&self) -> Result<(), Error> {
        if let Some(share) = self.reference_share
            && !(share > 0.0 && share < 1.0)
        {
            return Err(Error::State {
                field: "referenceShare",
                expected: "a number strictly between 0 and 1",
            });
        }
        if let Some(started) = self.started_with {
            check_alpha(started.alpha)?;
            check_concentration(started.prior_concentration)?;
        }
        if !self.log_likelihood.is_empty() {
            let want = match self.started_with.map(|s| s.direction) {
                Some(direction) => grid_len(direction),
                None => 0,
            };
            if self.log_likelihood.len() != want || self.reference_share.is_none() {
                return Err(Error::State {
                    field: "logLikelihood",
                    expected: "one value per grid point of the test's direction (81, or 161 for either), after referenceShare",
                });
            }
            if self.log_likelihood.iter().any(|v| !v.is_finite()) {
                return Err(Error::State {
                    field: "logLikelihood",
                    expected: "finite numbers",
                });
            }
        }
        if !self.expected_canary_events.is_finite() || self.expected_canary_events < 0.0 {
            return Err(Error::State {
                field: "expectedCanaryEvents",
                expected: "a finite number >= 0",
            });
        }
        if !self.max_log_e_value.is_finite() || self.max_log_e_value < 0.0 {
            return Err(Error::State {
                field: "maxLogEValue",
                expected: "a finite number >= 0",
            });
        }
        Ok(())
    }
}

fn check_unchanged(started: &Frozen, now: &Frozen) -> Result<(), Error> {
    let changed = |field: &'static str, started: String, now: String| Error::SettingChanged {
        field,
        started,
        now,
    };
    if started.alpha != now.alpha {
        return Err(changed(
            "alpha",
            started.alpha.to_string(),
            now.alpha.to_string(),
        ));
    }
    if started.prior_concentration != now.prior_concentration {
        return Err(changed(
            "priorConcentration",
            started.prior_concentration.to_string(),
            now.prior_concentration.to_string(),
        ));
    }
    if started.direction != now.direction {
        return Err(changed(
            "direction",
            started.direction.to_string(),
            now.direction.to_string(),
        ));
    }
    Ok(())
}

fn grid_len(direction: Direction) -> usize {
    match direction {
        Direction::Increase | Direction::Decrease => GRID_POINTS_PER_SIDE,
        Direction::Either => 2 * GRID_POINTS_PER_SIDE - 1,
    }
}

/// `ln sum exp(x)`, stable; `-inf` terms contribute nothing.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `1 / (1 + e^-z)`, stable for any `z`.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)`, stable for any `z`.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn beta_reg(a: f64, b: f64, x: f64) -> Result<f64, Error> {
    checked_beta_reg(a, b, x.clamp(0.0, 1.0)).map_err(|_| Error::PriorConcentration(a + b))
}

/// The grid and its log weights: the trapezoid rule over the grid's span applied to the prior
/// density of `u`, normalized to sum 1 (see the module documentation).
fn build_grid(key: (f64, Direction, f64)) -> Result<Grid, Error> {
    let (k, direction, share) = key;
    check_concentration(k)?;
    check_share(share)?;
    let (a, b) = (k * share, k * (1.0 - share));
    let logit = share.ln() - (-share).ln_1p();
    let n = GRID_POINTS_PER_SIDE as i64;
    let indices: Vec<i64> = match direction {
        Direction::Increase => (0..n).collect(),
        Direction::Decrease => (0..n).map(|i| -i).collect(),
        Direction::Either => (-(n - 1)..n).collect(),
    };
    let (lowest, highest) = match (indices.iter().min(), indices.iter().max()) {
        (Some(lowest), Some(highest)) => (*lowest, *highest),
        _ => return Err(Error::PriorConcentration(k)),
    };
    // The exact normalizer of theta^a (1 - theta)^b over u: B(a, b).
    let log_beta = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    let mut u = Vec::with_capacity(indices.len());
    let mut weight = Vec::with_capacity(indices.len());
    for &i in &indices {
        let centre = i as f64 * GRID_STEP;
        let z = centre + logit;
        // The density of u: theta^a (1 - theta)^b / B(a, b), the Beta density of theta times
        // the Jacobian theta (1 - theta). Its mode is u = 0.
        let density = (-a * softplus(-z) - b * softplus(z) - log_beta).exp();
        let mut w = GRID_STEP * density;
        if i == lowest || i == highest {
            w /= 2.0;
        }
        // The prior mass beyond the grid sits on its outermost points (the likelihood ratio
        // flattens out there). With a small share the mass at very low rates is not negligible.
        if i == highest && i > 0 {
            w += beta_reg(b, a, sigmoid(-z))?;
        }
        if i == lowest && i < 0 {
            w += beta_reg(a, b, sigmoid(z))?;
        }
        u.push(centre);
        weight.push(w);
    }
    let total: f64 = weight.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(Error::PriorConcentration(k));
    }
    let log_weight = weight.iter().map(|w| (w / total).ln()).collect();
    Ok(Grid {
        key,
        expm1_u: u.iter().map(|u| u.exp_m1()).collect(),
        u,
        log_weight,
    })
}

/// The two-sided Dirichlet-mixture log Bayes factor of the reference for the canary's share of
/// events: `x_c` canary and `x_b` baseline events when the canary serves a constant share `rho_c`
/// of the traffic, with prior `theta ~ Beta(k rho_c, k (1 - rho_c))`:
///
/// ```text
/// lnG(a + x_c) + lnG(b + x_b) - lnG(k + x_c + x_b) - lnG(a) - lnG(b) + lnG(k)
///   - x_c ln rho_c - x_b ln(1 - rho_c)
/// ```
///
/// Rejecting when it reaches `ln(1/alpha)` is an anytime-valid test; it rejects a canary with
/// *fewer* events too.
pub fn log_bayes_factor(k: f64, rho_c: f64, x_c: u64, x_b: u64) -> Result<f64, Error> {
    check_concentration(k)?;
    check_share(rho_c)?;
    let (a, b) = (k * rho_c, k * (1.0 - rho_c));
    let (x_c, x_b) = (x_c as f64, x_b as f64);
    Ok(ln_gamma(a + x_c) + ln_gamma(b + x_b)
        - ln_gamma(a + b + x_c + x_b)
        - ln_gamma(a)
        - ln_gamma(b)
        + ln_gamma(a + b)
        - x_c * rho_c.ln()
        - x_b * (-rho_c).ln_1p())
}

/// The directed version of [`log_bayes_factor`]: the prior truncated to `theta > rho_c`
/// ([`Direction::Increase`]) or `theta < rho_c` ([`Direction::Decrease`]), which divides by the
/// prior mass of that side and multiplies by its posterior mass (regularized incomplete beta).
/// [`Direction::Either`] is the two-sided factor.
///
/// `-inf` when the posterior mass of the side underflows (overwhelming evidence the other way).
/// The posterior masses (statrs' regularized incomplete beta) were checked to sum to 1 within
/// 1e-10 up to 10^6 events; the test itself ([`State`]) uses the function only for the prior's
/// tails.
pub fn one_sided_log_bayes_factor(
    k: f64,
    rho_c: f64,
    x_c: u64,
    x_b: u64,
    direction: Direction,
) -> Result<f64, Error> {
    let two_sided = log_bayes_factor(k, rho_c, x_c, x_b)?;
    let (a, b) = (k * rho_c, k * (1.0 - rho_c));
    let (xc, xb) = (x_c as f64, x_b as f64);
    let (posterior, prior) = match direction {
        Direction::Either => return Ok(two_sided),
        Direction::Increase => (
            beta_reg(b + xb, a + xc, 1.0 - rho_c)?,
            beta_reg(b, a, 1.0 - rho_c)?,
        ),
        Direction::Decrease => (beta_reg(a + xc, b + xb, rho_c)?, beta_reg(a, b, rho_c)?),
    };
    Ok(two_sided + posterior.ln() - prior.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_for_every_direction() {
        for direction in [Direction::Increase, Direction::Decrease, Direction::Either] {
            for share in [0.001, 0.05, 0.1, 0.5, 0.9] {
                let grid = build_grid((20.0, direction, share)).expect("grid");
                assert_eq!(grid.u.len(), grid_len(direction));
                let total: f64 = grid.log_weight.iter().map(|w| w.exp()).sum();
                assert!((total - 1.0).abs() < 1e-12, "{direction} {share}: {total}");
            }
        }
    }

    #[test]
    fn one_sided_grids_stay_on_their_side() {
        let up = build_grid((20.0, Direction::Increase, 0.1)).expect("grid");
        assert!(up.u.iter().all(|u| *u >= 0.0));
        let down = build_grid((20.0, Direction::Decrease, 0.1)).expect("grid");
        assert!(down.u.iter().all(|u| *u <= 0.0));
    }

    #[test]
    fn log_sum_exp_ignores_minus_infinity() {
        let v = log_sum_exp([f64::NEG_INFINITY, 0.0, 0.0].into_iter());
        assert!((v - 2f64.ln()).abs() < 1e-15);
    }
}
