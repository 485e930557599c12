//! What the controller observed in the cluster, reduced to what the engine decides from.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{PodTemplate, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::labels::{
    ANALYSIS_KIND, ATTEMPT, EPHEMERAL_METADATA, EXPERIMENT, EXPERIMENT_ANALYSIS,
    EXPERIMENT_RELEASE, EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH, REVISION, SCALE_DOWN_DEADLINE,
    STEP_INDEX, TEMPLATE,
};
use rollgate_api::{
    AnalysisPhase, AnalysisRun, AnalysisTemplateSpec, ConditionReason, ConditionType, PodMetadata,
};

/// The observed world of one rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// ReplicaSets owned by the rollout: its revisions.
    pub replica_sets: Vec<ObservedReplicaSet>,
    /// ReplicaSets owned by the rollout that `experiment` steps run (never revisions).
    pub experiment_sets: Vec<ObservedExperimentSet>,
    /// Services the rollout references that exist, and Services whose selector it pinned
    /// earlier (labelled with its name; see [`rollgate_api::labels::ROLLOUT_NAME`]), by name.
    pub services: BTreeMap<String, ObservedService>,
    /// AnalysisRuns owned by the rollout.
    pub analysis_runs: Vec<ObservedAnalysisRun>,
    /// Analysis templates the rollout references that exist, keyed by `(cluster_scope, name)`.
    pub templates: BTreeMap<(bool, String), AnalysisTemplateSpec>,
    /// The Gateway API HTTPRoute a canary routes traffic through, when it exists.
    pub route: Option<ObservedRoute>,
    /// Pods of the rollout's ReplicaSets; read only while a `restartAt` is pending or while
    /// ephemeral metadata is to be kept in sync ([`crate::pods_wanted`]).
    pub pods: Vec<ObservedPod>,
    /// Secrets the rollout's analyses name (`secretKeyRef`, `authentication.secretName`) that
    /// exist in its namespace, by name, with the keys of their data (never the values).
    pub secrets: BTreeMap<String, BTreeSet<String>>,
    /// Firing alerts that match `spec.alerts`, when the rollout has it.
    pub alerts: ObservedAlerts,
    /// The object `spec.workloadRef` names, when the rollout has one and it exists.
    pub workload: Option<ObservedWorkload>,
}

/// The kinds of object `spec.workloadRef` may name, as Argo Rollouts accepts them: an
/// `apps/v1` Deployment or ReplicaSet (pod template at `spec.template`, selector at
/// `spec.selector`) or a `v1` PodTemplate (pod template at `template`, no selector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `v1` PodTemplate: a template only, it runs no pods and has no size.
    PodTemplate,
}

impl WorkloadKind {
    /// Every accepted kind, in the order messages list them.
    pub const ALL: [Self; 3] = [Self::Deployment, Self::ReplicaSet, Self::PodTemplate];

    /// The kind as written in `spec.workloadRef.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::ReplicaSet => "ReplicaSet",
            Self::PodTemplate => "PodTemplate",
        }
    }

    /// The `apiVersion` that goes with the kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Deployment | Self::ReplicaSet => "apps/v1",
            Self::PodTemplate => "v1",
        }
    }

    /// The kind named `kind`, if it is an accepted one (the API version is not checked).
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind of a `workloadRef` whose `apiVersion` and `kind` are both the accepted ones.
    pub fn from_ref(api_version: &str, kind: &str) -> Option<Self> {
        Self::from_kind(kind).filter(|k| k.api_version() == api_version)
    }

    /// True for the kinds with pods of their own, which `scaleDown` scales (`spec.replicas`).
    pub fn scalable(self) -> bool {
        !matches!(self, Self::PodTemplate)
    }

    /// Where the kind keeps its pod template, as a field path for messages.
    pub fn template_path(self) -> &'static str {
        match self {
            Self::Deployment | Self::ReplicaSet => "spec.template",
            Self::PodTemplate => "template",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The controller (owner reference with `controller: true`) of a referenced workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadController {
    /// Its kind (`Deployment`, `Rollout`, ...).
    pub kind: String,
    /// Its name (owner references are namespace-local).
    pub name: String,
}

/// The object a rollout's `spec.workloadRef` names (Argo Rollouts' `workloadRef`), reduced to
/// what the engine reads: its pod template and selector, the size it was given and who
/// controls it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedWorkload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
    /// Its pod template (`spec.template`; a PodTemplate's `template`).
    pub template: PodTemplateSpec,
    /// Its selector (`spec.selector`; a PodTemplate has none).
    pub selector: Option<LabelSelector>,
    /// Its desired pods (`spec.replicas`, 1 when unset as the API server defaults it; 0 for a
    /// PodTemplate, which runs none).
    pub replicas: i32,
    /// Its controller, from its owner references (a ReplicaSet of a Deployment or of a
    /// Rollout, say).
    pub controller: Option<WorkloadController>,
}

