//! The `ReplicaFailure` condition of a Rollout end to end. Argo Rollouts (`rollout/sync.go`,
//! `calculateRolloutConditions`, as the Deployment controller does) copies a ReplicaSet's
//! `ReplicaFailure` condition, which the Kubernetes ReplicaSet controller sets when it cannot
//! create pods (here a namespace pod quota, as a ResourceQuota refuses them), onto the Rollout
//! with the same status, reason and message, the new ReplicaSet's first, and removes it once
//! no ReplicaSet has one. What kubectl shows of the Rollout (`status.conditions`) is read here.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Api;
use rollgate_api::{Rollout, RolloutCondition, RolloutPhase};
use rollgate_e2e::*;
use rollgate_test_support::{blue_green_rollout, blue_green_services};
use serde_json::json;

type R = anyhow::Result<()>;

fn replica_failure(r: &Rollout) -> Option<RolloutCondition> {
    r.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure")
        .cloned()
}

#[tokio::test(start_paused = true)]
async fn a_release_whose_pods_a_quota_refuses_shows_replica_failure_until_they_can_be_created() -> R
{
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({}), json!({})).to_string(),
            NS,
        )
        .await?;
    let healthy = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert!(replica_failure(&healthy).is_none());
    let v1 = healthy.status.and_then(|s| s.stable_rs).unwrap_or_default();
    assert_eq!(pod_names(&stack, "web").await?.len(), 3);

    // The namespace may hold no more pods than it has: the new revision gets none.
    stack.sim.set_pod_quota(NS, Some(3));
    stack.set_image(NS, "web", "app", "app:2").await?;
    let failing = stack
        .wait_for(NS, "web", Duration::from_secs(60), "ReplicaFailure", |r| {
            replica_failure(r).is_some()
        })
        .await?;
    let condition = replica_failure(&failing).expect("a ReplicaFailure condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "FailedCreate")
    );
    // The message is the new ReplicaSet's, as it is.
    let v2 = failing
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    assert_ne!(v1, v2);
    let rs = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .get(&format!("web-{v2}"))
        .await?;
    let rs_message = rs
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
        .and_then(|c| c.message);
    assert_eq!(Some(condition.message.clone()), rs_message);
    assert!(
        condition.message.contains("exceeded quota"),
        "{}",
        condition.message
    );
    // It reports; the release waits for its pods and production stays on the stable revision.
    assert_eq!(phase(&failing), Some(RolloutPhase::Progressing));
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));

    // The quota is lifted: the pods are created, the condition goes, the release completes.
    stack.sim.set_pod_quota(NS, None);
    let cleared = stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(60),
            "no ReplicaFailure",
            |r| replica_failure(r).is_none(),
        )
        .await?;
    assert!(replica_failure(&cleared).is_none());
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(300), "app:2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
                && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;
    assert_eq!(
        phase(&done),
        Some(RolloutPhase::Healthy),
        "{}",
        message(&done)
    );
    assert!(replica_failure(&done).is_none());
    assert_eq!(selected(&stack, "web-active").await?, Some(v2));
    Ok(())
}
