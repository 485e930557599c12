//! `spec.workloadRef` end to end (Argo Rollouts, docs "Migrating to Rollouts: Reference
//! Deployment From Rollout"): a Rollout with no template of its own deploys the template of an
//! existing Deployment, ReplicaSet or PodTemplate; `scaleDown: onsuccess` scales a Deployment or
//! ReplicaSet to zero once the Rollout is Healthy, `progressively` as the Rollout's pods become
//! available, `never` leaves it alone; every scale is a `ScalingWorkload` Event; a change of the
//! referenced template starts a new release.
//!
//! The simulated cluster stores the Deployment but runs no Deployment controller: only its
//! template is read and its `spec.replicas` patched, which is all the controller does with it.
//! A referenced ReplicaSet does run pods (the simulated ReplicaSet controller runs it).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplate};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use rollgate_api::RolloutPhase;
use rollgate_e2e::*;
use rollgate_sim::ImageBehavior;
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
    // No template and no selector: both come from the Deployment (Argo takes the
    // Deployment's selector when the Rollout has none).
    workload_and_rollout(&stack, "Deployment", "web-deploy", "onsuccess").await?;

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

/// Notes of the `ScalingWorkload` Events published on the Rollout `name`, oldest first.
async fn scaling_notes(stack: &Stack, name: &str) -> anyhow::Result<Vec<String>> {
    let list = Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    let mut events: Vec<Event> = list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some("ScalingWorkload"))
        .collect();
    events.sort_by(|a, b| {
        let at = |e: &Event| e.event_time.as_ref().map(|t| t.0);
        at(a).cmp(&at(b))
    });
    Ok(events.into_iter().filter_map(|e| e.note).collect())
}

/// The blue/green Services of `web`, the workload `kind` `name` of the user's (a Deployment of
/// 3 pods, a ReplicaSet of 2, both of `app:1` and selecting `app: web`, with no rollout label
/// or owner; or a PodTemplate of `app:1`) and the Rollout `web` referring to it with
/// `scale_down` (with a selector of its own only for a PodTemplate, which has none).
async fn workload_and_rollout(stack: &Stack, kind: &str, name: &str, scale_down: &str) -> R {
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let (api_version, object) = match kind {
        "PodTemplate" => (
            "v1",
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name},
                   "template": pod_template("web", "app:1")}),
        ),
        _ => (
            "apps/v1",
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {
                "replicas": if kind == "Deployment" { 3 } else { 2 },
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("web", "app:1"),
            }}),
        ),
    };
    stack.apply_yaml(&object.to_string(), NS).await?;
    let reference = json!({"apiVersion": api_version, "kind": kind, "name": name,
                           "scaleDown": scale_down});
    stack
        .apply_yaml(&rollout_of(reference, kind == "PodTemplate"), NS)
        .await?;
    Ok(())
}

/// A Rollout `web` (blue/green, 3 replicas) with no template of its own, referring to `r`;
/// `selector` set only when given (a Deployment's or ReplicaSet's is taken otherwise).
fn rollout_of(r: serde_json::Value, selector: bool) -> String {
    let mut rollout = blue_green_rollout("web", "app:1", json!({}), json!({}));
    if let Some(spec) = rollout["spec"].as_object_mut() {
        spec.remove("template");
        if !selector {
            spec.remove("selector");
        }
        spec.insert("workloadRef".into(), r);
    }
    rollout.to_string()
}

/// The ReplicaSet `name` as the API server has it now.
async fn replica_set(stack: &Stack, name: &str) -> anyhow::Result<ReplicaSet> {
    Ok(Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .get(name)
        .await?)
}

