//! Promotion pipelines (rollgate extensions): a `PromotionPipeline` carries the same artifact
//! (the images of named containers) from one stage's Rollout to the next through gates; a
//! `Release` records one artifact and where it went; an `Approval` lets a person open the
//! approval gate of one stage for one release, or close it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rollout::RolloutAnalysis;

/// Desired state of a [`PromotionPipeline`]: its stages, in order, and the gates between them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "PromotionPipeline",
    namespaced,
    status = "PromotionPipelineStatus",
    shortname = "pipeline",
    shortname = "pp",
    category = "rollgate",
    printcolumn(name = "Stages", type_ = "string", json_path = ".status.summary"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(name = "Newest", type_ = "string", json_path = ".status.newestRelease"),
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
#[schemars(extend("required" = ["stages"]))]
#[serde(rename_all = "camelCase")]
pub struct PromotionPipelineSpec {
    /// Containers whose images travel between stages (default: every container of the first
    /// stage's Rollout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// The stages. The first one's Rollout is the one CI applies; each later stage receives a
    /// release once its gates open.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Stops the line: nothing is promoted anywhere while true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// One stage of a pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageSpec {
    /// Unique name within the pipeline (`staging`, `production`).
    pub name: String,
    /// The Rollout this stage runs.
    pub rollout: StageRollout,
    /// An analysis run once the Rollout is Healthy on the release's images; the release is
    /// Verified in this stage when it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<RolloutAnalysis>,
    /// Stages that must have verified a release before it is promoted here (default: the stage
    /// before). Not allowed on the first stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// How long the release must have been continuously Healthy and verified in every `after`
    /// stage (`30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
    /// Distinct approvals needed (default 0).
    #[schemars(range(min = 0))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<i32>,
    /// Promotion windows. Deny beats Allow; without an Allow window the stage is always open
    /// (except inside Deny windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<PromotionWindow>,
    /// Promote as soon as the gates open (default true); false: only `rollgate promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promote: Option<bool>,
}

/// Where a stage's Rollout lives.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRollout {
    /// Rollout name.
    pub name: String,
    /// Its namespace (default: the pipeline's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Another cluster, reached through a kubeconfig in a Secret of the pipeline's namespace
    /// (default: this cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<StageCluster>,
}

/// Another cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageCluster {
    /// Secret holding a kubeconfig (key `value` by default, the Cluster API / Flux convention).
    pub kubeconfig_secret: SecretKey,
}

/// One key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKey {
    /// Secret name.
    pub name: String,
    /// Key (default `value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A recurring window in which promotions into a stage are allowed or denied.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionWindow {
    /// `Allow` or `Deny`.
    #[schemars(extend("enum" = ["Allow", "Deny"]))]
    pub kind: String,
    /// When the window opens: a 5-field cron schedule (`0 9 * * 1-5`: weekdays at 09:00).
    pub schedule: String,
    /// How long it stays open once opened (`8h`).
    pub duration: String,
    /// IANA time zone of the schedule (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Observed state of a [`PromotionPipeline`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionPipelineStatus {
    /// Generation of the spec this status is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One line per stage for `kubectl get` (`staging:Verified production:Blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Human-readable state (rendered from the typed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The newest release the pipeline knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_release: Option<String>,
    /// Per stage: what runs there, what last ran Good, holds, connectivity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<PipelineStageStatus>,
    /// Conditions (`Ready`, `InvalidSpec`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A stage as the pipeline sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStageStatus {
    /// Stage name.
    pub name: String,
    /// The release whose images the stage's Rollout runs (or is being given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The last release verified here and not Bad: what a failure here goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good: Option<String>,
    /// Automatic promotion into this stage is held until a person acts (after a failure
    /// restored the last good release, or a manual promotion of an older release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<StageHold>,
    /// The last `Promote` Approval acted upon for this stage (they act once each, in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promote: Option<String>,
    /// Whether the stage's cluster and Rollout could be read at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// Why it could not be read, or what went wrong writing to it (infrastructure, not a
    /// release failure: retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A hold on automatic promotion into a stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageHold {
    /// Why.
    pub reason: HoldReason,
    /// The release that caused it.
    pub release: String,
    /// Since when.
    pub since: Time,
}

