//! Label and annotation keys rollgate writes on the objects it manages.

/// Label on every ReplicaSet and pod naming the hash of the pod template it was created from.
pub const POD_TEMPLATE_HASH: &str = "rollgate.dev/pod-template-hash";
/// Label on ReplicaSets and AnalysisRuns naming the Rollout that owns them.
pub const ROLLOUT_NAME: &str = "rollgate.dev/rollout";
/// Annotation on a ReplicaSet holding the rollout revision number it was created for.
pub const REVISION: &str = "rollgate.dev/revision";
/// Annotation on a ReplicaSet holding the Rollout's pod template it was created from, as the
/// Rollout stored it (compact JSON): `rollgate undo` writes it back, so the template hashes to
/// the kept ReplicaSet's again even where the API server filled defaults into the ReplicaSet's
/// own template. Left out when it would not fit the annotation size limit.
pub const TEMPLATE: &str = "rollgate.dev/template";
/// Largest [`TEMPLATE`] annotation value written, in bytes: the API server refuses more than
/// 256 KiB of annotations in all, and the other annotations need room.
pub const MAX_TEMPLATE_ANNOTATION: usize = 256 * 1024 - 4 * 1024;
/// Annotation on a ReplicaSet holding the time (RFC 3339) after which it is scaled to zero.
pub const SCALE_DOWN_DEADLINE: &str = "rollgate.dev/scale-down-deadline";
/// Annotation on a ReplicaSet recording the ephemeral metadata (the role's labels and
/// annotations, compact JSON `{"labels":{..},"annotations":{..}}`) rollgate last put on its
/// pod template and pods, so that it can take exactly those off when the role changes.
pub const EPHEMERAL_METADATA: &str = "rollgate.dev/ephemeral-metadata";
/// Annotation on a Service naming the Rollout that manages its selector.
pub const MANAGED_BY: &str = "rollgate.dev/managed-by";
/// Label on AnalysisRuns naming the analysis point (`pre-promotion`, `post-promotion`, ...).
pub const ANALYSIS_KIND: &str = "rollgate.dev/analysis";
/// Label on AnalysisRuns: the release attempt they belong to (`status.attempt` when created).
pub const ATTEMPT: &str = "rollgate.dev/attempt";
/// Label on AnalysisRuns of a canary `analysis` step: the index of the step.
pub const STEP_INDEX: &str = "rollgate.dev/step-index";
/// Field manager used by the controller for server-side apply and patches.
pub const FIELD_MANAGER: &str = "rollgate-controller";
/// Label on the ReplicaSets (and pods) of an `experiment` step: the step template's name. A
/// ReplicaSet with it is an experiment's, never a revision of the rollout.
pub const EXPERIMENT_TEMPLATE: &str = "rollgate.dev/experiment-template";
/// Label on the ReplicaSets of an `experiment` step: the pod-template hash of the release that
/// ran it.
pub const EXPERIMENT_RELEASE: &str = "rollgate.dev/experiment-release";
/// Annotation on the ReplicaSets (and pod templates) of an `experiment` step: the experiment's
/// name (too long for a label).
pub const EXPERIMENT: &str = "rollgate.dev/experiment";
/// Label on the AnalysisRuns of an `experiment` step: the analysis's name in the step.
pub const EXPERIMENT_ANALYSIS: &str = "rollgate.dev/experiment-analysis";
