//! Applying the engine's actions with precise requests.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_api::AnalysisRun;
use rollgate_api::labels::{
    EPHEMERAL_METADATA, FIELD_MANAGER, MANAGED_BY, POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME,
    SCALE_DOWN_DEADLINE,
};
use rollgate_engine::{Action, DeadlineChange, MetadataChange, WorkloadKind};
use serde_json::{Map, Value, json};

use crate::error::{Error, has_code};

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    }
}

/// Applies one action in namespace `ns` on behalf of rollout `rollout`.
///
/// Creates that find the object already there and deletes that find it gone succeed: applying
/// an action twice has the effect of applying it once.
pub async fn apply(client: &Client, ns: &str, rollout: &str, action: &Action) -> Result<(), Error> {
    match action {
        Action::CreateReplicaSet(rs) => {
            let name = rs.metadata.name.clone().unwrap_or_default();
            match Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .create(&post_params(), rs)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 409) => Ok(()),
                Err(e) => Err(Error::kube(format!("creating ReplicaSet {ns}/{name}"), e)),
            }
        }
        Action::UpdateReplicaSet {
            name,
            replicas,
            deadline,
            revision,
        } => {
            let mut annotations = Map::new();
            match deadline {
                DeadlineChange::Keep => {}
                DeadlineChange::Set(at) => {
                    annotations.insert(SCALE_DOWN_DEADLINE.into(), Value::String(at.to_string()));
                }
                DeadlineChange::Clear => {
                    annotations.insert(SCALE_DOWN_DEADLINE.into(), Value::Null);
                }
            }
            if let Some(r) = revision {
                annotations.insert(REVISION.into(), Value::String(r.to_string()));
            }
            let mut patch = json!({});
            if !annotations.is_empty() {
                patch["metadata"] = json!({ "annotations": annotations });
            }
            if let Some(r) = replicas {
                patch["spec"] = json!({ "replicas": r });
            }
            Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(|e| Error::kube(format!("updating ReplicaSet {ns}/{name}"), e))
        }
        Action::DeleteReplicaSet { name } => {
            match Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .delete(name, &DeleteParams::background())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 404) => Ok(()),
                Err(e) => Err(Error::kube(format!("deleting ReplicaSet {ns}/{name}"), e)),
            }
        }
        Action::SwitchService { service, to, .. } => {
            // The label lets the controller find the Service again once the spec stops naming
            // it (a strategy change or a rename), to give it its plain selector back.
            let patch = json!({
                "metadata": {
                    "annotations": { MANAGED_BY: rollout },
                    "labels": { ROLLOUT_NAME: rollout },
                },
                "spec": { "selector": { POD_TEMPLATE_HASH: to } },
            });
            Api::<Service>::namespaced(client.clone(), ns)
                .patch(service, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(|e| Error::kube(format!("switching Service {ns}/{service} to {to}"), e))
        }
        Action::ReleaseService { service, from } => {
            let patch = json!({
                "metadata": {
                    "annotations": { MANAGED_BY: null },
                    "labels": { ROLLOUT_NAME: null },
                },
                "spec": { "selector": { POD_TEMPLATE_HASH: null } },
            });
            match Api::<Service>::namespaced(client.clone(), ns)
                .patch(service, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 404) => Ok(()),
                Err(e) => Err(Error::kube(
                    format!("releasing Service {ns}/{service} (was pinned to {from})"),
                    e,
                )),
            }
        }
        Action::CreateAnalysisRun(run) => {
            let name = run.metadata.name.clone().unwrap_or_default();
            match Api::<AnalysisRun>::namespaced(client.clone(), ns)
                .create(&post_params(), run)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 409) => Ok(()),
                Err(e) => Err(Error::kube(format!("creating AnalysisRun {ns}/{name}"), e)),
            }
        }
        Action::SetRouteWeights {
            namespace,
            route,
            canary_service,
            stable_service,
            canary_weight,
            ..
        } => {
            set_route_weights(
                client,
                namespace,
                route,
                canary_service,
                stable_service,
                *canary_weight,
            )
            .await
        }
        Action::SetManagedRoutes {
            namespace,
            route,
            canary_service,
            stable_service,
            managed,
            rules,
        } => {
            let what = || format!("writing the managed routes of HTTPRoute {namespace}/{route}");
            update_route_rules(client, namespace, route, what, |current| {
                rollgate_engine::routes::write(
                    current,
                    rules,
                    managed,
                    canary_service,
                    stable_service,
                )
            })
            .await
        }
        Action::DeletePod { name } => {
            match Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
                .delete(name, &DeleteParams::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 404) => Ok(()),
                Err(e) => Err(Error::kube(format!("deleting pod {ns}/{name}"), e)),
            }
        }
        Action::SetReplicaSetMetadata {
            name,
            change,
            record,
        } => {
            let record = if record.labels.is_empty() && record.annotations.is_empty() {
                Value::Null
            } else {
                serde_json::to_value(record)
                    .map(|v| Value::String(v.to_string()))
                    .unwrap_or(Value::Null)
            };
            let patch = json!({
                "metadata": { "annotations": { EPHEMERAL_METADATA: record } },
                "spec": { "template": { "metadata": metadata_patch(change) } },
            });
            Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(|e| {
                    Error::kube(
                        format!("setting ephemeral metadata of ReplicaSet {ns}/{name}"),
                        e,
                    )
                })
        }
        Action::SetPodMetadata { name, change } => {
            let patch = json!({ "metadata": metadata_patch(change) });
            match Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                // Gone meanwhile: its replacement is created from the updated template.
                Err(e) if has_code(&e, 404) => Ok(()),
                Err(e) => Err(Error::kube(
                    format!("setting ephemeral metadata of pod {ns}/{name}"),
                    e,
                )),
            }
        }
        Action::TerminateAnalysisRun { name } => {
            let patch = json!({ "spec": { "terminate": true } });
            match Api::<AnalysisRun>::namespaced(client.clone(), ns)
                .patch(name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if has_code(&e, 404) => Ok(()),
                Err(e) => Err(Error::kube(
                    format!("terminating AnalysisRun {ns}/{name}"),
                    e,
                )),
            }
        }
        Action::ScaleWorkload {
            kind,
            name,
            replicas,
        } => {
            // `spec.workloadRef`'s `scaleDown`: only the object's size is written.
            let patch = json!({ "spec": { "replicas": replicas } });
            let patched = match kind {
                WorkloadKind::Deployment => {
                    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns)
                        .patch(name, &patch_params(), &Patch::Merge(&patch))
                        .await
                        .map(drop)
                }
                WorkloadKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client.clone(), ns)
                    .patch(name, &patch_params(), &Patch::Merge(&patch))
                    .await
                    .map(drop),
                // The engine never scales a PodTemplate (it has no replicas).
                WorkloadKind::PodTemplate => Ok(()),
            };
            patched.map_err(|e| Error::kube(format!("scaling {kind} {ns}/{name}"), e))
        }
    }
}

