//! Applying the engine's actions with precise requests.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_api::AnalysisRun;
use rollgate_api::labels::{
    FIELD_MANAGER, MANAGED_BY, POD_TEMPLATE_HASH, REVISION, SCALE_DOWN_DEADLINE,
};
use rollgate_engine::{Action, DeadlineChange};
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
            let patch = json!({
                "metadata": { "annotations": { MANAGED_BY: rollout } },
                "spec": { "selector": { POD_TEMPLATE_HASH: to } },
            });
            Api::<Service>::namespaced(client.clone(), ns)
                .patch(service, &patch_params(), &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(|e| Error::kube(format!("switching Service {ns}/{service} to {to}"), e))
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
    }
}
