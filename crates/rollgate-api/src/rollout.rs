//! The `Rollout` resource: spec (strategies, steps) and status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a [`Rollout`]: the workload, and how a new revision of it is released.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    category = "rollgate",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Strategy", type_ = "string", json_path = ".status.strategy"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
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
// `selector` and `template` are not required by the schema: a Rollout with `workloadRef` takes
// its template (and, when unset, its selector) from a Deployment. Validation names them when
// neither is given.
#[schemars(extend("required" = ["strategy"]))]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of desired pods (default 1).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector for the pods; must match the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pod template of the current revision. A change to it starts a new release.
    /// Its schema is kept open in the CRD (the full pod schema would make the CRD too large for
    /// client-side `kubectl apply`); the pods' own validation happens when ReplicaSets are created.
    #[schemars(schema_with = "crate::crds::preserve_unknown_object")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Seconds a pod must be ready before it counts as available (default 0).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Number of old ReplicaSets kept for rollback (default 10).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Pauses the rollout: no step advances while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Seconds a release may go without progress before it is reported failed (default 600).
    #[schemars(range(min = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Abort the release when the progress deadline passes (rollgate default: true; Argo Rollouts'
    /// default is false, which leaves crash-looping canaries running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_abort: Option<bool>,
    /// Pods created before this time are restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// Revisions within this window are rolled back to without steps or analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindow>,
    /// How a new revision is released: exactly one of `blueGreen` or `canary`.
    #[serde(default, skip_serializing_if = "RolloutStrategy::is_empty")]
    pub strategy: RolloutStrategy,
    /// A Deployment, ReplicaSet or PodTemplate whose pod template (and, when `selector` is
    /// unset, selector; a PodTemplate has none) the rollout uses instead of `template`, which
    /// must then be empty (Argo Rollouts' `workloadRef`, docs "Migrating to Rollouts: Reference
    /// Deployment From Rollout").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
    /// Roll the release back when alerts it is to blame for fire (a rollgate extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::alerts::AlertsSpec>,
    /// Guard a fully promoted release for a while: blamed alerts still send traffic back
    /// (a rollgate extension; needs `alerts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::alerts::GuardSpec>,
}

/// `spec.workloadRef`: the Deployment, ReplicaSet or PodTemplate a rollout takes its pod
/// template from.
///
/// Every field is optional in the type so that a wrong object still deserializes and
/// validation can name the field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// API version of the referenced object: `apps/v1` (Deployment, ReplicaSet) or `v1`
    /// (PodTemplate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referenced object: `Deployment`, `ReplicaSet` or `PodTemplate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the referenced object, in the rollout's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What happens to a referenced Deployment's or ReplicaSet's own pods: `never` (default:
    /// left alone), `onsuccess` (scaled to zero once the rollout is Healthy) or
    /// `progressively` (scaled down as the rollout's pods become available). A PodTemplate
    /// runs no pods: nothing is scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["never", "onsuccess", "progressively"]))]
    pub scale_down: Option<String>,
}

/// Rollback window: how many previous revisions roll back instantly.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindow {
    /// Number of previous revisions in the window.
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}

/// Release strategy. Exactly one member must be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("has(self.blueGreen) != has(self.canary)").message("exactly one of strategy.blueGreen or strategy.canary must be set"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue/green: a full preview beside the active version, then an instant switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
    /// Canary: traffic moved to the new version in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

impl RolloutStrategy {
    /// True when neither strategy is set.
    pub fn is_empty(&self) -> bool {
        self.blue_green.is_none() && self.canary.is_none()
    }
}

/// Blue/green strategy parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("has(self.activeService) && self.activeService != ''").message("blueGreen.activeService is required"))]
#[x_kube(validation = Rule::new("!has(self.previewService) || !has(self.activeService) || self.activeService != self.previewService").message("blueGreen.previewService must differ from blueGreen.activeService"))]
#[schemars(extend("required" = ["activeService"]))]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Service that receives production traffic; its selector is switched on promotion. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_service: Option<String>,
    /// Service that selects the new version before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
    /// Replicas of the new version before promotion (default: all of `spec.replicas`).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_replica_count: Option<i32>,
    /// Promote as soon as the new version is ready and analysis passed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// Promote automatically this many seconds after the pause starts.
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<i32>,
    /// Seconds the previous active ReplicaSet stays up after a switch (default 30).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may be waiting for their scale-down delay at once.
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds the preview ReplicaSet stays up after an abort (default 30).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Analysis that must pass before the active Service is switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Analysis run after the switch; a failure switches back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Anti-affinity between the new pods and the previous version's nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Labels and annotations added to active pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodMetadata>,
    /// Labels and annotations added to preview pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodMetadata>,
}

