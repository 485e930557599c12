//! The canary-judge quality benchmark: generated canaries, good and bad, judged by three rules.
//!
//! # The canaries
//!
//! Each canary is one release of one service, observed every [`SCRAPE_SECONDS`] seconds. The
//! generator's parameters were fixed before any judge was run and are not tuned to any result:
//!
//! - **Traffic**: the service's peak load is log-uniform in [`PEAK_RPM`] requests per minute;
//!   a daily wave scales it between 10% and 100% of the peak
//!   (`0.55 + 0.45 cos(2 pi (t0 + t) / 1440)`, `t0` a uniform time of day).
//! - **Shares**: the canary serves 5% of the requests for 10 minutes, 25% for 10, then 50%
//!   ([`STEPS`]) until the end of its life: [`MIN_LIFE_MINUTES`], or longer when the
//!   fixed-horizon judge needs more minutes ([`kayenta_horizon`]), at most
//!   [`MAX_LIFE_MINUTES`]. Requests of each version per scrape are Poisson.
//! - **Events**: errors (nominal rate log-uniform in [`ERROR_RATE`]) or, for latency, requests
//!   slower than an SLO bucket (nominal fraction log-uniform in [`SLOW_RATE`]). Per scrape a
//!   version's events are Poisson with mean requests x rate, the canary's rate times the class's
//!   ratio (1 for good canaries). Each minute, both versions' rates move together by a
//!   log-normal factor of mean 1 and log-sd [`COMMON_NOISE_SIGMA`] (a slow dependency, a burst
//!   of bad clients: overdispersion shared by both versions).
//!
//! # The judges
//!
//! - **(a) Threshold rule** (Argo Rollouts, Flagger): every minute, the canary's event rate over
//!   that minute is compared with `factor x` the service's nominal rate; the rule fails at the
//!   [`FAILURE_LIMIT`]` + 1`-th failing measurement (Argo: failed > failureLimit). A minute
//!   without canary requests has no data and does not fail. The factor is the judge's one
//!   parameter: the smallest multiple of [`FACTOR_STEP`] that keeps false rollbacks of a separate
//!   set of good canaries (another seed) at or below [`TARGET_FALSE_ROLLBACKS`].
//! - **(b) Kayenta, fixed horizon**: per-minute event rates of each version (NaN for a minute
//!   without requests, removed), classified once with
//!   `rollgate_engine::judge::kayenta::classify` (direction increase, Kayenta's defaults
//!   otherwise) after `H` minutes; High rolls back at minute `H`. `H` is set for 80% power at a
//!   1.5x ratio ([`kayenta_horizon`]).
//! - **(c) Sequential**: `rollgate_engine::judge::sequential::State::update` with each scrape's
//!   counts; the first [`Decision::Reject`] rolls back at that scrape.
//!
//! Everything is seeded and deterministic: the same [`Config`] prints the same table.

use rollgate_engine::judge::kayenta::{self, Kind, MetricConfig};
use rollgate_engine::judge::sequential::{Decision, Direction, Interval, Settings, State};

