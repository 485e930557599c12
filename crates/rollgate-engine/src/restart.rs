//! `spec.restartAt`: pods created before that time are restarted (deleted, so that their
//! ReplicaSet creates fresh ones), a few at a time, while nothing is being released or while a
//! release is paused.
//!
//! Pods that are not ready go first and cost nothing; ready pods are deleted only while the
//! available pods stay at or above `replicas - maxUnavailable` (blue/green: one at a time).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollgate_api::{ConditionReason, EventReason, RolloutPhase};

use crate::action::Action;
use crate::context::Ctx;
use crate::message::Msg;
use crate::validate::CommonSpec;

/// Restarts old pods of the stable revision when `restartAt` asks for it. Call only when the
/// rollout is otherwise healthy; it may turn the outcome into a Progressing "restarting" one.
pub fn restart(cx: &mut Ctx<'_>, common: &CommonSpec, max_unavailable: i32) {
    let stable = cx.status.stable_rs.clone().unwrap_or_default();
    restart_sets(cx, common, max_unavailable, &[&stable], true);
}

/// Restarts old pods while a release is paused (at a step, waiting for promotion, or by
/// `spec.paused`), as Argo Rollouts does: the stable ReplicaSet first, then the new one, one
/// ReplicaSet at a time, each within its own availability budget. The outcome (phase Paused)
/// stays; `status.restartedAt` is set once no pod of either is older than `restartAt`.
pub fn restart_paused(
    cx: &mut Ctx<'_>,
    common: &CommonSpec,
    max_unavailable: i32,
    stable: &str,
    hash: &str,
) {
    restart_sets(cx, common, max_unavailable, &[stable, hash], false);
}

fn restart_sets(
    cx: &mut Ctx<'_>,
    common: &CommonSpec,
    max_unavailable: i32,
    hashes: &[&str],
    report: bool,
) {
    let Some(at) = common.restart_at else {
        return;
    };
    if cx.status.restarted_at.as_ref().map(|t| t.0) == Some(at) {
        return;
    }
    if at > cx.now {
        cx.wake_at(at);
        return;
    }
    let pods_of = |hash: &str| -> Vec<_> {
        cx.observed
            .pods
            .iter()
            .filter(|p| p.hash == hash)
            .cloned()
            .collect()
    };
    let is_old =
        |p: &crate::observed::ObservedPod| !p.terminating && p.created.is_some_and(|c| c < at);
    // Its size as this reconcile leaves it.
    let size_of = |hash: &str| {
        cx.observed
            .replica_set(hash)
            .map(|rs| crate::replicasets::planned_size(cx, &rs.name).unwrap_or(rs.replicas))
            .unwrap_or(common.replicas)
    };
    // The first ReplicaSet, in order, that still has old or terminating pods; the next one is
    // started only once the ones before are fully ready again.
    let mut settling = false;
    let mut next = None;
    for h in hashes.iter().copied() {
        let pods = pods_of(h);
        if pods.iter().any(|p| p.terminating || is_old(p)) {
            next = Some(h);
            break;
        }
        let ready = pods.iter().filter(|p| p.ready).count();
        settling |= i32::try_from(ready).unwrap_or(i32::MAX) < size_of(h);
    }
    if settling {
        // Deleted pods are being replaced: wait for them before the next ReplicaSet, or
        // before calling the restart done.
        return;
    }
    let Some(hash) = next else {
        cx.status.restarted_at = Some(Time(at));
        cx.event(EventReason::RolloutRestarted, Msg::Restarted { at });
        return;
    };
    let pods = pods_of(hash);
    let old: Vec<_> = pods.iter().filter(|p| is_old(p)).collect();
    let size = size_of(hash);
    let available = i32::try_from(pods.iter().filter(|p| p.ready && !p.terminating).count())
        .unwrap_or(i32::MAX);
    let mut budget = (available - (size - max_unavailable.max(1)).max(0)).max(0);
    let mut order = old.clone();
    // Not-ready pods first (free), then the oldest.
    order.sort_by_key(|p| (p.ready, p.created, p.name.clone()));
    for pod in order {
        if pod.ready {
            if budget == 0 {
                break;
            }
            budget -= 1;
        }
        cx.event(
            EventReason::PodRestarted,
            Msg::PodRestarted {
                pod: pod.name.clone(),
                at,
            },
        );
        cx.actions.push(Action::DeletePod {
            name: pod.name.clone(),
        });
    }
    if !report {
        return;
    }
    let msg = Msg::Restarting {
        at,
        left: old.len(),
        of: pods.len(),
    };
    cx.set_outcome(
        RolloutPhase::Progressing,
        msg,
        ConditionReason::RolloutRestarting,
    );
}
