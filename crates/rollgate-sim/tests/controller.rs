//! A real kube-runtime `Controller` over a custom resource that owns ReplicaSets, running
//! against the simulated cluster in virtual time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, CustomResource, Resource, ResourceExt};
use rollgate_sim::{SimCluster, SimConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A widget runs `replicas` pods through a ReplicaSet it owns.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct WidgetSpec {
    /// Desired pods.
    pub replicas: i32,
    /// Image.
    pub image: String,
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WidgetStatus {
    /// Ready pods.
    pub ready: i32,
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {
                                       "replicas": {"type": "integer"}, "image": {"type": "string"}}},
                                   "status": {"type": "object", "properties": {
                                       "ready": {"type": "integer"}}}}}},
                               "subresources": {"status": {}}}]}}))
    .expect("crd")
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(w: Arc<Widget>, client: Arc<Client>) -> Result<Action, ReconcileError> {
    let ns = w.namespace().unwrap_or_default();
    let name = w.name_any();
    let owner = w.controller_owner_ref(&()).expect("owner ref");
    let rs_api = Api::<ReplicaSet>::namespaced((*client).clone(), &ns);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{name}-rs"), "ownerReferences": [owner]},
        "spec": {"replicas": w.spec.replicas, "selector": {"matchLabels": {"widget": name}},
                 "template": {"metadata": {"labels": {"widget": name}},
                              "spec": {"containers": [{"name": "c", "image": w.spec.image}]}}}
    }))
    .expect("rs");
    let rs = rs_api
        .patch(
            &format!("{name}-rs"),
            &PatchParams::apply("widget-controller").force(),
            &Patch::Apply(&rs),
        )
        .await?;
    let ready = rs.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let status = json!({"status": {"ready": ready}});
    Api::<Widget>::namespaced((*client).clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_: Arc<Widget>, _: &ReconcileError, _: Arc<Client>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn a_controller_owning_replica_sets_reconciles_in_virtual_time() -> anyhow::Result<()> {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &widget_crd())
        .await?;
    let widgets = Api::<Widget>::namespaced(client.clone(), "default");
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(
            Api::<ReplicaSet>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .run(reconcile, error_policy, Arc::new(client.clone()))
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let start = tokio::time::Instant::now();
    widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "w",
                WidgetSpec {
                    replicas: 2,
                    image: "app:1".into(),
                },
            ),
        )
        .await?;
    // Pods become ready after the default 5 s; the RS status change wakes the controller
    // through `.owns()`, which then records the ready count.
    let mut ready_at = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if widgets.get_status("w").await?.status.map(|s| s.ready) == Some(2) {
            ready_at = Some(start.elapsed());
            break;
        }
    }
    let ready_at = ready_at.expect("widget reported 2 ready pods");
    assert!(
        ready_at >= Duration::from_secs(5) && ready_at < Duration::from_secs(7),
        "{ready_at:?}"
    );
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .get("w-rs")
        .await?;
    let owner = &rs.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Widget", "w"));
    let managers: Vec<_> = rs
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"widget-controller".to_string()),
        "{managers:?}"
    );

    // Scaling the widget reaches the pods.
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        widgets.get_status("w").await?.status.map(|s| s.ready),
        Some(3)
    );
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    assert_eq!(
        pods.list(&ListParams::default().labels("widget=w"))
            .await?
            .items
            .len(),
        3
    );

    // Deleting the widget garbage-collects its ReplicaSet and pods.
    widgets.delete("w", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        sim.list_objects("apps/v1", "replicasets", Some("default"))
            .is_empty()
    );
    assert!(sim.list_objects("v1", "pods", Some("default")).is_empty());
    assert_eq!(Widget::kind(&()), "Widget");
    task.abort();
    Ok(())
}