/// Seconds between two scrapes of the counters.
pub const SCRAPE_SECONDS: u32 = 15;
/// Scrapes per minute.
pub const SCRAPES_PER_MINUTE: usize = 4;
/// The canary's share of requests and how many minutes it lasts; the last step lasts until the
/// end of the canary's life.
pub const STEPS: [(f64, usize); 3] = [(0.05, 10), (0.25, 10), (0.50, usize::MAX)];
/// Shortest life of a canary (the three steps, 10 minutes each).
pub const MIN_LIFE_MINUTES: usize = 30;
/// Longest life of a canary: the fixed horizon is capped here.
pub const MAX_LIFE_MINUTES: usize = 240;
/// Range of the services' peak load, requests per minute (10 to 1000 requests per second).
pub const PEAK_RPM: (f64, f64) = (600.0, 60_000.0);
/// Range of the nominal error rate per request.
pub const ERROR_RATE: (f64, f64) = (0.001, 0.02);
/// Range of the nominal fraction of requests slower than the SLO bucket.
pub const SLOW_RATE: (f64, f64) = (0.01, 0.05);
/// Log-sd of the per-minute factor moving both versions' event rates together.
pub const COMMON_NOISE_SIGMA: f64 = 0.3;
/// The threshold rule fails at the `FAILURE_LIMIT + 1`-th failing measurement.
pub const FAILURE_LIMIT: usize = 3;
/// The threshold rule's factors are multiples of this.
pub const FACTOR_STEP: f64 = 0.25;
/// The false-rollback rate the threshold rule's factor is calibrated to (and the goal).
pub const TARGET_FALSE_ROLLBACKS: f64 = 0.01;
/// The ratio the fixed horizon is powered for.
pub const HORIZON_RATIO: f64 = 1.5;
/// The power the fixed horizon is set for.
pub const HORIZON_POWER: f64 = 0.8;
/// The sequential judge's settings: `alpha` 0.01, `priorConcentration` 20, increase.
pub const SEQUENTIAL: Settings = Settings {
    alpha: 0.01,
    prior_concentration: 20.0,
    direction: Direction::Increase,
    min_events: 0,
};

// ---------------------------------------------------------------------------------------------
// Random numbers

/// SplitMix64: a small seeded generator, enough for simulations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in `[low, high]`.
    pub fn log_uniform(&mut self, (low, high): (f64, f64)) -> f64 {
        (low.ln() + self.uniform() * (high.ln() - low.ln())).exp()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform(); // in (0, 1]
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson with mean `mean` (0 for a mean that is not positive and finite): multiplying
    /// uniforms below a mean of 10, Hormann's transformed rejection (PTRS) above.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if !(mean > 0.0 && mean.is_finite()) {
            return 0;
        }
        if mean < 10.0 {
            let limit = (-mean).exp();
            let mut k = 0;
            let mut p = self.uniform();
            while p > limit {
                k += 1;
                p *= self.uniform();
            }
            return k;
        }
        let log_mean = mean.ln();
        let b = 0.931 + 2.53 * mean.sqrt();
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k as u64;
            }
            if k.is_nan() || k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let accept = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            if accept <= -mean + k * log_mean - ln_factorial(k) {
                return k as u64;
            }
        }
    }
}

/// `ln k!` for a whole number `k >= 0`: exact products below 20, Stirling's series above
/// (error below 1e-12 there).
pub fn ln_factorial(k: f64) -> f64 {
    if k < 20.0 {
        let mut product = 1.0;
        let mut i = 2.0;
        while i <= k {
            product *= i;
            i += 1.0;
        }
        return product.ln();
    }
    let k2 = k * k;
    k * k.ln() - k + 0.5 * (std::f64::consts::TAU * k).ln() + 1.0 / (12.0 * k)
        - 1.0 / (360.0 * k * k2)
        + 1.0 / (1260.0 * k * k2 * k2)
}

// ---------------------------------------------------------------------------------------------
// Canaries

/// What a judge watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Errors per request.
    Errors,
    /// Requests slower than the SLO bucket.
    Latency,
}

impl Metric {
    fn rate_range(self) -> (f64, f64) {
        match self {
            Self::Errors => ERROR_RATE,
            Self::Latency => SLOW_RATE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Errors => "errors",
            Self::Latency => "latency",
        }
    }
}

/// A class of canaries: the metric judged and the canary's rate ratio (1 for good ones).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Class {
    /// The metric judged.
    pub metric: Metric,
    /// Canary rate over baseline rate.
    pub ratio: f64,
}

impl Class {
    /// Whether the canary is as good as the baseline.
    pub fn is_good(&self) -> bool {
        self.ratio == 1.0
    }

    fn label(&self) -> String {
        if self.is_good() {
            format!("good ({})", self.metric.name())
        } else {
            format!("{} {}x", self.metric.name(), self.ratio)
        }
    }
}

