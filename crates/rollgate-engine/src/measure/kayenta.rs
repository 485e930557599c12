//! `kayenta` metrics: the fixed-horizon judge of [`crate::judge::kayenta`] as a metric kind of
//! AnalysisTemplates (a rollgate extension).
//!
//! A kayenta metric lists Kayenta's canary-config metrics, each with a `query`. Every
//! measurement reads each query twice, for the canary (the run's `args`) and for the baseline
//! (the run's `baselineArgs` over its `args`): `2 × N` instant queries, one number each (no
//! data is a NaN sample, handled by the metric's `nanStrategy`). The controller performs them
//! and hands the readings to [`super::record`] as [`super::Outcome::Samples`]; the samples
//! accumulate in the metric's result (`status.metricResults[].kayenta`), so a restarted
//! controller continues towards the same horizon.
//!
//! The horizon is the metric's `count`, chosen in advance. The measurements before it are
//! Successful and record how many samples were taken; at the `count`-th, each metric's samples
//! are classified ([`judge::classify`]) and scored ([`judge::score`]), and the measurement is
//! Successful (Pass), Inconclusive (Marginal) or Failed (Fail), with the score as its value,
//! the classifications in its details and a message rendered from them. The judgement's error
//! rates hold for that one look only: there is no repeated-look guarantee.
//!
//! A provider error, or an answer that is not one number (several series, a matrix, an
//! infinity), is an Error measurement that adds no sample to any metric
//! (`consecutiveErrorLimit` applies): it never fails the judgement by itself.

use std::collections::BTreeMap;

use rollgate_api::{KayentaMetric, MetricResult};
use serde::{Deserialize, Serialize};

use crate::judge::kayenta::{
    self as judge, Classification, Direction, Kind, MetricConfig, NanStrategy, Score, ScoreError,
    ScoreReason, Shortcut, Thresholds, Verdict,
};

use super::args::substitute_plain;
use super::condition::ResultShape;
use super::promql;
use super::provider::PrometheusQuery;
use super::sequential::figure;
use super::value::MetricValue;

/// Most metrics one kayenta metric judges.
pub const MAX_KAYENTA_METRICS: usize = 20;

/// Most samples one side of a kayenta metric keeps in the run's status: `count` × the number
/// of metrics. Every sample is kept until the horizon, so this bounds the status's size.
pub const MAX_KAYENTA_SAMPLES: usize = 4000;

/// One judged metric of a kayenta metric: its query (placeholders not substituted yet) and
/// how it is classified and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct KayentaQuery {
    /// The PromQL query.
    pub query: String,
    /// The judge's configuration of the metric (its `name` is the metric's).
    pub config: MetricConfig,
}

/// A kayenta metric's settings, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct KayentaSpec {
    /// The metrics judged, in order.
    pub metrics: Vec<KayentaQuery>,
    /// The score thresholds.
    pub thresholds: Thresholds,
}

/// The two rendered queries of one judged metric of a due kayenta measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleQueries {
    /// The judged metric's name.
    pub name: String,
    /// The canary's query.
    pub canary: PrometheusQuery,
    /// The baseline's query.
    pub baseline: PrometheusQuery,
}

/// One measurement's readings of one judged metric: NaN where the query returned no data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplePair {
    /// The canary's value.
    pub canary: f64,
    /// The baseline's value.
    pub baseline: f64,
}

/// Which revision a kayenta query reads.
pub use crate::judge::kayenta::Side as SampleSide;

