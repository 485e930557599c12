//! The simulated API server, seen through kube's own client.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::runtime::watcher;
use kube::{Api, Client};
use rollgate_sim::{ImageBehavior, SimCluster, SimConfig};
use serde_json::json;

type R = anyhow::Result<()>;

fn code(e: &kube::Error) -> Option<(u16, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.reason.clone())),
        _ => None,
    }
}

fn service(name: &str) -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": name, "tier": "web"}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}),
    )
    .expect("service")
}

fn replica_set(name: &str, image: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                 "template": {"metadata": {"labels": {"rs": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}}}))
    .expect("rs")
}

fn sim() -> (SimCluster, Client) {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    (sim, client)
}

#[tokio::test(start_paused = true)]
async fn create_get_list_replace_delete() -> R {
    let (_sim, client) = sim();
    let api = Api::<Service>::namespaced(client, "default");
    let created = api.create(&PostParams::default(), &service("a")).await?;
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let again = api
        .create(&PostParams::default(), &service("a"))
        .await
        .expect_err("exists");
    assert_eq!(code(&again), Some((409, "AlreadyExists".into())));
    let missing = api.get("nope").await.expect_err("missing");
    assert_eq!(code(&missing), Some((404, "NotFound".into())));
    let mut got = api.get("a").await?;
    got.spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")[0]
        .port = 81;
    let replaced = api.replace("a", &PostParams::default(), &got).await?;
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(
        replaced.metadata.resource_version,
        got.metadata.resource_version
    );
    assert_eq!(api.list(&ListParams::default()).await?.items.len(), 1);
    api.delete("a", &DeleteParams::default()).await?;
    assert!(api.get_opt("a").await?.is_none());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn stale_resource_version_is_a_conflict() -> R {
    let (_sim, client) = sim();
    let api = Api::<ConfigMap>::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "1"}}))?;
    let v1 = api.create(&PostParams::default(), &cm).await?;
    let mut fresh = v1.clone();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    api.replace("c", &PostParams::default(), &fresh).await?;
    let stale = api
        .replace("c", &PostParams::default(), &v1)
        .await
        .expect_err("stale");
    assert_eq!(code(&stale), Some((409, "Conflict".into())));
    let rv = v1.metadata.resource_version.clone().expect("rv");
    let patch = json!({"metadata": {"resourceVersion": rv}, "data": {"k": "3"}});
    let stale = api
        .patch("c", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("stale patch");
    assert_eq!(code(&stale), Some((409, "Conflict".into())));
    assert_eq!(api.get("c").await?.data.expect("data")["k"], "2");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn status_subresource_is_isolated_both_ways() -> R {
    let (_sim, client) = sim();
    let api = Api::<ReplicaSet>::namespaced(client, "default");
    api.create(&PostParams::default(), &replica_set("r", "img:1", 0))
        .await?;
    // A main-resource write cannot set status.
    let p = json!({"status": {"replicas": 7}, "spec": {"minReadySeconds": 3}});
    let after = api
        .patch("r", &PatchParams::default(), &Patch::Merge(&p))
        .await?;
    assert_eq!(after.status.as_ref().map(|s| s.replicas), Some(0));
    assert_eq!(after.spec.min_ready_seconds, Some(3));
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    // A status write cannot change spec.
    let p = json!({"status": {"replicas": 5}, "spec": {"minReadySeconds": 9}});
    let after = api
        .patch_status("r", &PatchParams::default(), &Patch::Merge(&p))
        .await?;
    assert_eq!(after.status.expect("status").replicas, 5);
    assert_eq!(after.spec.min_ready_seconds, Some(3));
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "status writes keep generation"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn merge_json_strategic_and_apply_patches() -> R {
    let (sim, client) = sim();
    let api = Api::<Service>::namespaced(client, "default");
    api.create(&PostParams::default(), &service("s")).await?;
    let merged = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"hash": "abc"}}})),
        )
        .await?;
    assert_eq!(
        merged
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .expect("sel")
            .len(),
        2
    );
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/spec/selector/hash"}]))?;
    let jsoned = api
        .patch("s", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await?;
    assert_eq!(
        jsoned
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .expect("sel")
            .len(),
        1
    );
    let strategic = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"port": 443}]}})),
        )
        .await?;
    assert_eq!(
        strategic.spec.expect("spec").ports.expect("ports").len(),
        2,
        "ports merged by key"
    );
    let applied = api
        .patch(
            "new",
            &PatchParams::apply("me"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "new"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await?;
    assert_eq!(
        applied.metadata.managed_fields.expect("managed")[0]
            .manager
            .as_deref(),
        Some("me")
    );
    let no_manager = api
        .patch(
            "new",
            &PatchParams::default(),
            &Patch::Apply(json!({"metadata": {"name": "new"}})),
        )
        .await
        .expect_err("apply without fieldManager");
    assert_eq!(code(&no_manager).map(|c| c.0), Some(400));
    assert!(
        sim.audit_log()
            .iter()
            .any(|e| e.content_type.as_deref() == Some("application/apply-patch+yaml"))
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn label_and_field_selectors_filter_lists() -> R {
    let (_sim, client) = sim();
    let api = Api::<Service>::namespaced(client, "default");
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &service(n)).await?;
    }
    let names = |l: kube::core::ObjectList<Service>| {
        l.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (a,c)"))
                .await?
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app!=a,tier=web"))
                .await?
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await?
        ),
        ["b"]
    );
    let bad = api
        .list(&ListParams::default().labels("app in a"))
        .await
        .expect_err("bad selector");
    assert_eq!(code(&bad).map(|c| c.0), Some(400));
    let page = api.list(&ListParams::default().limit(2)).await?;
    assert_eq!(page.items.len(), 2);
    let rest = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page.metadata.continue_.as_deref().expect("continue")),
        )
        .await?;
    assert_eq!(names(rest), ["c"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn watcher_sees_changes_and_recovers_from_gone() -> R {
    let sim = SimCluster::new(SimConfig {
        watch_history: 3,
        ..Default::default()
    });
    let client = sim.client();
    let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let cm = |n: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n}})).expect("cm")
    };
    api.create(&PostParams::default(), &cm("one")).await?;
    // Wait for the initial list to complete.
    loop {
        let ev = stream.next().await.expect("stream")?;
        if matches!(ev, watcher::Event::InitDone) {
            break;
        }
    }
    for n in ["two", "three", "four", "five", "six"] {
        api.create(&PostParams::default(), &cm(n)).await?;
    }
    api.delete("one", &DeleteParams::default()).await?;
    // Follow the stream until the watcher's view matches the cluster. With a history of 3
    // changes, the watch resumes from a resourceVersion that is already gone: the watcher gets
    // 410, relists, and still converges.
    let mut names = std::collections::BTreeSet::new();
    let mut errors = 0;
    let want: std::collections::BTreeSet<String> = ["two", "three", "four", "five", "six"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut pending = std::collections::BTreeSet::new();
    while names != want {
        let ev = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await?
            .expect("stream");
        match ev {
            Err(_) => errors += 1,
            Ok(watcher::Event::Init) => pending.clear(),
            Ok(watcher::Event::InitApply(o)) => {
                pending.insert(o.metadata.name.unwrap_or_default());
            }
            Ok(watcher::Event::InitDone) => names = std::mem::take(&mut pending),
            Ok(watcher::Event::Apply(o)) => {
                names.insert(o.metadata.name.unwrap_or_default());
            }
            Ok(watcher::Event::Delete(o)) => {
                names.remove(&o.metadata.name.unwrap_or_default());
            }
        }
    }
    assert!(
        errors >= 1,
        "the too-old resourceVersion was answered with 410"
    );
    // A watch from a resourceVersion older than the history gets 410 Gone.
    let too_old = api
        .watch(&kube::api::WatchParams::default(), "2")
        .await?
        .boxed()
        .next()
        .await
        .expect("one event");
    assert!(format!("{too_old:?}").contains("410"), "{too_old:?}");
    Ok(())
}