/// Anti-affinity against the previous version's pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    /// Preferred anti-affinity with a weight (1-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution: Option<PreferredAntiAffinity>,
    /// Required anti-affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution: Option<BTreeMap<String, String>>,
}

/// Weight of a preferred anti-affinity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PreferredAntiAffinity {
    /// Weight between 1 and 100.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
}

/// Extra pod labels and annotations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodMetadata {
    /// Labels to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Canary strategy parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("!has(self.canaryService) || !has(self.stableService) || self.canaryService != self.stableService").message("canary.canaryService must differ from canary.stableService"))]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service that selects only the canary pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Service that selects only the stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// The steps of the release, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
    /// Pods above `replicas` allowed during the release (absolute or percent, default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Pods below `replicas` allowed during the release (absolute or percent, default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Analysis running in the background from `startingStep` until the release completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysisBackground>,
    /// Exact traffic weights through a router instead of replica ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// Scale the stable ReplicaSet down as the canary weight rises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_stable_scale: Option<bool>,
    /// Seconds the previous stable ReplicaSet stays up after completion (default 30).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// Seconds the canary ReplicaSet stays up after an abort (default 30).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Argo Rollouts' limit of old ReplicaSets waiting for their scale-down delay. Kept in
    /// the schema so that the API server stores it, but not supported for canaries:
    /// validation reports it (InvalidSpec) instead of ignoring it.
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Labels and annotations added to canary pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodMetadata>,
    /// Labels and annotations added to stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodMetadata>,
}

/// One canary step. Exactly one member must be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Percentage of traffic sent to the canary (0-100).
    #[schemars(range(min = 0, max = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Wait for a duration, or until promoted when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    /// Run an analysis and wait for its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
    /// Scale the canary independently of its traffic weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Run ReplicaSets of the stable and/or canary pod template beside the release, with
    /// analyses, for a while (Argo Rollouts' `experiment` step); the release goes on when the
    /// experiment succeeds and is aborted when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<RolloutExperimentStep>,
    /// Header-based routing: requests whose headers match go to the canary Service, through
    /// a rule of the HTTPRoute named after a route of `trafficRouting.managedRoutes` (Argo
    /// Rollouts' `setHeaderRoute`). Without `match` the route is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    /// Traffic mirroring: a percentage of the matching requests is copied to the canary
    /// Service, through a rule named after a route of `trafficRouting.managedRoutes` (Argo
    /// Rollouts' `setMirrorRoute`). Without `match` the route is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
}

/// An `experiment` step (Argo Rollouts' experiment step). rollgate runs it itself, without an
/// Experiment object: one ReplicaSet per template (named `<experiment>-<template>`, where the
/// experiment is `<rollout>-<hash>-<revision>-<step>`), started together; once every one is
/// available, the analyses start and `duration` counts. As Argo's Experiment, it succeeds once
/// every analysis marked `requiredForCompletion` has succeeded, else (none required) once
/// `duration` has passed, else (neither) it runs until promoted past; a failed analysis aborts
/// the release. Then its ReplicaSets are scaled to zero.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["templates"]))]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    /// The ReplicaSets to run (at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<RolloutExperimentTemplate>,
    /// How long the experiment runs once every ReplicaSet is available (`30s`, `5m`, `1h`;
    /// a number is seconds), unless analyses are `requiredForCompletion` (they decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
    /// AnalysisRuns to run against the experiment's pods once they are available.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<RolloutExperimentAnalysis>,
}

/// One ReplicaSet of an `experiment` step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name", "specRef"]))]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    /// Its name (a DNS label), unique in the step; the ReplicaSet is `<experiment>-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whose pod template it runs: `stable` (the stable ReplicaSet's) or `canary` (the
    /// release's).
    #[schemars(extend("enum" = ["stable", "canary"]))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_ref: Option<String>,
    /// Its pods (default 1).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Labels and annotations added to its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodMetadata>,
    /// The ReplicaSet's selector (default: the rollout's); it must select the pods' labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Traffic weight for the template's pods (Argo Rollouts, SMI and ALB routers only):
    /// refused, see README.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// A Service for the template's pods (Argo Rollouts, for weighted experiments): refused,
    /// see README.
    #[schemars(schema_with = "crate::crds::preserve_unknown_object")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<serde_json::Value>,
}

