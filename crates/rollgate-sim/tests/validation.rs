//! The simulated API server refuses what a real one refuses: unknown fields under
//! `fieldValidation=Strict` (and warns about them by default), custom resources that break
//! their CRD's schema, and built-in objects that fail the built-in validation.

use http::HeaderMap;
use http_body_util::BodyExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

const GIZMOS: &str = "/apis/example.com/v1/namespaces/default/gizmos";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// A CRD whose schema uses what validation enforces.
fn gizmo_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["image"], "properties": {
                        "image": {"type": "string", "maxLength": 20},
                        "replicas": {"type": "integer", "format": "int32", "minimum": 0.0,
                                     "nullable": true},
                        "strategy": {"type": "string", "enum": ["Canary", "BlueGreen"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "steps": {"type": "array", "maxItems": 3, "items": {"type": "object",
                            "properties": {"weight": {"type": "integer", "minimum": 1.0,
                                                      "maximum": 100.0}}}}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"},
                        "readyReplicas": {"type": "integer", "format": "int32"}}}}}}}]}}))
    .expect("crd")
}

async fn cluster() -> anyhow::Result<(SimCluster, Client)> {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &gizmo_crd())
        .await?;
    Ok((sim, client))
}

/// One raw request: status code, headers and JSON body.
async fn send(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> anyhow::Result<(u16, HeaderMap, Value)> {
    let text = if content_type == APPLY {
        serde_json::to_string(body)?
    } else {
        body.to_string()
    };
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(text.into_bytes()))?;
    let resp = client.send(req).await?;
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((code, headers, value))
}

fn warnings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect()
}

fn gizmo(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": name},
           "spec": spec})
}

