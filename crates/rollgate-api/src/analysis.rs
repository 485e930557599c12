//! Analysis resources: templates of metric checks and their runs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Metrics and arguments of an analysis, namespaced.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    shortname = "at",
    category = "rollgate",
    derive = "PartialEq",
    derive = "Default"
)]
#[schemars(extend("required" = ["metrics"]))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Arguments the metrics may reference as `{{args.NAME}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// Metrics that are measured but never decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
}

/// The same as [`AnalysisTemplate`], cluster-scoped.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    shortname = "cat",
    category = "rollgate",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplateSpec {
    /// The template body.
    #[serde(flatten)]
    pub template: AnalysisTemplateSpec,
}

/// One execution of an analysis for one rollout point.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    category = "rollgate",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = "1"
    ),
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure (merged from the templates).
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Resolved arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// Metrics that are measured but never decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Set to stop measuring; the run ends with its current outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
    /// The arguments of the baseline's rendering of `sequential` and `kayenta` metrics (a
    /// rollgate extension): every argument resolved from `podTemplateHashValue: Latest` again,
    /// with the stable ReplicaSet's hash (the latest one's while there is no stable one). The
    /// baseline's queries take `args` with each of these replacing the argument of the same
    /// name; the canary's take `args` as they are. Set only when a metric is `sequential` or
    /// `kayenta`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_args: Vec<AnalysisArg>,
}

/// An analysis argument.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisArg {
    /// Name referenced as `{{args.NAME}}`.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value taken from elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgValueFrom>,
}

/// Where an argument value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgValueFrom {
    /// `Stable` or `Latest`: the pod-template hash of that ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Stable", "Latest"]))]
    pub pod_template_hash_value: Option<String>,
    /// A field of the Rollout, e.g. `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// A key of a Secret in the rollout's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A field path.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// Path such as `metadata.labels['app']`.
    pub field_path: String,
}

/// A Secret key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret's data.
    pub key: String,
}

/// A metric marked dry-run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Metric name (or a regular expression matching names).
    pub metric_name: String,
}

/// Retention of measurements for a metric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// Metric name (or a regular expression matching names).
    pub metric_name: String,
    /// Measurements kept.
    #[schemars(range(min = 0))]
    pub limit: i32,
}

/// One metric check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name", "provider"]))]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Metric name, unique in the run.
    pub name: String,
    /// Time between measurements, e.g. `30s` (or `{{args.NAME}}`, substituted when measuring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Wait before the first measurement (a duration, or `{{args.NAME}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Number of measurements (default: 1 without interval, unbounded with one); an integer
    /// or a string such as `"{{args.count}}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// CEL condition over `result` that makes a measurement Successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// CEL condition over `result` that makes a measurement Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated (default 0); may be `"{{args.NAME}}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated (default 0); may be `"{{args.NAME}}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Consecutive errors tolerated (default 4); may be `"{{args.NAME}}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// What an empty query result means: `Inconclusive` (default), `Fail` or `Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Inconclusive", "Fail", "Pass"]))]
    pub no_data_policy: Option<String>,
    /// Where the value comes from. A `sequential` or `kayenta` metric takes the address,
    /// timeout, headers and credentials of `provider.prometheus` and needs no `query`.
    #[serde(default, skip_serializing_if = "MetricProvider::is_empty")]
    pub provider: MetricProvider,
    /// Judge the canary against the baseline with an anytime-valid sequential test on event
    /// counters instead of a condition on one query's value (a rollgate extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialMetric>,
    /// Judge the canary against the baseline with Spinnaker Kayenta's fixed-horizon judge
    /// (Mann-Whitney per metric, classification, scoring) once `count` samples of each side
    /// were taken (a rollgate extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
}

/// A Kayenta-style metric: each measurement reads every query of `metrics` once for the canary
/// and once for the baseline (the stable revision); after `count` measurements (the fixed
/// horizon, chosen in advance) each metric's canary samples are compared with its baseline
/// samples by a Mann-Whitney test and classified (Pass, High, Low, NoData), and the
/// classifications are scored. The measurement at the horizon is Successful (the score reaches
/// `scoreThresholds.pass`), Inconclusive (it reaches `marginal`) or Failed. The error rates hold
/// for that one look only: there is no repeated-look guarantee.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["metrics"]))]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    /// The metrics judged (Kayenta's canary-config metrics); at least one, names unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<KayentaCanaryMetric>,
    /// The summary score a canary needs to pass, or to be marginal (default 95 and 75).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_thresholds: Option<KayentaScoreThresholds>,
}

/// One metric of a Kayenta judgement: a query read for both revisions, and how its samples
/// are classified and scored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name", "query"]))]
#[serde(rename_all = "camelCase")]
pub struct KayentaCanaryMetric {
    /// Name, unique among the judgement's metrics (named in messages and details).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// PromQL returning one number (a scalar or a one-sample vector; no data is a NaN sample),
    /// e.g. an error ratio over the last interval. Evaluated once for the canary (`args`) and
    /// once for the baseline (`baselineArgs` over `args`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Which change is a regression: `increase`, `decrease` or `either` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["increase", "decrease", "either"]))]
    pub direction: Option<String>,
    /// What a NaN sample (no data) becomes: `remove` (default: dropped) or `replace` (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["remove", "replace"]))]
    pub nan_strategy: Option<String>,
    /// Remove outliers from each side before the test (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_outliers: Option<bool>,
    /// Smallest effect size (canary mean / baseline mean) that classifies a significant
    /// increase as High (default 1); at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// Largest effect size that classifies a significant decrease as Low (default 1); in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    /// Smallest effect size from which a High of a critical metric fails the judgement
    /// (default: every High does); at least `allowedIncrease`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_increase: Option<f64>,
    /// Largest effect size from which a Low of a critical metric fails the judgement
    /// (default: every Low does); in (0, `allowedDecrease`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_decrease: Option<f64>,
    /// A failure of this metric (High, Low, no data) fails the whole judgement (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    /// No data counts as a failure of the metric's group (default false: left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_have_data: Option<bool>,
    /// The scoring group (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The weight of the metric's group in the summary score, in percent; the groups without
    /// one share what the others leave of 100. Metrics of one group must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// Score thresholds of a Kayenta judgement, in percent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScoreThresholds {
    /// A summary score at least this high passes (default 95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<f64>,
    /// A summary score at least this high (and below `pass`) is marginal (default 75); lower
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marginal: Option<f64>,
}