/// One analysis of an `experiment` step: an AnalysisRun of one template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name", "templateName"]))]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentAnalysis {
    /// Its name (a DNS label), unique in the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The AnalysisTemplate (or ClusterAnalysisTemplate) it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// True for a ClusterAnalysisTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
    /// Arguments; a value may use `{{templates.<name>.podTemplateHash}}`, the pod-template
    /// hash of one of the step's ReplicaSets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<crate::analysis::AnalysisArg>,
    /// The experiment is over once every analysis marked so has succeeded (before or past
    /// `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_for_completion: Option<bool>,
}

/// A `setHeaderRoute` step (Argo Rollouts' header-based routing).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name"]))]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// The managed route (one of `trafficRouting.managedRoutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Header conditions, any of which sends a request to the canary. Absent or empty: the
    /// route is removed.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HeaderRoutingMatch>,
}

/// One header condition of a `setHeaderRoute` step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["headerName", "headerValue"]))]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// Name of the HTTP header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// How its value matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<StringMatch>,
}

/// A string condition: exactly one of `exact`, `prefix` or `regex`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// The value, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// A prefix of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A regular expression the value matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A `setMirrorRoute` step (Argo Rollouts' traffic mirroring).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name"]))]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// The managed route (one of `trafficRouting.managedRoutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Percentage of the matching requests that is mirrored (default: all).
    #[schemars(range(min = 0, max = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
    /// Request conditions: a request matching any entry is mirrored (the conditions of one
    /// entry must all hold). Absent or empty: the route is removed.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<RouteMatch>,
}

/// One request condition of a `setMirrorRoute` step; the conditions set must all hold.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// The HTTP method (only `exact` on the Gateway API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// The request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Header conditions, by header name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
}

/// A route the controller may add to the router (`trafficRouting.managedRoutes`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["name"]))]
pub struct ManagedRoute {
    /// Its name: the name of the HTTPRoute rule that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A pause step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RolloutPause {
    /// Seconds (integer) or a duration string such as `30s`, `5m`, `1h`. Absent: until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

/// Canary scale independent of traffic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Absolute number of canary replicas.
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Canary replicas as a percentage of `spec.replicas`.
    #[schemars(range(min = 0, max = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Scale the canary to match the traffic weight again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_traffic_weight: Option<bool>,
}

/// Traffic routers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    /// Gateway API HTTPRoute whose backendRef weights are set.
    #[serde(
        rename = "gatewayAPI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiRouting>,
    /// Routes the controller adds and removes (`setHeaderRoute`, `setMirrorRoute` steps), in
    /// order of precedence, ahead of the route's own rules. All of them are removed when the
    /// release completes or aborts; a rule of the route with one of these names is the
    /// controller's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<ManagedRoute>,
}

/// Gateway API routing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiRouting {
    /// Name of the HTTPRoute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<String>,
    /// Namespace of the HTTPRoute (default: the Rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Analysis attached to a rollout point.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates whose metrics are merged into one AnalysisRun.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
    /// Arguments for the templates; override the templates' own values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<crate::analysis::AnalysisArg>,
    /// Metrics that are measured but never decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<crate::analysis::DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<crate::analysis::MeasurementRetention>,
    /// What an analysis that cannot measure (its run ends in Error: the metric source failed
    /// `consecutiveErrorLimit` times in a row) does to the release: `Pause` (default: traffic
    /// stays where it is until a human retries, promotes or aborts) or `Abort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Pause", "Abort"]))]
    pub error_policy: Option<String>,
}

/// Background analysis of a canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// The analysis.
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// Index of the step at which the background analysis starts (default 0).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

/// Reference to an AnalysisTemplate or ClusterAnalysisTemplate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("required" = ["templateName"]))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Name of the template.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_name: String,
    /// True for a ClusterAnalysisTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// Observed state of a [`Rollout`], written only by the controller, except the manual-control
