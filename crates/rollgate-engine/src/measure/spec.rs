//! A metric's settings, parsed and defaulted; template validation.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollgate_api::{AnalysisRunSpec, AnalysisTemplateSpec, Metric};

use super::condition;

/// Default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;
/// Default number of measurements kept per metric.
pub const DEFAULT_RETENTION: usize = 10;
/// Wait before measuring again after an error when the metric has no `interval`.
pub const ERROR_RETRY: Duration = Duration::from_secs(10);

/// What an empty result (no data) counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDataPolicy {
    /// Inconclusive (default): the rollout pauses for a human.
    Inconclusive,
    /// Failed.
    Fail,
    /// Successful.
    Pass,
}

/// One metric, validated, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Name.
    pub name: String,
    /// Time between measurements (`None`: measure `count` times back to back... once).
    pub interval: Option<Duration>,
    /// Wait after the run starts before the first measurement.
    pub initial_delay: Duration,
    /// Measurements to take (`None`: until the run is terminated).
    pub count: Option<i32>,
    /// Failed measurements tolerated.
    pub failure_limit: i32,
    /// Inconclusive measurements tolerated.
    pub inconclusive_limit: i32,
    /// Errors in a row tolerated.
    pub consecutive_error_limit: i32,
    /// `successCondition`.
    pub success: Option<String>,
    /// `failureCondition`.
    pub failure: Option<String>,
    /// `noDataPolicy`.
    pub no_data: NoDataPolicy,
    /// Measured and reported, never decides.
    pub dry_run: bool,
    /// Measurements kept.
    pub retention: usize,
}

fn duration(field: &str, value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let parsed = match text.parse::<i64>() {
        Ok(secs) => Ok(k8s_openapi::jiff::SignedDuration::from_secs(secs)),
        Err(_) => text.parse::<k8s_openapi::jiff::SignedDuration>(),
    };
    parsed
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .map(Some)
        .ok_or_else(|| {
            format!("{field}: expected a duration such as 30s, 5m or 1h30m, got \"{text}\"")
        })
}

fn limit(field: &str, value: Option<&IntOrString>, default: i32) -> Result<i32, String> {
    let v = match value {
        None => return Ok(default),
        Some(IntOrString::Int(v)) => *v,
        Some(IntOrString::String(s)) => s
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("{field}: expected a whole number, got \"{s}\""))?,
    };
    if v < 0 {
        return Err(format!("{field}: must be >= 0, got {v}"));
    }
    Ok(v)
}

/// Parses one metric (`field` is its path for messages, e.g. `metrics[0]`).
pub fn metric_spec(
    field: &str,
    m: &Metric,
    dry_run: bool,
    retention: Option<i32>,
) -> Result<MetricSpec, Vec<String>> {
    let mut problems = Vec::new();
    fn keep<T>(problems: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| problems.push(e)).ok()
    }
    let interval = keep(
        &mut problems,
        duration(&format!("{field}.interval"), m.interval.as_deref()),
    )
    .flatten();
    let initial_delay = keep(
        &mut problems,
        duration(&format!("{field}.initialDelay"), m.initial_delay.as_deref()),
    )
    .flatten();
    let count = keep(
        &mut problems,
        limit(&format!("{field}.count"), m.count.as_ref(), 0),
    );
    let failure_limit = keep(
        &mut problems,
        limit(
            &format!("{field}.failureLimit"),
            m.failure_limit.as_ref(),
            0,
        ),
    );
    let inconclusive_limit = keep(
        &mut problems,
        limit(
            &format!("{field}.inconclusiveLimit"),
            m.inconclusive_limit.as_ref(),
            0,
        ),
    );
    let consecutive_error_limit = keep(
        &mut problems,
        limit(
            &format!("{field}.consecutiveErrorLimit"),
            m.consecutive_error_limit.as_ref(),
            DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        ),
    );
    let no_data = match m.no_data_policy.as_deref() {
        None | Some("Inconclusive") => Some(NoDataPolicy::Inconclusive),
        Some("Fail") => Some(NoDataPolicy::Fail),
        Some("Pass") => Some(NoDataPolicy::Pass),
        Some(other) => {
            problems.push(format!(
                "{field}.noDataPolicy: expected Inconclusive, Fail or Pass, got \"{other}\""
            ));
            None
        }
    };
    for (name, cond) in [
        ("successCondition", &m.success_condition),
        ("failureCondition", &m.failure_condition),
    ] {
        if let Some(c) = cond
            && let Err(e) = condition::compile(c)
        {
            problems.push(format!("{field}.{name}: {e}"));
        }
    }
    if m.name.trim().is_empty() {
        problems.push(format!("{field}.name: required"));
    }
    match &m.provider.prometheus {
        None => problems.push(format!("{field}.provider: expected prometheus")),
        Some(p) => {
            if p.address.trim().is_empty() {
                problems.push(format!("{field}.provider.prometheus.address: required"));
            }
            if p.query.trim().is_empty() {
                problems.push(format!("{field}.provider.prometheus.query: required"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let count = count.unwrap_or(0);
    Ok(MetricSpec {
        name: m.name.clone(),
        interval,
        initial_delay: initial_delay.unwrap_or_default(),
        count: match (count, interval) {
            (0, Some(_)) => None,
            (0, None) => Some(1),
            (n, _) => Some(n),
        },
        failure_limit: failure_limit.unwrap_or(0),
        inconclusive_limit: inconclusive_limit.unwrap_or(0),
        consecutive_error_limit: consecutive_error_limit.unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
        success: m.success_condition.clone(),
        failure: m.failure_condition.clone(),
        no_data: no_data.unwrap_or(NoDataPolicy::Inconclusive),
        dry_run,
        retention: retention
            .and_then(|r| usize::try_from(r).ok())
            .filter(|r| *r > 0)
            .unwrap_or(DEFAULT_RETENTION),
    })
}

/// The metrics of a run, parsed; the first problem of each broken metric.
pub fn run_metrics(spec: &AnalysisRunSpec) -> Vec<Result<MetricSpec, String>> {
    spec.metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let dry = spec
                .dry_run
                .iter()
                .any(|d| d.metric_name == m.name || d.metric_name == "*");
            let retention = spec
                .measurement_retention
                .iter()
                .find(|r| r.metric_name == m.name || r.metric_name == "*")
                .map(|r| r.limit);
            metric_spec(&format!("metrics[{i}]"), m, dry, retention)
                .map_err(|problems| problems.join("; "))
        })
        .collect()
}

/// Every problem of a template, as `field: what was expected`.
pub fn validate_template(t: &AnalysisTemplateSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if t.metrics.is_empty() {
        problems.push("metrics: at least one metric expected".to_string());
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, m) in t.metrics.iter().enumerate() {
        if !m.name.is_empty() && !names.insert(m.name.as_str()) {
            problems.push(format!("metrics[{i}].name: \"{}\" is used twice", m.name));
        }
        if let Err(p) = metric_spec(&format!("metrics[{i}]"), m, false, None) {
            problems.extend(p);
        }
    }
    for (i, d) in t.dry_run.iter().enumerate() {
        if d.metric_name != "*" && !names.contains(d.metric_name.as_str()) {
            problems.push(format!(
                "dryRun[{i}].metricName: no metric \"{}\"",
                d.metric_name
            ));
        }
    }
    for (i, r) in t.measurement_retention.iter().enumerate() {
        if r.metric_name != "*" && !names.contains(r.metric_name.as_str()) {
            problems.push(format!(
                "measurementRetention[{i}].metricName: no metric \"{}\"",
                r.metric_name
            ));
        }
    }
    problems
}