/// The `metadata` part of a JSON merge patch making `change` (`null` removes a key).
fn metadata_patch(change: &MetadataChange) -> Value {
    let map = |m: &std::collections::BTreeMap<String, Option<String>>| -> Map<String, Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
            .collect()
    };
    let mut out = Map::new();
    if !change.labels.is_empty() {
        out.insert("labels".into(), Value::Object(map(&change.labels)));
    }
    if !change.annotations.is_empty() {
        out.insert(
            "annotations".into(),
            Value::Object(map(&change.annotations)),
        );
    }
    Value::Object(out)
}

/// The Gateway API HTTPRoute resource (`gateway.networking.k8s.io/v1`).
pub fn http_route_resource() -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    }
}

/// Sets the weights of the canary and stable backends in every rule of an HTTPRoute whose
/// backends are both ([`rollgate_engine::routes::set_weights`]: the managed header and mirror
/// rules, with one of them only, keep theirs).
async fn set_route_weights(
    client: &Client,
    ns: &str,
    route: &str,
    canary: &str,
    stable: &str,
    canary_weight: i32,
) -> Result<(), Error> {
    let what = || format!("setting weights of HTTPRoute {ns}/{route}");
    update_route_rules(client, ns, route, what, |current| {
        let mut rules = current.to_vec();
        rollgate_engine::routes::set_weights(&mut rules, canary, stable, canary_weight);
        rules
    })
    .await
}

/// Replaces an HTTPRoute's `spec.rules` with `change(rules)`. Read-modify-write guarded by
/// the route's `resourceVersion`: a concurrent change makes the write fail with a conflict,
/// and the reconcile is retried from a fresh read. Nothing is written when nothing changes.
async fn update_route_rules(
    client: &Client,
    ns: &str,
    route: &str,
    what: impl Fn() -> String,
    change: impl FnOnce(&[Value]) -> Vec<Value>,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &http_route_resource());
    let mut obj = api.get(route).await.map_err(|e| Error::kube(what(), e))?;
    let current: Vec<Value> = obj
        .data
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rules = change(&current);
    if rules == current {
        return Ok(());
    }
    match obj.data.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("rules".into(), Value::Array(rules));
        }
        None => obj.data["spec"] = json!({ "rules": rules }),
    }
    api.replace(route, &post_params(), &obj)
        .await
        .map(drop)
        .map_err(|e| Error::kube(what(), e))
}
