//! Promotion pipelines, decided purely: `(pipeline, releases, approvals, what each stage's
//! Rollout shows, now) -> (actions, statuses, events)`.
//!
//! A release is one artifact: the images of the pipeline's containers, pinned by digest. It
//! enters at the first stage (CI applies that Rollout); the engine records it, follows it in
//! every stage (Progressing while the stage's Rollout releases it, Verifying while the stage's
//! verification runs, Verified), and promotes it into a later stage by writing only its images
//! into that stage's Rollout once every gate is open. A release that fails anywhere is Bad for
//! good; a downstream stage where it failed gets its last good release back and a hold on
//! automatic promotion until a person acts. An unreachable stage is infrastructure trouble:
//! it blocks promotions into it and changes no verdict.

mod artifact;
mod claims;
mod gates;
mod spec;
mod stages;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::pipeline::{PipelineStageStatus, ReleaseStatus};
use rollgate_api::{
    AbortReason, AnalysisPhase, AnalysisRun, AnalysisTemplateSpec, Approval, EventReason,
    PromotionPipeline, PromotionPipelineStatus, Release, Rollout, RolloutPhase,
};

pub use artifact::{digest_of_image_id, release_name};
pub use claims::claims;
pub use spec::{Stage, ValidPipeline, validate};

/// Label on verification AnalysisRuns: the release they verify.
pub const RELEASE_LABEL: &str = "rollgate.dev/release";
/// Label on verification AnalysisRuns: the stage.
pub const STAGE_LABEL: &str = "rollgate.dev/stage";
/// Label on verification AnalysisRuns: the promotion attempt.
pub const ATTEMPT_LABEL: &str = "rollgate.dev/attempt";
/// Label on Releases: their pipeline.
pub const PIPELINE_LABEL: &str = "rollgate.dev/pipeline";
/// Field manager of the image writes (server-side apply): only the image fields of the named
/// containers belong to it, every other field stays the target's own.
pub const FIELD_MANAGER: &str = "rollgate-promoter";
/// How often a pipeline with something in flight is looked at again.
pub const POLL: Duration = Duration::from_secs(10);

/// What the controller read of one stage.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservedStage {
    /// The stage's cluster or Rollout could not be read (infrastructure: retried).
    Unreachable(String),
    /// Read.
    Read(Box<StageView>),
}

/// One stage as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageView {
    /// The stage's Rollout (none: it does not exist).
    pub rollout: Option<Rollout>,
    /// Container name -> digest (`sha256:...`) of the images the pods of the Rollout's
    /// current revision run, from their `imageID` (only ready pods; empty when unknown).
    pub running_digests: BTreeMap<String, String>,
    /// Verification AnalysisRuns of this stage (labelled with [`RELEASE_LABEL`]).
    pub runs: Vec<VerificationRun>,
    /// Analysis templates of the stage's namespace its verification names.
    pub templates: BTreeMap<(bool, String), AnalysisTemplateSpec>,
}

/// A verification AnalysisRun as read.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationRun {
    /// Object name.
    pub name: String,
    /// The release it verifies.
    pub release: String,
    /// The promotion attempt.
    pub attempt: i32,
    /// Its phase.
    pub phase: AnalysisPhase,
}

/// Everything a pipeline decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct PipelineInput<'a> {
    /// The pipeline.
    pub pipeline: &'a PromotionPipeline,
    /// Its Releases.
    pub releases: &'a [Release],
    /// Approvals naming its Releases.
    pub approvals: &'a [Approval],
    /// Each stage as read, by stage name.
    pub stages: &'a BTreeMap<String, ObservedStage>,
    /// Stages (after the first) whose Rollout another pipeline, created first, also promotes
    /// into: stage name -> that pipeline (`namespace/name`). Nothing is written there.
    pub claims: &'a BTreeMap<String, String>,
    /// The controller's clock.
    pub now: Timestamp,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineAction {
    /// Record a new artifact.
    CreateRelease(Box<Release>),
    /// Write `images` (container -> image) into the stage's Rollout, image fields only, by
    /// server-side apply under [`FIELD_MANAGER`].
    SetImages {
        /// Stage name.
        stage: String,
        /// Container name -> image.
        images: BTreeMap<String, String>,
    },
    /// Start a verification AnalysisRun in the stage's namespace (and cluster).
    CreateVerification {
        /// Stage name.
        stage: String,
        /// The run.
        run: Box<AnalysisRun>,
    },
}

/// An Event on the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineEvent {
    /// Reason.
    pub reason: EventReason,
    /// Note (rendered).
    pub note: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineDecision {
    /// Actions, in order.
    pub actions: Vec<PipelineAction>,
    /// The pipeline's status.
    pub status: PromotionPipelineStatus,
    /// Status of every known release, by name (written when changed).
    pub releases: BTreeMap<String, ReleaseStatus>,
    /// Events.
    pub events: Vec<PipelineEvent>,
    /// When to look again at the latest.
    pub requeue_after: Option<Duration>,
}

/// Decides a pipeline's next actions and statuses. Pure and deterministic.
pub fn reconcile(input: PipelineInput<'_>) -> PipelineDecision {
    let generation = input.pipeline.metadata.generation;
    let valid = match validate(input.pipeline) {
        Ok(v) => v,
        Err(problems) => return spec::invalid(input.pipeline, &problems, input.now),
    };
    let mut d = PipelineDecision::default();
    let mut state = stages::State::new(&valid, input);
    state.record_new_release(&mut d);
    state.follow(&mut d);
    state.promote(&mut d);
    state.finish(&mut d);
    d.status.observed_generation = generation;
    d
}

/// The state a stage's Rollout is in, for the release it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RolloutState {
    /// The release in progress (or not observed for its generation yet).
    Progressing,
    /// Healthy, stable on the current template.
    Healthy,
    /// Aborted (with why).
    Aborted(Option<AbortReason>),
    /// Degraded without an abort (pods unavailable, invalid spec).
    Degraded,
}

/// How a Rollout stands, read from its status.
pub(crate) fn rollout_state(r: &Rollout) -> RolloutState {
    let Some(s) = r.status.as_ref() else {
        return RolloutState::Progressing;
    };
    if s.observed_generation != r.metadata.generation {
        return RolloutState::Progressing;
    }
    // `abort: true` alone is a request the Rollout's controller has not acted on yet; the
    // abort is done when the reason is recorded.
    if let Some(reason) = s.abort_reason {
        return RolloutState::Aborted(Some(reason));
    }
    match s.phase {
        // Paused with the current template stable: `spec.paused` on a deployed rollout, which
        // reports Paused as Argo Rollouts does; the release is deployed all the same.
        Some(RolloutPhase::Healthy | RolloutPhase::Paused)
            if s.current_pod_hash.is_some() && s.current_pod_hash == s.stable_rs =>
        {
            RolloutState::Healthy
        }
        Some(RolloutPhase::Degraded) => RolloutState::Degraded,
        _ => RolloutState::Progressing,
    }
}

/// Container name -> image of a Rollout's template, for `containers` (all when empty).
pub fn rollout_images(r: &Rollout, containers: &[String]) -> BTreeMap<String, String> {
    r.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter(|c| containers.is_empty() || containers.contains(&c.name))
                .filter_map(|c| Some((c.name.clone(), c.image.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A pipeline's stage status by name, for the CLI.
pub fn stage_status<'s>(
    status: &'s PromotionPipelineStatus,
    stage: &str,
) -> Option<&'s PipelineStageStatus> {
    status.stages.iter().find(|s| s.name == stage)
}
