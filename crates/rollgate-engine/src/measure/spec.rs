//! A metric's settings and a template's arguments, parsed and defaulted; template validation.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollgate_api::duration::DurationError;
use rollgate_api::{
    AnalysisArg, AnalysisPhase, AnalysisRunSpec, AnalysisTemplateSpec, Metric, SecretKeyRef,
};

use super::args::substitute_plain;
use super::condition::{self, ResultShape};
use super::kayenta::{KayentaSpec, MAX_KAYENTA_SAMPLES, kayenta_spec};
use super::promql;
use super::provider::{PrometheusQuery, counter_provider, prometheus_query, sample_provider};
use super::sequential::{SequentialSpec, sequential_spec};

/// Default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;
/// Default number of measurements kept per metric.
pub const DEFAULT_RETENTION: usize = 10;
/// Most measurements kept per metric, whatever `measurementRetention` asks: with each
/// measurement's value and message bounded, a run's status stays far below what an API server
/// stores per object (about 1.5 MiB).
pub const MAX_RETENTION: usize = 20;
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

impl NoDataPolicy {
    /// Parses `noDataPolicy` (`field` is its path for messages); absent is `Inconclusive`.
    pub fn parse(field: &str, value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("Inconclusive") => Ok(Self::Inconclusive),
            Some("Fail") => Ok(Self::Fail),
            Some("Pass") => Ok(Self::Pass),
            Some(other) => Err(format!(
                "{field}: expected Inconclusive, Fail or Pass, got \"{other}\""
            )),
        }
    }

    /// The phase of a measurement this policy decides.
    pub fn phase(self) -> AnalysisPhase {
        match self {
            Self::Inconclusive => AnalysisPhase::Inconclusive,
            Self::Fail => AnalysisPhase::Failed,
            Self::Pass => AnalysisPhase::Successful,
        }
    }

    /// The name as written in a template.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inconclusive => "Inconclusive",
            Self::Fail => "Fail",
            Self::Pass => "Pass",
        }
    }
}

/// Which ReplicaSet's pod-template hash an argument takes (`podTemplateHashValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSource {
    /// The stable ReplicaSet's (the latest's while there is no stable one yet).
    Stable,
    /// The ReplicaSet of the revision being released.
    Latest,
}

impl HashSource {
    /// Parses `podTemplateHashValue` (`field` is its path for messages).
    pub fn parse(field: &str, value: &str) -> Result<Self, String> {
        match value {
            "Stable" => Ok(Self::Stable),
            "Latest" => Ok(Self::Latest),
            other => Err(format!(
                "{field}: expected Stable or Latest, got \"{other}\""
            )),
        }
    }
}

/// Where an analysis argument's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgSource {
    /// Neither `value` nor `valueFrom`: another argument list (the Rollout's) must set it.
    Unset,
    /// A literal `value`.
    Value(String),
    /// `valueFrom.podTemplateHashValue`.
    PodTemplateHash(HashSource),
    /// `valueFrom.fieldRef.fieldPath`: a field of the Rollout.
    FieldRef(String),
    /// `valueFrom.secretKeyRef`: read when measuring, never stored in a run.
    SecretKeyRef(SecretKeyRef),
}

/// One analysis argument, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgSpec {
    /// Name referenced as `{{args.NAME}}`.
    pub name: String,
    /// Where its value comes from.
    pub source: ArgSource,
}

/// Parses one analysis argument (`field` is its path for messages, e.g. `args[0]`).
pub fn arg_spec(field: &str, a: &AnalysisArg) -> Result<ArgSpec, Vec<String>> {
    let mut problems = Vec::new();
    if a.name.trim().is_empty() {
        problems.push(format!("{field}.name: required"));
    }
    let source = match (&a.value, &a.value_from) {
        (None, None) => Some(ArgSource::Unset),
        (Some(v), None) => Some(ArgSource::Value(v.clone())),
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{field}: value and valueFrom exclude each other, found both"
            ));
            None
        }
        (None, Some(from)) => {
            let f = format!("{field}.valueFrom");
            match (
                &from.pod_template_hash_value,
                &from.field_ref,
                &from.secret_key_ref,
            ) {
                (Some(which), None, None) => {
                    HashSource::parse(&format!("{f}.podTemplateHashValue"), which)
                        .map(ArgSource::PodTemplateHash)
                        .map_err(|e| problems.push(e))
                        .ok()
                }
                (None, Some(r), None) if r.field_path.trim().is_empty() => {
                    problems.push(format!("{f}.fieldRef.fieldPath: required"));
                    None
                }
                (None, Some(r), None) => Some(ArgSource::FieldRef(r.field_path.clone())),
                (None, None, Some(r)) if r.name.trim().is_empty() || r.key.is_empty() => {
                    problems.push(format!(
                        "{f}.secretKeyRef: name and key of a Secret expected"
                    ));
                    None
                }
                (None, None, Some(r)) => Some(ArgSource::SecretKeyRef(r.clone())),
                _ => {
                    problems.push(format!(
                        "{f}: exactly one of podTemplateHashValue, fieldRef or secretKeyRef \
                         expected"
                    ));
                    None
                }
            }
        }
    };
    match source {
        Some(source) if problems.is_empty() => Ok(ArgSpec {
            name: a.name.clone(),
            source,
        }),
        _ => Err(problems),
    }
}

