//! The life of one release, shared by both strategies: starting it when the template changes
//! (supersede, fast rollback), pauses and promotion by a human, analysis gates, the progress
//! deadline, and the transitions of a release in flight (abort, retry). Each strategy only says
//! which replica counts, Service selectors and route weights a state wants ([`Strategy`]).

use rollgate_api::{
    AnalysisPhase, ConditionReason, EventReason, PauseReason, RolloutAnalysis,
    RolloutAnalysisRunStatus, RolloutPhase,
};

use crate::action::{Action, ServiceRole};
use crate::context::Ctx;
use crate::lifecycle::{AbortState, Aborted, Pause, Progress, fingerprint};
use crate::message::{AbortCause, Msg, Point, StrategyKind, Waiting};
use crate::observed::Observed;
use crate::replicasets;
use crate::time::add_secs;
use crate::validate::CommonSpec;

/// True when an analysis Error aborts the release (`errorPolicy: Abort`); the default pauses.
pub fn abort_on_error(analysis: &RolloutAnalysis) -> bool {
    analysis.error_policy.as_deref() == Some("Abort")
}

/// How a stage of a state machine ended.
pub enum Flow {
    /// The outcome is set; wait for the world to change.
    Wait,
    /// Abort the release.
    Abort(AbortCause),
}