/// fields (`abort`, `promoteFull`, `pauseConditions` removal) that the CLI patches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Healthy, Progressing, Paused or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    /// Why the rollout is in its phase, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `BlueGreen` or `Canary` (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Detailed conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
    /// The generation this status describes. Trust `phase` only when it equals `metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pod-template hash of the current (desired) template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_pod_hash: Option<String>,
    /// Pod-template hash of the stable ReplicaSet.
    #[serde(rename = "stableRS", default, skip_serializing_if = "Option::is_none")]
    pub stable_rs: Option<String>,
    /// Revision number of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<i64>,
    /// Index of the current canary step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Why the rollout is paused, and since when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    /// True when the controller itself paused the rollout (for a human to promote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_pause: Option<bool>,
    /// Set to abort the current release; cleared by retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<bool>,
    /// When the release was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    /// Why the release was aborted (set with `abortedAt`; cleared by a retry or a new
    /// revision). `kubectl get rollout -o jsonpath='{.status.abortReason}'` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<crate::reasons::AbortReason>,
    /// The abort in words, rendered once when it happened (shown with the phase; never
    /// interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_message: Option<String>,
    /// When the release last made progress while waiting for pods, and a fingerprint of the
    /// replica counts it was waiting on then: the progress deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressMark>,
    /// Set to skip all remaining steps and analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_full: Option<bool>,
    /// Number of the current release attempt: one more with each new revision and each
    /// retry. AnalysisRuns carry it (label `rollgate.dev/attempt`), so a run that finished
    /// before the status naming it could be written is still known as this attempt's, and a
    /// finished run of an earlier attempt is never taken for one of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// Non-terminated pods of all of the rollout's ReplicaSets (their `status.replicas`), as in
    /// Argo Rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Non-terminated pods of the current revision's ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Ready pods: of the ReplicaSet the active Service selects (blue/green, once it selects
    /// one), else of all of the rollout's ReplicaSets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Available pods (ready for `minReadySeconds`), counted as `readyReplicas` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Non-terminated pods receiving production traffic: of the ReplicaSet the active Service
    /// selects (blue/green, once it selects one), else of all of the rollout's ReplicaSets.
    /// The `/scale` subresource's `status.replicas` (what an HPA reads as the current count).
    /// Named `HPAReplicas` in JSON, as in Argo Rollouts.
    #[serde(
        rename = "HPAReplicas",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hpa_replicas: Option<i32>,
    /// The label selector of the pods counted in `HPAReplicas`, in string form (the `/scale`
    /// subresource's `status.selector`, which an HPA lists pods with): the rollout's
    /// selector, plus the active revision's pod-template hash for blue/green once the active
    /// Service selects one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Blue/green state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStatus>,
    /// Canary state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// The `restartAt` value that was last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
    /// When the current release began (service-level alerts that started before it are not
    /// its fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_started_at: Option<Time>,
    /// The guard window of a fully promoted release, while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::alerts::GuardStatus>,
    /// The firing alert that rolled the release back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<crate::alerts::BlamedAlert>,
}

/// Rollout phases.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RolloutPhase {
    /// The stable version runs at full scale and nothing is in flight.
    Healthy,
    /// A release is moving.
    Progressing,
    /// A release waits for a human or a timer.
    Paused,
    /// The release was aborted or cannot proceed; `message` says why.
    Degraded,
}

impl std::fmt::Display for RolloutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Paused => "Paused",
            Self::Degraded => "Degraded",
        })
    }
}

/// A condition of a rollout (Kubernetes condition conventions).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// Progressing, Available, Paused, Completed, Healthy, ReplicaFailure or InvalidSpec.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// Machine-readable reason, CamelCase.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// When the condition was last updated (progress is measured from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
}

/// Where a release waiting for pods last made progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressMark {
    /// Fingerprint of the counts and sizes the release waited on (opaque; compared only for
    /// equality).
    pub fingerprint: String,
    /// When that fingerprint was first seen.
    pub since: Time,
    /// True once `progressDeadlineSeconds` passed without progress (stays until progress).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deadline_exceeded: bool,
}

/// Why a rollout is paused.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// `BlueGreenPause`, `CanaryPauseStep`, `InconclusiveAnalysisRun` or `AnalysisError`.
    pub reason: crate::reasons::PauseReason,
    /// When the pause started.
    pub start_time: Time,
}

/// Blue/green specific status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// Hash the active Service selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_selector: Option<String>,
    /// Hash the preview Service selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_selector: Option<String>,
    /// True once the new version was scaled to full size for promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_preview_check_point: Option<bool>,
    /// Pre-promotion AnalysisRun of the current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Post-promotion AnalysisRun of the current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

/// Canary specific status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Traffic weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// AnalysisRun of the current analysis step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Background AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Name of the experiment of the current `experiment` step (Argo Rollouts' field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_experiment: Option<String>,
    /// The experiment of the current `experiment` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentStatus>,
}

/// The state of a running `experiment` step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// The experiment's name (`<rollout>-<hash>-<revision>-<step>`, `-<attempt>` after a
    /// retry); its ReplicaSets are `<name>-<template>`.
    pub name: String,
    /// Index of its step.
    pub step: i32,
    /// Pending (ReplicaSets becoming available), Running, Successful, Failed, Error or
    /// Inconclusive.
    pub phase: String,
    /// When every ReplicaSet became available: `duration` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Time>,
    /// Its ReplicaSets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<ExperimentTemplateStatus>,
    /// Its AnalysisRuns, by analysis name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_runs: Vec<ExperimentAnalysisStatus>,
}

