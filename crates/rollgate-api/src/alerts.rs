//! `spec.alerts` and `spec.guard` (rollgate extensions, absent from Argo Rollouts): roll a
//! release back when alerts it is to blame for fire, during the release and inside a guard
//! window after full promotion; and what the status records of it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::PrometheusAuth;
use crate::rollout::{RolloutAnalysis, RolloutAnalysisRunStatus};

/// Where firing alerts come from, which of them concern this rollout and how they are blamed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    /// Pull from Alertmanager's API v2 (knows silences and inhibitions). One of `alertmanager`
    /// or `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertSource>,
    /// Pull `ALERTS{alertstate="firing"}` from Prometheus. One of `alertmanager` or
    /// `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<AlertSource>,
    /// Credentials for the source, as for the Prometheus analysis provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<PrometheusAuth>,
    /// Alert matchers (`name="value"`, `!=`, `=~`, `!~`), all of which an alert must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Alert label carrying the pod-template hash of the revision the alert is about
    /// (default `pod_template_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_label: Option<String>,
    /// Alerts without that label: `IfStartedDuringRelease` (default: they count when they
    /// started after the release began) or `Ignore`.
    #[schemars(extend("enum" = ["IfStartedDuringRelease", "Ignore"]))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level_alerts: Option<String>,
    /// How often the source is pulled while a release is guarded (default `15s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// An alert source's address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertSource {
    /// Base URL (`http://alertmanager.monitoring:9093`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The guard window after full promotion.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardSpec {
    /// How long after full promotion a blamed alert still sends traffic back to the previous
    /// revision, whose ReplicaSet stays at full size until then (`15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// An analysis run during the window against the promoted revision; if it fails, traffic
    /// goes back to the previous revision as for a blamed alert. Unfinished at the end of the
    /// window, it is terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
}

/// A firing alert the release was blamed for, as the status records it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlamedAlert {
    /// `alertname`.
    pub name: String,
    /// Its labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When it started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Time>,
    /// Its fingerprint at the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// Pod-template hash of the revision it was blamed on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
}

/// A fully promoted revision inside its guard window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardStatus {
    /// Pod-template hash of the guarded (now stable) revision.
    pub revision: String,
    /// Pod-template hash of the previous revision, kept at full size for the window.
    pub previous: String,
    /// When the release the window guards began (service-level alerts older than this are not
    /// its fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_started_at: Option<Time>,
    /// End of the window.
    pub until: Time,
    /// The AnalysisRun of `spec.guard.analysis`, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run: Option<RolloutAnalysisRunStatus>,
}