impl Default for ObservedWorkload {
    fn default() -> Self {
        Self {
            kind: WorkloadKind::Deployment,
            name: String::new(),
            template: PodTemplateSpec::default(),
            selector: None,
            replicas: 0,
            controller: None,
        }
    }
}

fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<WorkloadController> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| WorkloadController {
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
}

impl ObservedWorkload {
    /// Reads a Deployment.
    pub fn from_deployment(d: &Deployment) -> Self {
        Self {
            kind: WorkloadKind::Deployment,
            name: d.metadata.name.clone().unwrap_or_default(),
            template: d.spec.template.clone(),
            selector: Some(d.spec.selector.clone()).filter(|s| *s != LabelSelector::default()),
            replicas: d.spec.replicas.unwrap_or(1),
            controller: controller_of(&d.metadata),
        }
    }

    /// Reads a ReplicaSet (one the rollout refers to, not one of its own).
    pub fn from_replica_set(rs: &ReplicaSet) -> Self {
        let spec = rs.spec.clone();
        Self {
            kind: WorkloadKind::ReplicaSet,
            name: rs.metadata.name.clone().unwrap_or_default(),
            template: spec.template.unwrap_or_default(),
            selector: Some(spec.selector).filter(|s| *s != LabelSelector::default()),
            replicas: spec.replicas.unwrap_or(1),
            controller: controller_of(&rs.metadata),
        }
    }

    /// Reads a PodTemplate.
    pub fn from_pod_template(t: &PodTemplate) -> Self {
        Self {
            kind: WorkloadKind::PodTemplate,
            name: t.metadata.name.clone().unwrap_or_default(),
            template: t.template.clone().unwrap_or_default(),
            selector: None,
            replicas: 0,
            controller: controller_of(&t.metadata),
        }
    }

    /// Reads a Deployment, ReplicaSet or PodTemplate given as JSON (by its `kind`); `None`
    /// when it is none of them or does not decode.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        let kind = value.get("kind").and_then(serde_json::Value::as_str)?;
        match WorkloadKind::from_kind(kind)? {
            WorkloadKind::Deployment => serde_json::from_value::<Deployment>(value.clone())
                .ok()
                .map(|d| Self::from_deployment(&d)),
            WorkloadKind::ReplicaSet => serde_json::from_value::<ReplicaSet>(value.clone())
                .ok()
                .map(|rs| Self::from_replica_set(&rs)),
            WorkloadKind::PodTemplate => serde_json::from_value::<PodTemplate>(value.clone())
                .ok()
                .map(|t| Self::from_pod_template(&t)),
        }
    }
}

/// What the alert source of `spec.alerts` said.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ObservedAlerts {
    /// No `spec.alerts`, or not asked (no release guarded).
    #[default]
    NotAsked,
    /// The source could not be read or answered garbage: nothing is known, nothing acts.
    Unknown(String),
    /// The firing alerts matching the rollout's matchers (pending ones are never included).
    Firing(Vec<ObservedAlert>),
}