/// `spec.replicas` of the ReplicaSet `name`, once it equals `want` (up to `secs` virtual
/// seconds); the last value read otherwise.
async fn replica_set_replicas(
    stack: &Stack,
    name: &str,
    want: i32,
    secs: u64,
) -> anyhow::Result<i32> {
    let mut last = -1;
    for _ in 0..secs {
        last = replica_set(stack, name).await?.spec.replicas.unwrap_or(1);
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(last)
}

#[tokio::test(start_paused = true)]
async fn a_rollout_deploys_a_referenced_replica_set_in_its_own_and_scales_it_down_on_success() -> R
{
    let stack = stack().await?;
    // A ReplicaSet of the user's (2 pods of app:1), not the rollout's: no rollout label, no
    // owner.
    workload_and_rollout(&stack, "ReplicaSet", "web-legacy", "onsuccess").await?;
    let stored = replica_set(&stack, "web-legacy").await?;
    let v1 = rollgate_engine::hash::pod_template_hash(&stored.spec.template.unwrap_or_default());
    let healthy = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(
        healthy.status.and_then(|s| s.stable_rs).as_deref(),
        Some(v1.as_str()),
        "the ReplicaSet's template is the first revision"
    );
    // The rollout runs a ReplicaSet of its own; the referenced one is not one of them.
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 3, 3)]);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert_eq!(replica_set_replicas(&stack, "web-legacy", 0, 30).await?, 0);
    let legacy = replica_set(&stack, "web-legacy").await?;
    assert_eq!(
        legacy.metadata.owner_references, None,
        "the referenced ReplicaSet is never adopted"
    );
    assert!(
        legacy
            .metadata
            .labels
            .unwrap_or_default()
            .keys()
            .all(|k| !k.starts_with("rollgate.dev/")),
        "the referenced ReplicaSet carries no rollgate label"
    );
    assert_eq!(
        scaling_notes(&stack, "web").await?,
        ["Scaled down ReplicaSet web-legacy from 2 to 0 (spec.workloadRef.scaleDown: onsuccess)"]
    );

    // A new image in the referenced ReplicaSet's template is a new release (the controller
    // watches it).
    Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .patch(
            "web-legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "app:2"}]}}}})),
        )
        .await?;
    let stored = replica_set(&stack, "web-legacy").await?;
    let v2 = rollgate_engine::hash::pod_template_hash(&stored.spec.template.unwrap_or_default());
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
    // Still there, still at zero, scaled once.
    assert_eq!(replica_set_replicas(&stack, "web-legacy", 0, 1).await?, 0);
    assert_eq!(scaling_notes(&stack, "web").await?.len(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rollout_deploys_a_referenced_pod_template_and_scales_nothing() -> R {
    let stack = stack().await?;
    // A PodTemplate has no selector: the rollout keeps its own. scaleDown has nothing to scale.
    workload_and_rollout(&stack, "PodTemplate", "web-template", "onsuccess").await?;
    let api = Api::<PodTemplate>::namespaced(stack.client.clone(), NS);
    let v1 = rollgate_engine::hash::pod_template_hash(
        &api.get("web-template").await?.template.unwrap_or_default(),
    );
    let healthy = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(
        healthy.status.as_ref().and_then(|s| s.stable_rs.as_deref()),
        Some(v1.as_str()),
        "{}",
        message(&healthy)
    );
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 3, 3)]);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert!(scaling_notes(&stack, "web").await?.is_empty());

    // A new image in the PodTemplate is a new release (the controller watches it).
    api.patch(
        "web-template",
        &PatchParams::default(),
        &Patch::Merge(json!({"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2"}]}}})),
    )
    .await?;
    let v2 = rollgate_engine::hash::pod_template_hash(
        &api.get("web-template").await?.template.unwrap_or_default(),
    );
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
    assert_eq!(selected(&stack, "web-active").await?, Some(v2));
    assert!(scaling_notes(&stack, "web").await?.is_empty());
    Ok(())
}

/// The Deployment `web-deploy` (3 replicas of `app:1`) and a Rollout referring to it with
/// `scale_down`.
async fn deployment_and_rollout(stack: &Stack, scale_down: &str) -> R {
    workload_and_rollout(stack, "Deployment", "web-deploy", scale_down).await
}

#[tokio::test(start_paused = true)]
async fn scale_down_never_leaves_the_deployment_its_replicas() -> R {
    let stack = stack().await?;
    deployment_and_rollout(&stack, "never").await?;
    let v1 = deployment_hash(&stack, "web-deploy").await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1, 3, 3)]);
    // Well after Healthy, the Deployment still has its 3 replicas and no scale was reported.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(deployment_replicas(&stack, "web-deploy", 3, 1).await?, 3);
    assert!(scaling_notes(&stack, "web").await?.is_empty());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn scale_down_progressively_shrinks_the_deployment_as_the_rollout_pods_become_ready() -> R {
    let stack = stack().await?;
    // The rollout's pods crash-loop until they are replaced after the image is fixed, one at a
    // time: its available pods grow 0, 1, 2, 3.
    stack
        .sim
        .set_image_behavior("app:1", ImageBehavior::CrashLoop);
    deployment_and_rollout(&stack, "progressively").await?;
    let v1 = deployment_hash(&stack, "web-deploy").await?;
    for _ in 0..60 {
        if pods_of(&stack, &v1).await?.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(pods_of(&stack, &v1).await?.len(), 3);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        deployment_replicas(&stack, "web-deploy", 3, 1).await?,
        3,
        "no rollout pod available yet"
    );
    stack.sim.set_image_behavior(
        "app:1",
        ImageBehavior::Ready {
            after: Duration::from_secs(2),
        },
    );
    let pods = Api::<Pod>::namespaced(stack.client.clone(), NS);
    let mut seen = vec![3];
    for want in [2, 1, 0] {
        // Replace one crash-looping pod: the new one becomes ready.
        let crashing = pods
            .list(
                &ListParams::default()
                    .labels(&format!("{}={v1}", rollgate_api::labels::POD_TEMPLATE_HASH)),
            )
            .await?
            .items
            .into_iter()
            .find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .and_then(|p| p.metadata.name)
            .ok_or_else(|| anyhow::anyhow!("no crash-looping pod left before {want}"))?;
        pods.delete(&crashing, &DeleteParams::default().grace_period(0))
            .await?;
        seen.push(deployment_replicas(&stack, "web-deploy", want, 60).await?);
    }
    assert_eq!(
        seen,
        [3, 2, 1, 0],
        "the Deployment follows the available pods"
    );
    let done = wait_phase(&stack, "web", RolloutPhase::Healthy, 60).await?;
    assert_eq!(
        done.status.and_then(|s| s.stable_rs).as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        scaling_notes(&stack, "web").await?,
        [
            "Scaled down Deployment web-deploy from 3 to 2 (spec.workloadRef.scaleDown: \
             progressively)",
            "Scaled down Deployment web-deploy from 2 to 1 (spec.workloadRef.scaleDown: \
             progressively)",
            "Scaled down Deployment web-deploy from 1 to 0 (spec.workloadRef.scaleDown: \
             progressively)",
        ]
    );
    Ok(())
}
