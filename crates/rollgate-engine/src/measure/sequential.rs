//! `sequential` metrics: the anytime-valid judge of [`crate::judge::sequential`] as a metric
//! kind of AnalysisTemplates (a rollgate extension).
//!
//! A sequential metric reads four counters per measurement: its `events` and `requests` queries,
//! each rendered once for the canary (the run's `args`) and once for the baseline (the run's
//! `baselineArgs` over its `args`: every argument resolved from `podTemplateHashValue: Latest`
//! takes the stable hash there). The controller performs the four instant queries and hands
//! their readings to [`super::record`] as [`super::Outcome::Counters`]; the test's state lives
//! in the metric's result (`status.metricResults[].sequential`), so a restarted controller
//! continues the same test.
//!
//! Each measurement is Successful while the test continues and Failed the moment it rejects;
//! the metric fails at that first Failed measurement (`failureLimit` does not apply: a test
//! stops at its first rejection), and passes once `count` measurements were taken without one.
//!
//! A query that returns no series is read per series, with what the saved state remembers of
//! it (`seen`):
//! - a series that has never returned a value in this run reads as 0: a counter not created
//!   yet (an error counter appears with the first error), so no events or no traffic so far;
//!   the test gets no evidence from it;
//! - a series that returned a value before is an Error measurement that leaves the test as it
//!   was: a scrape gap must not turn into one huge increase when the series comes back.
//!
//! Several series, a reading that is not a whole number, or a provider error is an Error
//! measurement that leaves the test as it was too (`consecutiveErrorLimit` applies): an
//! unreachable Prometheus never fails the test by itself.
//!
//! A metric without evidence never passes by itself: when it reaches `count` without a
//! rejection and the test counted no request of the canary in the whole run, its last
//! measurement takes the metric's `noDataPolicy` (Inconclusive by default: the rollout pauses
//! for a human; Fail; Pass) instead of Successful.

use std::collections::BTreeMap;

use rollgate_api::{MetricResult, SequentialMetric};
use serde::{Deserialize, Serialize};

use crate::judge::sequential::{self as judge, Decision, Direction, Readings, Settings, Verdict};

use super::args::substitute_plain;
use super::condition::ResultShape;
use super::promql;
use super::provider::PrometheusQuery;
use super::value::{MetricValue, number};

/// A sequential metric's settings, parsed (its queries still hold their placeholders).
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialSpec {
    /// The events counter query.
    pub events: String,
    /// The requests counter query.
    pub requests: String,
    /// The judge's settings.
    pub settings: Settings,
}

/// Which of the four counter queries of a sequential metric.
pub use crate::judge::sequential::Series as CounterSeries;

/// The four rendered counter queries of a due sequential measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterQueries {
    /// The canary's events counter.
    pub canary_events: PrometheusQuery,
    /// The canary's requests counter.
    pub canary_requests: PrometheusQuery,
    /// The baseline's events counter.
    pub baseline_events: PrometheusQuery,
    /// The baseline's requests counter.
    pub baseline_requests: PrometheusQuery,
}

impl CounterQueries {
    /// The four queries with the series each reads, in a fixed order.
    pub fn all(&self) -> [(CounterSeries, &PrometheusQuery); 4] {
        [
            (CounterSeries::CanaryEvents, &self.canary_events),
            (CounterSeries::CanaryRequests, &self.canary_requests),
            (CounterSeries::BaselineEvents, &self.baseline_events),
            (CounterSeries::BaselineRequests, &self.baseline_requests),
        ]
    }
}