crate::reasons::string_enum! {
    /// Why automatic promotion into a stage is held.
    pub enum HoldReason {
        /// A release failed here and the last good one was restored.
        Restored,
        /// A person promoted an older release by hand.
        ManualPromotion,
    }
}

/// One artifact travelling through a pipeline. Created by the controller when the first
/// stage's Rollout starts releasing new images; its spec never changes.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "Release",
    namespaced,
    status = "ReleaseStatus",
    shortname = "rel",
    category = "rollgate",
    printcolumn(name = "Pipeline", type_ = "string", json_path = ".spec.pipeline"),
    printcolumn(name = "Number", type_ = "integer", json_path = ".spec.number"),
    printcolumn(name = "Verdict", type_ = "string", json_path = ".status.verdict"),
    printcolumn(name = "Stages", type_ = "string", json_path = ".status.summary"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Images",
        type_ = "string",
        json_path = ".status.imagesText",
        priority = "1"
    ),
    derive = "PartialEq"
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a Release's spec is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSpec {
    /// The pipeline it belongs to (same namespace).
    pub pipeline: String,
    /// Container name -> image pinned by digest (`repo@sha256:...`): what later stages get.
    pub images: BTreeMap<String, String>,
    /// Container name -> image as written in the first stage's Rollout (a tag, or the same
    /// digest): how the first stage runs it.
    pub source_images: BTreeMap<String, String>,
    /// The stage where it entered the pipeline.
    pub entered: String,
    /// Its number in the pipeline: 1 for the first release, then one more each (newer
    /// releases have higher numbers).
    #[serde(default)]
    pub number: i64,
    /// When the pipeline recorded it.
    pub created: Time,
}

/// Where a release stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    /// Unknown, Good (verified in every stage) or Bad (failed somewhere: never promoted again
    /// by anything automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why it is Bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<ReleaseFailure>,
    /// One line for `kubectl get` (`staging:Verified production:Blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The images, one line (`web=repo@sha256:...`), for `kubectl get -o wide`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_text: Option<String>,
    /// Per stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<ReleaseStageStatus>,
}

crate::reasons::string_enum! {
    /// The verdict on a release.
    pub enum Verdict {
        /// Not failed anywhere yet, not verified everywhere yet.
        Unknown,
        /// Verified in every stage.
        Good,
        /// Failed in a stage: never promoted again automatically.
        Bad,
    }
}

/// Why a release is Bad.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseFailure {
    /// The stage where it failed.
    pub stage: String,
    /// Why (the Rollout's abort reason, or a failed verification).
    pub cause: FailureCause,
    /// Details (the Rollout's message, the run's name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it was seen.
    pub at: Time,
}

crate::reasons::string_enum! {
    /// What made a release Bad.
    pub enum FailureCause {
        /// The stage's Rollout aborted the release (its `abortReason` is in the message).
        RolloutAborted,
        /// The stage's verification analysis failed.
        VerificationFailed,
    }
}

/// A release in one stage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStageStatus {
    /// Stage name.
    pub name: String,
    /// Where it stands there.
    pub phase: StagePhase,
    /// Why it waits (phase Blocked), typed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<Gate>,
    /// Rendered from `phase` and `blocked` (`soak 12m left; needs 1 approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Promotion attempt number into this stage (verification runs are per attempt).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: i32,
    /// When its images were written to the stage's Rollout (this attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
    /// Since when it has been continuously Healthy and verified here (the soak clock; reset
    /// by Degraded, an abort or a blamed alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_since: Option<Time>,
    /// When it stopped running here while verified (replaced by a newer release): its soak
    /// is then `leftAt - verifiedSince`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<Time>,
    /// The `Promote` Approval that promoted it here by hand, if one did (this attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    /// The verification AnalysisRun of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_run: Option<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