/// The classes of the benchmark: good canaries judged on either metric, error-rate ratios 1.5x
/// to 10x, latency (slow-request rate) ratios 2x and 5x.
pub fn classes() -> Vec<Class> {
    let mut all = vec![
        Class {
            metric: Metric::Errors,
            ratio: 1.0,
        },
        Class {
            metric: Metric::Latency,
            ratio: 1.0,
        },
    ];
    for ratio in [1.5, 2.0, 3.0, 5.0, 10.0] {
        all.push(Class {
            metric: Metric::Errors,
            ratio,
        });
    }
    for ratio in [2.0, 5.0] {
        all.push(Class {
            metric: Metric::Latency,
            ratio,
        });
    }
    all
}

/// One generated service and release.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Service {
    /// Peak load, requests per minute.
    pub peak_rpm: f64,
    /// Time of day at the canary's start, minutes.
    pub start_minute: f64,
    /// Nominal event rate per request of the baseline.
    pub rate: f64,
}

impl Service {
    fn draw(rng: &mut Rng, metric: Metric) -> Self {
        Self {
            peak_rpm: rng.log_uniform(PEAK_RPM),
            start_minute: rng.uniform() * 1440.0,
            rate: rng.log_uniform(metric.rate_range()),
        }
    }

    /// Requests per minute (both versions) at `minute` of the canary's life.
    pub fn rpm(&self, minute: f64) -> f64 {
        let day = std::f64::consts::TAU * (self.start_minute + minute) / 1440.0;
        self.peak_rpm * (0.55 + 0.45 * day.cos())
    }
}

/// The canary's share of requests at `minute` of its life.
pub fn share(minute: usize) -> f64 {
    let mut start: usize = 0;
    for (share, minutes) in STEPS {
        if minute < start.saturating_add(minutes) {
            return share;
        }
        start = start.saturating_add(minutes);
    }
    STEPS[STEPS.len() - 1].0
}

/// The fixed horizon of Kayenta's judge for `service`, in minutes (one sample per side per
/// minute): `kayenta::horizon_for_ratio(1.5, cv, 0.8)`, with `cv` the coefficient of variation
/// of the canary's per-minute event rate expected from the service's nominal load and rate
/// (`cv^2 = mean over the minutes of 1 / expected canary events + (e^(sigma^2) - 1)` for the
/// common noise), over the horizon itself (found by iterating from [`MIN_LIFE_MINUTES`]);
/// at most [`MAX_LIFE_MINUTES`].
pub fn kayenta_horizon(service: &Service) -> usize {
    let noise = (COMMON_NOISE_SIGMA * COMMON_NOISE_SIGMA).exp_m1();
    let mut horizon = MIN_LIFE_MINUTES;
    for _ in 0..50 {
        let inverse_events: f64 = (0..horizon)
            .map(|m| 1.0 / (service.rpm(m as f64 + 0.5) * share(m) * service.rate))
            .sum::<f64>()
            / horizon as f64;
        let cv = (inverse_events + noise).sqrt();
        let next = kayenta::horizon_for_ratio(HORIZON_RATIO, cv, HORIZON_POWER)
            .map_or(MAX_LIFE_MINUTES, |n| n.clamp(1, MAX_LIFE_MINUTES));
        if next == horizon {
            break;
        }
        horizon = next;
    }
    horizon
}

/// One generated canary: its service, horizon and counts per scrape.
#[derive(Debug, Clone)]
pub struct Canary {
    /// The service.
    pub service: Service,
    /// Kayenta's fixed horizon, minutes.
    pub horizon: usize,
    /// Counts per scrape, over `max(MIN_LIFE_MINUTES, horizon)` minutes.
    pub scrapes: Vec<Interval>,
}