/// Parses `sequential` (`field` is its path, e.g. `metrics[0].sequential`): both queries
/// required, valid PromQL returning an instant value and selecting the revision through an
/// `{{args.NAME}}` placeholder; `alpha` in (0, 1); `priorConcentration` in (0, 1000];
/// `direction` one of increase, decrease, either; `minEvents` >= 0.
pub fn sequential_spec(field: &str, s: &SequentialMetric) -> Result<SequentialSpec, Vec<String>> {
    let mut problems = Vec::new();
    for (name, query) in [("events", &s.events), ("requests", &s.requests)] {
        let f = format!("{field}.{name}");
        if query.trim().is_empty() {
            problems.push(format!(
                "{f}: required, expected a PromQL counter query such as \
                 sum(http_requests_total{{pod_template_hash=\"{{{{args.hash}}}}\"}})"
            ));
            continue;
        }
        if let Err(e) = promql::check(query) {
            problems.push(format!("{f}: {e}"));
            continue;
        }
        if promql::shape(query) == ResultShape::Matrix {
            problems.push(format!(
                "{f}: expected a query returning one number (a scalar or a one-sample vector), \
                 got a range vector"
            ));
        }
        let mut placeholders = 0;
        let _ = substitute_plain(query, |_| {
            placeholders += 1;
            Ok(String::new())
        });
        if placeholders == 0 {
            problems.push(format!(
                "{f}: expected an {{{{args.NAME}}}} placeholder that selects the revision (e.g. \
                 pod_template_hash=\"{{{{args.hash}}}}\" with podTemplateHashValue: Latest), \
                 found none: the canary and the baseline would read the same counter"
            ));
        }
    }
    let defaults = Settings::default();
    let direction = match s.direction.as_deref() {
        None => Some(Direction::Increase),
        Some("increase") => Some(Direction::Increase),
        Some("decrease") => Some(Direction::Decrease),
        Some("either") => Some(Direction::Either),
        Some(other) => {
            problems.push(format!(
                "{field}.direction: expected increase, decrease or either, got \"{other}\""
            ));
            None
        }
    };
    let min_events = match s.min_events {
        None => Some(0),
        Some(n) => match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!(
                    "{field}.minEvents: expected a number of events >= 0, got {n}"
                ));
                None
            }
        },
    };
    let settings = Settings {
        alpha: s.alpha.unwrap_or(defaults.alpha),
        prior_concentration: s
            .prior_concentration
            .unwrap_or(defaults.prior_concentration),
        direction: direction.unwrap_or_default(),
        min_events: min_events.unwrap_or(0),
    };
    // The judge's errors start with the field's name (`alpha: ...`).
    if let Err(e) = Settings::validate(&Settings {
        prior_concentration: defaults.prior_concentration,
        ..settings
    }) {
        problems.push(format!("{field}.{e}"));
    }
    if let Err(e) = Settings::validate(&Settings {
        alpha: defaults.alpha,
        ..settings
    }) {
        problems.push(format!("{field}.{e}"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SequentialSpec {
        events: s.events.clone(),
        requests: s.requests.clone(),
        settings,
    })
}

/// The four counter queries of a due measurement: `provider` (address, headers, credentials)
/// with its query replaced by `events` and `requests`, each rendered with the canary's
/// arguments `args` and the baseline's (`baseline` over `args`). The baseline's rendering must
/// differ from the canary's, else the two would read the same counters.
pub fn render_counters(
    provider: &PrometheusQuery,
    spec: &SequentialSpec,
    args: &BTreeMap<String, String>,
    baseline: &BTreeMap<String, String>,
) -> Result<CounterQueries, String> {
    let mut baseline_args = args.clone();
    baseline_args.extend(baseline.iter().map(|(k, v)| (k.clone(), v.clone())));
    let render = |query: &str, args: &BTreeMap<String, String>, what: &str| {
        let q = PrometheusQuery {
            query: query.to_string(),
            ..provider.clone()
        };
        q.render(args)
            .map_err(|e| format!("sequential.{what}: {e}"))
    };
    let out = CounterQueries {
        canary_events: render(&spec.events, args, "events")?,
        canary_requests: render(&spec.requests, args, "requests")?,
        baseline_events: render(&spec.events, &baseline_args, "events")?,
        baseline_requests: render(&spec.requests, &baseline_args, "requests")?,
    };
    if out.canary_events.query == out.baseline_events.query
        || out.canary_requests.query == out.baseline_requests.query
    {
        return Err(format!(
            "sequential: the baseline's queries are the canary's (\"{}\"): the run's \
             baselineArgs give no argument of the queries another value, expected an argument \
             resolved from podTemplateHashValue: Latest in both events and requests",
            out.canary_events.query
        ));
    }
    Ok(out)
}

/// The four counter readings of one measurement of a sequential metric, each read with
/// [`counter_reading`]: `None` where the query returned no series (what that means depends on
/// whether the series returned a value earlier in the run; see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CounterReadings {
    /// The canary's events counter.
    pub canary_events: Option<f64>,
    /// The canary's requests counter.
    pub canary_requests: Option<f64>,
    /// The baseline's events counter.
    pub baseline_events: Option<f64>,
    /// The baseline's requests counter.
    pub baseline_requests: Option<f64>,
}

