//! `spec.restartAt`: pods created before that time are restarted (deleted, so that their
//! ReplicaSet creates fresh ones), a few at a time, only while nothing is being released.
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
    let stable = cx.status.stable_rs.clone().unwrap_or_default();
    let pods: Vec<_> = cx
        .observed
        .pods
        .iter()
        .filter(|p| p.hash == stable)
        .cloned()
        .collect();
    let old: Vec<_> = pods
        .iter()
        .filter(|p| !p.terminating && p.created.is_some_and(|c| c < at))
        .collect();
    let terminating = pods.iter().filter(|p| p.terminating).count();
    if old.is_empty() && terminating == 0 {
        cx.status.restarted_at = Some(Time(at));
        cx.event(EventReason::RolloutRestarted, Msg::Restarted { at });
        return;
    }
    let available = i32::try_from(pods.iter().filter(|p| p.ready && !p.terminating).count())
        .unwrap_or(i32::MAX);
    let mut budget = (available - (common.replicas - max_unavailable.max(1)).max(0)).max(0);
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