/// Parses `kayenta` (`field` is its path, e.g. `metrics[0].kayenta`): at least one metric and
/// at most [`MAX_KAYENTA_METRICS`], names unique; each query valid PromQL returning an instant
/// value and selecting the revision through an `{{args.NAME}}` placeholder; `direction` one of
/// increase, decrease, either; `nanStrategy` remove or replace; the effect-size bounds and
/// weights as [`MetricConfig::validate`] wants them; the weights and `scoreThresholds` as
/// [`judge::score`] wants them.
pub fn kayenta_spec(field: &str, k: &KayentaMetric) -> Result<KayentaSpec, Vec<String>> {
    let mut problems = Vec::new();
    if k.metrics.is_empty() {
        problems.push(format!(
            "{field}.metrics: expected at least one metric (a name and a query)"
        ));
    }
    if k.metrics.len() > MAX_KAYENTA_METRICS {
        problems.push(format!(
            "{field}.metrics: expected at most {MAX_KAYENTA_METRICS} metrics, got {}",
            k.metrics.len()
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut metrics = Vec::new();
    for (j, m) in k.metrics.iter().enumerate() {
        let f = format!("{field}.metrics[{j}]");
        let before = problems.len();
        if !m.name.trim().is_empty() && !names.insert(m.name.as_str()) {
            problems.push(format!("{f}.name: \"{}\" is used twice", m.name));
        }
        check_query(&format!("{f}.query"), &m.query, &mut problems);
        let direction = match m.direction.as_deref() {
            None | Some("either") => Direction::Either,
            Some("increase") => Direction::Increase,
            Some("decrease") => Direction::Decrease,
            Some(other) => {
                problems.push(format!(
                    "{f}.direction: expected increase, decrease or either, got \"{other}\""
                ));
                Direction::Either
            }
        };
        let nan_strategy = match m.nan_strategy.as_deref() {
            None | Some("remove") => NanStrategy::Remove,
            Some("replace") => NanStrategy::Replace,
            Some(other) => {
                problems.push(format!(
                    "{f}.nanStrategy: expected remove or replace, got \"{other}\""
                ));
                NanStrategy::Remove
            }
        };
        let mut config = MetricConfig::new(m.name.clone());
        config.direction = direction;
        config.nan_strategy = nan_strategy;
        config.remove_outliers = m.remove_outliers.unwrap_or(false);
        config.allowed_increase = m.allowed_increase.unwrap_or(1.0);
        config.allowed_decrease = m.allowed_decrease.unwrap_or(1.0);
        config.critical_increase = m.critical_increase;
        config.critical_decrease = m.critical_decrease;
        config.critical = m.critical.unwrap_or(false);
        config.must_have_data = m.must_have_data.unwrap_or(false);
        if let Some(group) = &m.group {
            config.group = group.clone();
        }
        config.weight = m.weight;
        // The judge's errors start with the field's name (`allowedIncrease: ...`).
        if let Err(e) = config.validate() {
            problems.push(format!("{f}.{e}"));
        }
        if problems.len() == before {
            metrics.push(KayentaQuery {
                query: m.query.clone(),
                config,
            });
        }
    }
    let defaults = Thresholds::default();
    let thresholds = Thresholds {
        pass: k
            .score_thresholds
            .as_ref()
            .and_then(|t| t.pass)
            .unwrap_or(defaults.pass),
        marginal: k
            .score_thresholds
            .as_ref()
            .and_then(|t| t.marginal)
            .unwrap_or(defaults.marginal),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    // The weights and thresholds are checked by scoring metrics that all pass.
    let passing: Vec<(MetricConfig, Classification)> = metrics
        .iter()
        .map(|m| (m.config.clone(), judge::classify(&m.config, &[1.0], &[1.0])))
        .collect();
    if let Err(e) = judge::score(&passing, thresholds, &BTreeMap::new()) {
        return Err(vec![score_problem(field, &metrics, &e)]);
    }
    Ok(KayentaSpec {
        metrics,
        thresholds,
    })
}

/// A judged metric's query: required, valid PromQL returning an instant value, selecting the
/// revision through a placeholder.
fn check_query(f: &str, query: &str, problems: &mut Vec<String>) {
    if query.trim().is_empty() {
        problems.push(format!(
            "{f}: required, expected a PromQL query returning one number such as \
             sum(rate(http_requests_total{{code=~\"5..\",pod_template_hash=\"{{{{args.hash}}}}\"}}[1m]))"
        ));
        return;
    }
    if let Err(e) = promql::check(query) {
        problems.push(format!("{f}: {e}"));
        return;
    }
    if promql::shape(query) == ResultShape::Matrix {
        problems.push(format!(
            "{f}: expected a query returning one number (a scalar or a one-sample vector), got \
             a range vector"
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
             pod_template_hash=\"{{{{args.hash}}}}\" with podTemplateHashValue: Latest), found \
             none: the canary and the baseline would read the same value"
        ));
    }
}

/// A scoring problem of a valid set of metrics, naming the field at fault.
fn score_problem(field: &str, metrics: &[KayentaQuery], e: &ScoreError) -> String {
    // The first metric of `group` (giving `weight` when one is given): where a weight is set.
    let weight_field = |group: &str, weight: Option<f64>| {
        metrics
            .iter()
            .position(|m| {
                m.config.group == group && weight.is_none_or(|w| m.config.weight == Some(w))
            })
            .map_or_else(
                || format!("{field}.metrics"),
                |j| format!("{field}.metrics[{j}].weight"),
            )
    };
    match e {
        ScoreError::NoMetrics => format!("{field}.metrics: expected at least one metric"),
        ScoreError::Thresholds(t) => format!(
            "{field}.scoreThresholds: expected 0 <= marginal <= pass <= 100, got marginal {} and \
             pass {}",
            t.marginal, t.pass
        ),
        ScoreError::Weight { group, weight } => format!(
            "{}: expected a finite percentage in [0, 100] for group \"{group}\", got {weight}",
            weight_field(group, Some(*weight))
        ),
        ScoreError::ConflictingWeights {
            group,
            first,
            second,
        } => format!(
            "{}: expected one weight for group \"{group}\", its metrics give {first} and {second}",
            weight_field(group, Some(*second))
        ),
        ScoreError::WeightSum {
            sum,
            unweighted_groups: true,
        } => format!(
            "{field}.metrics[].weight: expected group weights summing to at most 100 (the \
             groups without a weight share the rest), got {sum}"
        ),
        ScoreError::WeightSum {
            sum,
            unweighted_groups: false,
        } => format!(
            "{field}.metrics[].weight: expected group weights summing to 100 when every group \
             has a weight, got {sum}"
        ),
    }
}

/// The `2 × N` queries of a due measurement: `provider` (address, headers, credentials) with
/// its query replaced by each metric's, rendered with the canary's arguments `args` and the
/// baseline's (`baseline` over `args`). The baseline's rendering must differ from the
/// canary's, else the two would read the same value.
pub fn render_samples(
    provider: &PrometheusQuery,
    spec: &KayentaSpec,
    args: &BTreeMap<String, String>,
    baseline: &BTreeMap<String, String>,
) -> Result<Vec<SampleQueries>, String> {
    let mut baseline_args = args.clone();
    baseline_args.extend(baseline.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut out = Vec::with_capacity(spec.metrics.len());
    for (j, m) in spec.metrics.iter().enumerate() {
        let render = |args: &BTreeMap<String, String>| {
            PrometheusQuery {
                query: m.query.clone(),
                ..provider.clone()
            }
            .render(args)
            .map_err(|e| format!("kayenta.metrics[{j}].query: {e}"))
        };
        let q = SampleQueries {
            name: m.config.name.clone(),
            canary: render(args)?,
            baseline: render(&baseline_args)?,
        };
        if q.canary.query == q.baseline.query {
            return Err(format!(
                "kayenta.metrics[{j}].query: the baseline's query is the canary's (\"{}\"): the \
                 run's baselineArgs give no argument of the query another value, expected an \
                 argument resolved from podTemplateHashValue: Latest",
                q.canary.query
            ));
        }
        out.push(q);
    }
    Ok(out)
}

/// The sample of one answer: a scalar, or a vector of exactly one sample; no data (an empty
/// vector) is NaN. The error names what came back (the controller adds the query).
pub fn sample_reading(value: &MetricValue) -> Result<f64, String> {
    let v = match value {
        MetricValue::Scalar(v) => *v,
        MetricValue::Vector(samples) if samples.is_empty() => f64::NAN,
        MetricValue::Vector(samples) if samples.len() == 1 => samples[0].value,
        MetricValue::Vector(samples) => {
            return Err(format!(
                "expected one value, the query returned {} series (aggregate them, e.g. with \
                 sum(...))",
                samples.len()
            ));
        }
        MetricValue::Matrix(_) => {
            return Err("expected one value, the query returned a range matrix".to_string());
        }
    };
    if v.is_infinite() {
        return Err(format!(
            "expected a finite value or no data, the query returned {v}"
        ));
    }
    Ok(v)
}

/// The samples taken so far, as stored in `status.metricResults[].kayenta` (no data as
/// `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    /// Per judged metric, in the template's order.
    metrics: Vec<Samples>,
}

/// One judged metric's samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Samples {
    name: String,
    canary: Vec<Option<f64>>,
    baseline: Vec<Option<f64>>,
}

fn values(samples: &[Option<f64>]) -> Vec<f64> {
    samples.iter().map(|v| v.unwrap_or(f64::NAN)).collect()
}

fn stored(v: f64) -> Option<f64> {
    Some(v).filter(|v| v.is_finite())
}

/// What one measurement of a kayenta metric came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Judged {
    /// A sample of each side was added; the horizon is not reached.
    Sampled {
        /// Samples per side now.
        samples: usize,
    },
    /// The horizon was reached: the judgement.
    Judged {
        /// Samples per side.
        samples: usize,
        /// Each metric's classification, in order.
        classifications: Vec<(MetricConfig, Classification)>,
        /// The score.
        score: Score,
    },
}

/// One measurement of a kayenta metric.
pub(crate) struct Observed {
    /// What it came to, or why it is an Error measurement.
    pub outcome: Result<Judged, String>,
    /// The samples to store (unchanged on an error).
    pub state: Option<serde_json::Value>,
}

/// Adds one measurement's readings (`pairs`, in the order of the spec's metrics) to the
/// samples stored in `result.kayenta`, and judges them when this is the `horizon`-th
/// measurement (`result.count` measurements were taken before it).
pub(crate) fn observe(
    spec: &KayentaSpec,
    result: &MetricResult,
    pairs: &[SamplePair],
    horizon: i32,
) -> Observed {
    let unchanged = |e: String| Observed {
        outcome: Err(e),
        state: result.kayenta.clone(),
    };
    if pairs.len() != spec.metrics.len() {
        return unchanged(format!(
            "expected a reading of each of the {} metrics, got {}",
            spec.metrics.len(),
            pairs.len()
        ));
    }
    let mut state = match &result.kayenta {
        None => State::default(),
        Some(v) => match serde_json::from_value::<State>(v.clone()) {
            Ok(state) => state,
            Err(e) => {
                return unchanged(format!(
                    "status.metricResults[{}].kayenta: expected the samples of a kayenta metric \
                     as rollgate writes them: {e}",
                    result.name
                ));
            }
        },
    };
    for (m, pair) in spec.metrics.iter().zip(pairs) {
        let name = &m.config.name;
        let at = match state.metrics.iter().position(|s| &s.name == name) {
            Some(at) => at,
            None => {
                state.metrics.push(Samples {
                    name: name.clone(),
                    ..Default::default()
                });
                state.metrics.len() - 1
            }
        };
        let s = &mut state.metrics[at];
        s.canary.push(stored(pair.canary));
        s.baseline.push(stored(pair.baseline));
    }
    let samples = state
        .metrics
        .iter()
        .map(|s| s.canary.len().min(s.baseline.len()))
        .min()
        .unwrap_or(0);
    let stored_state = serde_json::to_value(&state).ok();
    if result.count.saturating_add(1) < horizon {
        return Observed {
            outcome: Ok(Judged::Sampled { samples }),
            state: stored_state,
        };
    }
    let classifications: Vec<(MetricConfig, Classification)> = spec
        .metrics
        .iter()
        .map(|m| {
            let s = state.metrics.iter().find(|s| s.name == m.config.name);
            let (baseline, canary) = s.map_or_else(
                || (Vec::new(), Vec::new()),
                |s| (values(&s.baseline), values(&s.canary)),
            );
            let c = judge::classify(&m.config, &baseline, &canary);
            (m.config.clone(), c)
        })
        .collect();
    match judge::score(&classifications, spec.thresholds, &BTreeMap::new()) {
        Ok(score) => Observed {
            outcome: Ok(Judged::Judged {
                samples,
                classifications,
                score,
            }),
            state: stored_state,
        },
        Err(e) => unchanged(format!("scoring: {e}")),
    }
}

/// The measurement's metadata: the samples taken and the horizon; at the horizon also the
/// score, its result and each metric's classification, effect size and p-value.
pub(crate) fn metadata(judged: &Judged, horizon: i32) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("horizon".to_string(), horizon.to_string());
    match judged {
        Judged::Sampled { samples } => {
            m.insert("samples".to_string(), samples.to_string());
        }
        Judged::Judged {
            samples,
            classifications,
            score,
        } => {
            m.insert("samples".to_string(), samples.to_string());
            m.insert("score".to_string(), figure(score.summary));
            m.insert("result".to_string(), verdict_name(score.result).to_string());
            for (config, c) in classifications {
                let name = &config.name;
                m.insert(
                    format!("{name}.classification"),
                    kind_name(&c.kind).to_string(),
                );
                if let Some(e) = c.effect_size {
                    m.insert(format!("{name}.effectSize"), figure(e));
                }
                if let Some(p) = c.p_value {
                    m.insert(format!("{name}.pValue"), figure(p));
                }
            }
        }
    }
    m
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "Pass",
        Verdict::Marginal => "Marginal",
        Verdict::Fail => "Fail",
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Pass => "Pass",
        Kind::High => "High",
        Kind::Low => "Low",
        Kind::NoData => "NoData",
        Kind::Error(_) => "Error",
    }
}