/// Generates one canary of `class`.
pub fn generate(rng: &mut Rng, class: Class) -> Canary {
    let service = Service::draw(rng, class.metric);
    let horizon = kayenta_horizon(&service);
    let life = horizon.max(MIN_LIFE_MINUTES);
    let mut scrapes = Vec::with_capacity(life * SCRAPES_PER_MINUTE);
    for minute in 0..life {
        let q = share(minute);
        let noise = (COMMON_NOISE_SIGMA * rng.normal()
            - COMMON_NOISE_SIGMA * COMMON_NOISE_SIGMA / 2.0)
            .exp();
        let baseline_rate = (service.rate * noise).min(1.0);
        let canary_rate = (service.rate * noise * class.ratio).min(1.0);
        for s in 0..SCRAPES_PER_MINUTE {
            let t = minute as f64 + (s as f64 + 0.5) / SCRAPES_PER_MINUTE as f64;
            let requests = service.rpm(t) / SCRAPES_PER_MINUTE as f64;
            let canary_requests = rng.poisson(requests * q);
            let baseline_requests = rng.poisson(requests * (1.0 - q));
            scrapes.push(Interval {
                canary_events: rng
                    .poisson(canary_requests as f64 * canary_rate)
                    .min(canary_requests),
                baseline_events: rng
                    .poisson(baseline_requests as f64 * baseline_rate)
                    .min(baseline_requests),
                canary_requests,
                baseline_requests,
            });
        }
    }
    Canary {
        service,
        horizon,
        scrapes,
    }
}

// ---------------------------------------------------------------------------------------------
// Judges

/// Per-minute sums of the scrapes.
fn minutes(scrapes: &[Interval]) -> impl Iterator<Item = Interval> + '_ {
    scrapes.chunks(SCRAPES_PER_MINUTE).map(|chunk| {
        chunk.iter().fold(Interval::default(), |a, s| Interval {
            canary_events: a.canary_events + s.canary_events,
            baseline_events: a.baseline_events + s.baseline_events,
            canary_requests: a.canary_requests + s.canary_requests,
            baseline_requests: a.baseline_requests + s.baseline_requests,
        })
    })
}

/// Each minute's canary rate over the service's nominal rate (none without canary requests).
fn canary_ratios(canary: &Canary) -> impl Iterator<Item = Option<f64>> + '_ {
    minutes(&canary.scrapes).map(|m| {
        (m.canary_requests > 0)
            .then(|| m.canary_events as f64 / m.canary_requests as f64 / canary.service.rate)
    })
}

/// (a) The threshold rule: minutes from the start to the rollback (the `FAILURE_LIMIT + 1`-th
/// minute whose canary rate exceeds `factor x` the nominal rate), if any.
pub fn threshold_rule(canary: &Canary, factor: f64) -> Option<f64> {
    let mut failed = 0;
    for (minute, ratio) in canary_ratios(canary).enumerate() {
        if ratio.is_some_and(|r| r > factor) {
            failed += 1;
            if failed > FAILURE_LIMIT {
                return Some((minute + 1) as f64);
            }
        }
    }
    None
}

/// The smallest factor at which the threshold rule leaves `canary` alone: the
/// `FAILURE_LIMIT + 1`-th largest per-minute ratio (0 when fewer minutes have data).
fn tripping_factor(canary: &Canary) -> f64 {
    let mut ratios: Vec<f64> = canary_ratios(canary).flatten().collect();
    ratios.sort_by(|a, b| b.total_cmp(a));
    ratios.get(FAILURE_LIMIT).copied().unwrap_or(0.0)
}

/// The threshold rule's factor: the smallest multiple of [`FACTOR_STEP`] (at least 1) at which
/// at most [`TARGET_FALSE_ROLLBACKS`] of `good` canaries would be rolled back.
pub fn calibrate_factor(good: &[Canary]) -> f64 {
    let mut tripping: Vec<f64> = good.iter().map(tripping_factor).collect();
    tripping.sort_by(|a, b| b.total_cmp(a));
    // The rule rolls back a canary iff factor < its tripping factor: allow `allowed` of them.
    let allowed = (TARGET_FALSE_ROLLBACKS * good.len() as f64).floor() as usize;
    let bound = tripping.get(allowed).copied().unwrap_or(0.0);
    ((bound / FACTOR_STEP).ceil() * FACTOR_STEP).max(1.0)
}