/// One ReplicaSet of an experiment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentTemplateStatus {
    /// The template's name.
    pub name: String,
    /// The ReplicaSet's name.
    pub replica_set: String,
    /// Its pod-template hash (what `{{templates.<name>.podTemplateHash}}` stands for).
    pub pod_template_hash: String,
}

/// One AnalysisRun of an experiment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisStatus {
    /// The analysis's name in the step.
    pub analysis: String,
    /// The run.
    #[serde(flatten)]
    pub run: RolloutAnalysisRunStatus,
}

/// Requested and actual canary weights.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// Weight the current step asks for.
    pub set_weight: i32,
    /// Weight the canary really gets (route weight, or its share of ready pods).
    pub actual_weight: i32,
}

/// Summary of one AnalysisRun in a rollout's status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    /// AnalysisRun name.
    pub name: String,
    /// Its phase.
    pub status: String,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube_core::CustomResourceExt;
    use serde_json::{Value, json};

    use super::Rollout;
    use crate::AnalysisTemplate;

    fn schema_of(crd: impl serde::Serialize) -> Value {
        let crd = serde_json::to_value(crd).expect("serializable");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    fn bounds(field: &Value) -> (Value, Value, Value, Value) {
        (
            field["type"].clone(),
            field["format"].clone(),
            field["minimum"].clone(),
            field["maximum"].clone(),
        )
    }

    #[test]
    fn the_rollout_schema_bounds_its_integers_and_requires_its_required_fields() {
        let root = schema_of(Rollout::crd());
        assert_eq!(root["required"], json!(["spec"]));
        let spec = &root["properties"]["spec"];
        let mut required: Vec<&str> = spec["required"]
            .as_array()
            .expect("spec.required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        // template and selector may come from spec.workloadRef's Deployment.
        assert_eq!(required, ["strategy"]);
        let p = &spec["properties"];
        let int32 = |min: Value, max: Value| (json!("integer"), json!("int32"), min, max);
        for (field, want) in [
            (&p["replicas"], int32(json!(0.0), Value::Null)),
            (&p["minReadySeconds"], int32(json!(0.0), Value::Null)),
            (&p["revisionHistoryLimit"], int32(json!(0.0), Value::Null)),
            (
                &p["progressDeadlineSeconds"],
                int32(json!(1.0), Value::Null),
            ),
            (
                &p["rollbackWindow"]["properties"]["revisions"],
                int32(json!(0.0), Value::Null),
            ),
        ] {
            assert_eq!(bounds(field), want, "{field}");
        }
        let strategy = &p["strategy"]["properties"];
        assert_eq!(strategy["blueGreen"]["required"], json!(["activeService"]));
        let canary = &strategy["canary"]["properties"];
        let step = &canary["steps"]["items"]["properties"];
        assert_eq!(bounds(&step["setWeight"]), int32(json!(0.0), json!(100.0)));
        assert_eq!(
            bounds(&step["setCanaryScale"]["properties"]["weight"]),
            int32(json!(0.0), json!(100.0))
        );
        assert_eq!(
            bounds(&canary["scaleDownDelayRevisionLimit"]),
            int32(json!(0.0), Value::Null)
        );
        assert_eq!(
            step["analysis"]["properties"]["templates"]["items"]["required"],
            json!(["templateName"])
        );
        assert_eq!(
            p["workloadRef"]["properties"]["scaleDown"]["enum"],
            json!(["never", "onsuccess", "progressively"])
        );
    }

    #[test]
    fn the_analysis_template_schema_requires_metric_names_providers_and_queries() {
        let root = schema_of(AnalysisTemplate::crd());
        let spec = &root["properties"]["spec"];
        assert_eq!(spec["required"], json!(["metrics"]));
        let metric = &spec["properties"]["metrics"]["items"];
        assert_eq!(metric["required"], json!(["name", "provider"]));
        let prometheus = &metric["properties"]["provider"]["properties"]["prometheus"];
        assert_eq!(prometheus["required"], json!(["address"]));
        assert_eq!(
            bounds(&prometheus["properties"]["timeout"]),
            (json!("integer"), json!("int64"), json!(1.0), Value::Null)
        );
        let retention = &spec["properties"]["measurementRetention"]["items"]["properties"];
        assert_eq!(
            bounds(&retention["limit"]),
            (json!("integer"), json!("int32"), json!(0.0), Value::Null)
        );
    }
}