/// The judgement as a sentence: the verdict against the thresholds, why the score is 0 when
/// it was forced, and each metric's classification.
pub(crate) fn judgement(
    spec: &KayentaSpec,
    classifications: &[(MetricConfig, Classification)],
    score: &Score,
) -> String {
    let t = spec.thresholds;
    let s = figure(score.summary);
    let verdict = match score.result {
        Verdict::Pass => format!("the canary passed: score {s} >= pass {}", figure(t.pass)),
        Verdict::Marginal => format!(
            "the canary is marginal: score {s} < pass {} and >= marginal {}",
            figure(t.pass),
            figure(t.marginal)
        ),
        Verdict::Fail => format!(
            "the canary failed: score {s} < marginal {}",
            figure(t.marginal)
        ),
    };
    let forced = match &score.reason {
        ScoreReason::Scored => String::new(),
        ScoreReason::CriticalMetricFailed { metric } => {
            format!(" (critical metric \"{metric}\" failed: the score is 0)")
        }
        ScoreReason::TooMuchNoData { no_data, total } => {
            format!(" ({no_data} of {total} metrics without data: the score is 0)")
        }
    };
    let each: Vec<String> = classifications
        .iter()
        .map(|(config, c)| format!("{} {}", config.name, classification(c)))
        .collect();
    format!("{verdict}{forced}; {}", each.join(", "))
}

