//! The blue/green strategy.
//!
//! Sequence of a release (revision hash `H`, stable hash `S`): ReplicaSet `H` at
//! `previewReplicaCount` behind the preview Service -> pre-promotion analysis -> pause (manual or
//! `autoPromotionSeconds`) -> scale `H` to full -> active Service to `H` once every pod is ready ->
//! post-promotion analysis -> `H` becomes stable and `S` is scaled down after
//! `scaleDownDelaySeconds`. An abort puts the active Service back on `S` at once; the preview
//! Service stays on `H` (as in Argo Rollouts: the aborted revision can still be inspected)
//! and `H` is scaled down after `abortScaleDownDelaySeconds` (never with 0).
//!
//! Invariant: the active Service is only ever pointed at a ReplicaSet with `replicas` ready and
//! available pods, except on the very first deploy (nothing else exists to serve).

use rollgate_api::{
    ConditionReason, EventReason, PauseReason, RolloutAnalysisRunStatus, RolloutPhase,
};

use crate::action::ServiceRole;
use crate::analysis;
use crate::context::Ctx;
use crate::hash::pod_template_hash;
use crate::lifecycle::AbortState;
use crate::message::{Msg, Point, StrategyKind, Waiting};
use crate::observed::AnalysisKind;
use crate::release::{
    self, Flow, Strategy, analysis_gate, end_pause, has_ready, pause_started, promoted_by_user,
    ready_counts, service_hash, start_release_if_new, waiting_for_pods,
};
use crate::replicasets::{self, replica_set_name};
use crate::time::add_secs;
use crate::validate::BlueGreenSpec;

pub fn reconcile(cx: &mut Ctx<'_>, bg: &BlueGreenSpec) {
    let hash = pod_template_hash(&bg.common.template);
    cx.status.strategy = Some("BlueGreen".into());
    start_release_if_new(cx, &hash, StrategyKind::BlueGreen);
    let bgs = cx.status.blue_green.get_or_insert_with(Default::default);
    bgs.active_selector = service_hash(cx.observed, &bg.active_service);
    let preview = bg
        .preview_service
        .as_ref()
        .and_then(|p| service_hash(cx.observed, p));
    if let Some(bgs) = cx.status.blue_green.as_mut() {
        bgs.preview_selector = preview;
    }

    match cx.status.stable_rs.clone() {
        None => first_deploy(cx, bg, &hash),
        Some(stable) if stable == hash => steady(cx, bg, &hash),
        Some(stable) => in_flight(cx, bg, &hash, &stable),
    }

    // Experiments are canary steps: any left from a canary strategy (the spec switched
    // strategies mid-experiment) are scaled down and deleted.
    crate::experiment::forget(cx);
    crate::experiment::clean_up(cx, &hash);
    let aborted = cx.release.abort_flagged();
    let active = active_selector(cx);
    let stable = cx.status.stable_rs.clone();
    let mut protected: Vec<&str> = Vec::new();
    // `abortScaleDownDelaySeconds: 0` keeps an aborted revision's pods for good (Argo
    // Rollouts, "Scaledown New Replicaset on Aborted Rollout").
    if !aborted || bg.abort_scale_down_delay_seconds == 0 {
        protected.push(&hash);
    }
    protected.extend(stable.as_deref());
    protected.extend(active.as_deref());
    replicasets::clean_up(
        cx,
        &protected,
        bg.scale_down_delay_revision_limit,
        bg.common.revision_history_limit,
    );

    let mut keep: Vec<String> = Vec::new();
    if !aborted
        && stable.as_deref() != Some(hash.as_str())
        && let Some(bgs) = &cx.status.blue_green
    {
        for slot in [
            &bgs.pre_promotion_analysis_run_status,
            &bgs.post_promotion_analysis_run_status,
        ]
        .into_iter()
        .flatten()
        {
            keep.push(slot.name.clone());
        }
    }
    keep.extend(crate::alerts::guard_run(cx));
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    analysis::terminate_others(cx, &keep);

    replicasets::count(cx, &bg.common, &hash);
    let replicas = bg.common.replicas;
    let available = active.is_some_and(|h| has_ready(cx, &h, replicas));
    if let Some(o) = cx.outcome.as_mut() {
        o.available = available;
    }
    let completed = release::completed(cx, stable.as_deref(), &hash);
    if let Some(o) = cx.outcome.as_mut() {
        o.completed = completed;
    }
}