/// One firing alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedAlert {
    /// `alertname`.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// Its fingerprint at the source.
    pub fingerprint: String,
}

/// A pod of one of the rollout's ReplicaSets.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPod {
    /// Pod name.
    pub name: String,
    /// Its pod-template hash.
    pub hash: String,
    /// When it was created.
    pub created: Option<Timestamp>,
    /// True when its Ready condition is True.
    pub ready: bool,
    /// True once it is being deleted.
    pub terminating: bool,
    /// Its labels and annotations (`metadata`), which ephemeral metadata changes in place.
    pub metadata: PodMetadata,
}

impl ObservedPod {
    /// Reads a pod; `None` when it carries no rollgate pod-template hash label.
    pub fn from_pod(pod: &k8s_openapi::api::core::v1::Pod) -> Option<Self> {
        let hash = pod
            .metadata
            .labels
            .as_ref()?
            .get(POD_TEMPLATE_HASH)?
            .clone();
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Some(Self {
            name: pod.metadata.name.clone().unwrap_or_default(),
            hash,
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            metadata: PodMetadata {
                labels: pod.metadata.labels.clone().unwrap_or_default(),
                annotations: pod.metadata.annotations.clone().unwrap_or_default(),
            },
        })
    }
}

impl Observed {
    /// The ReplicaSet of a pod-template hash.
    pub fn replica_set(&self, hash: &str) -> Option<&ObservedReplicaSet> {
        self.replica_sets.iter().find(|rs| rs.hash == hash)
    }

    /// The `ReplicaFailure` condition the rollout carries, as Argo Rollouts (and the Deployment
    /// controller) pick it: the new ReplicaSet's (of `new_hash`), else an older one's (the
    /// newest revision first, so the choice does not depend on the order of a listing).
    pub fn replica_failure(&self, new_hash: Option<&str>) -> Option<&ReplicaFailure> {
        let new = new_hash
            .and_then(|h| self.replica_set(h))
            .and_then(|rs| rs.failure.as_ref());
        new.or_else(|| {
            let mut old: Vec<&ObservedReplicaSet> = self
                .replica_sets
                .iter()
                .filter(|rs| Some(rs.hash.as_str()) != new_hash)
                .collect();
            old.sort_by(|a, b| {
                b.revision
                    .cmp(&a.revision)
                    .then_with(|| a.name.cmp(&b.name))
            });
            old.into_iter().find_map(|rs| rs.failure.as_ref())
        })
    }
}

/// A ReplicaSet owned by the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedReplicaSet {
    /// Object name.
    pub name: String,
    /// Its pod-template hash.
    pub hash: String,
    /// Rollout revision it belongs to (0 if unknown).
    pub revision: i64,
    /// Desired pods (`spec.replicas`).
    pub replicas: i32,
    /// Non-terminated pods the ReplicaSet controller last reported (`status.replicas`).
    pub pods: i32,
    /// Ready pods.
    pub ready: i32,
    /// Available pods (ready for `minReadySeconds`).
    pub available: i32,
    /// When it is to be scaled to zero, if scheduled.
    pub scale_down_deadline: Option<Timestamp>,
    /// Labels and annotations of its pod template (`spec.template.metadata`).
    pub template_metadata: PodMetadata,
    /// The ephemeral (role) metadata last put on its pod template and pods, as recorded in its
    /// [`EPHEMERAL_METADATA`] annotation (empty when none; unreadable counts as none).
    pub ephemeral: PodMetadata,
    /// Its `ReplicaFailure` condition, when the ReplicaSet controller reports one (it could
    /// not create or delete pods).
    pub failure: Option<ReplicaFailure>,
    /// The Rollout's pod template it was made from: its [`TEMPLATE`] annotation, else its own
    /// template without the pod-template hash label (what an `experiment` step's
    /// `specRef: stable` runs).
    pub template: Option<Box<PodTemplateSpec>>,
}

