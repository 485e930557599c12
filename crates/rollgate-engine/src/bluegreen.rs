//! The blue/green strategy.
//!
//! Sequence of a release (revision hash `H`, stable hash `S`): ReplicaSet `H` at
//! `previewReplicaCount` behind the preview Service -> pre-promotion analysis -> pause (manual or
//! `autoPromotionSeconds`) -> scale `H` to full -> active Service to `H` once every pod is ready ->
//! post-promotion analysis -> `H` becomes stable and `S` is scaled down after
//! `scaleDownDelaySeconds`. An abort puts the active Service back on `S` at once.
//!
//! Invariant: the active Service is only ever pointed at a ReplicaSet with `replicas` ready and
//! available pods, except on the very first deploy (nothing else exists to serve).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollgate_api::{RolloutAnalysisRunStatus, RolloutPhase};

use crate::action::{Action, ServiceRole};
use crate::analysis;
use crate::context::{Ctx, REASON_ABORTED};
use crate::hash::pod_template_hash;
use crate::observed::AnalysisKind;
use crate::release::{
    Flow, aborted_before, analysis_gate, has_ready, pause_started, promoted_by_user, ready_counts,
    reset_release, service_hash, start_release_if_new, waiting_for_pods,
};
use crate::replicasets::{self, replica_set_name};
use crate::time::add_secs;
use crate::validate::BlueGreenSpec;

/// Pause reason while waiting for promotion.
const PAUSE_BLUE_GREEN: &str = "BlueGreenPause";

