//! `spec.workloadRef`'s `scaleDown` policy: what happens to the referenced Deployment's own pods
//! (Argo Rollouts, docs "Migrating to Rollouts: Reference Deployment From Rollout").

use rollgate_api::RolloutPhase;

use crate::action::Action;
use crate::context::Ctx;
use crate::validate::{CommonSpec, ScaleDown};

/// Emits the [`Action::ScaleWorkload`] the policy asks for, once the strategy has decided
/// (`cx.outcome` holds the phase of this reconcile). Nothing when the Deployment already has
/// that size, so a second reconcile acts no more.
pub fn scale(cx: &mut Ctx<'_>, common: &CommonSpec) {
    let Some(policy) = &common.workload else {
        return;
    };
    let Some(deployment) = cx.observed.workload.as_ref() else {
        return;
    };
    let healthy = cx
        .outcome
        .as_ref()
        .is_some_and(|o| o.phase == RolloutPhase::Healthy);
    let target = match policy.scale_down {
        // `never`: the Deployment is left alone.
        ScaleDown::Never => return,
        // `onsuccess`: to zero once the rollout is Healthy.
        ScaleDown::OnSuccess if healthy => 0,
        ScaleDown::OnSuccess => return,
        // `progressively`: the Deployment keeps the pods the rollout does not yet have
        // available (so it grows back if they stop being available), zero once Healthy.
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
    if deployment.replicas != target {
        cx.actions.push(Action::ScaleWorkload {
            name: deployment.name.clone(),
            replicas: target,
        });
    }
}