/// A ReplicaSet of an `experiment` step (labelled [`EXPERIMENT_TEMPLATE`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedExperimentSet {
    /// Object name.
    pub name: String,
    /// The experiment it belongs to ([`EXPERIMENT`] annotation).
    pub experiment: String,
    /// The step template's name.
    pub template: String,
    /// The hash of the release that ran it ([`EXPERIMENT_RELEASE`]).
    pub release: String,
    /// Its pod-template hash.
    pub hash: String,
    /// Desired pods (`spec.replicas`).
    pub replicas: i32,
    /// Non-terminated pods (`status.replicas`).
    pub pods: i32,
    /// Ready pods.
    pub ready: i32,
    /// Available pods.
    pub available: i32,
}

impl ObservedExperimentSet {
    /// Reads a ReplicaSet; `None` when it is not an experiment's.
    pub fn from_replica_set(rs: &ReplicaSet) -> Option<Self> {
        let meta = &rs.metadata;
        let labels = meta.labels.as_ref()?;
        let status = rs.status.as_ref();
        Some(Self {
            name: meta.name.clone().unwrap_or_default(),
            experiment: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPERIMENT))
                .cloned()
                .unwrap_or_default(),
            template: labels.get(EXPERIMENT_TEMPLATE)?.clone(),
            release: labels.get(EXPERIMENT_RELEASE).cloned().unwrap_or_default(),
            hash: labels.get(POD_TEMPLATE_HASH).cloned().unwrap_or_default(),
            replicas: rs.spec.replicas.unwrap_or(1),
            pods: status.map_or(0, |s| s.replicas),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
        })
    }

    /// True when all its pods are ready and available.
    pub fn is_available(&self) -> bool {
        self.ready >= self.replicas && self.available >= self.replicas
    }
}

/// The status of a Kubernetes condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown` (also what any other text is read as).
    Unknown,
}

impl ConditionStatus {
    /// Reads a condition's `status`.
    pub fn parse(s: &str) -> Self {
        match s {
            "True" => Self::True,
            "False" => Self::False,
            _ => Self::Unknown,
        }
    }

    /// The value as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// A ReplicaSet's `ReplicaFailure` condition: the ReplicaSet controller could not create or
/// delete a pod (a ResourceQuota, an admission webhook refused it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFailure {
    /// The condition's status.
    pub status: ConditionStatus,
    /// Its reason: `FailedCreate` or `FailedDelete`; `None` for any other reason (the
    /// ReplicaSet controller leaves it empty when the pod count was right after all).
    pub reason: Option<ConditionReason>,
    /// Its message, as the ReplicaSet controller wrote it (shown as is, never read).
    pub message: String,
    /// Its `lastTransitionTime`, which the Rollout's condition copies (as Argo Rollouts and the
    /// Deployment controller do); `None` when the ReplicaSet controller left it out.
    pub since: Option<Timestamp>,
}

impl ReplicaFailure {
    /// Reads the `ReplicaFailure` condition of a ReplicaSet, if it has one.
    pub fn from_replica_set(rs: &ReplicaSet) -> Option<Self> {
        let condition = rs
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_.as_deref() == Some(ConditionType::ReplicaFailure.as_str()))?;
        let reason = condition
            .reason
            .as_deref()
            .and_then(|r| r.parse::<ConditionReason>().ok())
            .filter(|r| {
                matches!(
                    r,
                    ConditionReason::FailedCreate | ConditionReason::FailedDelete
                )
            });
        Some(Self {
            status: ConditionStatus::parse(condition.status.as_deref().unwrap_or_default()),
            reason,
            message: condition.message.clone().unwrap_or_default(),
            since: condition.last_transition_time.as_ref().map(|t| t.0),
        })
    }
}

