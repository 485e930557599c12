//! Reading the world of one rollout, fresh from the API server (the Secrets its analyses
//! name: whether they exist and their keys, never their values).
//!
//! Reads go to the API (not a cache) so that the engine never decides from a view older than
//! its own last writes; the Rollout's `resourceVersion` then guards the status write.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplate, Secret, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use rollgate_api::labels::{POD_TEMPLATE_HASH, ROLLOUT_NAME};
use rollgate_api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use rollgate_engine::{
    Observed, ObservedAnalysisRun, ObservedExperimentSet, ObservedPod, ObservedReplicaSet,
    ObservedRoute, ObservedService, ObservedWorkload, WorkloadKind,
};

use crate::error::{Error, has_code};

/// Reads the ReplicaSets and AnalysisRuns owned by `rollout` and the Services and templates it
/// names.
pub async fn observe(client: &Client, rollout: &Rollout) -> Result<Observed, Error> {
    let ns = rollout
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingIdentity)?;
    let name = rollout
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingIdentity)?;
    let uid = rollout.metadata.uid.as_deref();
    let owned =
        |refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
            refs.iter()
                .flatten()
                .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
        };
    let lp = ListParams::default().labels(&format!("{ROLLOUT_NAME}={name}"));
    let mut observed = Observed::default();

    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| Error::kube(format!("listing ReplicaSets of {ns}/{name}"), e))?;
    let live = || {
        sets.items.iter().filter(|rs| {
            owned(&rs.metadata.owner_references) && rs.metadata.deletion_timestamp.is_none()
        })
    };
    observed.replica_sets = live()
        .filter_map(ObservedReplicaSet::from_replica_set)
        .collect();
    observed.experiment_sets = live()
        .filter_map(ObservedExperimentSet::from_replica_set)
        .collect();

    let runs = Api::<AnalysisRun>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| Error::kube(format!("listing AnalysisRuns of {ns}/{name}"), e))?;
    observed.analysis_runs = runs
        .items
        .iter()
        .filter(|r| owned(&r.metadata.owner_references))
        .filter_map(ObservedAnalysisRun::from_analysis_run)
        .collect();

    if rollgate_engine::pods_wanted(rollout, &observed.replica_sets) {
        let hashes: Vec<&str> = observed
            .replica_sets
            .iter()
            .map(|rs| rs.hash.as_str())
            .collect();
        let selector = format!("{POD_TEMPLATE_HASH} in ({})", hashes.join(","));
        if !hashes.is_empty() {
            let pods = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| Error::kube(format!("listing pods of {ns}/{name}"), e))?;
            observed.pods = pods
                .items
                .iter()
                .filter_map(ObservedPod::from_pod)
                .collect();
        }
    }

    let refs = rollgate_engine::references(rollout);
    let services = Api::<Service>::namespaced(client.clone(), ns);
    // Services this rollout pinned earlier, named by the spec or not: the engine gives those
    // the spec no longer names their plain selector back.
    let pinned = services
        .list(&ListParams::default().labels(&format!("{ROLLOUT_NAME}={name}")))
        .await
        .map_err(|e| Error::kube(format!("listing Services of {ns}/{name}"), e))?;
    for s in &pinned.items {
        let svc = ObservedService::from_service(s);
        observed.services.insert(svc.name.clone(), svc);
    }
    for svc in refs.services {
        if observed.services.contains_key(&svc) {
            continue;
        }
        match services.get_opt(&svc).await {
            Ok(Some(s)) => {
                observed
                    .services
                    .insert(svc, ObservedService::from_service(&s));
            }
            Ok(None) => {}
            Err(e) => return Err(Error::kube(format!("reading Service {ns}/{svc}"), e)),
        }
    }
    if let Some((route_ns, route)) = &refs.route {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            route_ns,
            &crate::apply::http_route_resource(),
        );
        match api.get_opt(route).await {
            Ok(Some(obj)) => {
                let json = serde_json::to_value(&obj).unwrap_or_default();
                observed.route = Some(ObservedRoute::from_json(route_ns, route, &json));
            }
            Ok(None) => {}
            // The Gateway API CRDs are not installed: the route does not exist.
            Err(e) if has_code(&e, 404) => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("reading HTTPRoute {route_ns}/{route}"),
                    e,
                ));
            }
        }
    }
    // `spec.workloadRef` (Argo Rollouts): the Deployment, ReplicaSet or PodTemplate whose
    // template the rollout uses, read by name (a referenced ReplicaSet is never one of the
    // rollout's own, which are listed above by label and owner). A missing one stays `None`;
    // the engine reports it.
    if let Some((kind, workload)) = &refs.workload {
        let found = match kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(workload)
                .await
                .map(|o| o.as_ref().map(ObservedWorkload::from_deployment)),
            WorkloadKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get_opt(workload)
                .await
                .map(|o| o.as_ref().map(ObservedWorkload::from_replica_set)),
            WorkloadKind::PodTemplate => Api::<PodTemplate>::namespaced(client.clone(), ns)
                .get_opt(workload)
                .await
                .map(|o| o.as_ref().map(ObservedWorkload::from_pod_template)),
        };
        observed.workload =
            found.map_err(|e| Error::kube(format!("reading {kind} {ns}/{workload}"), e))?;
    }
    let templates = Api::<AnalysisTemplate>::namespaced(client.clone(), ns);
    let cluster_templates = Api::<ClusterAnalysisTemplate>::all(client.clone());
    for (cluster, t) in refs.templates {
        let found = if cluster {
            cluster_templates
                .get_opt(&t)
                .await
                .map(|o| o.map(|c| c.spec.template))
        } else {
            templates.get_opt(&t).await.map(|o| o.map(|t| t.spec))
        };
        match found {
            Ok(Some(spec)) => {
                observed.templates.insert((cluster, t), spec);
            }
            Ok(None) => {}
            Err(e) if has_code(&e, 404) => {}
            Err(e) => return Err(Error::kube(format!("reading analysis template {t}"), e)),
        }
    }
    // The Secrets those analyses need: only whether they exist and their keys are kept.
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    for name in rollgate_engine::validate::secret_references(rollout, &observed).into_keys() {
        match secrets.get_opt(&name).await {
            Ok(Some(s)) => {
                let keys = s
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, _)| k.clone())
                    .chain(s.string_data.iter().flatten().map(|(k, _)| k.clone()))
                    .collect();
                observed.secrets.insert(name, keys);
            }
            Ok(None) => {}
            Err(e) if has_code(&e, 404) => {}
            Err(e) => return Err(Error::kube(format!("reading Secret {ns}/{name}"), e)),
        }
    }
    Ok(observed)
}