/// A sequential metric: the canary's share of events (errors, slow requests) compared with its
/// share of requests, from Prometheus counters of both the canary and the baseline (the stable
/// revision), tested after every measurement. The metric fails the moment the test's e-value
/// reaches `1/alpha`; the probability that a canary no worse than the baseline ever fails it is
/// at most `alpha`, however many measurements are taken. It passes when `count` measurements
/// were taken without that.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["events", "requests"]))]
#[serde(rename_all = "camelCase")]
pub struct SequentialMetric {
    /// PromQL returning one counter of events (e.g. errors) as a scalar or a one-sample vector,
    /// e.g. `sum(http_requests_total{code=~"5..",pod_template_hash="{{args.hash}}"})`.
    /// Evaluated once for the canary (`args`) and once for the baseline (`baselineArgs` over
    /// `args`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub events: String,
    /// PromQL returning the matching counter of requests, rendered the same way.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requests: String,
    /// Bound on the probability of failing a canary that is no worse (default 0.05); in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Concentration of the prior around "no difference" (default 20): larger values expect
    /// smaller differences; in (0, 1000].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_concentration: Option<f64>,
    /// Which change fails the metric: `increase` (default: more events than the canary's
    /// share of requests explains), `decrease` or `either`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["increase", "decrease", "either"]))]
    pub direction: Option<String>,
    /// The metric cannot fail before both revisions together saw this many events (default 0).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<i64>,
}

/// Metric providers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MetricProvider {
    /// A Prometheus query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
}

impl MetricProvider {
    /// True when no provider is set.
    pub fn is_empty(&self) -> bool {
        self.prometheus.is_none()
    }
}

/// A Prometheus query.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["address"]))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Base URL of the Prometheus server.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// PromQL query; may contain `{{args.NAME}}`. Required unless the metric is `sequential` or
    /// `kayenta`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Query timeout in seconds.
    #[schemars(range(min = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebHeader>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Range query instead of an instant query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<RangeQuery>,
    /// Credentials from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<PrometheusAuth>,
}

/// An HTTP header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WebHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// Range query bounds, as PromQL-style expressions (`now() - 5m`) or durations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["start", "step"]))]
pub struct RangeQuery {
    /// Start.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// End (default `now()`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// Resolution step, e.g. `30s`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
}

/// Prometheus credentials read from a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAuth {
    /// Secret holding `token`, or `username` and `password`, and optionally `ca.crt`.
    pub secret_name: String,
}

/// Observed state of an [`AnalysisRun`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// Pending (not started yet), Running (measuring), Successful, Failed, Error or
    /// Inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-metric results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    /// When measuring started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

/// Phase of a measurement, metric or run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AnalysisPhase {
    /// Not started.
    Pending,
    /// Measuring.
    Running,
    /// Passed.
    Successful,
    /// Failed: the rollout is rolled back.
    Failed,
    /// Could not measure.
    Error,
    /// Neither passed nor failed: a human decides.
    Inconclusive,
}

impl AnalysisPhase {
    /// True when the phase will not change any more.
    pub fn is_completed(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

impl std::fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Successful => "Successful",
            Self::Failed => "Failed",
            Self::Error => "Error",
            Self::Inconclusive => "Inconclusive",
        })
    }
}

/// Results of one metric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// Metric phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Latest measurements (bounded by retention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Measurements taken.
    #[serde(default)]
    pub count: i32,
    /// Successful measurements.
    #[serde(default)]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default)]
    pub inconclusive: i32,
    /// Errored measurements.
    #[serde(default)]
    pub error: i32,
    /// Errors in a row.
    #[serde(default)]
    pub consecutive_error: i32,
    /// Why the metric is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True for a dry-run metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// The state of a `sequential` metric's test (its counters, counts and likelihoods), as the
    /// engine wrote it: a restarted controller continues the same test from here.
    #[schemars(schema_with = "crate::crds::preserve_unknown_object")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<serde_json::Value>,
    /// The samples a `kayenta` metric has taken so far (canary and baseline, per metric), as
    /// the engine wrote them: a restarted controller continues towards the same horizon.
    #[schemars(schema_with = "crate::crds::preserve_unknown_object")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<serde_json::Value>,
}

/// One measurement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// The value as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why (errors, no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Start of the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// End of the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Extra details. A `sequential` metric's measurements record the cumulative counts
    /// (`canaryEvents`, `canaryRequests`, `baselineEvents`, `baselineRequests`), `eValue`,
    /// `pValue` and `rateRatio`; their `value` is the e-value. A `kayenta` metric's record the
    /// `samples` taken and the `horizon`; the one at the horizon also the `score`, `result`
    /// and per metric `NAME.classification`, `NAME.effectSize`, `NAME.pValue`; its `value` is
    /// the score.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}