impl ObservedReplicaSet {
    /// Reads a ReplicaSet; `None` when it carries no rollgate pod-template hash label or is an
    /// experiment's ([`ObservedExperimentSet`]).
    pub fn from_replica_set(rs: &ReplicaSet) -> Option<Self> {
        let meta = &rs.metadata;
        let labels = meta.labels.as_ref()?;
        if labels.contains_key(EXPERIMENT_TEMPLATE) {
            return None;
        }
        let hash = labels.get(POD_TEMPLATE_HASH)?.clone();
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
        let status = rs.status.as_ref();
        Some(Self {
            name: meta.name.clone().unwrap_or_default(),
            hash,
            revision: annotation(REVISION)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            replicas: rs.spec.replicas.unwrap_or(1),
            pods: status.map_or(0, |s| s.replicas),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            scale_down_deadline: annotation(SCALE_DOWN_DEADLINE).and_then(|v| v.parse().ok()),
            template_metadata: rs
                .spec
                .template
                .as_ref()
                .and_then(|t| t.metadata.as_ref())
                .map(|m| PodMetadata {
                    labels: m.labels.clone().unwrap_or_default(),
                    annotations: m.annotations.clone().unwrap_or_default(),
                })
                .unwrap_or_default(),
            ephemeral: annotation(EPHEMERAL_METADATA)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            failure: ReplicaFailure::from_replica_set(rs),
            template: annotation(TEMPLATE)
                .and_then(|t| serde_json::from_str::<PodTemplateSpec>(t).ok())
                .or_else(|| {
                    let mut t = rs.spec.template.clone()?;
                    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                        l.remove(POD_TEMPLATE_HASH);
                    }
                    Some(t)
                })
                .map(Box::new),
        })
    }

    /// True when `n` pods are both ready and available.
    pub fn has_ready(&self, n: i32) -> bool {
        self.ready >= n && self.available >= n
    }
}

/// A Service referenced by the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedService {
    /// Object name.
    pub name: String,
    /// The pod-template hash its selector pins, if any.
    pub selected_hash: Option<String>,
}

impl ObservedService {
    /// Reads a Service.
    pub fn from_service(svc: &Service) -> Self {
        Self {
            name: svc.metadata.name.clone().unwrap_or_default(),
            selected_hash: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.get(POD_TEMPLATE_HASH))
                .cloned(),
        }
    }
}

/// The rollout point an AnalysisRun belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnalysisKind {
    /// Blue/green, before the active switch.
    PrePromotion,
    /// Blue/green, after the active switch.
    PostPromotion,
    /// Canary `analysis` step.
    Step,
    /// Canary background analysis.
    Background,
    /// `spec.guard.analysis`, inside the guard window after full promotion.
    Guard,
    /// An analysis of a canary `experiment` step.
    Experiment,
}

impl AnalysisKind {
    /// Label value and name part.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrePromotion => "pre-promotion",
            Self::PostPromotion => "post-promotion",
            Self::Step => "step",
            Self::Background => "background",
            Self::Guard => "guard",
            Self::Experiment => "experiment",
        }
    }

    /// Parses a label value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pre-promotion" => Some(Self::PrePromotion),
            "post-promotion" => Some(Self::PostPromotion),
            "step" => Some(Self::Step),
            "background" => Some(Self::Background),
            "guard" => Some(Self::Guard),
            "experiment" => Some(Self::Experiment),
            _ => None,
        }
    }
}

/// An AnalysisRun owned by the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAnalysisRun {
    /// Object name.
    pub name: String,
    /// Pod-template hash of the revision it analyses.
    pub hash: String,
    /// Analysis point.
    pub kind: AnalysisKind,
    /// Index of the canary step, for [`AnalysisKind::Step`] runs.
    pub step: Option<i32>,
    /// Run phase.
    pub phase: AnalysisPhase,
    /// Run message.
    pub message: Option<String>,
    /// True once `spec.terminate` was set.
    pub terminating: bool,
    /// The release attempt it belongs to (label `rollgate.dev/attempt`), if labelled.
    pub attempt: Option<i64>,
    /// The analysis's name in its `experiment` step, for [`AnalysisKind::Experiment`] runs.
    pub experiment_analysis: Option<String>,
    /// True while a metric's latest measurements failed to measure (its `consecutiveError`
    /// is above zero): the run has no current evidence.
    pub measuring_errors: bool,
}

