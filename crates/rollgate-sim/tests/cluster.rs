//! What the simulated cluster does beyond storing objects, and finer points of the API, seen
//! through kube's typed client.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rollgate_sim::{ImageBehavior, SimCluster, SimConfig};
use serde_json::json;

type R = anyhow::Result<()>;

fn sim() -> (SimCluster, Client) {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    (sim, client)
}

fn api_error(e: &kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => (0, other.to_string()),
    }
}

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).expect("cm")
}

fn replica_set(name: &str, image: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                 "template": {"metadata": {"labels": {"rs": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}}}))
    .expect("rs")
}

fn gadget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {
                                       "size": {"type": "integer", "default": 1},
                                       "replicas": {"type": "integer"},
                                       "tags": {"type": "array", "items": {"type": "string"}}}},
                                   "status": {"type": "object", "properties": {
                                       "replicas": {"type": "integer"},
                                       "selector": {"type": "string"}}}}}},
                               "subresources": {"status": {}, "scale": {
                                   "specReplicasPath": ".spec.replicas",
                                   "statusReplicasPath": ".status.replicas",
                                   "labelSelectorPath": ".status.selector"}}}]}}))
    .expect("crd")
}

fn gadgets(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gadget"));
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn gadget(name: &str, spec: serde_json::Value) -> DynamicObject {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gadget"));
    let mut g = DynamicObject::new(name, &ar);
    g.data = json!({ "spec": spec });
    g
}

#[tokio::test(start_paused = true)]
async fn watcher_sees_added_modified_deleted_in_order() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    let mut events = watcher(api.clone(), watcher::Config::default().labels("app=x")).boxed();
    // The initial (empty) list.
    loop {
        if matches!(events.try_next().await?, Some(watcher::Event::InitDone)) {
            break;
        }
    }
    let mut labeled = cm("a", json!({"k": "1"}));
    labeled.metadata.labels = Some(BTreeMap::from([("app".into(), "x".into())]));
    api.create(&PostParams::default(), &labeled).await?;
    api.create(&PostParams::default(), &cm("unlabeled", json!({})))
        .await?;
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await?;
    // Leaving the selection is a deletion for this watcher; entering it an addition.
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await?;
    api.patch(
        "unlabeled",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await?;
    api.delete("unlabeled", &DeleteParams::default()).await?;
    api.delete("a", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match events.try_next().await?.expect("stream") {
            watcher::Event::Apply(o) => seen.push(format!(
                "apply {} {}",
                o.name_any(),
                o.data
                    .unwrap_or_default()
                    .get("k")
                    .cloned()
                    .unwrap_or_default()
            )),
            watcher::Event::Delete(o) => seen.push(format!("delete {}", o.name_any())),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "apply a 1",
            "apply a 2",
            "delete a",
            "apply unlabeled ",
            "delete unlabeled"
        ]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn raw_watches_resume_bookmark_and_time_out_in_virtual_time() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await?;
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await?;
    // Resuming from the first object's version replays what came after it.
    let rv = first.resource_version().expect("rv");
    let start = tokio::time::Instant::now();
    let events: Vec<_> = api
        .watch(
            &WatchParams::default().timeout(120).disable_bookmarks(),
            &rv,
        )
        .await?
        .try_collect()
        .await?;
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], WatchEvent::Added(o) if o.name_any() == "b"));
    assert_eq!(
        start.elapsed().as_secs(),
        120,
        "the watch ends at its timeout"
    );
    // With bookmarks allowed, idle watches get them (every minute, and at the end).
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(150), "0")
        .await?
        .try_collect()
        .await?;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "added",
            WatchEvent::Bookmark(_) => "bookmark",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["added", "added", "bookmark", "bookmark", "bookmark"]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn streaming_lists_end_their_initial_events_with_a_bookmark() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await?;
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut init = Vec::new();
    loop {
        match events.try_next().await?.expect("stream") {
            watcher::Event::InitApply(o) => init.push(o.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(init, ["a"]);
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await?;
    match events.try_next().await?.expect("stream") {
        watcher::Event::Apply(o) => assert_eq!(o.name_any(), "b"),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn server_side_apply_owns_fields_prunes_and_conflicts() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    let config = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let created = api
        .patch(
            "c",
            &PatchParams::apply("alice"),
            &Patch::Apply(config(json!({"a": "1", "b": "1"}))),
        )
        .await?;
    assert_eq!(created.data.as_ref().map(BTreeMap::len), Some(2));
    // Dropping a field from the applied configuration removes it.
    let pruned = api
        .patch(
            "c",
            &PatchParams::apply("alice"),
            &Patch::Apply(config(json!({"a": "1"}))),
        )
        .await?;
    assert_eq!(
        pruned.data,
        Some(BTreeMap::from([("a".into(), "1".into())]))
    );
    // Another manager changing alice's field conflicts...
    let err = api
        .patch(
            "c",
            &PatchParams::apply("bob"),
            &Patch::Apply(config(json!({"a": "2"}))),
        )
        .await
        .expect_err("conflict");
    assert_eq!(api_error(&err), (409, "Conflict".into()));
    assert!(
        format!("{err:?}").contains("conflict with \\\"alice\\\""),
        "{err:?}"
    );
    // ...unless forced, which takes the field over.
    let forced = api
        .patch(
            "c",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(config(json!({"a": "2"}))),
        )
        .await?;
    assert_eq!(forced.data.expect("data")["a"], "2");
    let managers: Vec<(String, String)> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(managers, [("bob".to_string(), "Apply".to_string())]);
    // A merge patch takes ownership as an Update.
    let patched = api
        .patch(
            "c",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"a": "3"}})),
        )
        .await?;
    let owners: Vec<String> = patched
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(owners, ["kubectl-edit"]);
    // Apply bodies may be YAML and must name their kind.
    let bad = api
        .patch(
            "c",
            &PatchParams::apply("x"),
            &Patch::Apply(json!({"metadata": {"name": "c"}})),
        )
        .await
        .expect_err("no kind");
    assert_eq!(api_error(&bad).0, 400);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn apply_to_status_and_patch_errors() -> R {
    let (_sim, client) = sim();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    rs.create(&PostParams::default(), &replica_set("r", "app:1", 0))
        .await?;
    let applied = rs
        .patch_status(
            "r",
            &PatchParams::apply("me").force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "status": {"conditions": [{"type": "X", "status": "True"}]}})),
        )
        .await?;
    let conditions = applied
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert_eq!(conditions[0].type_.as_deref(), Some("X"));
    // A failing JSON-patch test is 422; a malformed one 400.
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("c", json!({"k": "v"})))
        .await?;
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "nope"}]))?;
    let err = cms
        .patch("c", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect_err("test op fails");
    assert_eq!(api_error(&err), (422, "Invalid".into()));
    let missing = cms
        .patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .expect_err("missing");
    assert_eq!(api_error(&missing), (404, "NotFound".into()));
    // Strategic merge is not for custom resources.
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &gadget_crd())
        .await?;
    gadgets(&client)
        .create(&PostParams::default(), &gadget("g", json!({"replicas": 1})))
        .await?;
    let err = gadgets(&client)
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .await
        .expect_err("415");
    assert_eq!(api_error(&err).0, 415);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn custom_resources_get_defaults_pruning_and_a_scale_subresource() -> R {
    let (_sim, client) = sim();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &gadget_crd())
        .await?;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("gadgets.example.com")
        .await?;
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "CRDs become Established");
    let api = gadgets(&client);
    let g = api
        .create(
            &PostParams::default(),
            &gadget("g", json!({"replicas": 2, "unknown": true, "tags": ["a"]})),
        )
        .await?;
    assert_eq!(
        g.data["spec"],
        json!({"replicas": 2, "size": 1, "tags": ["a"]})
    );
    let scale = api.get_scale("g").await?;
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    api.patch_scale(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await?;
    let g = api.get("g").await?;
    assert_eq!(g.data["spec"]["replicas"], 5);
    assert_eq!(g.metadata.generation, Some(2));
    // Deleting the CRD removes its objects and stops serving them.
    Api::<CustomResourceDefinition>::all(client.clone())
        .delete("gadgets.example.com", &DeleteParams::default())
        .await?;
    let err = api.get("g").await.expect_err("gone");
    assert_eq!(api_error(&err).0, 404);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn scale_down_removes_not_ready_pods_first() -> R {
    let (sim, client) = sim();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    rs.create(&PostParams::default(), &replica_set("r", "app:1", 2))
        .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let first: Vec<String> = pods
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(first.len(), 2);
    // New pods of this image now take an hour.
    sim.set_image_behavior(
        "app:1",
        ImageBehavior::Ready {
            after: Duration::from_secs(3600),
        },
    );
    rs.patch_scale(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let status = rs.get_status("r").await?.status.expect("status");
    assert_eq!((status.replicas, status.ready_replicas), (4, Some(2)));
    rs.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    let left: Vec<String> = pods
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, first, "the ready pods stay");
    for p in &left {
        assert!(p.starts_with("r-") && p.len() == 7, "{p}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn crash_looping_pods_restart_with_back_off_and_never_get_ready() -> R {
    let (_sim, client) = sim();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    rs.create(&PostParams::default(), &replica_set("bad", "app:2-fail", 1))
        .await?;
    tokio::time::sleep(Duration::from_secs(75)).await;
    let pod = Api::<Pod>::namespaced(client, "default")
        .list(&ListParams::default().labels("rs=bad"))
        .await?
        .items
        .remove(0);
    let status = pod.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let c = &status.container_statuses.expect("containers")[0];
    assert!(!c.ready);
    // Restarts after 10, 30 and 70 seconds.
    assert_eq!(c.restart_count, 3);
    let waiting = c
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let rs_status = rs.get_status("bad").await?.status.expect("status");
    assert_eq!((rs_status.replicas, rs_status.ready_replicas), (1, None));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn finalizers_hold_deletion_and_orphaning_keeps_dependents() -> R {
    let (sim, client) = sim();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let held = cms.create(&PostParams::default(), &held).await?;
    let owner_ref = held.controller_owner_ref(&()).expect("owner ref");
    let mut dep = cm("dep", json!({}));
    dep.metadata.owner_references = Some(vec![owner_ref.clone()]);
    cms.create(&PostParams::default(), &dep).await?;
    cms.delete("held", &DeleteParams::default()).await?;
    let marked = cms.get("held").await?;
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.generation, Some(2));
    assert!(
        cms.get_opt("dep").await?.is_some(),
        "dependents wait for the owner"
    );
    // Adding finalizers while deleting is refused.
    let err = cms
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await
        .expect_err("422");
    assert_eq!(api_error(&err).0, 422);
    // Removing the finalizer completes the deletion and collects the dependent.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    assert!(cms.get_opt("held").await?.is_none());
    assert!(cms.get_opt("dep").await?.is_none());

    // Orphaning keeps dependents and strips their owner reference.
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    rs.create(&PostParams::default(), &replica_set("o", "app:1", 2))
        .await?;
    rs.delete("o", &DeleteParams::orphan()).await?;
    let pods = sim.list_objects("v1", "pods", Some("default"));
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| {
        p["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r == &json!([]))
    }));

    // An object whose owners are all gone is collected.
    let mut stray = cm("stray", json!({}));
    stray.metadata.owner_references = Some(vec![owner_ref]);
    cms.create(&PostParams::default(), &stray).await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(cms.get_opt("stray").await?.is_none());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn namespaces_must_exist_and_take_their_contents_along() -> R {
    let (_sim, client) = sim();
    let in_team = Api::<ConfigMap>::namespaced(client.clone(), "team");
    let err = in_team
        .create(&PostParams::default(), &cm("c", json!({})))
        .await
        .expect_err("no namespace");
    assert_eq!(api_error(&err), (404, "NotFound".into()));
    let nss = Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}}))?;
    let ns = nss.create(&PostParams::default(), &ns).await?;
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    in_team
        .create(&PostParams::default(), &cm("c", json!({})))
        .await?;
    Api::<ReplicaSet>::namespaced(client.clone(), "team")
        .create(&PostParams::default(), &replica_set("r", "app:1", 2))
        .await?;
    nss.delete("team", &DeleteParams::default()).await?;
    assert!(nss.get_opt("team").await?.is_none());
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    assert!(pods.items.is_empty());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn validation_dry_runs_collections_and_preconditions() -> R {
    let (sim, client) = sim();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let err = cms
        .create(&PostParams::default(), &cm("Bad_Name", json!({})))
        .await
        .expect_err("invalid");
    assert_eq!(api_error(&err), (422, "Invalid".into()));
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let mut mismatched = replica_set("m", "app:1", 1);
    mismatched.spec.selector.match_labels = Some(BTreeMap::from([("x".into(), "y".into())]));
    let err = rs
        .create(&PostParams::default(), &mismatched)
        .await
        .expect_err("invalid");
    assert_eq!(api_error(&err).0, 422);

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = cms.create(&dry, &cm("dry", json!({}))).await?;
    assert_eq!(would.name_any(), "dry");
    assert!(
        cms.get_opt("dry").await?.is_none(),
        "dry runs store nothing"
    );

    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = cms.create(&PostParams::default(), &generated).await?;
    assert!(made.name_any().starts_with("gen-") && made.name_any().len() == 9);

    for n in ["a", "b"] {
        let mut c = cm(n, json!({}));
        c.metadata.labels = Some(BTreeMap::from([("group".into(), "x".into())]));
        cms.create(&PostParams::default(), &c).await?;
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("group=x"),
        )
        .await?;
    let names: Vec<String> = deleted
        .left()
        .expect("a list")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(names, ["a", "b"]);

    let c = cms
        .create(&PostParams::default(), &cm("p", json!({})))
        .await?;
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = cms.delete("p", &wrong_uid).await.expect_err("precondition");
    assert_eq!(api_error(&err), (409, "Conflict".into()));
    let right_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: c.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    cms.delete("p", &right_uid).await?;

    let audit = sim.audit_log();
    let last = audit.last().expect("audited");
    assert_eq!((last.method.as_str(), last.code), ("DELETE", 200));
    assert!(last.resource_version.is_some());
    let failed = audit.iter().filter(|e| e.code >= 400).count();
    assert_eq!(failed, 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn services_get_defaults_and_timestamps_follow_virtual_time() -> R {
    let base: jiff::Timestamp = "2030-01-01T00:00:00Z".parse()?;
    let sim = SimCluster::new(SimConfig {
        base_time: Some(base),
        ..Default::default()
    });
    let client = sim.client();
    let svcs = Api::<Service>::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )?;
    let created = svcs.create(&PostParams::default(), &svc).await?;
    let spec = created.spec.clone().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(
        spec.cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.96."))
    );
    let port = &spec.ports.expect("ports")[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(created.metadata.creation_timestamp.map(|t| t.0), Some(base));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(sim.now(), base + jiff::SignedDuration::from_hours(1));
    let later = svcs
        .create(&PostParams::default(), &{
            let mut s = svc.clone();
            s.metadata.name = Some("web2".into());
            s
        })
        .await?;
    assert_eq!(
        later.metadata.creation_timestamp.map(|t| t.0),
        Some(base + jiff::SignedDuration::from_hours(1))
    );
    // A replace without clusterIP keeps the allocated one.
    let mut replaced = svcs.get("web").await?;
    if let Some(s) = replaced.spec.as_mut() {
        s.cluster_ip = None;
        s.cluster_ips = None;
    }
    let replaced = svcs
        .replace("web", &PostParams::default(), &replaced)
        .await?;
    assert_eq!(replaced.spec.and_then(|s| s.cluster_ip), spec.cluster_ip);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn events_written_through_events_v1_are_core_events_too() -> R {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (_sim, client) = sim();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let c = cms
        .create(&PostParams::default(), &cm("c", json!({})))
        .await?;
    let recorder = Recorder::new(client.clone(), Reporter::from("sim-test"));
    let ev = Event {
        type_: EventType::Warning,
        reason: "Noticed".into(),
        note: Some("something happened".into()),
        action: "Look".into(),
        secondary: None,
    };
    recorder.publish(&ev, &c.object_ref(&())).await?;
    let core = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default().fields("involvedObject.name=c"))
        .await?;
    assert_eq!(core.items.len(), 1);
    let e = &core.items[0];
    assert_eq!(e.message.as_deref(), Some("something happened"));
    assert_eq!(e.reporting_component.as_deref(), Some("sim-test"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    let bad = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client, "default")
        .list(&ListParams::default().fields("spec.nope=x"))
        .await
        .expect_err("unsupported field");
    assert_eq!(api_error(&bad).0, 400);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_thousand_replica_sets_become_ready_in_six_virtual_seconds() -> R {
    let (sim, client) = sim();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    for i in 0..1000 {
        rs.create(
            &PostParams::default(),
            &replica_set(&format!("r{i}"), "app:1", 3),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let all = rs.list(&ListParams::default()).await?;
    assert_eq!(all.items.len(), 1000);
    assert!(
        all.items
            .iter()
            .all(|r| r.status.as_ref().and_then(|s| s.ready_replicas) == Some(3))
    );
    assert_eq!(sim.list_objects("v1", "pods", None).len(), 3000);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn metadata_lists_and_watches() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("a", json!({"big": "data"})))
        .await?;
    let list = api.list_metadata(&ListParams::default()).await?;
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].name_any(), "a");
    assert_eq!(
        list.items[0].types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(api.clone().into_client(), "default");
    let mut events = watcher(meta_api, watcher::Config::default()).boxed();
    let mut names = Vec::new();
    loop {
        match events.try_next().await?.expect("stream") {
            watcher::Event::InitApply(o) => names.push(o.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await?;
    loop {
        if let watcher::Event::Apply(o) = events.try_next().await?.expect("stream") {
            names.push(o.name_any());
            break;
        }
    }
    assert_eq!(names, ["a", "b"]);
    Ok(())
}

async fn send(client: &Client, method: &str, path: &str, content_type: &str, body: &str) -> u16 {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .expect("request");
    client
        .send(req)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn malformed_requests_get_client_errors_not_panics() -> R {
    let (sim, client) = sim();
    let json = "application/json";
    let merge = "application/merge-patch+json";
    let svcs = "/api/v1/namespaces/default/services";
    let rss = "/apis/apps/v1/namespaces/default/replicasets";
    let cases: Vec<(&str, String, &str, &str, u16)> = vec![
        ("POST", svcs.into(), json, "not json", 400),
        ("POST", svcs.into(), json, r#"{"metadata": "x"}"#, 400),
        (
            "POST",
            svcs.into(),
            json,
            r#"{"metadata": {"name": "s"}, "spec": [1]}"#,
            400,
        ),
        ("POST", svcs.into(), json, r#"[1, 2]"#, 400),
        ("POST", svcs.into(), "application/cbor", "{}", 415),
        (
            "POST",
            svcs.into(),
            "application/vnd.kubernetes.protobuf",
            "k8s\0\x0a",
            400,
        ),
        (
            "POST",
            rss.into(),
            json,
            r#"{"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": "x"}}}"#,
            422,
        ),
        (
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".into(),
            json,
            r#"{"metadata": {"name": "x.y.z"}, "spec": {"group": "y.z", "names": "n", "versions": []}}"#,
            422,
        ),
        (
            "GET",
            format!("{svcs}?labelSelector=a%20in%20("),
            json,
            "",
            400,
        ),
        (
            "GET",
            format!("{svcs}?watch=1&resourceVersion=abc"),
            json,
            "",
            400,
        ),
        ("GET", format!("{svcs}?limit=-1"), json, "", 400),
        ("GET", format!("{svcs}?continue=nonsense"), json, "", 400),
        ("GET", "/apis/nope/v1/things".into(), json, "", 404),
        (
            "GET",
            "/api/v1/namespaces/default/pods/p/log".into(),
            json,
            "",
            404,
        ),
        ("PUT", svcs.to_string(), json, "{}", 405),
        ("DELETE", format!("{svcs}/missing"), json, "", 404),
    ];
    for (method, path, ct, body, want) in &cases {
        assert_eq!(
            send(&client, method, path, ct, body).await,
            *want,
            "{method} {path} {body}"
        );
    }
    // Against an existing object.
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("c", json!({})))
        .await?;
    let c = "/api/v1/namespaces/default/configmaps/c";
    let cases: Vec<(&str, &str, &str, u16)> = vec![
        ("PATCH", merge, r#"{"metadata": "x"}"#, 400),
        ("PATCH", merge, r#"[1]"#, 400),
        (
            "PATCH",
            "application/json-patch+json",
            r#"[{"op": "bogus"}]"#,
            400,
        ),
        (
            "PATCH",
            "application/json-patch+json",
            r#"[{"op": "remove", "path": "/nope"}]"#,
            422,
        ),
        ("PATCH", "application/apply-patch+yaml", "a: [", 400),
        ("PATCH", "text/plain", "{}", 415),
        ("PUT", json, r#"{"metadata": {"name": "other"}}"#, 400),
        (
            "PUT",
            json,
            r#"{"metadata": {"name": "c", "resourceVersion": "1"}}"#,
            409,
        ),
        ("DELETE", json, "garbage", 400),
        ("DELETE", json, r#"{"propagationPolicy": "Sideways"}"#, 400),
    ];
    for (method, ct, body, want) in &cases {
        assert_eq!(
            send(&client, method, c, ct, body).await,
            *want,
            "{method} {body}"
        );
    }
    let apply = format!("{c}?fieldManager=m");
    let bad_meta = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}"#;
    assert_eq!(
        send(
            &client,
            "PATCH",
            &apply,
            "application/apply-patch+yaml",
            bad_meta
        )
        .await,
        400
    );
    // Pod status that is not an object; a scale that is not a number.
    let pods = "/api/v1/namespaces/default/pods";
    let pod =
        r#"{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}"#;
    assert_eq!(send(&client, "POST", pods, json, pod).await, 201);
    assert_eq!(
        send(
            &client,
            "PUT",
            &format!("{pods}/p/status"),
            json,
            r#"{"metadata": {"name": "p"}, "status": "x"}"#
        )
        .await,
        400
    );
    Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &replica_set("r", "app:1", 0))
        .await?;
    assert_eq!(
        send(
            &client,
            "PATCH",
            &format!("{rss}/r/scale"),
            merge,
            r#"{"spec": {"replicas": "x"}}"#
        )
        .await,
        422
    );
    // Absurd numbers are survived: the pods come in bursts and go with their ReplicaSet.
    let huge = r#"{"metadata": {"name": "huge"}, "spec": {"replicas": 2147483647,
        "minReadySeconds": 9223372036854775807, "selector": {"matchLabels": {"h": "1"}},
        "template": {"metadata": {"labels": {"h": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}"#;
    assert_eq!(send(&client, "POST", rss, json, huge).await, 201);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // One pod made directly, and three bursts of 500 (at 0, 1 and 2 seconds).
    assert_eq!(sim.list_objects("v1", "pods", Some("default")).len(), 1501);
    assert_eq!(
        send(&client, "DELETE", &format!("{rss}/huge"), json, "").await,
        200
    );
    assert_eq!(sim.list_objects("v1", "pods", Some("default")).len(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_huge_replica_count_fills_in_bursts_up_to_the_pod_capacity_and_scales_down() -> R {
    let sim = SimCluster::new(SimConfig {
        max_pods: 1_200,
        ..Default::default()
    });
    let client = sim.client();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    // Count the writes of the ReplicaSet's status while it fills.
    let mut changes = rs
        .watch(&WatchParams::default().fields("metadata.name=big"), "0")
        .await?
        .boxed();
    let counted = tokio::spawn(async move {
        let mut n = 0usize;
        while let Some(Ok(e)) = changes.next().await {
            if matches!(e, WatchEvent::Modified(_)) {
                n += 1;
            }
            if let WatchEvent::Modified(r) = e
                && r.spec.replicas == Some(2)
            {
                return n;
            }
        }
        n
    });
    rs.create(
        &PostParams::default(),
        &replica_set("big", "app:1", i32::MAX),
    )
    .await?;
    // One sync creates one burst.
    assert_eq!(sim.list_objects("v1", "pods", Some("default")).len(), 500);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cms.list(&ListParams::default()).await?;
    }
    // Bursts of 500 a second until the cluster's pod capacity; then the ReplicaSet says why
    // it has no more, and a pod made directly is refused.
    assert_eq!(sim.list_objects("v1", "pods", Some("default")).len(), 1_200);
    let status = rs.get("big").await?.status.expect("status");
    assert_eq!(status.replicas, 1_200);
    assert_eq!(status.ready_replicas, Some(1_200));
    let failure = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
        .expect("a ReplicaFailure condition");
    assert_eq!(
        (failure.status.as_deref(), failure.reason.as_deref()),
        (Some("True"), Some("FailedCreate"))
    );
    let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "app:1"}]}}))?;
    let err = pods
        .create(&PostParams::default(), &bare)
        .await
        .expect_err("over capacity");
    assert_eq!(api_error(&err), (403, "Forbidden".into()));

    // A scale-down works at once, and nothing comes back.
    rs.patch(
        "big",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 2);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 2);
    let status = rs.get("big").await?.status.expect("status");
    assert_eq!((status.replicas, status.ready_replicas), (2, Some(2)));
    assert!(
        status
            .conditions
            .unwrap_or_default()
            .iter()
            .all(|c| c.type_.as_deref() != Some("ReplicaFailure"))
    );
    // Pods that got ready together were synced together: a few status writes a second, not
    // one per pod.
    let writes = counted.await?;
    assert!(writes < 60, "{writes} status writes");
    Ok(())
}

/// The `ReplicaFailure` condition of a ReplicaSet whose pods a namespace's pod quota refuses,
/// as the Kubernetes ReplicaSet controller sets it (`pkg/controller/replicaset`,
/// `calculateStatus`): status True, reason `FailedCreate`, the admission error as message;
/// kept as it is while creations keep failing, removed once they succeed.
#[tokio::test(start_paused = true)]
async fn a_pod_quota_refuses_pods_and_the_replica_set_says_so_until_it_is_lifted() -> R {
    let (sim, client) = sim();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
    };
    sim.set_pod_quota("default", Some(2));
    rs.create(&PostParams::default(), &replica_set("web", "app:1", 4))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 2);
    let first = failure(&rs.get("web").await?).expect("a ReplicaFailure condition");
    assert_eq!(
        (first.status.as_deref(), first.reason.as_deref()),
        (Some("True"), Some("FailedCreate"))
    );
    assert_eq!(
        first.message.as_deref(),
        Some(
            "pods \"web-\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, \
             limited: pods=2"
        )
    );
    // A pod made directly is refused the same way; another namespace has no quota.
    let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "app:1"}]}}))?;
    let err = pods
        .create(&PostParams::default(), &bare)
        .await
        .expect_err("over quota");
    assert_eq!(api_error(&err), (403, "Forbidden".into()));
    Api::<Pod>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &bare)
        .await?;
    // Retried every second, the condition stays the first one, also when the quota is raised
    // but still refuses one (the real controller sets it only when there is none).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(failure(&rs.get("web").await?), Some(first.clone()));
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 2);
    sim.set_pod_quota("default", Some(3));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 3);
    assert_eq!(failure(&rs.get("web").await?), Some(first));

    // Lifted: the missing pod is created at the next retry and the condition goes.
    sim.set_pod_quota("default", None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 4);
    let now = rs.get("web").await?;
    assert_eq!(failure(&now), None);
    assert_eq!(now.status.map(|s| s.replicas), Some(4));
    Ok(())
}