/// (b) Kayenta's fixed-horizon judge: minutes to the rollback (the horizon) when the canary's
/// per-minute rates over the horizon classify High.
pub fn kayenta_rule(canary: &Canary) -> Option<f64> {
    let mut config = MetricConfig::new("rate");
    config.direction = kayenta::Direction::Increase;
    let rate = |events: u64, requests: u64| {
        if requests == 0 {
            f64::NAN
        } else {
            events as f64 / requests as f64
        }
    };
    let (baseline, canary_rates): (Vec<f64>, Vec<f64>) = minutes(&canary.scrapes)
        .take(canary.horizon)
        .map(|m| {
            (
                rate(m.baseline_events, m.baseline_requests),
                rate(m.canary_events, m.canary_requests),
            )
        })
        .unzip();
    let verdict = kayenta::classify(&config, &baseline, &canary_rates);
    (verdict.kind == Kind::High).then_some(canary.horizon as f64)
}

/// (c) The sequential judge: minutes to the first rejection, if any.
pub fn sequential_rule(canary: &Canary, settings: &Settings) -> Option<f64> {
    let mut state = State::default();
    for (i, interval) in canary.scrapes.iter().enumerate() {
        // The settings are valid constants: an error here would be a bug of this benchmark.
        let verdict = state
            .update(settings, *interval)
            .unwrap_or_else(|e| panic!("sequential judge: {e}"));
        if verdict.decision == Decision::Reject {
            return Some((i + 1) as f64 / SCRAPES_PER_MINUTE as f64);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The benchmark

/// How many canaries, and the seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Good canaries per metric.
    pub good: usize,
    /// Bad canaries per ratio.
    pub bad: usize,
    /// Good canaries per metric the threshold rule is calibrated on (another seed).
    pub calibration: usize,
    /// Seed of the judged canaries.
    pub seed: u64,
    /// Seed of the calibration canaries.
    pub calibration_seed: u64,
}

impl Config {
    /// The full run: 2000 good canaries per metric, 500 per bad ratio, 2000 per metric to
    /// calibrate on.
    pub fn full() -> Self {
        Self {
            good: 2000,
            bad: 500,
            calibration: 2000,
            seed: 16,
            calibration_seed: 1_600,
        }
    }

    /// A short run: 200 good canaries per metric, 50 per bad ratio, 400 to calibrate on.
    pub fn quick() -> Self {
        Self {
            good: 200,
            bad: 50,
            calibration: 400,
            ..Self::full()
        }
    }
}

/// What one judge did with one class.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Canaries judged.
    pub canaries: usize,
    /// Minutes to rollback per canary, sorted, `f64::INFINITY` for none.
    pub times: Vec<f64>,
}

impl Outcome {
    fn new(mut times: Vec<f64>) -> Self {
        times.sort_by(f64::total_cmp);
        Self {
            canaries: times.len(),
            times,
        }
    }

    /// Canaries rolled back.
    pub fn rolled_back(&self) -> usize {
        self.times.iter().filter(|t| t.is_finite()).count()
    }

    /// The fraction rolled back.
    pub fn rate(&self) -> f64 {
        self.rolled_back() as f64 / self.canaries.max(1) as f64
    }

    /// Nearest-rank quantile of the time to rollback over all canaries of the class (infinite
    /// when fewer than that fraction were rolled back).
    pub fn quantile(&self, q: f64) -> f64 {
        let rank = (q * self.canaries as f64).ceil().max(1.0) as usize;
        self.times.get(rank - 1).copied().unwrap_or(f64::INFINITY)
    }
}

/// One class judged by the three judges.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The class.
    pub class: Class,
    /// (a) the threshold rule.
    pub threshold: Outcome,
    /// (b) Kayenta's fixed-horizon judge.
    pub kayenta: Outcome,
    /// (c) the sequential judge.
    pub sequential: Outcome,
    /// Median of Kayenta's horizon over the class, minutes.
    pub median_horizon: f64,
}

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The run's configuration.
    pub config: Config,
    /// The threshold rule's factor for the errors metric.
    pub errors_factor: f64,
    /// The threshold rule's factor for the latency metric.
    pub latency_factor: f64,
    /// One row per class, in the order of [`classes`].
    pub rows: Vec<Row>,
}