pub fn reconcile(cx: &mut Ctx<'_>, bg: &BlueGreenSpec) {
    let hash = pod_template_hash(&bg.common.template);
    cx.status.strategy = Some("BlueGreen".into());
    if cx.status.abort == Some(false) {
        // `retry` writes false; only `true` means anything.
        cx.status.abort = None;
    }
    start_release_if_new(cx, &hash, "blue/green");
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

    let aborted = cx.status.abort == Some(true);
    let active = active_selector(cx);
    let stable = cx.status.stable_rs.clone();
    let mut protected: Vec<&str> = Vec::new();
    if !aborted {
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
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    analysis::terminate_others(cx, &keep);

    replicasets::count(cx, &bg.common, &hash);
    let replicas = bg.common.replicas;
    let available = active.is_some_and(|h| has_ready(cx, &h, replicas));
    if let Some(o) = cx.outcome.as_mut() {
        o.available = available;
        o.completed = stable.as_deref() == Some(hash.as_str()) && o.phase == RolloutPhase::Healthy;
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
    let (reason, field) = match role {
        ServiceRole::Active => ("ActiveServiceSwitched", "active"),
        _ => ("PreviewServiceSwitched", "preview"),
    };
    cx.event(
        false,
        reason,
        format!(
            "Switched {field} Service {service} from {} to {to}",
            from.as_deref().unwrap_or("<none>")
        ),
    );
    cx.actions.push(Action::SwitchService {
        service: service.to_string(),
        role,
        from,
        to: to.to_string(),
    });
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
    cx.status.abort = None;
    replicasets::ensure(cx, &bg.common, hash, replicas, cx.status.current_revision);
    // The one exception to the readiness invariant: nothing else could serve.
    switch(cx, bg, ServiceRole::Active, &bg.active_service, hash);
    switch_preview(cx, bg, hash);
    if has_ready(cx, hash, replicas) {
        cx.status.stable_rs = Some(hash.to_string());
        cx.event(
            false,
            "RolloutCompleted",
            format!("First revision ({hash}) is available with {replicas} pods"),
        );
        let msg = format!("Healthy: revision {hash} serves with {replicas}/{replicas} pods");
        cx.set_outcome(
            RolloutPhase::Healthy,
            msg,
            ("True", "NewReplicaSetAvailable"),
        );
    } else {
        let (ready, _) = ready_counts(cx, hash);
        let name = replica_set_name(cx.name(), hash);
        let msg = format!(
            "First deploy: waiting for ReplicaSet {name}: {ready}/{replicas} pods available"
        );
        // First deploy: nothing to fall back to, so the deadline only reports.
        let _ = waiting_for_pods(cx, &bg.common, msg, false);
    }
}

fn steady(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str) {
    let replicas = bg.common.replicas;
    cx.status.abort = None;
    cx.status.aborted_at = None;
    replicasets::ensure(cx, &bg.common, hash, replicas, cx.status.current_revision);
    let switched = switch_active_when_ready(cx, bg, hash);
    switch_preview(cx, bg, hash);
    let (ready, _) = ready_counts(cx, hash);
    if switched && ready >= replicas {
        let msg = format!("Healthy: revision {hash} serves with {replicas}/{replicas} pods");
        cx.set_outcome(
            RolloutPhase::Healthy,
            msg,
            ("True", "NewReplicaSetAvailable"),
        );
        crate::restart::restart(cx, &bg.common, 1);
    } else {
        let name = replica_set_name(cx.name(), hash);
        let msg =
            format!("Waiting for stable ReplicaSet {name}: {ready}/{replicas} pods available");
        cx.set_outcome(
            RolloutPhase::Progressing,
            msg,
            ("True", "ReplicaSetUpdated"),
        );
    }
}

fn in_flight(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str, stable: &str) {
    let aborted_before = aborted_before(cx);
    // The stable ReplicaSet stays at full size while a release is in flight: an abort must be
    // able to return production traffic to it at once.
    if cx.observed.replica_set(stable).is_some() {
        replicasets::ensure(cx, &bg.common, stable, bg.common.replicas, None);
    }

    // `promoteFull` set after an abort overrides it (an abort clears an earlier `promoteFull`,
    // so whichever came last wins).
    let full_after_abort = aborted_before.is_some() && cx.status.promote_full == Some(true);
    if cx.status.abort == Some(true) && !full_after_abort {
        let message = aborted_before.unwrap_or_else(|| {
            let m = format!(
                "Aborted by user (status.abort): production traffic stays on stable revision {stable}"
            );
            cx.event(true, "RolloutAborted", m.clone());
            cx.status.promote_full = None;
            m
        });
        if cx.status.aborted_at.is_none() {
            cx.status.aborted_at = Some(Time(cx.now));
        }
        aborted(cx, bg, hash, stable, message);
        return;
    }
    if aborted_before.is_some() {
        let full = cx.status.promote_full;
        let how = if full == Some(true) {
            " with full promotion (no analysis, no pause)"
        } else {
            ""
        };
        cx.event(
            false,
            "RolloutRetried",
            format!("Retrying the release of {hash}{how}"),
        );
        reset_release(cx);
        cx.status.promote_full = full;
    }
    if let Flow::Abort(reason) = progress(cx, bg, hash, stable) {
        let message =
            format!("Aborted: {reason}; production traffic returned to stable revision {stable}");
        cx.event(true, "RolloutAborted", message.clone());
        cx.status.abort = Some(true);
        cx.status.promote_full = None;
        cx.status.aborted_at = Some(Time(cx.now));
        aborted(cx, bg, hash, stable, message);
    }
}

/// Appended to the abort message while the active Service cannot return to stable yet.
const WAITING_FOR_STABLE: &str = " (waiting for stable pods to be ready before switching back)";

/// The aborted state: active and preview back on stable, the new ReplicaSet scaled down after
/// `abortScaleDownDelaySeconds`, Degraded until retried or superseded.
fn aborted(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str, stable: &str, message: String) {
    cx.status.pause_conditions.clear();
    cx.status.controller_pause = None;
    replicasets::schedule_scale_down(cx, hash, bg.abort_scale_down_delay_seconds);
    let back = switch_active_when_ready(cx, bg, stable);
    switch_preview(cx, bg, stable);
    // `message` may come from the previous reconcile's condition, suffix included.
    let base = message.strip_suffix(WAITING_FOR_STABLE).unwrap_or(&message);
    let message = if back {
        base.to_string()
    } else {
        format!("{base}{WAITING_FOR_STABLE}")
    };
    cx.set_outcome(RolloutPhase::Degraded, message, ("False", REASON_ABORTED));
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
        let stop = if ready < target {
            let name = replica_set_name(cx.name(), hash);
            let msg =
                format!("Waiting for preview ReplicaSet {name}: {ready}/{target} pods available");
            Some(waiting_for_pods(cx, &bg.common, msg, true))
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
        cx.status.pause_conditions.clear();
        cx.status.controller_pause = None;
        cx.event(
            false,
            "RolloutPromoted",
            format!(
                "Promoting {hash}: scaling to {replicas} pods, then switching the active Service"
            ),
        );
    }
    replicasets::ensure(cx, &bg.common, hash, replicas, revision);
    let switched = switch_active_when_ready(cx, bg, hash);
    // The active Service may select the revision without its pods being ready (switched by
    // hand): it becomes stable, and the previous stable one goes, only once they are.
    if !switched || !has_ready(cx, hash, replicas) {
        let (ready, _) = ready_counts(cx, hash);
        let name = replica_set_name(cx.name(), hash);
        let msg = if switched {
            format!(
                "Waiting for ReplicaSet {name}, which the active Service selects: {ready}/{replicas} pods available"
            )
        } else {
            format!(
                "Promoting: waiting for ReplicaSet {name}: {ready}/{replicas} pods available before switching the active Service"
            )
        };
        return waiting_for_pods(cx, &bg.common, msg, true);
    }
    if cx.status.promote_full != Some(true)
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
        if let Some(flow) = analysis_gate(cx, "post-promotion", &post, phase, &run, slot) {
            return flow;
        }
    }
    complete(cx, bg, hash, stable);
    Flow::Wait
}

/// Pre-promotion analysis and pauses. `None` means: promote now.
fn promotion_gates(cx: &mut Ctx<'_>, bg: &BlueGreenSpec, hash: &str) -> Option<Flow> {
    let full = cx.status.promote_full == Some(true);
    if !full && let Some(pre) = bg.pre_promotion_analysis.clone() {
        let mut slot = take_slot(cx, AnalysisKind::PrePromotion);
        let (phase, run) =
            analysis::follow(cx, AnalysisKind::PrePromotion, None, &pre, hash, &mut slot);
        put_slot(cx, AnalysisKind::PrePromotion, slot.clone());
        if let Some(flow) = analysis_gate(cx, "pre-promotion", &pre, phase, &run, slot) {
            return Some(flow);
        }
    }
    if bg.common.paused {
        cx.set_outcome(
            RolloutPhase::Paused,
            "Paused (spec.paused is true): set it to false to continue",
            ("True", "RolloutPaused"),
        );
        return Some(Flow::Wait);
    }
    let needs_pause = !bg.auto_promotion_enabled || bg.auto_promotion_seconds.is_some();
    if full || !needs_pause || promoted_by_user(cx) {
        return None;
    }
    let start = pause_started(cx, PAUSE_BLUE_GREEN);
    let name = cx.name().to_string();
    match bg.auto_promotion_seconds {
        Some(secs) => {
            let at = add_secs(start, secs);
            if cx.now >= at {
                cx.event(
                    false,
                    "AutoPromotion",
                    format!("autoPromotionSeconds ({secs}s) elapsed: promoting"),
                );
                return None;
            }
            cx.wake_at(at);
            let msg = format!(
                "Paused: preview {hash} is ready; promoting automatically at {at} \
                 (autoPromotionSeconds: {secs}), or now with `rollgate promote {name}`"
            );
            cx.set_outcome(RolloutPhase::Paused, msg, ("True", "RolloutPaused"));
        }
        None => {
            let msg = format!(
                "Paused: preview {hash} is ready and waiting for promotion \
                 (`rollgate promote {name}`)"
            );
            cx.set_outcome(RolloutPhase::Paused, msg, ("True", "RolloutPaused"));
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
    replicasets::schedule_scale_down(cx, previous, bg.scale_down_delay_seconds);
    cx.status.stable_rs = Some(hash.to_string());
    cx.status.promote_full = None;
    cx.status.pause_conditions.clear();
    cx.status.controller_pause = None;
    if let Some(bgs) = cx.status.blue_green.as_mut() {
        bgs.scale_up_preview_check_point = None;
    }
    let replicas = bg.common.replicas;
    cx.event(
        false,
        "RolloutCompleted",
        format!(
            "Revision {hash} is stable; previous revision {previous} scales down in {}s",
            bg.scale_down_delay_seconds
        ),
    );
    let msg = format!("Healthy: revision {hash} serves with {replicas}/{replicas} pods");
    cx.set_outcome(
        RolloutPhase::Healthy,
        msg,
        ("True", "NewReplicaSetAvailable"),
    );
}
