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
//! A reading that cannot be used (no data, several series, not a whole number) or a provider
//! error is an Error measurement that leaves the test as it was (`consecutiveErrorLimit`
//! applies): an unreachable Prometheus never fails the test by itself.

use std::collections::BTreeMap;

use rollgate_api::{MetricResult, SequentialMetric};

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

/// The counter reading of one answer: a scalar, or a vector of exactly one sample.
/// The error names what came back (the controller adds the query).
pub fn counter_reading(value: &MetricValue) -> Result<f64, String> {
    match value {
        MetricValue::Scalar(v) => Ok(*v),
        MetricValue::Vector(samples) if samples.len() == 1 => Ok(samples[0].value),
        MetricValue::Vector(samples) if samples.is_empty() => {
            Err("no data: expected one counter value, the query returned nothing".to_string())
        }
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
    /// The test's state to store (unchanged on an error).
    pub state: Option<serde_json::Value>,
}

/// Feeds one measurement's readings to the metric's test, continuing from `result.sequential`.
pub(crate) fn observe(spec: &SequentialSpec, result: &MetricResult, readings: Readings) -> Judged {
    let mut state = match &result.sequential {
        None => judge::State::default(),
        Some(stored) => match serde_json::from_value::<judge::State>(stored.clone()) {
            Ok(state) => state,
            Err(e) => {
                return Judged {
                    decision: Err(format!(
                        "status.metricResults[{}].sequential: expected the state of a \
                         sequential test as rollgate writes it: {e}",
                        result.name
                    )),
                    state: result.sequential.clone(),
                };
            }
        },
    };
    match state.observe(&spec.settings, readings) {
        Ok(verdict) => Judged {
            decision: Ok(verdict),
            state: serde_json::to_value(&state).ok(),
        },
        Err(e) => Judged {
            decision: Err(e.to_string()),
            state: result.sequential.clone(),
        },
    }
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
        assert_eq!(counter_reading(&MetricValue::Scalar(3.0)), Ok(3.0));
        assert_eq!(
            counter_reading(&MetricValue::Vector(vec![sample(7.0)])),
            Ok(7.0)
        );
        assert!(
            counter_reading(&MetricValue::Vector(vec![])).is_err_and(|e| e.starts_with("no data"))
        );
        assert!(
            counter_reading(&MetricValue::Vector(vec![sample(1.0), sample(2.0)]))
                .is_err_and(|e| e.contains("2 series"))
        );
        assert!(counter_reading(&MetricValue::Matrix(vec![])).is_err());
    }
}
