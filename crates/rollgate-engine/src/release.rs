//! The life of one release, shared by both strategies: starting it when the template changes,
//! pauses and promotion by a human, analysis gates and the progress deadline.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{
    AnalysisPhase, PauseCondition, RolloutAnalysis, RolloutAnalysisRunStatus, RolloutPhase,
};

use crate::context::{Ctx, Outcome, REASON_ABORTED, REASON_DEADLINE, cond};
use crate::observed::Observed;
use crate::replicasets;
use crate::time::add_secs;
use crate::validate::CommonSpec;

/// Pause reason after an inconclusive analysis.
pub const PAUSE_INCONCLUSIVE: &str = "InconclusiveAnalysis";
/// Pause reason after an analysis that could not measure (errorPolicy `Pause`).
pub const PAUSE_ANALYSIS_ERROR: &str = "AnalysisError";

/// True when an analysis Error aborts the release (`errorPolicy: Abort`); the default pauses.
pub fn abort_on_error(analysis: &RolloutAnalysis) -> bool {
    analysis.error_policy.as_deref() == Some("Abort")
}

/// How a stage of a state machine ended.
pub enum Flow {
    /// The outcome is set; wait for the world to change.
    Wait,
    /// Abort the release for this reason.
    Abort(String),
}

/// The pod-template hash a Service's selector pins.
pub fn service_hash(observed: &Observed, name: &str) -> Option<String> {
    observed
        .services
        .get(name)
        .and_then(|s| s.selected_hash.clone())
}

/// A template hash different from the last one starts a new release: per-release state resets.
///
/// Going back to a revision whose ReplicaSet still exists (`rollgate undo`, or re-applying an
/// older template) is a fast rollback: the release is marked `promoteFull`, so it skips steps,
/// pauses and analysis. Going back to the stable revision needs no release at all.
pub fn start_release_if_new(cx: &mut Ctx<'_>, hash: &str, strategy: &str) {
    let previous = cx.old.current_pod_hash.clone();
    if previous.as_deref() == Some(hash) {
        return;
    }
    let latest = replicasets::latest_revision(cx);
    let existing = cx.observed.replica_set(hash).map(|rs| rs.revision);
    let revision = match existing {
        Some(r) if r == latest => r,
        _ => latest + 1,
    };
    reset_release(cx);
    cx.status.current_pod_hash = Some(hash.to_string());
    cx.status.current_revision = Some(revision);
    let stable = cx.status.stable_rs.clone();
    match (previous, stable) {
        (None, _) | (_, None) => {}
        (Some(_), Some(s)) if s == hash => cx.event(
            false,
            "RollbackToStable",
            format!(
                "Template matches the stable revision ({hash}): back to stable at once, \
                 without steps or analysis"
            ),
        ),
        (Some(prev), Some(s)) => {
            if prev != s {
                cx.event(
                    false,
                    "RolloutSuperseded",
                    format!("Release of {prev} superseded by a newer revision"),
                );
            }
            match existing {
                Some(old) if old < latest => {
                    cx.status.promote_full = Some(true);
                    cx.event(
                        false,
                        "RollbackToRevision",
                        format!(
                            "Template matches revision {old} ({hash}), whose ReplicaSet still \
                             exists: fast rollback as revision {revision}, without steps or analysis"
                        ),
                    );
                }
                _ => cx.event(
                    false,
                    "RolloutUpdated",
                    format!(
                        "New revision {revision} (pod-template-hash {hash}): starting {strategy} release"
                    ),
                ),
            }
        }
    }
}

/// Clears the state of the current release (new revision or retry).
pub fn reset_release(cx: &mut Ctx<'_>) {
    let s = &mut cx.status;
    s.pause_conditions.clear();
    s.controller_pause = None;
    s.abort = None;
    s.aborted_at = None;
    s.promote_full = None;
    if let Some(bgs) = s.blue_green.as_mut() {
        bgs.scale_up_preview_check_point = None;
        bgs.pre_promotion_analysis_run_status = None;
        bgs.post_promotion_analysis_run_status = None;
    }
    if let Some(c) = s.canary.as_mut() {
        c.current_step_analysis_run_status = None;
        c.current_background_analysis_run_status = None;
    }
    if s.canary.is_some() || s.current_step_index.is_some() {
        s.current_step_index = Some(0);
    }
    s.conditions.retain(|c| {
        !(c.type_ == cond::PROGRESSING
            && (c.reason == REASON_ABORTED || c.reason == REASON_DEADLINE))
    });
}

/// The message of the Progressing condition when the release was aborted earlier.
pub fn aborted_before(cx: &Ctx<'_>) -> Option<String> {
    cx.status
        .conditions
        .iter()
        .find(|c| c.type_ == cond::PROGRESSING && c.reason == REASON_ABORTED)
        .map(|c| c.message.clone())
}

/// True when the ReplicaSet of `hash` has `n` ready and available pods (always for `n == 0`).
/// Pods beyond the ReplicaSet's own `replicas` are going away (its status lags a scale-down)
/// and do not count.
pub fn has_ready(cx: &Ctx<'_>, hash: &str, n: i32) -> bool {
    n == 0
        || cx
            .observed
            .replica_set(hash)
            .is_some_and(|rs| rs.replicas >= n && rs.has_ready(n))
}

/// Ready and available pods of `hash` that its ReplicaSet keeps, and its `replicas`.
pub fn ready_counts(cx: &Ctx<'_>, hash: &str) -> (i32, i32) {
    cx.observed.replica_set(hash).map_or((0, 0), |rs| {
        (rs.ready.min(rs.available).min(rs.replicas), rs.replicas)
    })
}