impl CounterReadings {
    /// The reading of `series`.
    pub fn get(&self, series: CounterSeries) -> Option<f64> {
        match series {
            CounterSeries::CanaryEvents => self.canary_events,
            CounterSeries::CanaryRequests => self.canary_requests,
            CounterSeries::BaselineEvents => self.baseline_events,
            CounterSeries::BaselineRequests => self.baseline_requests,
        }
    }

    /// Sets the reading of `series`.
    pub fn set(&mut self, series: CounterSeries, reading: Option<f64>) {
        match series {
            CounterSeries::CanaryEvents => self.canary_events = reading,
            CounterSeries::CanaryRequests => self.canary_requests = reading,
            CounterSeries::BaselineEvents => self.baseline_events = reading,
            CounterSeries::BaselineRequests => self.baseline_requests = reading,
        }
    }
}

impl From<Readings> for CounterReadings {
    /// Four readings, every query with a value.
    fn from(r: Readings) -> Self {
        Self {
            canary_events: Some(r.canary_events),
            canary_requests: Some(r.canary_requests),
            baseline_events: Some(r.baseline_events),
            baseline_requests: Some(r.baseline_requests),
        }
    }
}

/// The four series in a fixed order.
const SERIES: [CounterSeries; 4] = [
    CounterSeries::CanaryEvents,
    CounterSeries::CanaryRequests,
    CounterSeries::BaselineEvents,
    CounterSeries::BaselineRequests,
];

/// The counter reading of one answer: a scalar, or a vector of exactly one sample; `None`
/// when the query returned no series (an empty vector). The error names what came back (the
/// controller adds the query).
pub fn counter_reading(value: &MetricValue) -> Result<Option<f64>, String> {
    match value {
        MetricValue::Scalar(v) => Ok(Some(*v)),
        MetricValue::Vector(samples) if samples.len() == 1 => Ok(Some(samples[0].value)),
        MetricValue::Vector(samples) if samples.is_empty() => Ok(None),
        MetricValue::Vector(samples) => Err(format!(
            "expected one counter value, the query returned {} series (aggregate them, e.g. \
             with sum(...))",
            samples.len()
        )),
        MetricValue::Matrix(_) => {
            Err("expected one counter value, the query returned a range matrix".to_string())
        }
    }
}

/// A measurement of a sequential metric, judged.
pub(crate) struct Judged {
    /// Successful (continue), Failed (reject) or Error.
    pub decision: Result<Verdict, String>,
    /// The state to store (unchanged on an error).
    pub state: Option<serde_json::Value>,
}

/// Which of the four series returned a value in this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Seen {
    canary_events: bool,
    canary_requests: bool,
    baseline_events: bool,
    baseline_requests: bool,
}

impl Seen {
    fn get(&self, series: CounterSeries) -> bool {
        match series {
            CounterSeries::CanaryEvents => self.canary_events,
            CounterSeries::CanaryRequests => self.canary_requests,
            CounterSeries::BaselineEvents => self.baseline_events,
            CounterSeries::BaselineRequests => self.baseline_requests,
        }
    }

