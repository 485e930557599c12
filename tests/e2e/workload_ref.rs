//! `spec.workloadRef` end to end (Argo Rollouts, docs "Migrating to Rollouts: Reference
//! Deployment From Rollout"): a Rollout with no template of its own deploys the template of an
//! existing Deployment, `scaleDown: onsuccess` scales that Deployment to zero once the Rollout
//! is Healthy, and a change of the Deployment's image starts a new release.
//!
//! The simulated cluster stores the Deployment but runs no Deployment controller: only its
//! template is read and its `spec.replicas` patched, which is all the controller does with it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rollgate_api::RolloutPhase;
use rollgate_e2e::*;
use rollgate_test_support::{blue_green_rollout, blue_green_services, pod_template};
use serde_json::json;

type R = anyhow::Result<()>;

/// The pod-template hash of the Deployment's template as the API server stores it (defaults
/// filled in): the revision the rollout must run.
async fn deployment_hash(stack: &Stack, name: &str) -> anyhow::Result<String> {
    let d = Api::<Deployment>::namespaced(stack.client.clone(), NS)
        .get(name)
        .await?;
    Ok(rollgate_engine::hash::pod_template_hash(&d.spec.template))
}

/// `spec.replicas` of the Deployment `name`, once it equals `want` (up to `secs` virtual
/// seconds); the last value read otherwise.
async fn deployment_replicas(
    stack: &Stack,
    name: &str,
    want: i32,
    secs: u64,
) -> anyhow::Result<i32> {
    let api = Api::<Deployment>::namespaced(stack.client.clone(), NS);
    let mut last = -1;
    for _ in 0..secs {
        last = api.get(name).await?.spec.replicas.unwrap_or(1);
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(last)
}

#[tokio::test(start_paused = true)]
async fn a_rollout_deploys_the_referenced_deployment_and_scales_it_down_on_success() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-deploy"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template("web", "app:1"),
        }
    });
    stack.apply_yaml(&deployment.to_string(), NS).await?;
    let mut rollout = blue_green_rollout("web", "app:1", json!({}), json!({}));
    if let Some(spec) = rollout["spec"].as_object_mut() {
        // No template and no selector: both come from the Deployment (Argo takes the
        // Deployment's selector when the Rollout has none).
        spec.remove("template");
        spec.remove("selector");
        spec.insert(
            "workloadRef".into(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-deploy",
                   "scaleDown": "onsuccess"}),
        );
    }
    stack.apply_yaml(&rollout.to_string(), NS).await?;

    let v1 = deployment_hash(&stack, "web-deploy").await?;
    let healthy = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(
        healthy.status.and_then(|s| s.stable_rs).as_deref(),
        Some(v1.as_str()),
        "the Deployment's template is the first revision"
    );
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 3, 3)]);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    // scaleDown: onsuccess: the Deployment goes to zero once the Rollout is Healthy.
    assert_eq!(deployment_replicas(&stack, "web-deploy", 0, 30).await?, 0);

    // A new image in the Deployment is a new release of the Rollout.
    Api::<Deployment>::namespaced(stack.client.clone(), NS)
        .patch(
            "web-deploy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "app:2"}]}}}})),
        )
        .await?;
    let v2 = deployment_hash(&stack, "web-deploy").await?;
    assert_ne!(v1, v2);
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
    assert_eq!(selected(&stack, "web-active").await?, Some(v2.clone()));
    assert_eq!(deployment_replicas(&stack, "web-deploy", 0, 1).await?, 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rollout_with_a_template_and_a_workload_ref_is_invalid_and_creates_nothing() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let mut rollout = blue_green_rollout("web", "app:1", json!({}), json!({}));
    rollout["spec"]["workloadRef"] =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-deploy"});
    stack.apply_yaml(&rollout.to_string(), NS).await?;
    let r = wait_phase(&stack, "web", RolloutPhase::Degraded, 60).await?;
    let text = message(&r);
    assert!(
        text.contains("spec.template: must be empty when spec.workloadRef is set"),
        "{text}"
    );
    assert!(
        text.contains("spec.workloadRef.name: Deployment \"web-deploy\" not found"),
        "{text}"
    );
    assert!(replica_sets(&stack, "web").await?.is_empty());
    assert_eq!(selected(&stack, "web-active").await?, None);
    Ok(())
}