/// Runs the benchmark on `classes` (see [`classes`]).
pub fn run(config: Config, classes: &[Class]) -> Report {
    let factor_for = |metric: Metric| {
        let mut rng = Rng::new(config.calibration_seed ^ metric as u64);
        let good: Vec<Canary> = (0..config.calibration)
            .map(|_| generate(&mut rng, Class { metric, ratio: 1.0 }))
            .collect();
        calibrate_factor(&good)
    };
    let errors_factor = factor_for(Metric::Errors);
    let latency_factor = factor_for(Metric::Latency);
    let mut rng = Rng::new(config.seed);
    let rows = classes
        .iter()
        .map(|&class| {
            let n = if class.is_good() {
                config.good
            } else {
                config.bad
            };
            let factor = match class.metric {
                Metric::Errors => errors_factor,
                Metric::Latency => latency_factor,
            };
            let mut times = (Vec::new(), Vec::new(), Vec::new());
            let mut horizons = Vec::with_capacity(n);
            for _ in 0..n {
                let canary = generate(&mut rng, class);
                let never = f64::INFINITY;
                times
                    .0
                    .push(threshold_rule(&canary, factor).unwrap_or(never));
                times.1.push(kayenta_rule(&canary).unwrap_or(never));
                times
                    .2
                    .push(sequential_rule(&canary, &SEQUENTIAL).unwrap_or(never));
                horizons.push(canary.horizon as f64);
            }
            Row {
                class,
                threshold: Outcome::new(times.0),
                kayenta: Outcome::new(times.1),
                sequential: Outcome::new(times.2),
                median_horizon: Outcome::new(horizons).quantile(0.5),
            }
        })
        .collect();
    Report {
        config,
        errors_factor,
        latency_factor,
        rows,
    }
}

fn minutes_text(t: f64) -> String {
    if t.is_finite() {
        format!("{t:.2}")
    } else {
        "never".to_string()
    }
}

fn times_text(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}x")
    } else {
        "-".to_string()
    }
}

fn cell(row: &Row, outcome: &Outcome) -> String {
    let percent = 100.0 * outcome.rate();
    if row.class.is_good() {
        format!("{percent:.2}% rolled back")
    } else {
        format!(
            "{percent:.1}%; {} / {}",
            minutes_text(outcome.quantile(0.5)),
            minutes_text(outcome.quantile(0.9))
        )
    }
}

/// The goal for one class with a ratio of 3 or more: the sequential judge's median time
/// to rollback against the two others'.
#[derive(Debug, Clone, PartialEq)]
pub struct Speedup {
    /// The class.
    pub class: Class,
    /// Median minutes of (a), (b), (c).
    pub medians: [f64; 3],
}

impl Speedup {
    /// (a) median over (c) median (infinite when (c) never rolls back half).
    pub fn over_threshold(&self) -> f64 {
        self.medians[0] / self.medians[2]
    }

    /// (b) median over (c) median.
    pub fn over_kayenta(&self) -> f64 {
        self.medians[1] / self.medians[2]
    }

    /// At least 5x shorter than (a) and 2x shorter than (b).
    pub fn meets(&self) -> bool {
        self.medians[2].is_finite() && self.over_threshold() >= 5.0 && self.over_kayenta() >= 2.0
    }
}

impl Report {
    /// The largest false-rollback rate of the sequential judge over the good classes.
    pub fn sequential_false_rollbacks(&self) -> f64 {
        self.rows
            .iter()
            .filter(|r| r.class.is_good())
            .map(|r| r.sequential.rate())
            .fold(0.0, f64::max)
    }