crate::reasons::string_enum! {
    /// A release in one stage.
    pub enum StagePhase {
        /// Not its turn (upstream not verified yet).
        Waiting,
        /// Upstream verified it, a gate is closed (see `blocked`).
        Blocked,
        /// Its images are being written to the stage's Rollout.
        Promoting,
        /// The stage's Rollout releases it.
        Progressing,
        /// Healthy there; the verification analysis runs.
        Verifying,
        /// Healthy and verified there.
        Verified,
        /// It failed there.
        Failed,
        /// It failed there and the last good release was written back.
        RolledBack,
        /// A newer release took its place before it got here, or replaced it here.
        Superseded,
    }
}

// `string_enum!` declares the enum: its derives cannot take `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for StagePhase {
    fn default() -> Self {
        Self::Waiting
    }
}

/// A closed gate: why a release is not promoted into a stage now. `kind` says which; the other
/// fields are those that kind uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Which gate.
    pub kind: GateKind,
    /// `Upstream`, `Soak`: the `after` stage concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `Soak`: when the soak is complete. `Window`: when a window opens next (none: not within
    /// a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// `Approvals`: how many are needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<i32>,
    /// `Approvals`: how many are present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub have: Option<i32>,
    /// `Rejected`: who. `InFlight`: the release being promoted there. `MissingContainer`:
    /// the containers missing. `Claimed`: the other pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

crate::reasons::string_enum! {
    /// The gates between stages.
    pub enum GateKind {
        /// An `after` stage has not verified this release.
        Upstream,
        /// Not soaked long enough in an `after` stage.
        Soak,
        /// Approvals missing.
        Approvals,
        /// A person rejected it for this stage.
        Rejected,
        /// Outside the promotion windows.
        Window,
        /// The pipeline is paused.
        Paused,
        /// Another promotion into the stage is in flight.
        InFlight,
        /// Automatic promotion is held (see the pipeline's stage status).
        Held,
        /// `autoPromote: false`: only `rollgate promote`.
        Manual,
        /// The stage's cluster or Rollout cannot be reached (infrastructure: retried).
        Unreachable,
        /// The stage's Rollout lacks a container whose image the release carries (`by`
        /// names them): an error in the target, fixed there.
        MissingContainer,
        /// Another pipeline, created first, drives the stage's Rollout (`by` names it): two
        /// pipelines never write the same Rollout.
        Claimed,
    }
}

/// A person's decision on one release for one stage: approve, reject, or promote now.
/// Create-only: a decision is changed by creating another Approval (the newest per approver
/// counts). RBAC on creating Approvals is the permission to decide.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "rollgate.dev",
    version = "v1alpha1",
    kind = "Approval",
    namespaced,
    shortname = "appr",
    category = "rollgate",
    printcolumn(name = "Release", type_ = "string", json_path = ".spec.release"),
    printcolumn(name = "Stage", type_ = "string", json_path = ".spec.stage"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(name = "Approver", type_ = "string", json_path = ".spec.approver"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Comment",
        type_ = "string",
        json_path = ".spec.comment",
        priority = "1"
    ),
    derive = "PartialEq",
    derive = "Default"
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an Approval is immutable: create another one"))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSpec {
    /// The Release (same namespace).
    pub release: String,
    /// The stage it is for.
    pub stage: String,
    /// `Approve`, `Reject` or `Promote`.
    pub decision: Decision,
    /// Who decided (a ValidatingAdmissionPolicy pins it to the requesting user).
    pub approver: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

crate::reasons::string_enum! {
    /// An approver's decision.
    pub enum Decision {
        /// Opens the approval gate (one of the approvals needed).
        Approve,
        /// Closes it for good for this release and stage.
        Reject,
        /// Promotes the release into the stage now (`rollgate promote`), past soak, windows,
        /// approvals and `autoPromote: false`, but never a Bad release nor one that an `after`
        /// stage has not verified. Promoting an older release than the newest verified one
        /// holds automatic promotion into the stage until the newest is promoted there again.
        Promote,
    }
}

// `string_enum!` declares the enum: its derives cannot take `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Decision {
    fn default() -> Self {
        Self::Approve
    }
}
