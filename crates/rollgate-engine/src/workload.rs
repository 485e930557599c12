//! `spec.workloadRef`'s `scaleDown` policy: what happens to the referenced Deployment's or
//! ReplicaSet's own pods (Argo Rollouts, docs "Migrating to Rollouts: Reference Deployment From
//! Rollout"). A referenced PodTemplate runs no pods: there is nothing to scale.

use rollgate_api::{EventReason, RolloutPhase};

use crate::action::Action;
use crate::context::Ctx;
use crate::message::Msg;
use crate::validate::{CommonSpec, ScaleDown};

/// Emits the [`Action::ScaleWorkload`] the policy asks for, once the strategy has decided
/// (`cx.outcome` holds the phase of this reconcile), with a `ScalingWorkload` Event naming the
/// object and the replica counts. Nothing when the object already has that size, so a second
/// reconcile acts no more.
pub fn scale(cx: &mut Ctx<'_>, common: &CommonSpec) {
    let Some(policy) = &common.workload else {
        return;
    };
    if !policy.kind.scalable() {
        // A PodTemplate has no replicas: `scaleDown` has nothing to act on.
        return;
    }
    let Some(workload) = cx
        .observed
        .workload
        .as_ref()
        .filter(|w| w.name == policy.name && w.kind == policy.kind)
    else {
        return;
    };
    let healthy = cx
        .outcome
        .as_ref()
        .is_some_and(|o| o.phase == RolloutPhase::Healthy);
    let target = match policy.scale_down {
        // `never`: the object is left alone.
        ScaleDown::Never => return,
        // `onsuccess`: to zero once the rollout is Healthy.
        ScaleDown::OnSuccess if healthy => 0,
        ScaleDown::OnSuccess => return,
        // `progressively`: the object keeps the pods the rollout does not yet have available
        // (so it grows back if they stop being available), zero once Healthy.
        ScaleDown::Progressively if healthy => 0,
        ScaleDown::Progressively => {
            let available: i64 = cx
                .observed
                .replica_sets
                .iter()
                .map(|rs| i64::from(rs.available.max(0)))
                .sum();
            let replicas = i64::from(common.replicas);
            i32::try_from((replicas - available.min(replicas)).max(0)).unwrap_or(0)
        }
    };
    if workload.replicas != target {
        let (kind, name, from) = (workload.kind, workload.name.clone(), workload.replicas);
        cx.event(
            EventReason::ScalingWorkload,
            Msg::WorkloadScaled {
                kind,
                name: name.clone(),
                from,
                to: target,
                policy: policy.scale_down,
            },
        );
        cx.actions.push(Action::ScaleWorkload {
            kind,
            name,
            replicas: target,
        });
    }
}