fn active_selector(cx: &Ctx<'_>) -> Option<String> {
    cx.status
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
}

/// Points a Service at `to` (no-op when it already is). For the active Service, the ReplicaSet
/// it leaves is scheduled for scale-down unless it is the stable one.
fn switch(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, role: ServiceRole, service: &str, to: &str) {
    let from = service_hash(cx.observed, service);
    if from.as_deref() == Some(to) {
        return;
    }
    if role == ServiceRole::Active
        && let Some(from) = &from
        && cx.status.stable_rs.as_deref() != Some(from)
    {
        replicasets::schedule_scale_down(cx, from, bg.scale_down_delay_seconds);
    }
    release::switch_service(cx, role, service, from, to);
    if let Some(bgs) = cx.status.blue_green.as_mut() {
        match role {
            ServiceRole::Active => bgs.active_selector = Some(to.to_string()),
            _ => bgs.preview_selector = Some(to.to_string()),
        }
    }
}

fn switch_preview(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, to: &str) {
    if let Some(preview) = &bg.preview_service {
        switch(cx, bg, ServiceRole::Preview, preview, to);
    }
}

/// Switches the active Service to `to` only if its ReplicaSet has every pod ready.
fn switch_active_when_ready(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, to: &str) -> bool {
    if active_selector(cx).as_deref() == Some(to) {
        return true;
    }
    let ready = has_ready(cx, to, bg.common.replicas);
    if ready {
        switch(cx, bg, ServiceRole::Active, &bg.active_service, to);
    }
    ready
}

fn first_deploy(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str) {
    let replicas = bg.common.replicas;
    cx.release.abort = AbortState::None;
    if bg.common.paused {
        release::paused_first_deploy(cx, &bg.common, hash);
        return;
    }
    replicasets::ensure(cx, &bg.common, hash, replicas, cx.status.current_revision);
    // The one exception to the readiness invariant: nothing else could serve.
    switch(cx, bg, ServiceRole::Active, &bg.active_service, hash);
    switch_preview(cx, bg, hash);
    if has_ready(cx, hash, replicas) {
        cx.status.stable_rs = Some(hash.to_string());
        cx.event(
            EventReason::RolloutCompleted,
            Msg::FirstRevisionAvailable {
                hash: hash.to_string(),
                replicas,
            },
        );
        healthy(cx, hash, replicas);
    } else {
        let (ready, _) = ready_counts(cx, hash);
        let waiting = Waiting::FirstDeploy {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
        };
        // First deploy: nothing to fall back to, so the deadline only reports.
        let _ = waiting_for_pods(cx, &bg.common, waiting, false);
    }
}

fn steady(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str) {
    let replicas = bg.common.replicas;
    cx.release.abort = AbortState::None;
    replicasets::ensure(cx, &bg.common, hash, replicas, cx.status.current_revision);
    let switched = switch_active_when_ready(cx, bg, hash);
    switch_preview(cx, bg, hash);
    let (ready, _) = ready_counts(cx, hash);
    if switched && ready >= replicas {
        healthy(cx, hash, replicas);
        crate::restart::restart(cx, &bg.common, 1);
        release::paused_when_steady(cx, &bg.common, hash);
    } else {
        let msg = Msg::WaitingForStable {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
        };
        cx.set_outcome(
            RolloutPhase::Progressing,
            msg,
            ConditionReason::ReplicaSetUpdated,
        );
    }
}

fn healthy(cx: &mut Ctx<'_>, hash: &str, replicas: i32) {
    let msg = Msg::Healthy {
        hash: hash.to_string(),
        replicas,
    };
    cx.set_outcome(
        RolloutPhase::Healthy,
        msg,
        ConditionReason::NewReplicaSetAvailable,
    );
}