    /// The speedups of the classes with a ratio of 3 or more.
    pub fn speedups(&self) -> Vec<Speedup> {
        self.rows
            .iter()
            .filter(|r| r.class.ratio >= 3.0)
            .map(|r| Speedup {
                class: r.class,
                medians: [
                    r.threshold.quantile(0.5),
                    r.kayenta.quantile(0.5),
                    r.sequential.quantile(0.5),
                ],
            })
            .collect()
    }

    /// Whether the goal holds: sequential false rollbacks <= 1% and every speedup met.
    pub fn goal_met(&self) -> bool {
        self.sequential_false_rollbacks() <= TARGET_FALSE_ROLLBACKS
            && self.speedups().iter().all(Speedup::meets)
    }

    /// The table (markdown) and the goal's check line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        out.push_str(&format!(
            "{} good canaries per metric, {} per bad ratio (seed {}); scrapes every {} s; \
             shares 5% -> 25% -> 50% (10 min each, then 50% to the end of life, {}-{} min)\n\n",
            c.good, c.bad, c.seed, SCRAPE_SECONDS, MIN_LIFE_MINUTES, MAX_LIFE_MINUTES
        ));
        out.push_str(&format!(
            "(a) threshold: 1-min canary rate > factor x nominal rate, failureLimit {FAILURE_LIMIT}; \
             factor {} (errors), {} (latency), calibrated to <= {}% false rollbacks on {} other \
             good canaries per metric (seed {})\n",
            self.errors_factor,
            self.latency_factor,
            TARGET_FALSE_ROLLBACKS * 100.0,
            c.calibration,
            c.calibration_seed
        ));
        out.push_str(&format!(
            "(b) Kayenta: Mann-Whitney on per-minute rates, direction increase, one look at the \
             horizon for {}% power at {HORIZON_RATIO}x (capped at {MAX_LIFE_MINUTES} min)\n",
            HORIZON_POWER * 100.0
        ));
        out.push_str(&format!(
            "(c) sequential: alpha {}, priorConcentration {}, direction increase, a look every \
             scrape\n\n",
            SEQUENTIAL.alpha, SEQUENTIAL.prior_concentration
        ));
        out.push_str(
            "| canaries | (a) threshold | (b) Kayenta | (c) sequential | Kayenta horizon, median |\n\
             | --- | --- | --- | --- | --- |\n",
        );
        for row in &self.rows {
            let n = if row.class.is_good() { c.good } else { c.bad };
            out.push_str(&format!(
                "| {} ({n}) | {} | {} | {} | {} min |\n",
                row.class.label(),
                cell(row, &row.threshold),
                cell(row, &row.kayenta),
                cell(row, &row.sequential),
                row.median_horizon
            ));
        }
        out.push_str(
            "\nBad canaries: rolled back; median / p90 minutes from the canary's start to the \
             rollback (over all canaries of the row: `never` when fewer than half / 90% were \
             rolled back). Speedup `-`: the other judge's median is `never`.\n\n",
        );
        let speedups: Vec<String> = self
            .speedups()
            .iter()
            .map(|s| {
                format!(
                    "{}: {} vs (b) {} ({}) vs (a) {} ({})",
                    s.class.label(),
                    minutes_text(s.medians[2]),
                    minutes_text(s.medians[1]),
                    times_text(s.over_kayenta()),
                    minutes_text(s.medians[0]),
                    times_text(s.over_threshold())
                )
            })
            .collect();
        out.push_str(&format!(
            "Goal (<= 1% false rollbacks; median time to rollback >= 2x shorter than (b) and >= 5x \
             shorter than (a) for ratios >= 3x): {} — (c) false rollbacks {:.2}%; medians (c) {}\n",
            if self.goal_met() { "PASS" } else { "MISS" },
            100.0 * self.sequential_false_rollbacks(),
            speedups.join("; ")
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(mean: f64, n: usize) -> (f64, f64) {
        let mut rng = Rng::new(7);
        let xs: Vec<f64> = (0..n).map(|_| rng.poisson(mean) as f64).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        (m, v)
    }

    #[test]
    fn poisson_samples_have_the_mean_and_variance_of_a_poisson() {
        for mean in [0.3, 4.0, 12.0, 150.0, 5_000.0] {
            let n = 40_000;
            let (m, v) = moments(mean, n);
            // Five standard errors of the mean; the variance within 5%.
            let se = (mean / n as f64).sqrt();
            assert!((m - mean).abs() < 5.0 * se, "mean {mean}: sample mean {m}");
            assert!((v / mean - 1.0).abs() < 0.05, "mean {mean}: variance {v}");
        }
    }

    #[test]
    fn poisson_frequencies_follow_the_pmf_in_the_rejection_range() {
        // Mean 15: the transformed-rejection branch. Each count's frequency within 5 standard
        // errors of its probability.
        let (mean, n) = (15.0, 100_000);
        let mut rng = Rng::new(11);
        let mut counts = vec![0usize; 60];
        for _ in 0..n {
            let k = rng.poisson(mean) as usize;
            if let Some(c) = counts.get_mut(k) {
                *c += 1;
            }
        }
        for (k, &c) in counts.iter().enumerate() {
            let p = (-mean + k as f64 * f64::ln(mean) - ln_factorial(k as f64)).exp();
            let se = (p * (1.0 - p) / n as f64).sqrt();
            let f = c as f64 / n as f64;
            assert!((f - p).abs() <= 5.0 * se + 1e-6, "k {k}: {f} vs {p}");
        }
    }

    #[test]
    fn ln_factorial_is_continuous_across_its_two_forms() {
        let sum_of_logs = |k: u32| (2..=k).map(|i| f64::from(i).ln()).sum::<f64>();
        for k in [0, 1, 9, 19, 20, 21, 40, 400] {
            let got = ln_factorial(f64::from(k));
            let want = sum_of_logs(k);
            assert!(
                (got - want).abs() < 1e-12 * want.max(1.0),
                "{k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn shares_step_from_five_to_fifty_percent() {
        assert_eq!(share(0), 0.05);
        assert_eq!(share(9), 0.05);
        assert_eq!(share(10), 0.25);
        assert_eq!(share(20), 0.5);
        assert_eq!(share(200), 0.5);
    }

    #[test]
    fn the_threshold_rule_fails_after_failure_limit_plus_one_failing_minutes() {
        let service = Service {
            peak_rpm: 1000.0,
            start_minute: 0.0,
            rate: 0.01,
        };
        // 100 canary requests a minute; failing minutes (5 errors: 5x) at minutes 2, 5, 6, 9.
        let scrapes = (0..12)
            .flat_map(|minute| {
                let errors = if [2, 5, 6, 9].contains(&minute) { 5 } else { 1 };
                let mut minute = vec![Interval::default(); SCRAPES_PER_MINUTE];
                minute[0] = Interval {
                    canary_events: errors,
                    baseline_events: 9,
                    canary_requests: 100,
                    baseline_requests: 900,
                };
                minute
            })
            .collect();
        let canary = Canary {
            service,
            horizon: 30,
            scrapes,
        };
        assert_eq!(threshold_rule(&canary, 2.0), Some(10.0));
        assert_eq!(threshold_rule(&canary, 5.0), None);
        assert_eq!(tripping_factor(&canary), 5.0);
    }

    #[test]
    fn calibration_allows_the_target_share_of_false_rollbacks() {
        let mut rng = Rng::new(3);
        let good: Vec<Canary> = (0..300)
            .map(|_| {
                generate(
                    &mut rng,
                    Class {
                        metric: Metric::Errors,
                        ratio: 1.0,
                    },
                )
            })
            .collect();
        let factor = calibrate_factor(&good);
        let tripped = |f: f64| {
            good.iter()
                .filter(|c| threshold_rule(c, f).is_some())
                .count()
        };
        assert!(tripped(factor) <= 3, "{} at {factor}", tripped(factor));
        assert!(
            factor == 1.0 || tripped(factor - FACTOR_STEP) > 3,
            "{factor} is not the smallest"
        );
    }
}
