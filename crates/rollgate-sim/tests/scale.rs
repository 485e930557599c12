//! The `/scale` subresource of a custom resource, as the API server serves it
//! (`apiextensions-apiserver` `ScaleREST`): an `autoscaling/v1` Scale read from the CRD's
//! `specReplicasPath`, `statusReplicasPath` and `labelSelectorPath`, and written back at
//! `specReplicasPath` only.

use http_body_util::BodyExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

const GIZMOS: &str = "/apis/example.com/v1/namespaces/default/gizmos";

/// A CRD whose scale reads `.status.HPAReplicas` (as Argo Rollouts' Rollout does), with a
/// label selector path unless `selector` is false.
fn crd(selector: bool) -> CustomResourceDefinition {
    let mut scale = json!({"specReplicasPath": ".spec.replicas",
                           "statusReplicasPath": ".status.HPAReplicas"});
    if selector {
        scale["labelSelectorPath"] = json!(".status.selector");
    }
    serde_json::from_value(json!({
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}},
                               "subresources": {"status": {}, "scale": scale}}]}}))
    .expect("crd")
}

async fn cluster(selector: bool) -> anyhow::Result<(SimCluster, Client)> {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd(selector))
        .await?;
    Ok((sim, client))
}

/// Sends a request; returns the status code and the JSON body.
async fn call(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body)?
    };
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body))?;
    let res = client.send(req).await?;
    let code = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

#[tokio::test(start_paused = true)]
async fn get_reads_the_crd_paths_and_leaves_out_what_is_empty() -> R {
    let (_sim, client) = cluster(true).await?;
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
                   "metadata": {"name": "g"}, "spec": {"replicas": 3}});
    assert_eq!(call(&client, "POST", GIZMOS, JSON, g).await?.0, 201);
    let scale = format!("{GIZMOS}/g/scale");
    // No status yet: status.replicas 0, no selector.
    let (code, s) = call(&client, "GET", &scale, JSON, Value::Null).await?;
    assert_eq!(code, 200, "{s}");
    assert_eq!(
        (&s["kind"], &s["apiVersion"]),
        (&json!("Scale"), &json!("autoscaling/v1"))
    );
    assert_eq!(s["spec"], json!({"replicas": 3}));
    assert_eq!(s["status"], json!({"replicas": 0}));
    let status = json!({"status": {"replicas": 9, "HPAReplicas": 2,
                                   "selector": "app=g,hash=abc"}});
    let (code, _) = call(
        &client,
        "PATCH",
        &format!("{GIZMOS}/g/status"),
        MERGE,
        status,
    )
    .await?;
    assert_eq!(code, 200);
    let (_, s) = call(&client, "GET", &scale, JSON, Value::Null).await?;
    // statusReplicasPath, not .status.replicas; the selector as the object holds it.
    assert_eq!(
        s["status"],
        json!({"replicas": 2, "selector": "app=g,hash=abc"})
    );
    // Zero replicas: `spec.replicas` is omitempty in autoscaling/v1.
    let (code, s) = call(
        &client,
        "PATCH",
        &scale,
        MERGE,
        json!({"spec": {"replicas": 0}}),
    )
    .await?;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["spec"], json!({}));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_a_label_selector_path_the_scale_has_no_selector() -> R {
    let (_sim, client) = cluster(false).await?;
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "g"}}}});
    assert_eq!(call(&client, "POST", GIZMOS, JSON, g).await?.0, 201);
    let (code, s) = call(
        &client,
        "GET",
        &format!("{GIZMOS}/g/scale"),
        JSON,
        Value::Null,
    )
    .await?;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["status"], json!({"replicas": 0}));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_object_without_spec_replicas_has_no_scale_until_one_is_set() -> R {
    let (_sim, client) = cluster(true).await?;
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
                   "metadata": {"name": "g"}, "spec": {}});
    assert_eq!(call(&client, "POST", GIZMOS, JSON, g).await?.0, 201);
    let scale = format!("{GIZMOS}/g/scale");
    let (code, s) = call(&client, "GET", &scale, JSON, Value::Null).await?;
    assert_eq!(code, 500, "{s}");
    assert!(
        s["message"].as_str().is_some_and(
            |m| m.contains(r#"the spec replicas field ".spec.replicas" does not exist"#)
        ),
        "{s}"
    );
    // A patch that sets no replicas is refused; one that does is taken (as `kubectl scale`).
    let (code, s) = call(&client, "PATCH", &scale, MERGE, json!({"metadata": {}})).await?;
    assert_eq!(code, 400, "{s}");
    let (code, s) = call(
        &client,
        "PATCH",
        &scale,
        MERGE,
        json!({"spec": {"replicas": 4}}),
    )
    .await?;
    assert_eq!((code, &s["spec"]["replicas"]), (200, &json!(4)), "{s}");
    let (_, g) = call(&client, "GET", &format!("{GIZMOS}/g"), JSON, Value::Null).await?;
    assert_eq!(g["spec"]["replicas"], 4);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn put_checks_the_name_and_the_resource_version_and_an_empty_spec_means_zero() -> R {
    let (_sim, client) = cluster(true).await?;
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
                   "metadata": {"name": "g"}, "spec": {"replicas": 2}});
    assert_eq!(call(&client, "POST", GIZMOS, JSON, g).await?.0, 201);
    let scale = format!("{GIZMOS}/g/scale");
    let (_, current) = call(&client, "GET", &scale, JSON, Value::Null).await?;
    let rv = current["metadata"]["resourceVersion"].clone();

    let renamed = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                         "metadata": {"name": "other"}, "spec": {"replicas": 5}});
    let (code, s) = call(&client, "PUT", &scale, JSON, renamed).await?;
    assert_eq!(code, 400, "{s}");

    // What an HPA sends: the Scale it read with a new spec.replicas.
    let mut update = current.clone();
    update["spec"]["replicas"] = json!(5);
    let (code, s) = call(&client, "PUT", &scale, JSON, update.clone()).await?;
    assert_eq!((code, &s["spec"]["replicas"]), (200, &json!(5)), "{s}");
    assert_ne!(s["metadata"]["resourceVersion"], rv);
    // The same write again carries a stale resourceVersion.
    let (code, s) = call(&client, "PUT", &scale, JSON, update).await?;
    assert_eq!(code, 409, "{s}");

    let empty = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                       "metadata": {"name": "g"}, "spec": {}});
    let (code, s) = call(&client, "PUT", &scale, JSON, empty).await?;
    assert_eq!((code, &s["spec"]), (200, &json!({})), "{s}");
    let (_, g) = call(&client, "GET", &format!("{GIZMOS}/g"), JSON, Value::Null).await?;
    assert_eq!(g["spec"]["replicas"], 0);
    Ok(())
}
