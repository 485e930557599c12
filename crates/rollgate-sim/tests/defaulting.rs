//! The simulated API server fills in the pod-template defaults a real one does, in Pods, in
//! ReplicaSets' templates and in PodTemplates (on create and on update), and never in custom
//! resources: a Rollout's template is stored as sent, so it differs from its ReplicaSet's.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplate};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// A bare pod spec: three containers (tagged, `:latest`, untagged), one with a port.
fn bare_spec() -> Value {
    json!({
        "initContainers": [{"name": "init", "image": "registry.local:5000/init"}],
        "containers": [
            {"name": "web", "image": "registry.local:5000/web:1.2",
             "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]},
            {"name": "side", "image": "side:latest", "imagePullPolicy": "Never"},
            {"name": "pinned", "image": "pinned@sha256:0123"}
        ]
    })
}

/// What a real API server stores for [`bare_spec`].
fn defaulted_spec() -> Value {
    let c = |name: &str, image: &str, pull: &str| {
        json!({"name": name, "image": image, "imagePullPolicy": pull,
               "terminationMessagePath": "/dev/termination-log",
               "terminationMessagePolicy": "File", "resources": {}})
    };
    let mut web = c("web", "registry.local:5000/web:1.2", "IfNotPresent");
    web["ports"] = json!([{"containerPort": 8080, "protocol": "TCP"},
                          {"containerPort": 53, "protocol": "UDP"}]);
    json!({
        "initContainers": [c("init", "registry.local:5000/init", "Always")],
        "containers": [web, c("side", "side:latest", "Never"),
                       c("pinned", "pinned@sha256:0123", "IfNotPresent")],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "securityContext": {}
    })
}

fn template(spec: Value) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": spec})
}

fn replica_set(spec: Value) -> anyhow::Result<ReplicaSet> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": template(spec)}
    }))?)
}

fn stored_spec<T: serde::Serialize>(obj: &T, pointer: &str) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(obj)?
        .pointer(pointer)
        .cloned()
        .unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_replica_set_created_with_a_bare_template_reads_back_defaulted() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = Api::<ReplicaSet>::namespaced(sim.client(), "default");
    let created = api
        .create(&PostParams::default(), &replica_set(bare_spec())?)
        .await?;
    assert_eq!(
        stored_spec(&created, "/spec/template/spec")?,
        defaulted_spec()
    );
    let read = api.get("web").await?;
    assert_eq!(stored_spec(&read, "/spec/template/spec")?, defaulted_spec());
    Ok(())
}

#[tokio::test]
async fn a_replica_set_template_is_defaulted_on_update_too() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = Api::<ReplicaSet>::namespaced(sim.client(), "default");
    api.create(
        &PostParams::default(),
        &replica_set(json!({
            "containers": [{"name": "web", "image": "web:1"}]
        }))?,
    )
    .await?;
    // A replace with a bare template, as a client that does not know the defaults sends it.
    let mut rs = api.get("web").await?;
    let bare = replica_set(bare_spec())?;
    rs.spec = bare.spec;
    let replaced = api.replace("web", &PostParams::default(), &rs).await?;
    assert_eq!(
        stored_spec(&replaced, "/spec/template/spec")?,
        defaulted_spec()
    );
    Ok(())
}

#[tokio::test]
async fn a_pod_created_bare_reads_back_defaulted() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = Api::<Pod>::namespaced(sim.client(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": bare_spec()
    }))?;
    api.create(&PostParams::default(), &pod).await?;
    let read = api.get("web").await?;
    let spec = stored_spec(&read, "/spec")?;
    for (field, want) in defaulted_spec().as_object().into_iter().flatten() {
        assert_eq!(&spec[field], want, "pod spec.{field}");
    }
    Ok(())
}

fn pod_template(spec: Value) -> anyhow::Result<PodTemplate> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "template": template(spec),
    }))?)
}

/// A PodTemplate (what a Rollout's `spec.workloadRef` may name) is served, listed and watched
/// like any namespaced built-in, and its template defaulted as a ReplicaSet's is, on create
/// and on update, so the pod-template hash of either is the same on a real cluster.
#[tokio::test]
async fn a_pod_template_is_served_and_its_template_defaulted() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = Api::<PodTemplate>::namespaced(sim.client(), "default");
    let created = api
        .create(&PostParams::default(), &pod_template(bare_spec())?)
        .await?;
    assert_eq!(stored_spec(&created, "/template/spec")?, defaulted_spec());
    let listed = api.list(&Default::default()).await?;
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        stored_spec(&listed.items[0], "/template/spec")?,
        defaulted_spec()
    );
    // A replace with a bare template is defaulted too.
    let mut read = api.get("web").await?;
    read.template = pod_template(bare_spec())?.template;
    let replaced = api.replace("web", &PostParams::default(), &read).await?;
    assert_eq!(stored_spec(&replaced, "/template/spec")?, defaulted_spec());
    Ok(())
}

/// A PodTemplate whose template has a container without an image is refused (422), naming the
/// field, as a real API server refuses it.
#[tokio::test]
async fn a_pod_template_without_an_image_is_refused() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = Api::<PodTemplate>::namespaced(sim.client(), "default");
    let err = api
        .create(
            &PostParams::default(),
            &pod_template(json!({"containers": [{"name": "web"}]}))?,
        )
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("created a PodTemplate without an image"))?;
    let text = err.to_string();
    assert!(text.contains("template.spec.containers[0].image"), "{text}");
    match err {
        kube::Error::Api(e) => assert_eq!(e.code, 422, "{e:?}"),
        other => anyhow::bail!("expected a 422, got {other}"),
    }
    Ok(())
}

/// A custom resource holding a pod template, like a Rollout.
fn widget_crd() -> anyhow::Result<CustomResourceDefinition> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "template": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}
    }))?)
}

#[tokio::test]
async fn a_custom_resource_template_is_stored_as_sent() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let client: Client = sim.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &widget_crd()?)
        .await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api = Api::<DynamicObject>::namespaced_with(client, "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"template": template(bare_spec())}
    }))?;
    api.create(&PostParams::default(), &w).await?;
    let read = api.get("w").await?;
    assert_eq!(read.data["spec"]["template"], template(bare_spec()));
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})),
    )
    .await?;
    let read = api.get("w").await?;
    assert_eq!(read.data["spec"]["template"]["spec"], bare_spec());
    Ok(())
}