/// `(field, reason)` of each cause of a 422 Status.
fn causes(status: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

#[tokio::test(start_paused = true)]
async fn unknown_fields_follow_field_validation() -> R {
    let (sim, client) = cluster().await?;
    let body = gizmo(
        "g",
        json!({"image": "app:1", "foo": 1, "steps": [{"weight": 5, "bar": true}]}),
    );

    // Strict: 400 naming every unknown field; nothing stored.
    let (code, _, status) = send(
        &client,
        "POST",
        &format!("{GIZMOS}?fieldValidation=Strict"),
        JSON,
        &body,
    )
    .await?;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("strict decoding error")
            && message.contains("unknown field \"spec.foo\"")
            && message.contains("unknown field \"spec.steps[0].bar\""),
        "{message}"
    );
    assert!(
        sim.get_object("example.com/v1", "gizmos", Some("default"), "g")
            .is_none()
    );

    // Warn, the default: stored without them, one Warning header per field.
    let (code, headers, created) = send(&client, "POST", GIZMOS, JSON, &body).await?;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"],
        json!({"image": "app:1", "steps": [{"weight": 5}]})
    );
    let mut got = warnings(&headers);
    got.sort();
    assert_eq!(
        got,
        [
            r#"299 - "unknown field \"spec.foo\"""#,
            r#"299 - "unknown field \"spec.steps[0].bar\"""#
        ]
    );

    // Ignore: dropped silently.
    let (code, headers, _) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/g?fieldValidation=Ignore"),
        MERGE,
        &json!({"spec": {"baz": 1}}),
    )
    .await?;
    assert_eq!(code, 200);
    assert!(warnings(&headers).is_empty());

    // Strict patches, updates and server-side applies; metadata counts too.
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/g?fieldValidation=Strict"),
        MERGE,
        &json!({"spec": {"baz": 1}}),
    )
    .await?;
    assert_eq!(code, 400, "{status}");
    let mut stored = sim
        .get_object("example.com/v1", "gizmos", Some("default"), "g")
        .expect("stored");
    stored["metadata"]["colour"] = json!("red");
    let (code, _, status) = send(
        &client,
        "PUT",
        &format!("{GIZMOS}/g?fieldValidation=Strict"),
        JSON,
        &stored,
    )
    .await?;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field \"metadata.colour\"")),
        "{status}"
    );
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/g?fieldManager=me&fieldValidation=Strict"),
        APPLY,
        &gizmo("g", json!({"image": "app:2", "qux": 1})),
    )
    .await?;
    assert_eq!(code, 400, "{status}");

    // Built-in kinds too.
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "b"}, "dta": {"a": "b"}});
    let (code, _, status) = send(
        &client,
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        JSON,
        &cm,
    )
    .await?;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field \"dta\"")),
        "{status}"
    );
    let (code, headers, created) = send(&client, "POST", cms, JSON, &cm).await?;
    assert_eq!(code, 201);
    assert!(created.get("dta").is_none(), "{created}");
    assert_eq!(warnings(&headers), [r#"299 - "unknown field \"dta\"""#]);

    // An unknown directive is a bad request.
    let (code, _, _) = send(
        &client,
        "POST",
        &format!("{cms}?fieldValidation=Loose"),
        JSON,
        &json!({"metadata": {"name": "d"}}),
    )
    .await?;
    assert_eq!(code, 400);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn custom_resources_are_validated_against_their_schema() -> R {
    let (sim, client) = cluster().await?;
    let (code, _, status) = send(
        &client,
        "POST",
        GIZMOS,
        JSON,
        &gizmo(
            "web",
            json!({"image": "app:1", "replicas": 2_147_483_648_u64}),
        ),
    )
    .await?;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        status["message"],
        "Gizmo.example.com \"web\" is invalid: spec.replicas: Invalid value: 2147483648: \
         spec.replicas in body should be less than or equal to 2147483647"
    );
    assert_eq!(
        causes(&status),
        [("spec.replicas".into(), "FieldValueInvalid".into())]
    );
    assert_eq!(status["details"]["kind"], "Gizmo");
    assert_eq!(status["details"]["group"], "example.com");

    // Every problem at once.
    let (code, _, status) = send(
        &client,
        "POST",
        GIZMOS,
        JSON,
        &gizmo(
            "web",
            json!({"replicas": "three", "strategy": "Rolling", "port": 1.5,
                   "steps": [{"weight": 0}, {"weight": 101}, {}, {}]}),
        ),
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [
            ("spec.image".into(), "FieldValueRequired".into()),
            ("spec.port".into(), "FieldValueTypeInvalid".into()),
            ("spec.replicas".into(), "FieldValueTypeInvalid".into()),
            ("spec.steps".into(), "FieldValueTooMany".into()),
            ("spec.steps[0].weight".into(), "FieldValueInvalid".into()),
            ("spec.steps[1].weight".into(), "FieldValueInvalid".into()),
            ("spec.strategy".into(), "FieldValueNotSupported".into()),
        ]
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Gizmo.example.com \"web\" is invalid: [")
            && message.contains("spec.replicas in body must be of type integer: \"string\""),
        "{message}"
    );

    // A valid one is stored; a null where null is allowed stays.
    let (code, _, created) = send(
        &client,
        "POST",
        GIZMOS,
        JSON,
        &gizmo(
            "web",
            json!({"image": "app:1", "replicas": null, "port": "http", "strategy": "Canary"}),
        ),
    )
    .await?;
    assert_eq!(code, 201, "{created}");

    // Updates are validated too, the scale of a change included.
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/web"),
        MERGE,
        &json!({"spec": {"replicas": -1}}),
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [("spec.replicas".into(), "FieldValueInvalid".into())]
    );

    // The status subresource is validated against the status schema.
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/web/status"),
        MERGE,
        &json!({"status": {"phase": 3, "readyReplicas": 1}}),
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [("status.phase".into(), "FieldValueTypeInvalid".into())]
    );
    let (code, _, _) = send(
        &client,
        "PATCH",
        &format!("{GIZMOS}/web/status"),
        MERGE,
        &json!({"status": {"phase": "Running", "readyReplicas": 1}}),
    )
    .await?;
    assert_eq!(code, 200);
    let stored = sim
        .get_object("example.com/v1", "gizmos", Some("default"), "web")
        .expect("stored");
    assert_eq!(stored["status"]["phase"], "Running");
    assert_eq!(stored["spec"]["replicas"], Value::Null);
    Ok(())
}

const RSS: &str = "/apis/apps/v1/namespaces/default/replicasets";