/// Every problem of an argument list (`field` is its path, e.g. `args` or
/// `spec.strategy.canary.steps[1].analysis.args`).
pub fn validate_args(field: &str, args: &[AnalysisArg]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, a) in args.iter().enumerate() {
        if !a.name.is_empty() && !names.insert(a.name.as_str()) {
            problems.push(format!("{field}[{i}].name: \"{}\" is used twice", a.name));
        }
        if let Err(p) = arg_spec(&format!("{field}[{i}]"), a) {
            problems.extend(p);
        }
    }
    problems
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
    /// The Prometheus query (placeholders not substituted yet); for a sequential or kayenta
    /// metric, the provider its queries go to (with an empty query).
    pub provider: PrometheusQuery,
    /// A `sequential` metric's queries and test settings.
    pub sequential: Option<SequentialSpec>,
    /// A `kayenta` metric's queries and judge settings (its horizon is `count`).
    pub kayenta: Option<KayentaSpec>,
}

/// The values `{{args.NAME}}` placeholders in a metric's settings (`interval`,
/// `initialDelay`, `count` and the limits) are replaced with. Argo Rollouts substitutes a run's
/// arguments into every field of a metric, so a template may write `count: "{{args.count}}"`.
#[derive(Debug, Clone, Copy)]
pub enum ArgValues<'a> {
    /// A run's arguments: every placeholder must have a value.
    Run(&'a BTreeMap<String, String>),
    /// What is known before a run exists (a template's defaults, a Rollout's values): a
    /// setting whose placeholder has no value yet is checked once it has one.
    Known(&'a BTreeMap<String, String>),
}

/// A setting's text with its placeholders substituted; `Ok(None)` when one of them has no
/// value known yet ([`ArgValues::Known`] only).
fn substituted(field: &str, text: &str, values: ArgValues<'_>) -> Result<Option<String>, String> {
    if !text.contains("{{") {
        return Ok(Some(text.to_string()));
    }
    let mut unknown = false;
    let out = substitute_plain(text, |name| match values {
        ArgValues::Run(args) => args
            .get(name)
            .cloned()
            .ok_or_else(|| format!("argument \"{name}\" has no value")),
        ArgValues::Known(args) => Ok(args.get(name).cloned().unwrap_or_else(|| {
            unknown = true;
            String::new()
        })),
    })
    .map_err(|e| format!("{field}: {e}"))?;
    Ok((!unknown).then_some(out))
}

/// ` after substituting TEXT` when `text` holds placeholders, for messages.
fn after(text: &str) -> String {
    if text.contains("{{") {
        format!(" after substituting {}", text.trim())
    } else {
        String::new()
    }
}

/// A duration setting: `Ok(None)` absent or empty, `Err(None)` waiting for an argument value.
fn duration(
    field: &str,
    value: Option<&str>,
    values: ArgValues<'_>,
) -> Result<Option<Duration>, Option<String>> {
    let Some(raw) = value.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let Some(text) = substituted(field, raw, values).map_err(Some)? else {
        return Err(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    rollgate_api::duration::parse(&text).map(Some).map_err(|e| {
        Some(match e {
            DurationError::Invalid(_) if raw.contains("{{") => format!(
                "{field}: expected seconds or a duration such as 30s, 5m or 1h30m{}, got \"{text}\"",
                after(raw)
            ),
            DurationError::Negative(_) if raw.contains("{{") => format!(
                "{field}: must not be negative{}, got \"{text}\"",
                after(raw)
            ),
            e => format!("{field}: {e}"),
        })
    })
}

/// A count or limit setting: `Err(None)` waiting for an argument value.
fn limit(
    field: &str,
    value: Option<&IntOrString>,
    default: i32,
    values: ArgValues<'_>,
) -> Result<i32, Option<String>> {
    let v = match value {
        None => return Ok(default),
        Some(IntOrString::Int(v)) => *v,
        Some(IntOrString::String(raw)) => {
            let Some(s) = substituted(field, raw, values).map_err(Some)? else {
                return Err(None);
            };
            s.trim().parse::<i32>().map_err(|_| {
                Some(if raw.contains("{{") {
                    format!("{field}: expected an integer{}, got \"{s}\"", after(raw))
                } else {
                    format!("{field}: expected a whole number, got \"{s}\"")
                })
            })?
        }
    };
    if v < 0 {
        let how = match value {
            Some(IntOrString::String(raw)) => after(raw),
            _ => String::new(),
        };
        return Err(Some(format!("{field}: must be >= 0{how}, got {v}")));
    }
    Ok(v)
}

/// Parses one metric of a run (`field` is its path for messages, e.g. `metrics[0]`), with
/// the run's argument values substituted into its settings.
pub fn metric_spec(
    field: &str,
    m: &Metric,
    dry_run: bool,
    retention: Option<i32>,
    args: &BTreeMap<String, String>,
) -> Result<MetricSpec, Vec<String>> {
    match check_metric(field, m, dry_run, retention, ArgValues::Run(args)) {
        Ok(Some(spec)) => Ok(spec),
        Err(problems) => Err(problems),
        // A run's placeholders all have a value or are errors: not reached.
        Ok(None) => Err(vec![format!("{field}: an argument has no value")]),
    }
}

/// What became of one setting.
enum Setting<T> {
    /// Its value.
    Value(T),
    /// Invalid (the problem is recorded).
    Invalid,
    /// Waiting for an argument's value.
    Waiting,
}

impl<T> Setting<T> {
    fn of(problems: &mut Vec<String>, r: Result<T, Option<String>>) -> Self {
        match r {
            Ok(v) => Self::Value(v),
            Err(Some(e)) => {
                problems.push(e);
                Self::Invalid
            }
            Err(None) => Self::Waiting,
        }
    }

    fn value(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Invalid | Self::Waiting => None,
        }
    }

    fn waiting(&self) -> bool {
        matches!(self, Self::Waiting)
    }
}

/// A metric's timing and limits, parsed and checked against each other.
struct Settings {
    interval: Option<Duration>,
    initial_delay: Duration,
    /// `count` as written (0: not set).
    count: i32,
    failure_limit: i32,
    inconclusive_limit: i32,
    consecutive_error_limit: i32,
}

/// Parses a metric's settings (`interval`, `initialDelay`, `count` and the limits) with the
/// argument values substituted, and checks them against each other. `None` when one is
/// invalid (its problem pushed) or waits for an argument's value.
fn settings(
    field: &str,
    m: &Metric,
    values: ArgValues<'_>,
    problems: &mut Vec<String>,
) -> Option<Settings> {
    let before = problems.len();
    let interval = Setting::of(
        problems,
        duration(&format!("{field}.interval"), m.interval.as_deref(), values),
    );
    let initial_delay = Setting::of(
        problems,
        duration(
            &format!("{field}.initialDelay"),
            m.initial_delay.as_deref(),
            values,
        ),
    );
    let count = Setting::of(
        problems,
        limit(&format!("{field}.count"), m.count.as_ref(), 0, values),
    );
    let failure_limit = Setting::of(
        problems,
        limit(
            &format!("{field}.failureLimit"),
            m.failure_limit.as_ref(),
            0,
            values,
        ),
    );
    let inconclusive_limit = Setting::of(
        problems,
        limit(
            &format!("{field}.inconclusiveLimit"),
            m.inconclusive_limit.as_ref(),
            0,
            values,
        ),
    );
    let consecutive_error_limit = Setting::of(
        problems,
        limit(
            &format!("{field}.consecutiveErrorLimit"),
            m.consecutive_error_limit.as_ref(),
            DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            values,
        ),
    );
    let waiting = [
        interval.waiting(),
        initial_delay.waiting(),
        count.waiting(),
        failure_limit.waiting(),
        inconclusive_limit.waiting(),
        consecutive_error_limit.waiting(),
    ]
    .contains(&true);
    let (interval_waiting, count_waiting) = (interval.waiting(), count.waiting());
    // No interval, or 0s (an interval that did not parse is reported already).
    let back_to_back = match &interval {
        Setting::Value(None) => true,
        Setting::Value(Some(d)) => d.is_zero(),
        Setting::Invalid | Setting::Waiting => false,
    };
    let interval = interval.value().flatten();
    let initial_delay = initial_delay.value().flatten();
    let count = count.value();
    let failure_limit = failure_limit.value();
    let inconclusive_limit = inconclusive_limit.value();
    let consecutive_error_limit = consecutive_error_limit.value();
    if let Some(n) = count.filter(|n| *n > 1)
        && back_to_back
    {
        problems.push(format!(
            "{field}.interval: required when count is more than 1 (count {n} would query {n} \
             times back to back), expected a duration such as 30s"
        ));
    }
    // The measurements a metric takes at most (no count: until the run ends; no count and no
    // interval: once). A limit of that many or more could never be exceeded: the metric could
    // never fail (or be inconclusive), and would pass on measurements that all failed.
    let taken = match (count, interval) {
        // Not knowable before the arguments' values are.
        _ if count_waiting || interval_waiting => None,
        (Some(0) | None, None) => Some(1),
        (Some(0) | None, Some(_)) => None,
        (Some(n), _) => Some(n),
    };
    if let Some(n) = taken {
        for (name, value) in [
            ("failureLimit", failure_limit),
            ("inconclusiveLimit", inconclusive_limit),
        ] {
            if let Some(limit) = value.filter(|l| *l >= n) {
                let what = if count.is_some_and(|c| c > 0) {
                    format!("count ({n})")
                } else {
                    "1 (without count and interval the metric is measured once)".to_string()
                };
                problems.push(format!(
                    "{field}.{name}: must be less than {what}, got {limit}: {n} measurements \
                     can never exceed it, so the metric could never be {}",
                    if name == "failureLimit" {
                        "Failed"
                    } else {
                        "Inconclusive"
                    }
                ));
            }
        }
    }
    if waiting || problems.len() > before {
        return None;
    }
    Some(Settings {
        interval,
        initial_delay: initial_delay.unwrap_or_default(),
        count: count.unwrap_or(0),
        failure_limit: failure_limit.unwrap_or(0),
        inconclusive_limit: inconclusive_limit.unwrap_or(0),
        consecutive_error_limit: consecutive_error_limit.unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
    })
}

/// True when one of the metric's settings holds a `{{args.NAME}}` placeholder.
fn has_placeholder(m: &Metric) -> bool {
    setting_texts(m).iter().any(|(_, text)| text.contains("{{"))
}

/// Checks one metric; `Ok(None)` when it is valid as far as known but a setting waits for an
/// argument's value ([`ArgValues::Known`] only).
fn check_metric(
    field: &str,
    m: &Metric,
    dry_run: bool,
    retention: Option<i32>,
    values: ArgValues<'_>,
) -> Result<Option<MetricSpec>, Vec<String>> {
    let mut problems = Vec::new();
    fn keep<T>(problems: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| problems.push(e)).ok()
    }
    let settings = settings(field, m, values, &mut problems);
    let no_data = keep(
        &mut problems,
        NoDataPolicy::parse(
            &format!("{field}.noDataPolicy"),
            m.no_data_policy.as_deref(),
        ),
    );
    let mut conditions = Vec::new();
    for (name, cond) in [
        ("successCondition", &m.success_condition),
        ("failureCondition", &m.failure_condition),
    ] {
        if let Some(c) = cond {
            match condition::compile(c) {
                Ok(compiled) => conditions.push((name, compiled)),
                Err(e) => problems.push(format!("{field}.{name}: {e}")),
            }
        }
    }
    if m.name.trim().is_empty() {
        problems.push(format!("{field}.name: required"));
    }
    let sequential = m.sequential.as_ref().and_then(|s| {
        sequential_spec(&format!("{field}.sequential"), s)
            .map_err(|p| problems.extend(p))
            .ok()
    });
    if m.sequential.is_some() {
        sequential_only(field, m, &mut problems);
    }
    let kayenta = m.kayenta.as_ref().and_then(|k| {
        kayenta_spec(&format!("{field}.kayenta"), k)
            .map_err(|p| problems.extend(p))
            .ok()
    });
    if m.kayenta.is_some() {
        kayenta_only(field, m, &mut problems);
        if let (Some(st), Some(k), Some(_)) = (&settings, &kayenta, &m.count) {
            horizon(field, st.count, k.metrics.len(), &mut problems);
        }
    }
    let provider = match &m.provider.prometheus {
        None => {
            problems.push(format!("{field}.provider: expected prometheus"));
            None
        }
        Some(p) if m.sequential.is_some() => {
            counter_provider(&format!("{field}.provider.prometheus"), p)
                .map_err(|p| problems.extend(p))
                .ok()
        }
        Some(p) if m.kayenta.is_some() => {
            sample_provider(&format!("{field}.provider.prometheus"), p)
                .map_err(|p| problems.extend(p))
                .ok()
        }
        Some(p) => prometheus_query(&format!("{field}.provider.prometheus"), p)
            .map_err(|p| problems.extend(p))
            .ok(),
    };
    let judged = m.sequential.is_some() || m.kayenta.is_some();
    if let Some(p) = provider.as_ref().filter(|_| !judged) {
        let shape = if p.range.is_some() {
            ResultShape::Matrix
        } else {
            promql::shape(&p.query)
        };
        for (name, c) in &conditions {
            if let Err(e) = condition::check_type(c, shape) {
                problems.push(format!("{field}.{name}: {e}"));
            }
        }
    }
    let (Some(provider), true) = (provider, problems.is_empty()) else {
        return Err(problems);
    };
    // Valid as far as known; the settings wait for an argument's value.
    let Some(st) = settings else {
        return Ok(None);
    };
    Ok(Some(MetricSpec {
        name: m.name.clone(),
        interval: st.interval,
        initial_delay: st.initial_delay,
        count: match (st.count, st.interval) {
            (0, Some(_)) => None,
            (0, None) => Some(1),
            (n, _) => Some(n),
        },
        failure_limit: st.failure_limit,
        inconclusive_limit: st.inconclusive_limit,
        consecutive_error_limit: st.consecutive_error_limit,
        success: m.success_condition.clone(),
        failure: m.failure_condition.clone(),
        no_data: no_data.unwrap_or(NoDataPolicy::Inconclusive),
        dry_run,
        retention: retention
            .and_then(|r| usize::try_from(r).ok())
            .filter(|r| *r > 0)
            .unwrap_or(DEFAULT_RETENTION)
            .min(MAX_RETENTION),
        provider,
        sequential,
        kayenta,
    }))
}

/// The settings a `kayenta` metric does without, and the one it needs: its judgement at the
/// horizon decides the metric, so conditions, the failure/inconclusive limits and
/// `noDataPolicy` have no meaning there (no data is a NaN sample, handled per metric by
/// `nanStrategy`); and the horizon, `count`, must be chosen in advance. A metric that is both
/// `sequential` and `kayenta` is refused.
fn kayenta_only(field: &str, m: &Metric, problems: &mut Vec<String>) {
    if m.sequential.is_some() {
        problems.push(format!(
            "{field}.kayenta: a metric is judged by one judge, expected sequential or kayenta, \
             found both"
        ));
    }
    let unused = [
        ("successCondition", m.success_condition.is_some()),
        ("failureCondition", m.failure_condition.is_some()),
        ("failureLimit", m.failure_limit.is_some()),
        ("inconclusiveLimit", m.inconclusive_limit.is_some()),
        ("noDataPolicy", m.no_data_policy.is_some()),
    ];
    for (name, _) in unused.iter().filter(|(_, set)| *set) {
        problems.push(format!(
            "{field}.{name}: not used by a kayenta metric (its judgement at the horizon decides \
             the metric: Pass, Marginal or Fail; no data is a NaN sample handled by each \
             metric's nanStrategy), expected none"
        ));
    }
    if m.count.is_none() {
        problems.push(format!(
            "{field}.count: required for a kayenta metric, expected the fixed horizon (the \
             number of samples of each revision judged at once, chosen in advance; README, \
             \"Comparing the canary with the stable revision\", gives it for an effect size and \
             power) such as 20"
        ));
    }
}

/// A kayenta metric's horizon `count` (0: unset) with its `metrics` judged metrics: at least
/// 1, and small enough that every sample fits in the run's status.
fn horizon(field: &str, count: i32, metrics: usize, problems: &mut Vec<String>) {
    let Ok(n) = usize::try_from(count) else {
        return;
    };
    if n == 0 {
        problems.push(format!(
            "{field}.count: expected a horizon of at least 1 measurement for a kayenta metric, \
             got 0"
        ));
    } else if n.saturating_mul(metrics) > MAX_KAYENTA_SAMPLES {
        problems.push(format!(
            "{field}.count: expected count × the {metrics} kayenta metrics to be at most \
             {MAX_KAYENTA_SAMPLES} (every sample is kept in the run's status until the \
             horizon), got count {n}"
        ));
    }
}

/// The settings a `sequential` metric does without: its test decides every measurement and
/// stops at its first rejection, so conditions and the failure/inconclusive limits have no
/// meaning there; and it compares counters between measurements, so it needs an interval.
/// (`noDataPolicy` applies: it decides a metric that ends without evidence.)
fn sequential_only(field: &str, m: &Metric, problems: &mut Vec<String>) {
    let unused = [
        ("successCondition", m.success_condition.is_some()),
        ("failureCondition", m.failure_condition.is_some()),
        ("failureLimit", m.failure_limit.is_some()),
        ("inconclusiveLimit", m.inconclusive_limit.is_some()),
    ];
    for (name, _) in unused.iter().filter(|(_, set)| *set) {
        problems.push(format!(
            "{field}.{name}: not used by a sequential metric (its test decides each measurement \
             and fails the metric at its first rejection), expected none"
        ));
    }
    if m.interval.as_deref().is_none_or(|i| i.trim().is_empty()) {
        problems.push(format!(
            "{field}.interval: required for a sequential metric (it compares the counters \
             between measurements), expected a duration such as 30s"
        ));
    }
}

/// The values of a run's arguments, by name (an argument still without a value has none).
pub(crate) fn run_args(spec: &AnalysisRunSpec) -> BTreeMap<String, String> {
    spec.args
        .iter()
        .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
        .collect()
}

/// The metrics of a run, parsed; the first problem of each broken metric.
pub fn run_metrics(spec: &AnalysisRunSpec) -> Vec<Result<MetricSpec, String>> {
    let args = run_args(spec);
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
            metric_spec(&format!("metrics[{i}]"), m, dry, retention, &args)
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
        // Settings with placeholders are checked with the template's default values; one
        // whose argument has none yet is checked with the Rollout's ([`validate_settings`]).
        if let Err(p) = check_metric(
            &format!("metrics[{i}]"),
            m,
            false,
            None,
            ArgValues::Known(&defaults(&t.args)),
        ) {
            problems.extend(p);
        }
    }
    problems.extend(validate_args("args", &t.args));
    // Every placeholder names an argument the template declares.
    for (i, m) in t.metrics.iter().enumerate() {
        let mut fields: Vec<(String, &str)> = setting_texts(m)
            .into_iter()
            .map(|(f, text)| (f.to_string(), text))
            .collect();
        if let Some(p) = &m.provider.prometheus {
            fields.push((
                "provider.prometheus.address".to_string(),
                p.address.as_str(),
            ));
            fields.push(("provider.prometheus.query".to_string(), p.query.as_str()));
        }
        if let Some(sq) = &m.sequential {
            fields.push(("sequential.events".to_string(), sq.events.as_str()));
            fields.push(("sequential.requests".to_string(), sq.requests.as_str()));
        }
        if let Some(k) = &m.kayenta {
            fields.extend(
                k.metrics
                    .iter()
                    .enumerate()
                    .map(|(j, km)| (format!("kayenta.metrics[{j}].query"), km.query.as_str())),
            );
        }
        if let Some(p) = &m.provider.prometheus {
            fields.extend(p.headers.iter().enumerate().map(|(j, h)| {
                (
                    format!("provider.prometheus.headers[{j}].value"),
                    h.value.as_str(),
                )
            }));
        }
        for (f, text) in fields {
            let mut unknown = Vec::new();
            let _ = substitute_plain(text, |name| {
                if !t.args.iter().any(|a| a.name == name) && !unknown.contains(&name.to_string()) {
                    unknown.push(name.to_string());
                }
                Ok(String::new())
            });
            for name in unknown {
                problems.push(format!(
                    "metrics[{i}].{f}: {{{{args.{name}}}}} names no argument of the \
                     template, expected one of args[].name ({})",
                    declared(&t.args)
                ));
            }
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
    problems.extend(validate_retention(
        "measurementRetention",
        &t.measurement_retention,
    ));
    problems
}

/// The settings of a metric written as text, with their field names.
fn setting_texts(m: &Metric) -> Vec<(&'static str, &str)> {
    fn int(v: &Option<IntOrString>) -> Option<&str> {
        match v {
            Some(IntOrString::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    [
        ("interval", m.interval.as_deref()),
        ("initialDelay", m.initial_delay.as_deref()),
        ("count", int(&m.count)),
        ("failureLimit", int(&m.failure_limit)),
        ("inconclusiveLimit", int(&m.inconclusive_limit)),
        ("consecutiveErrorLimit", int(&m.consecutive_error_limit)),
    ]
    .into_iter()
    .filter_map(|(f, v)| Some((f, v?)))
    .collect()
}

/// The literal default values of a template's arguments.
fn defaults(args: &[AnalysisArg]) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
        .collect()
}

/// The problems of a template's metric settings (`interval`, `initialDelay`, `count` and the
/// limits) that hold `{{args.NAME}}` placeholders, once the values in `known` are substituted
/// (a Rollout's arguments over the template's defaults): a value that is not a number or a
/// duration is found before a run is created. Settings whose arguments have no value in
/// `known` are left to the run, and problems the template's own defaults already have are
/// left to [`validate_template`], which reports them.
pub fn validate_settings(
    t: &AnalysisTemplateSpec,
    known: &BTreeMap<String, String>,
) -> Vec<String> {
    let own = defaults(&t.args);
    let mut problems = Vec::new();
    for (i, m) in t
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| has_placeholder(m))
    {
        let field = format!("metrics[{i}]");
        let mut already = Vec::new();
        settings(&field, m, ArgValues::Known(&own), &mut already);
        let mut found = Vec::new();
        settings(&field, m, ArgValues::Known(known), &mut found);
        problems.extend(found.into_iter().filter(|p| !already.contains(p)));
    }
    problems
}

/// The problems of `measurementRetention` limits (`field` is its path for messages).
pub fn validate_retention(
    field: &str,
    retention: &[rollgate_api::MeasurementRetention],
) -> Vec<String> {
    retention
        .iter()
        .enumerate()
        .filter(|(_, r)| !(1..=MAX_RETENTION as i32).contains(&r.limit))
        .map(|(i, r)| {
            format!(
                "{field}[{i}].limit: expected between 1 and {MAX_RETENTION} measurements, got {}",
                r.limit
            )
        })
        .collect()
}

/// The declared argument names, for messages.
fn declared(args: &[AnalysisArg]) -> String {
    if args.is_empty() {
        return "none declared".to_string();
    }
    args.iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The problems of a template with one metric: `metric` merged over a valid one.
    fn problems(metric: Value, args: Value) -> Vec<String> {
        let mut m = json!({"name": "error-rate", "successCondition": "result[0] < 0.05",
            "provider": {"prometheus": {"address": "http://prometheus:9090",
                "query": "sum(rate(errors{hash=\"{{args.hash}}\"}[5m]))"}}});
        if let (Some(base), Value::Object(extra)) = (m.as_object_mut(), metric) {
            for (k, v) in extra {
                if k == "provider" {
                    if let (Some(p), Some(extra)) = (
                        base["provider"]["prometheus"].as_object_mut(),
                        v["prometheus"].as_object(),
                    ) {
                        p.extend(extra.clone());
                    }
                } else {
                    base.insert(k, v);
                }
            }
        }
        let t: AnalysisTemplateSpec =
            serde_json::from_value(json!({"metrics": [m], "args": args})).expect("template");
        validate_template(&t)
    }

    fn hash_arg() -> Value {
        json!([{"name": "hash"}])
    }

    #[test]
    fn the_base_template_is_valid() {
        assert_eq!(problems(json!({}), hash_arg()), Vec::<String>::new());
    }

    #[test]
    fn limits_that_count_can_never_exceed_are_refused() {
        assert_eq!(
            problems(
                json!({"count": 3, "interval": "1m", "failureLimit": 3}),
                hash_arg()
            ),
            [
                "metrics[0].failureLimit: must be less than count (3), got 3: 3 measurements can \
              never exceed it, so the metric could never be Failed"
            ]
        );
        assert_eq!(
            problems(
                json!({"count": 3, "interval": "1m", "inconclusiveLimit": "5"}),
                hash_arg()
            ),
            [
                "metrics[0].inconclusiveLimit: must be less than count (3), got 5: 3 measurements \
              can never exceed it, so the metric could never be Inconclusive"
            ]
        );
        // Without count and interval a metric is measured once.
        let p = problems(json!({"failureLimit": 1}), hash_arg());
        assert!(
            p.len() == 1
                && p[0].starts_with("metrics[0].failureLimit: must be less than 1 (without count"),
            "{p:?}"
        );
        // Below count, or measured until the run ends: fine.
        assert!(
            problems(
                json!({"count": 3, "interval": "1m", "failureLimit": 2, "inconclusiveLimit": 2}),
                hash_arg()
            )
            .is_empty()
        );
        assert!(problems(json!({"interval": "1m", "failureLimit": 9}), hash_arg()).is_empty());
    }

    #[test]
    fn a_placeholder_must_name_a_declared_argument() {
        assert_eq!(
            problems(
                json!({"provider": {"prometheus": {
                    "query": "sum(rate(errors{hash=\"{{args.nope}}\"}[5m]))",
                    "headers": [{"key": "X-Scope-OrgID", "value": "{{args.tenant}}"}]}}}),
                hash_arg()
            ),
            [
                "metrics[0].provider.prometheus.query: {{args.nope}} names no argument of the \
                 template, expected one of args[].name (hash)",
                "metrics[0].provider.prometheus.headers[0].value: {{args.tenant}} names no \
                 argument of the template, expected one of args[].name (hash)"
            ]
        );
        assert_eq!(
            problems(json!({}), json!([])),
            [
                "metrics[0].provider.prometheus.query: {{args.hash}} names no argument of the \
              template, expected one of args[].name (none declared)"
            ]
        );
    }

    #[test]
    fn an_address_must_be_an_absolute_http_url() {
        for (address, why) in [
            ("prometheus:9090", "no scheme"),
            ("ftp://prometheus:9090", "scheme ftp"),
            ("http://", "no host"),
            ("http://prometheus:90x0", "the port is not a number"),
            ("http://prom etheus:9090", "it contains ' '"),
        ] {
            let p = problems(
                json!({"provider": {"prometheus": {"address": address}}}),
                hash_arg(),
            );
            assert_eq!(
                p,
                [format!(
                    "metrics[0].provider.prometheus.address: expected an absolute http:// or \
                     https:// URL such as http://prometheus:9090, got \"{address}\" ({why})"
                )]
            );
        }
        for address in [
            "https://prometheus.monitoring.svc:9090/prefix/",
            "http://[::1]:9090",
            "http://{{args.hash}}:9090",
            "{{args.hash}}",
        ] {
            assert!(
                problems(
                    json!({"provider": {"prometheus": {"address": address}}}),
                    hash_arg()
                )
                .is_empty(),
                "{address}"
            );
        }
    }

    #[test]
    fn header_values_cannot_hold_control_characters() {
        let p = problems(
            json!({"provider": {"prometheus": {"headers": [
                {"key": "X-Scope-OrgID", "value": "t1\r\nX-Injected: 1"},
                {"key": "X-Tab", "value": "a\tb"}]}}}),
            hash_arg(),
        );
        assert_eq!(
            p,
            [
                "metrics[0].provider.prometheus.headers[0].value: a header value cannot contain \
              control characters, found '\\r'"
            ]
        );
    }

    #[test]
    fn conditions_name_only_result_and_are_bools() {
        let p = problems(json!({"successCondition": "result[0]"}), hash_arg());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "metrics[0].successCondition: \"result[0]\" evaluates to a number when result is \
                 a list of numbers (the query returns a vector), expected a bool"
            ),
            "{p:?}"
        );
        let p = problems(json!({"failureCondition": "value > 0.5"}), hash_arg());
        assert_eq!(
            p,
            [
                "metrics[0].failureCondition: \"value > 0.5\": unknown variable \"value\": a \
              condition can only name result"
            ]
        );
        // A range query returns a matrix.
        let p = problems(
            json!({"successCondition": "all(result, s, s < 0.5)",
                "provider": {"prometheus": {"rangeQuery": {"start": "now() - 5m", "step": "1m"}}}}),
            hash_arg(),
        );
        assert!(
            p.is_empty(),
            "comparing lists is not knowable as wrong: {p:?}"
        );
        let p = problems(
            json!({"successCondition": "result[0][0]",
                "provider": {"prometheus": {"rangeQuery": {"start": "now() - 5m", "step": "1m"}}}}),
            hash_arg(),
        );
        assert!(
            p.len() == 1 && p[0].contains("the query returns a matrix"),
            "{p:?}"
        );
    }

    #[test]
    fn retention_is_bounded() {
        let t: AnalysisTemplateSpec = serde_json::from_value(json!({
            "metrics": [{"name": "m", "provider": {"prometheus": {
                "address": "http://p:9090", "query": "up"}}}],
            "measurementRetention": [{"metricName": "m", "limit": 500},
                                     {"metricName": "*", "limit": 0}]
        }))
        .expect("template");
        assert_eq!(
            validate_template(&t),
            [
                "measurementRetention[0].limit: expected between 1 and 20 measurements, got 500",
                "measurementRetention[1].limit: expected between 1 and 20 measurements, got 0"
            ]
        );
    }
}