impl ObservedAnalysisRun {
    /// Reads an AnalysisRun; `None` when it lacks rollgate's labels.
    pub fn from_analysis_run(run: &AnalysisRun) -> Option<Self> {
        let labels = run.metadata.labels.as_ref()?;
        let status = run.status.as_ref();
        Some(Self {
            name: run.metadata.name.clone().unwrap_or_default(),
            hash: labels.get(POD_TEMPLATE_HASH)?.clone(),
            kind: AnalysisKind::parse(labels.get(ANALYSIS_KIND)?)?,
            step: labels.get(STEP_INDEX).and_then(|v| v.parse().ok()),
            phase: status
                .and_then(|s| s.phase)
                .unwrap_or(AnalysisPhase::Pending),
            message: status.and_then(|s| s.message.clone()),
            terminating: run.spec.terminate.unwrap_or(false),
            attempt: labels.get(ATTEMPT).and_then(|v| v.parse().ok()),
            experiment_analysis: labels.get(EXPERIMENT_ANALYSIS).cloned(),
            measuring_errors: status
                .is_some_and(|s| s.metric_results.iter().any(|m| m.consecutive_error > 0)),
        })
    }
}

/// A Gateway API HTTPRoute, reduced to the backends of its rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedRoute {
    /// Namespace of the route.
    pub namespace: String,
    /// Name of the route.
    pub name: String,
    /// For each rule, its Service backends as `(name, weight)`; the weight is `None` when
    /// unset (Gateway API then weighs the backend 1).
    pub rules: Vec<Vec<(String, Option<i32>)>>,
    /// The rules as read (`spec.rules`), from which managed routes are written and compared
    /// ([`crate::routes`]).
    pub spec_rules: Vec<serde_json::Value>,
}

impl ObservedRoute {
    /// Reads an HTTPRoute given as JSON (`spec.rules[].backendRefs[]`). Backends of another
    /// kind than Service are ignored.
    pub fn from_json(namespace: &str, name: &str, route: &serde_json::Value) -> Self {
        let spec_rules = route
            .pointer("/spec/rules")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        Self::from_rules(namespace, name, spec_rules)
    }

    /// An HTTPRoute with these rules (`spec.rules`).
    pub fn from_rules(namespace: &str, name: &str, spec_rules: Vec<serde_json::Value>) -> Self {
        let rules = spec_rules
            .iter()
            .map(|rule| {
                rule.get("backendRefs")
                    .and_then(serde_json::Value::as_array)
                    .map(|refs| {
                        refs.iter()
                            .filter(|b| {
                                b.get("kind")
                                    .and_then(|k| k.as_str())
                                    .is_none_or(|k| k == "Service")
                                    && b.get("group")
                                        .and_then(|g| g.as_str())
                                        .is_none_or(str::is_empty)
                            })
                            .filter_map(|b| {
                                let name = b.get("name")?.as_str()?.to_string();
                                let weight = b
                                    .get("weight")
                                    .and_then(serde_json::Value::as_i64)
                                    .and_then(|w| i32::try_from(w).ok());
                                Some((name, weight))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            rules,
            spec_rules,
        }
    }

    /// Weights `(canary, stable)` of the first rule that names both Services, normalised to
    /// percentages of their sum (`None` when no rule names both).
    pub fn weights(&self, canary: &str, stable: &str) -> Option<(i32, i32)> {
        self.rules.iter().find_map(|rule| {
            let w = |svc: &str| {
                rule.iter()
                    .find(|(n, _)| n == svc)
                    .map(|(_, w)| w.unwrap_or(1).max(0))
            };
            let (c, s) = (w(canary)?, w(stable)?);
            let total = c + s;
            if total == 0 {
                return Some((0, 100));
            }
            let cp = (i64::from(c) * 100 + i64::from(total) / 2) / i64::from(total);
            let cp = i32::try_from(cp).unwrap_or(0);
            Some((cp, 100 - cp))
        })
    }
}