fn replica_set(name: &str, replicas: i64, selector: Value, template_labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
           "spec": {"replicas": replicas, "selector": selector,
                    "template": {"metadata": {"labels": template_labels},
                                 "spec": {"containers": [{"name": "web", "image": "app:1"}]}}}})
}

#[tokio::test(start_paused = true)]
async fn built_in_objects_a_real_server_refuses_are_refused() -> R {
    let (sim, client) = cluster().await?;
    let good = replica_set(
        "ok",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let (code, _, created) = send(&client, "POST", RSS, JSON, &good).await?;
    assert_eq!(code, 201, "{created}");

    let mut no_image = replica_set(
        "a",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    no_image["spec"]["template"]["spec"]["containers"] = json!([{"name": "web"}]);
    let invalid_label = replica_set(
        "b",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "tier": "-front end"}),
    );
    let invalid_key = replica_set(
        "c",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "Example.com/x": "y"}),
    );
    let likes = replica_set(
        "d",
        1,
        json!({"matchExpressions": [{"key": "app", "operator": "Likes", "values": ["web"]}]}),
        json!({"app": "web"}),
    );
    let mismatch = replica_set(
        "e",
        1,
        json!({"matchLabels": {"app": "api"}}),
        json!({"app": "web"}),
    );
    let negative = replica_set(
        "f",
        -1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let mut long_value = replica_set(
        "g",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    long_value["metadata"]["labels"] = json!({"team": "x".repeat(64)});
    let cases = [
        (
            no_image,
            "spec.template.spec.containers[0].image",
            "FieldValueRequired",
        ),
        (
            invalid_label,
            "spec.template.metadata.labels",
            "FieldValueInvalid",
        ),
        (
            invalid_key,
            "spec.template.metadata.labels",
            "FieldValueInvalid",
        ),
        (
            likes,
            "spec.selector.matchExpressions[0].operator",
            "FieldValueInvalid",
        ),
        (
            mismatch,
            "spec.template.metadata.labels",
            "FieldValueInvalid",
        ),
        (negative, "spec.replicas", "FieldValueInvalid"),
        (long_value, "metadata.labels", "FieldValueInvalid"),
    ];
    for (body, field, reason) in cases {
        let (code, _, status) = send(&client, "POST", RSS, JSON, &body).await?;
        assert_eq!(
            (code, status["reason"].as_str()),
            (422, Some("Invalid")),
            "{body}: {status}"
        );
        assert_eq!(causes(&status), [(field.into(), reason.into())], "{status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "ReplicaSet.apps \"{}\" is invalid: {field}: ",
                body["metadata"]["name"].as_str().unwrap_or_default()
            )),
            "{message}"
        );
    }
    let (_, _, status) = send(
        &client,
        "POST",
        RSS,
        JSON,
        &json!({"metadata": {"name": "h"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "web"}]}}}}),
    )
    .await?;
    assert_eq!(
        status["message"],
        "ReplicaSet.apps \"h\" is invalid: spec.template.spec.containers[0].image: Required value"
    );

    // A replica count that is no int32 does not decode.
    let huge = replica_set(
        "i",
        2_147_483_648,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let (code, _, status) = send(&client, "POST", RSS, JSON, &huge).await?;
    assert_eq!(code, 400, "{status}");

    // Pods and Deployments, and updates.
    let (code, _, status) = send(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        &json!({"metadata": {"name": "p", "labels": {"app": "we b"}},
                "spec": {"containers": [{"name": "c", "image": ""}]}}),
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [
            ("metadata.labels".into(), "FieldValueInvalid".into()),
            (
                "spec.containers[0].image".into(),
                "FieldValueRequired".into()
            ),
        ]
    );
    let mut deployment = replica_set(
        "dep",
        1,
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    deployment["apiVersion"] = json!("apps/v1");
    deployment["kind"] = json!("Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Web");
    let (code, _, status) = send(
        &client,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        JSON,
        &deployment,
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [(
            "spec.template.spec.containers[0].name".into(),
            "FieldValueInvalid".into()
        )]
    );
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{RSS}/ok"),
        MERGE,
        &json!({"spec": {"replicas": -3}}),
    )
    .await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        sim.get_object("apps/v1", "replicasets", Some("default"), "ok")
            .expect("kept")["spec"]["replicas"],
        1
    );
    Ok(())
}