/// What a strategy wants of the cluster in each state of a release in flight; the transitions
/// between the states are [`in_flight`]'s.
pub(crate) trait Strategy {
    /// What the strategy planned (the canary's replica and weight plan; nothing for blue/green).
    type Plan;
    /// Which strategy, for messages.
    const KIND: StrategyKind;
    /// Traffic back on `stable`: returns the plan, and whether production traffic is fully
    /// back on stable already.
    fn aborted(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> (Self::Plan, bool);
    /// Moves a release that is not aborted forward as far as the observed world allows.
    fn progress(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> (Flow, Self::Plan);
    /// The common spec and the pods a restart may take down at once.
    fn restart_budget(&self) -> (&CommonSpec, i32);
}

/// A release of `hash` over `stable` in flight: aborted (by a human or by the release
/// itself), retried, or moving forward.
pub fn in_flight<S: Strategy>(cx: &mut Ctx<'_>, strategy: &S, hash: &str, stable: &str) -> S::Plan {
    // `promoteFull` set after an abort overrides it (an abort clears an earlier `promoteFull`,
    // so whichever came last wins).
    let full_after_abort = cx.release.record().is_some() && cx.release.promote_full;
    if cx.release.abort_flagged() && !full_after_abort {
        if let AbortState::Requested { at } = cx.release.abort {
            let msg = Msg::UserAbort {
                strategy: S::KIND,
                stable: stable.to_string(),
            };
            let message = cx.text(&msg);
            cx.event(EventReason::RolloutAborted, msg);
            cx.release.promote_full = false;
            cx.release.abort = AbortState::Aborted(Aborted {
                reason: rollgate_api::AbortReason::User,
                at: at.unwrap_or(cx.now),
                message,
            });
        }
        return settle_aborted(cx, strategy, hash, stable);
    }
    if cx.release.record().is_some() {
        let full = cx.release.promote_full;
        cx.event(
            EventReason::RolloutRetry,
            Msg::Retrying {
                strategy: S::KIND,
                hash: hash.to_string(),
                full,
            },
        );
        reset_release(cx);
        cx.release.promote_full = full;
    }
    // An alert the release is to blame for aborts it at any step, pause or analysis, before
    // the strategy moves anything.
    let blamed = cx.alerts.as_ref().and_then(|policy| {
        let started = cx.status.release_started_at.as_ref().map(|t| t.0);
        crate::alerts::to_blame(cx, policy, hash, stable, started).cloned()
    });
    let progressed = match blamed {
        Some(alert) => {
            cx.status.alert = Some(crate::alerts::record(&alert, hash));
            (Flow::Abort(AbortCause::Alert { alert }), None)
        }
        None => {
            let (flow, plan) = strategy.progress(cx, hash, stable);
            // `restartAt` while paused restarts pods (Argo Rollouts: stable, then new).
            let (common, budget) = strategy.restart_budget();
            if matches!(flow, Flow::Wait) && (common.paused || !cx.release.pauses.is_empty()) {
                crate::restart::restart_paused(cx, common, budget, stable, hash);
            }
            (flow, Some(plan))
        }
    };
    match progressed {
        (Flow::Wait, Some(plan)) => {
            // Alerts are pulled every `interval` while the release is in flight (a release
            // completed by this reconcile wakes for its guard window instead, if any).
            let still = cx.status.stable_rs.as_deref() != Some(hash);
            if let Some(secs) = cx
                .alerts
                .as_ref()
                .filter(|p| p.source)
                .map(|p| p.interval_secs)
                .filter(|_| still)
            {
                let at = add_secs(cx.now, secs);
                cx.wake_at(at);
            }
            plan
        }
        (Flow::Wait, None) => settle_aborted(cx, strategy, hash, stable),
        (Flow::Abort(cause), _) => {
            let reason = cause.reason();
            let msg = Msg::Abort {
                strategy: S::KIND,
                cause,
                stable: stable.to_string(),
            };
            let message = cx.text(&msg);
            cx.event(EventReason::RolloutAborted, msg);
            cx.release.promote_full = false;
            cx.release.abort = AbortState::Aborted(Aborted {
                reason,
                at: cx.now,
                message,
            });
            settle_aborted(cx, strategy, hash, stable)
        }
    }
}

/// The aborted state: no pause, the strategy's traffic back on stable, Degraded until retried
/// or superseded.
fn settle_aborted<S: Strategy>(
    cx: &mut Ctx<'_>,
    strategy: &S,
    hash: &str,
    stable: &str,
) -> S::Plan {
    cx.release.end_pauses();
    let (plan, back) = strategy.aborted(cx, hash, stable);
    let recorded = cx
        .release
        .record()
        .map(|r| r.message.clone())
        .unwrap_or_default();
    cx.set_outcome(
        RolloutPhase::Degraded,
        Msg::Aborted {
            strategy: S::KIND,
            recorded,
            waiting_for_stable: !back,
        },
        ConditionReason::RolloutAborted,
    );
    plan
}

/// Points a Service at `to`, its previous selection being `from` (which differs): the action
/// and its `SwitchService` Event, whose note names the role.
pub fn switch_service(
    cx: &mut Ctx<'_>,
    role: ServiceRole,
    service: &str,
    from: Option<String>,
    to: &str,
) {
    cx.event(
        EventReason::SwitchService,
        Msg::ServiceSwitched {
            role,
            service: service.to_string(),
            from: from.clone(),
            to: to.to_string(),
        },
    );
    cx.actions.push(Action::SwitchService {
        service: service.to_string(),
        role,
        from,
        to: to.to_string(),
    });
}

/// Services this rollout pinned that its spec no longer names (the strategy changed, or a
/// Service was renamed) get their plain selector back at once: a hash pinned by a strategy
/// that no longer manages it would select nothing once that revision is scaled down.
pub fn release_unnamed_services(cx: &mut Ctx<'_>) {
    let named = crate::references(cx.rollout).services;
    let observed = cx.observed;
    for (name, svc) in &observed.services {
        let Some(from) = &svc.selected_hash else {
            continue;
        };
        if named.contains(name) {
            continue;
        }
        cx.event(
            EventReason::ServiceReleased,
            Msg::ServiceReleased {
                service: name.clone(),
                from: from.clone(),
            },
        );
        cx.actions.push(Action::ReleaseService {
            service: name.clone(),
            from: from.clone(),
        });
    }
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
/// pauses and analysis (with `rollbackWindow`, only within its window). Going back to the
/// stable revision needs no release at all.
pub fn start_release_if_new(cx: &mut Ctx<'_>, hash: &str, strategy: StrategyKind) {
    let previous = cx.status.current_pod_hash.clone();
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
    cx.status.release_started_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(cx.now));
    let stable = cx.status.stable_rs.clone();
    match (previous, stable) {
        (None, _) | (_, None) => {}
        (Some(_), Some(s)) if s == hash => cx.event(
            EventReason::SkipSteps,
            Msg::RollbackToStable {
                hash: hash.to_string(),
            },
        ),
        (Some(prev), Some(s)) => {
            if prev != s {
                cx.event(
                    EventReason::RolloutSuperseded,
                    Msg::Superseded { previous: prev },
                );
            }
            // With `rollbackWindow.revisions: N` only the N revisions before the newest are
            // rolled back to fast (Argo Rollouts, "Rollback Windows"); older ones are released
            // like any new revision. Without it, every kept revision is (rollgate's default).
            let window = cx
                .rollout
                .spec
                .rollback_window
                .as_ref()
                .and_then(|w| w.revisions)
                .map(i64::from);
            let within = |old: i64| window.is_none_or(|n| latest - old <= n);
            match existing {
                Some(old) if old < latest && within(old) => {
                    cx.release.promote_full = true;
                    cx.event(
                        EventReason::SkipSteps,
                        Msg::RollbackToRevision {
                            old,
                            hash: hash.to_string(),
                            revision,
                        },
                    );
                }
                _ => cx.event(
                    EventReason::RolloutUpdated,
                    Msg::NewRevision {
                        revision,
                        hash: hash.to_string(),
                        strategy,
                    },
                ),
            }
        }
    }
}

/// The release is complete: `hash` is the stable revision, and no pause or full promotion
/// stays behind.
pub fn complete(cx: &mut Ctx<'_>, hash: &str) {
    cx.status.stable_rs = Some(hash.to_string());
    cx.release.promote_full = false;
    cx.release.end_pauses();
}

/// Clears the state of the current release (new revision or retry).
pub fn reset_release(cx: &mut Ctx<'_>) {
    cx.release.reset();
    let s = &mut cx.status;
    s.attempt = Some(s.attempt.unwrap_or(0) + 1);
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

/// `spec.paused` before the first revision is up. Argo Rollouts: "If true at initial creation
/// of Rollout, replicas are not scaled up automatically from zero". Its ReplicaSet is created
/// without pods (one made before the pause keeps its pods, at most `replicas`), no Service
/// moves and nothing becomes stable until the pause ends; the progress deadline does not run
/// meanwhile. Returns the size the ReplicaSet is kept at.
pub fn paused_first_deploy(cx: &mut Ctx<'_>, common: &CommonSpec, hash: &str) -> i32 {
    let replicas = common.replicas;
    let size = cx
        .observed
        .replica_set(hash)
        .map_or(0, |rs| rs.replicas.clamp(0, replicas));
    replicasets::ensure(cx, common, hash, size, cx.status.current_revision);
    let msg = Msg::SpecPausedFirstDeploy {
        rs: replicasets::replica_set_name(cx.name(), hash),
        size,
        replicas,
        rollout: cx.name().to_string(),
    };
    cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
    size
}

/// `spec.paused` with nothing in flight: a Healthy outcome is reported as Paused (Argo Rollouts
/// reports phase `Paused` whenever `spec.paused` is set and the rollout is not Degraded). The
/// stable revision keeps serving, and scaling still happens.
pub fn paused_when_steady(cx: &mut Ctx<'_>, common: &CommonSpec, hash: &str) {
    if !common.paused
        || cx
            .outcome
            .as_ref()
            .is_none_or(|o| o.phase != RolloutPhase::Healthy)
    {
        return;
    }
    let msg = Msg::SpecPausedSteady {
        hash: hash.to_string(),
        replicas: common.replicas,
        rollout: cx.name().to_string(),
    };
    cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
}

/// True when the outcome says the current revision is the stable one and serves: Healthy, or
/// Paused by `spec.paused` with nothing in flight (`stable` is the stable hash).
pub fn completed(cx: &Ctx<'_>, stable: Option<&str>, hash: &str) -> bool {
    stable == Some(hash)
        && cx
            .outcome
            .as_ref()
            .is_some_and(|o| matches!(o.phase, RolloutPhase::Healthy | RolloutPhase::Paused))
}

/// A user promotes by clearing `status.pauseConditions` while `controllerPause` is still set.
pub fn promoted_by_user(cx: &Ctx<'_>) -> bool {
    cx.release.promoted
}

/// Start time of the pause with `reason`, adding the pause if it is new.
pub fn pause_started(cx: &mut Ctx<'_>, reason: PauseReason) -> k8s_openapi::jiff::Timestamp {
    if let Some(since) = cx.release.pause(reason) {
        return since;
    }
    // Whole seconds: the status keeps no more, and timers computed from the start must not
    // change when the next reconcile reads it back.
    let since = k8s_openapi::jiff::Timestamp::from_second(cx.now.as_second()).unwrap_or(cx.now);
    cx.release.pauses.push(Pause { reason, since });
    cx.release.promoted = false;
    cx.event(EventReason::RolloutPaused, Msg::PauseStarted(reason));
    since
}

/// Ends a pause the user promoted (or that is no longer needed).
pub fn end_pause(cx: &mut Ctx<'_>) {
    cx.release.end_pauses();
}

/// Turns an analysis phase into the next step: `None` to go on.
pub fn analysis_gate(
    cx: &mut Ctx<'_>,
    point: Point,
    analysis: &RolloutAnalysis,
    phase: AnalysisPhase,
    run: &str,
    slot: Option<RolloutAnalysisRunStatus>,
) -> Option<Flow> {
    let detail = slot.and_then(|s| s.message);
    let run = run.to_string();
    match phase {
        AnalysisPhase::Successful => None,
        AnalysisPhase::Failed => Some(Flow::Abort(AbortCause::Analysis {
            point,
            run,
            phase,
            detail,
        })),
        AnalysisPhase::Error if abort_on_error(analysis) => {
            Some(Flow::Abort(AbortCause::Analysis {
                point,
                run,
                phase,
                detail,
            }))
        }
        AnalysisPhase::Error => {
            // Missing evidence never promotes: traffic stays where it is.
            if promoted_by_user(cx) {
                return None;
            }
            pause_started(cx, PauseReason::AnalysisError);
            let msg = Msg::AnalysisErrorPause {
                point,
                run,
                detail,
                rollout: cx.name().to_string(),
            };
            cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
            Some(Flow::Wait)
        }
        AnalysisPhase::Inconclusive => {
            if promoted_by_user(cx) {
                return None;
            }
            pause_started(cx, PauseReason::InconclusiveAnalysisRun);
            let msg = Msg::InconclusivePause {
                point,
                run,
                detail,
                rollout: cx.name().to_string(),
            };
            cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
            Some(Flow::Wait)
        }
        AnalysisPhase::Pending | AnalysisPhase::Running => {
            let msg = Msg::AnalysisRunning { point, run, phase };
            cx.set_outcome(
                RolloutPhase::Progressing,
                msg,
                ConditionReason::AnalysisRunning,
            );
            Some(Flow::Wait)
        }
    }
}

/// Waiting for pods to become ready: progress while what it waits on changes (any count or
/// size, compared by fingerprint); past `progressDeadlineSeconds` without change the release is
/// aborted (or only reported).
pub fn waiting_for_pods(
    cx: &mut Ctx<'_>,
    common: &CommonSpec,
    waiting: Waiting,
    may_abort: bool,
) -> Flow {
    let deadline_secs = common.progress_deadline_seconds;
    let print = fingerprint(&waiting);
    cx.release.waited = true;
    let old = cx
        .release
        .progress
        .clone()
        .filter(|p| p.fingerprint == print);
    let Some(old) = old else {
        cx.release.progress = Some(Progress {
            fingerprint: print,
            since: cx.now,
            exceeded: false,
        });
        cx.wake_at(add_secs(cx.now, deadline_secs));
        cx.set_outcome(
            RolloutPhase::Progressing,
            Msg::Waiting(waiting),
            ConditionReason::ReplicaSetUpdated,
        );
        return Flow::Wait;
    };
    let deadline = add_secs(old.since, deadline_secs);
    if !old.exceeded && cx.now < deadline {
        cx.wake_at(deadline);
        cx.set_outcome(
            RolloutPhase::Progressing,
            Msg::Waiting(waiting),
            ConditionReason::ReplicaSetUpdated,
        );
        return Flow::Wait;
    }
    if may_abort && common.progress_deadline_abort {
        // Aborted: nothing waits any more.
        cx.release.waited = false;
        return Flow::Abort(AbortCause::Deadline {
            seconds: deadline_secs,
            waiting,
        });
    }
    if !old.exceeded {
        cx.event(
            EventReason::ProgressDeadlineExceeded,
            Msg::NoProgress {
                seconds: deadline_secs,
                waiting: waiting.clone(),
            },
        );
    }
    cx.release.progress = Some(Progress {
        exceeded: true,
        ..old
    });
    cx.set_outcome(
        RolloutPhase::Degraded,
        Msg::Waiting(waiting),
        ConditionReason::ProgressDeadlineExceeded,
    );
    Flow::Wait
}