async fn wait_ready(
    api: &Api<ReplicaSet>,
    name: &str,
    want: i32,
    secs: u64,
) -> anyhow::Result<ReplicaSet> {
    for _ in 0..secs {
        let rs = api.get(name).await?;
        if rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
            == want
        {
            return Ok(rs);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("{name} never had {want} ready pods")
}

#[tokio::test(start_paused = true)]
async fn replica_sets_get_pods_that_become_ready_in_virtual_time() -> R {
    let (sim, client) = sim();
    sim.set_image_behavior(
        "slow:1",
        ImageBehavior::Ready {
            after: Duration::from_secs(30),
        },
    );
    let api = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let pods = Api::<Pod>::namespaced(client, "default");
    let start = tokio::time::Instant::now();
    api.create(&PostParams::default(), &replica_set("slow", "slow:1", 3))
        .await?;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 3);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        api.get("slow").await?.status.and_then(|s| s.ready_replicas),
        None,
        "zero counts are omitted, as the API server does"
    );
    wait_ready(&api, "slow", 3, 60).await?;
    let took = start.elapsed().as_secs();
    assert!((30..=32).contains(&took), "ready after {took}s");
    // Scale down removes pods; status follows.
    api.patch(
        "slow",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await?;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 1);
    assert_eq!(api.get("slow").await?.status.map(|s| s.replicas), Some(1));
    // Deleting the ReplicaSet garbage-collects its pods.
    api.delete("slow", &DeleteParams::background()).await?;
    assert!(pods.list(&ListParams::default()).await?.items.is_empty());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn min_ready_seconds_and_crash_loops() -> R {
    let (_sim, client) = sim();
    let api = Api::<ReplicaSet>::namespaced(client, "default");
    let mut rs = replica_set("m", "app:1", 2);
    rs.spec.min_ready_seconds = Some(20);
    api.create(&PostParams::default(), &rs).await?;
    let ready = wait_ready(&api, "m", 2, 30).await?;
    assert_eq!(
        ready.status.and_then(|s| s.available_replicas),
        None,
        "not yet available"
    );
    tokio::time::sleep(Duration::from_secs(22)).await;
    assert_eq!(
        api.get("m")
            .await?
            .status
            .and_then(|s| s.available_replicas),
        Some(2)
    );
    api.create(
        &PostParams::default(),
        &replica_set("bad", "app:2-crashloop", 2),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        api.get("bad").await?.status.and_then(|s| s.ready_replicas),
        None
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_crd_created_through_the_api_is_served() -> R {
    let (_sim, client) = sim();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                               "subresources": {"status": {}}}]}}))?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await?;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar);
    let mut w = DynamicObject::new("w1", &ar);
    w.data = json!({"spec": {"size": 3}, "status": {"ok": true}});
    let created = api.create(&PostParams::default(), &w).await?;
    assert_eq!(created.data["spec"]["size"], 3);
    assert!(
        created.data.get("status").is_none(),
        "status is not set by create"
    );
    let discovery = kube::discovery::Discovery::new(client).run().await?;
    assert!(discovery.groups().any(|g| g.name() == "example.com"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn events_recorder_publishes_and_aggregates() -> R {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (sim, client) = sim();
    let svc = Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service("e"))
        .await?;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Tested".into(),
        note: Some("hi".into()),
        action: "Test".into(),
        secondary: None,
    };
    use kube::Resource;
    recorder.publish(&ev, &svc.object_ref(&())).await?;
    recorder.publish(&ev, &svc.object_ref(&())).await?;
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client, "default")
        .list(&ListParams::default())
        .await?;
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].series.as_ref().map(|s| s.count), Some(2));
    let writes: Vec<(String, Option<String>)> = sim
        .audit_log()
        .into_iter()
        .filter(|e| e.path.contains("/events"))
        .map(|e| (e.method, e.content_type))
        .collect();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].0, "POST");
    assert_eq!(
        (writes[1].0.as_str(), writes[1].1.as_deref()),
        ("PATCH", Some("application/merge-patch+json"))
    );
    Ok(())
}