/// A user promotes by clearing `status.pauseConditions` while `controllerPause` is still set.
pub fn promoted_by_user(cx: &Ctx<'_>) -> bool {
    cx.status.controller_pause == Some(true) && cx.status.pause_conditions.is_empty()
}

/// Start time of the pause with `reason`, adding the pause if it is new.
pub fn pause_started(cx: &mut Ctx<'_>, reason: &str) -> Timestamp {
    if let Some(p) = cx
        .status
        .pause_conditions
        .iter()
        .find(|p| p.reason == reason)
    {
        return p.start_time.0;
    }
    // Whole seconds: the status keeps no more, and timers computed from the start must not
    // change when the next reconcile reads it back.
    let start = Timestamp::from_second(cx.now.as_second()).unwrap_or(cx.now);
    cx.status.pause_conditions.push(PauseCondition {
        reason: reason.to_string(),
        start_time: Time(start),
    });
    cx.status.controller_pause = Some(true);
    cx.event(false, "RolloutPaused", format!("Rollout paused ({reason})"));
    start
}

/// Ends a pause the user promoted (or that is no longer needed).
pub fn end_pause(cx: &mut Ctx<'_>) {
    cx.status.pause_conditions.clear();
    cx.status.controller_pause = None;
}

/// Turns an analysis phase into the next step: `None` to go on.
pub fn analysis_gate(
    cx: &mut Ctx<'_>,
    point: &str,
    analysis: &RolloutAnalysis,
    phase: AnalysisPhase,
    run: &str,
    slot: Option<RolloutAnalysisRunStatus>,
) -> Option<Flow> {
    let detail = slot
        .and_then(|s| s.message)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match phase {
        AnalysisPhase::Successful => None,
        AnalysisPhase::Failed => Some(Flow::Abort(format!(
            "{point} analysis {run} {phase}{detail}"
        ))),
        AnalysisPhase::Error if abort_on_error(analysis) => Some(Flow::Abort(format!(
            "{point} analysis {run} could not measure (errorPolicy: Abort){detail}"
        ))),
        AnalysisPhase::Error => {
            // Missing evidence never promotes: traffic stays where it is.
            if promoted_by_user(cx) {
                return None;
            }
            pause_started(cx, PAUSE_ANALYSIS_ERROR);
            let name = cx.name().to_string();
            let msg = format!(
                "Paused: {point} analysis {run} could not measure{detail}; traffic stays where \
                 it is. Once the metric source is back, `rollgate retry {name}` measures again \
                 (or `rollgate promote {name}` / `rollgate abort {name}`)"
            );
            cx.set_outcome(RolloutPhase::Paused, msg, ("True", "RolloutPaused"));
            Some(Flow::Wait)
        }
        AnalysisPhase::Inconclusive => {
            if promoted_by_user(cx) {
                return None;
            }
            pause_started(cx, PAUSE_INCONCLUSIVE);
            let name = cx.name().to_string();
            let msg = format!(
                "Paused: {point} analysis {run} is inconclusive{detail}: \
                 `rollgate promote {name}` to continue, `rollgate abort {name}` to go back"
            );
            cx.set_outcome(RolloutPhase::Paused, msg, ("True", "RolloutPaused"));
            Some(Flow::Wait)
        }
        AnalysisPhase::Pending | AnalysisPhase::Running => {
            let msg = format!("Waiting for {point} analysis {run} ({phase})");
            cx.set_outcome(RolloutPhase::Progressing, msg, ("True", "AnalysisRunning"));
            Some(Flow::Wait)
        }
    }
}

/// Waiting for pods to become ready: progress while the message changes; past
/// `progressDeadlineSeconds` without change the release is aborted (or only reported).
pub fn waiting_for_pods(
    cx: &mut Ctx<'_>,
    common: &CommonSpec,
    msg: String,
    may_abort: bool,
) -> Flow {
    let deadline_secs = common.progress_deadline_seconds;
    let old = cx.old_condition(cond::PROGRESSING).cloned();
    let progressed = old.as_ref().is_none_or(|c| c.message != msg);
    if progressed {
        cx.wake_at(add_secs(cx.now, deadline_secs));
        cx.set_outcome(
            RolloutPhase::Progressing,
            msg,
            ("True", "ReplicaSetUpdated"),
        );
        return Flow::Wait;
    }
    let since = old
        .as_ref()
        .and_then(|c| c.last_update_time.as_ref())
        .map_or(cx.now, |t| t.0);
    let deadline = add_secs(since, deadline_secs);
    let exceeded = old.as_ref().is_some_and(|c| c.reason == REASON_DEADLINE) || cx.now >= deadline;
    if !exceeded {
        cx.wake_at(deadline);
        cx.set_outcome(
            RolloutPhase::Progressing,
            msg,
            ("True", "ReplicaSetUpdated"),
        );
        return Flow::Wait;
    }
    if may_abort && common.progress_deadline_abort {
        return Flow::Abort(format!(
            "ProgressDeadlineExceeded: no progress for {deadline_secs}s ({msg})"
        ));
    }
    if old.as_ref().is_none_or(|c| c.reason != REASON_DEADLINE) {
        cx.event(
            true,
            "ProgressDeadlineExceeded",
            format!("No progress for {deadline_secs}s: {msg}"),
        );
    }
    cx.outcome = Some(Outcome {
        phase: RolloutPhase::Degraded,
        message: msg,
        progressing: ("False", REASON_DEADLINE),
        available: false,
        completed: false,
    });
    Flow::Wait
}