fn in_flight(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str, stable: &str) {
    // The stable ReplicaSet stays at full size while a release is in flight: an abort must be
    // able to return production traffic to it at once.
    if cx.observed.replica_set(stable).is_some() {
        replicasets::ensure(cx, &bg.common, stable, bg.common.replicas, None);
    }
    release::in_flight(cx, bg, hash, stable);
}

impl Strategy for BlueGreenSpec {
    type Plan = ();
    const KIND: StrategyKind = StrategyKind::BlueGreen;

    /// Active back on stable, the preview left on the aborted revision (Argo Rollouts), the
    /// new ReplicaSet scaled down after `abortScaleDownDelaySeconds` (0: never).
    fn aborted(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> ((), bool) {
        if self.abort_scale_down_delay_seconds > 0 {
            replicasets::schedule_scale_down(cx, hash, self.abort_scale_down_delay_seconds);
        }
        let back = switch_active_when_ready(cx, self, stable);
        ((), back)
    }

    fn progress(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> (Flow, ()) {
        (progress(cx, self, hash, stable), ())
    }

    /// One pod at a time, as in a steady restart.
    fn restart_budget(&self) -> (&crate::validate::CommonSpec, i32) {
        (&self.common, 1)
    }
}

/// Moves a non-aborted release forward as far as the observed world allows.
fn progress(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str, stable: &str) -> Flow {
    let replicas = bg.common.replicas;
    let revision = cx.status.current_revision;
    switch_preview(cx, bg, hash);
    let checkpoint = cx
        .status
        .blue_green
        .as_ref()
        .and_then(|b| b.scale_up_preview_check_point)
        == Some(true);
    // A revision the active Service already selects (back to it after a newer one, or retried
    // before traffic could return to stable) serves production: it is past the preview stage
    // and must not be scaled down to `previewReplicaCount`.
    let serving = active_selector(cx).as_deref() == Some(hash);
    if !checkpoint && !serving {
        let target = bg.preview_replica_count;
        let (ready, _) = ready_counts(cx, hash);
        // Once paused for promotion the release stays Paused while a preview pod is down (a
        // `restartAt` replacing it, a crash): Argo Rollouts' phase is Paused whenever a pause
        // condition stands, whatever the pods do.
        let paused_for_promotion = cx.release.pause(PauseReason::BlueGreenPause).is_some();
        let stop = if ready < target && bg.common.paused {
            // The preview still comes up; the deadline does not run while paused.
            Some(spec_paused(cx))
        } else if ready < target && !paused_for_promotion {
            let waiting = Waiting::Preview {
                rs: replica_set_name(cx.name(), hash),
                ready,
                target,
            };
            Some(waiting_for_pods(cx, &bg.common, waiting, true))
        } else {
            promotion_gates(cx, bg, hash)
        };
        if let Some(flow) = stop {
            replicasets::ensure(cx, &bg.common, hash, target, revision);
            return flow;
        }
        if let Some(bgs) = cx.status.blue_green.as_mut() {
            bgs.scale_up_preview_check_point = Some(true);
        }
        end_pause(cx);
        cx.event(
            EventReason::RolloutPromoted,
            Msg::Promoting {
                hash: hash.to_string(),
                replicas,
            },
        );
    }
    replicasets::ensure(cx, &bg.common, hash, replicas, revision);
    // `spec.paused` (set after the promotion started): the active Service does not move, and
    // the revision does not become stable, until the pause ends.
    let switched = if bg.common.paused {
        active_selector(cx).as_deref() == Some(hash)
    } else {
        switch_active_when_ready(cx, bg, hash)
    };
    // The active Service may select the revision without its pods being ready (switched by
    // hand): it becomes stable, and the previous stable one goes, only once they are.
    if !switched || !has_ready(cx, hash, replicas) {
        if bg.common.paused {
            return spec_paused(cx);
        }
        let (ready, _) = ready_counts(cx, hash);
        let waiting = Waiting::Promoting {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
            switched,
        };
        return waiting_for_pods(cx, &bg.common, waiting, true);
    }
    if !cx.release.promote_full
        && let Some(post) = bg.post_promotion_analysis.clone()
    {
        let mut slot = take_slot(cx, AnalysisKind::PostPromotion);
        let (phase, run) = analysis::follow(
            cx,
            AnalysisKind::PostPromotion,
            None,
            &post,
            hash,
            &mut slot,
        );
        put_slot(cx, AnalysisKind::PostPromotion, slot.clone());
        if let Some(flow) = analysis_gate(cx, Point::PostPromotion, &post, phase, &run, slot) {
            return flow;
        }
    }
    if bg.common.paused {
        return spec_paused(cx);
    }
    complete(cx, bg, hash, stable);
    Flow::Wait
}

/// `spec.paused` holds the release where it is (Argo Rollouts: a paused rollout does not
/// advance; its phase is `Paused`).
fn spec_paused(cx: &mut Ctx<'_>) -> Flow {
    cx.set_outcome(
        RolloutPhase::Paused,
        Msg::SpecPausedBlueGreen,
        ConditionReason::RolloutPaused,
    );
    Flow::Wait
}

/// Pre-promotion analysis and pauses. `None` means: promote now.
fn promotion_gates(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str) -> Option<Flow> {
    let full = cx.release.promote_full;
    if !full && let Some(pre) = bg.pre_promotion_analysis.clone() {
        let mut slot = take_slot(cx, AnalysisKind::PrePromotion);
        let (phase, run) =
            analysis::follow(cx, AnalysisKind::PrePromotion, None, &pre, hash, &mut slot);
        put_slot(cx, AnalysisKind::PrePromotion, slot.clone());
        if let Some(flow) = analysis_gate(cx, Point::PrePromotion, &pre, phase, &run, slot) {
            return Some(flow);
        }
    }
    if bg.common.paused {
        return Some(spec_paused(cx));
    }
    let needs_pause = !bg.auto_promotion_enabled || bg.auto_promotion_seconds.is_some();
    if full || !needs_pause || promoted_by_user(cx) {
        return None;
    }
    let start = pause_started(cx, PauseReason::BlueGreenPause);
    let rollout = cx.name().to_string();
    let hash = hash.to_string();
    match bg.auto_promotion_seconds {
        Some(secs) => {
            let at = add_secs(start, secs);
            if cx.now >= at {
                cx.event(
                    EventReason::AutoPromotion,
                    Msg::AutoPromotion { seconds: secs },
                );
                return None;
            }
            cx.wake_at(at);
            let msg = Msg::AutoPromotionPause {
                hash,
                at,
                seconds: secs,
                rollout,
            };
            cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
        }
        None => {
            let msg = Msg::PromotionPause { hash, rollout };
            cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
        }
    }
    Some(Flow::Wait)
}

fn take_slot(cx: &mut Ctx<'_>, kind: AnalysisKind) -> Option<RolloutAnalysisRunStatus> {
    let bgs = cx.status.blue_green.get_or_insert_with(Default::default);
    match kind {
        AnalysisKind::PrePromotion => bgs.pre_promotion_analysis_run_status.take(),
        _ => bgs.post_promotion_analysis_run_status.take(),
    }
}

fn put_slot(cx: &mut Ctx<'_>, kind: AnalysisKind, slot: Option<RolloutAnalysisRunStatus>) {
    let bgs = cx.status.blue_green.get_or_insert_with(Default::default);
    match kind {
        AnalysisKind::PrePromotion => bgs.pre_promotion_analysis_run_status = slot,
        _ => bgs.post_promotion_analysis_run_status = slot,
    }
}

/// The new revision becomes stable; the previous stable one is scaled down after the delay.
fn complete(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str, previous: &str) {
    // Inside a guard window the previous revision keeps its pods until the window ends.
    crate::alerts::open_guard(cx, hash, previous);
    replicasets::schedule_scale_down(cx, previous, bg.scale_down_delay_seconds);
    release::complete(cx, hash);
    if let Some(bgs) = cx.status.blue_green.as_mut() {
        bgs.scale_up_preview_check_point = None;
    }
    let replicas = bg.common.replicas;
    cx.event(
        EventReason::RolloutCompleted,
        Msg::BlueGreenCompleted {
            hash: hash.to_string(),
            previous: previous.to_string(),
            delay: crate::alerts::kept_for(cx, bg.scale_down_delay_seconds),
        },
    );
    healthy(cx, hash, replicas);
}