/// One classification in words: `High (effect size 3, p-value 1.000e-5)`.
fn classification(c: &Classification) -> String {
    let mut details = Vec::new();
    match (&c.kind, c.shortcut) {
        (Kind::Error(reason), _) => details.push(reason.to_string()),
        (
            Kind::NoData,
            Some(Shortcut::Empty {
                baseline, canary, ..
            }),
        ) => details.push(
            match (baseline, canary) {
                (true, true) => "no data for either revision",
                (true, false) => "no baseline data",
                _ => "no canary data",
            }
            .to_string(),
        ),
        _ => {
            if let Some(e) = c.effect_size {
                details.push(format!("effect size {}", figure(e)));
            }
            if let Some(p) = c.p_value {
                details.push(format!("p-value {}", figure(p)));
            }
            match c.shortcut {
                Some(Shortcut::Identical) => details.push("identical samples".to_string()),
                Some(Shortcut::SingleValue) => details.push("one value".to_string()),
                _ => {}
            }
        }
    }
    let kind = kind_name(&c.kind);
    if details.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", details.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::value::Sample;

    #[test]
    fn a_reading_is_one_number_or_no_data() {
        let sample = |v| Sample {
            labels: BTreeMap::new(),
            value: v,
        };
        assert_eq!(sample_reading(&MetricValue::Scalar(0.5)), Ok(0.5));
        assert_eq!(
            sample_reading(&MetricValue::Vector(vec![sample(7.0)])),
            Ok(7.0)
        );
        assert!(sample_reading(&MetricValue::Vector(vec![])).is_ok_and(f64::is_nan));
        assert!(sample_reading(&MetricValue::Scalar(f64::NAN)).is_ok_and(f64::is_nan));
        assert!(
            sample_reading(&MetricValue::Vector(vec![sample(1.0), sample(2.0)]))
                .is_err_and(|e| e.contains("2 series"))
        );
        assert!(
            sample_reading(&MetricValue::Scalar(f64::INFINITY))
                .is_err_and(|e| e.contains("finite"))
        );
        assert!(sample_reading(&MetricValue::Matrix(vec![])).is_err());
    }
}