    fn set(&mut self, series: CounterSeries) {
        match series {
            CounterSeries::CanaryEvents => self.canary_events = true,
            CounterSeries::CanaryRequests => self.canary_requests = true,
            CounterSeries::BaselineEvents => self.baseline_events = true,
            CounterSeries::BaselineRequests => self.baseline_requests = true,
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a metric's result keeps of its test (`status.metricResults[].sequential`): the
/// judge's state, and which series returned a value in this run.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    #[serde(flatten)]
    test: judge::State,
    #[serde(default, skip_serializing_if = "Seen::is_empty")]
    seen: Seen,
}

/// Feeds one measurement's readings to the metric's test, continuing from `result.sequential`.
/// A series without data reads as 0 until it first returns a value; after that, its missing
/// is an error (see the module documentation).
pub(crate) fn observe(
    spec: &SequentialSpec,
    result: &MetricResult,
    readings: CounterReadings,
) -> Judged {
    let unchanged = |e: String| Judged {
        decision: Err(e),
        state: result.sequential.clone(),
    };
    let mut saved = match &result.sequential {
        None => Saved::default(),
        Some(stored) => match serde_json::from_value::<Saved>(stored.clone()) {
            Ok(saved) => saved,
            Err(e) => {
                return unchanged(format!(
                    "status.metricResults[{}].sequential: expected the state of a sequential \
                     test as rollgate writes it: {e}",
                    result.name
                ));
            }
        },
    };
    let mut seen = saved.seen;
    let mut gaps = Vec::new();
    let mut values = [0.0; 4];
    for (slot, series) in values.iter_mut().zip(SERIES) {
        match readings.get(series) {
            Some(v) => {
                *slot = v;
                seen.set(series);
            }
            None if saved.seen.get(series) => gaps.push(series.to_string()),
            // Not created yet: no events (or no requests) so far.
            None => *slot = 0.0,
        }
    }
    if !gaps.is_empty() {
        return unchanged(format!(
            "{}: no data, though the query returned a value earlier in this run (a scrape gap, \
             or the series went away); expected one counter value; the test is left as it was",
            gaps.join(", ")
        ));
    }
    let [
        canary_events,
        canary_requests,
        baseline_events,
        baseline_requests,
    ] = values;
    let readings = Readings {
        canary_events,
        canary_requests,
        baseline_events,
        baseline_requests,
    };
    match saved.test.observe(&spec.settings, readings) {
        Ok(verdict) => {
            saved.seen = seen;
            Judged {
                decision: Ok(verdict),
                state: serde_json::to_value(&saved).ok(),
            }
        }
        Err(e) => unchanged(e.to_string()),
    }
}

/// Whether a test that ends now ends without any evidence: it counted no request of the
/// canary in the whole run (intervals in which either version had no requests do not count).
pub(crate) fn without_evidence(v: &Verdict) -> bool {
    v.canary_requests == 0
}

/// Why a test that ended without evidence takes the metric's `noDataPolicy`.
pub(crate) fn no_evidence(measurements: i32, policy: &str) -> String {
    format!(
        "no evidence: the test counted no request of the canary in {measurements} \
         measurements, so noDataPolicy {policy} decides"
    )
}

/// A number for a message or a status: 4 decimals, or scientific notation when very large
/// or very small.
pub(crate) fn figure(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:.3e}")
    } else {
        number(v)
    }
}

/// The measurement's metadata: cumulative counts, e-value, p-value and rate ratio.
pub(crate) fn metadata(v: &Verdict) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = [
        ("canaryEvents", v.canary_events.to_string()),
        ("canaryRequests", v.canary_requests.to_string()),
        ("baselineEvents", v.baseline_events.to_string()),
        ("baselineRequests", v.baseline_requests.to_string()),
        ("expectedCanaryEvents", figure(v.expected_canary_events)),
        ("eValue", figure(v.e_value)),
        ("pValue", figure(v.p_value)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(r) = v.rate_ratio {
        m.insert("rateRatio".to_string(), figure(r));
    }
    m
}

/// Why a measurement failed the test: e-value, threshold, ratio and counts.
pub(crate) fn rejection(spec: &SequentialSpec, v: &Verdict) -> String {
    debug_assert_eq!(v.decision, Decision::Reject);
    let ratio = v.rate_ratio.map_or_else(|| "undefined".to_string(), figure);
    format!(
        "the canary has {} than its share of requests explains: e-value {} >= 1/alpha {} \
         (p-value {}), rate ratio {ratio}; canary {} events in {} requests, baseline {} events \
         in {} requests ({} canary events expected)",
        match spec.settings.direction {
            Direction::Increase => "more events",
            Direction::Decrease => "fewer events",
            Direction::Either => "more or fewer events",
        },
        figure(v.e_value),
        figure(1.0 / spec.settings.alpha),
        figure(v.p_value),
        v.canary_events,
        v.canary_requests,
        v.baseline_events,
        v.baseline_requests,
        figure(v.expected_canary_events),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_short() {
        assert_eq!(figure(1.0), "1");
        assert_eq!(figure(142.123456), "142.1235");
        assert_eq!(figure(3.2e12), "3.200e12");
        assert_eq!(figure(0.00001), "1.000e-5");
        assert_eq!(figure(0.0), "0");
    }

    #[test]
    fn a_reading_is_one_number() {
        use super::super::value::Sample;
        let sample = |v| Sample {
            labels: BTreeMap::new(),
            value: v,
        };
        assert_eq!(counter_reading(&MetricValue::Scalar(3.0)), Ok(Some(3.0)));
        assert_eq!(
            counter_reading(&MetricValue::Vector(vec![sample(7.0)])),
            Ok(Some(7.0))
        );
        assert_eq!(counter_reading(&MetricValue::Vector(vec![])), Ok(None));
        assert!(
            counter_reading(&MetricValue::Vector(vec![sample(1.0), sample(2.0)]))
                .is_err_and(|e| e.contains("2 series"))
        );
        assert!(counter_reading(&MetricValue::Matrix(vec![])).is_err());
    }
}
